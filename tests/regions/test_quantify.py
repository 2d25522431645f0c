"""quantify_subject options and errors, MNI-space maps, the cached atlases, and no torch."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from wmhkit.errors import InputImageError, OptionError
from wmhkit.io import cache_dir, mask_volume_ml, save_img
from wmhkit.regions import bullseye_names, load_bullseye_template, load_parcels, quantify_subject, read_table, warp_to_mni
from wmhkit.regions.parcels import LOBES, PARCEL_CODES


def test_importing_regions_does_not_import_torch():
    code = "import sys, wmhkit.regions, wmhkit.cli.regions; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_needs_t1_or_alignment_and_known_schemes(subject):
    mask = subject.mask((np.zeros(3), 2.0))
    with pytest.raises(OptionError, match="T1 or an alignment"):
        quantify_subject(mask)
    with pytest.raises(OptionError, match="'bogus'"):
        quantify_subject(mask, alignment=subject.alignment, schemes=("bogus",))
    other_grid = nib.Nifti1Image(np.ones((30, 40, 50), np.float32), np.eye(4))
    with pytest.raises(InputImageError, match="not on the grid"):
        quantify_subject(mask, other_grid, alignment=subject.alignment)


def test_empty_mask_and_subject_name_from_file(subject, tmp_path):
    path = save_img(subject.mask(), tmp_path / "sub-07_desc-wmh_mask.nii.gz")
    result = quantify_subject(path, alignment=subject.alignment, schemes=("bullseye", "pv_continuity"))
    assert result.summary["lesion_count"] == 0 and result.summary["fazekas_estimate"] == 0
    assert len(result.lesions) == 0 and (result.regions["lesion_ml"] == 0).all()
    assert set(result.regions["subject"]) == {"sub-07_desc-wmh_mask"}
    written = result.save(tmp_path / "out", "sub-07")
    assert written["regions_tsv"].name == "sub-07_regions.tsv" and written["lesions_tsv"].is_file()


@pytest.mark.slow
def test_warp_to_mni_keeps_the_volume(subject):
    centre = subject.pick([PARCEL_CODES["white_matter_parietal_left"]], (10.0, 30.0), near=(-25, -40, 30))
    mask = subject.mask((centre, 6.0))
    warped = warp_to_mni(mask, subject.alignment)
    assert warped.shape == (197, 233, 189) and warped.get_data_dtype() == np.uint8
    assert mask_volume_ml(warped) == pytest.approx(mask_volume_ml(mask), rel=0.1)
    ijk = np.argwhere(np.asarray(warped.dataobj) > 0).mean(axis=0)
    assert np.linalg.norm(ijk + warped.affine[:3, 3] - centre) < 1.0
    prob = nib.Nifti1Image(mask.get_fdata().astype(np.float32) * 0.8, mask.affine)
    warped_prob = warp_to_mni(prob, subject.alignment, kind="probseg")
    assert warped_prob.get_data_dtype() == np.float32 and float(np.asarray(warped_prob.dataobj).max()) <= 0.8 + 1e-6
    with pytest.raises(OptionError, match="kind"):
        warp_to_mni(mask, subject.alignment, kind="labels")


def test_atlases_are_cached_and_plausible(subject):
    parcels = load_parcels()
    data = np.asarray(parcels.dataobj)
    assert set(np.unique(data)) <= set(read_table("parcels")["index"])
    assert (cache_dir("atlases") / "mni152_parcels.nii").is_file()
    x, y, _ = (np.argwhere(data == PARCEL_CODES["lateral_ventricle_left"]) + parcels.affine[:3, 3]).mean(axis=0)
    assert x < -5 and -40 < y < 10
    ventricle_ml = np.isin(data, [1, 2]).sum() / 1000
    assert 8 < ventricle_ml < 40
    # lobes are where they should be: frontal white matter anterior to occipital, temporal below parietal
    centre = {lobe: (np.argwhere(data == PARCEL_CODES[f"white_matter_{lobe}_right"]) + parcels.affine[:3, 3]).mean(axis=0)
              for lobe in LOBES}
    assert centre["frontal"][1] > centre["parietal"][1] > centre["occipital"][1]
    assert centre["temporal"][2] < centre["parietal"][2]
    assert all(c[0] > 0 for c in centre.values())


@pytest.mark.slow
def test_bullseye_template_shells_go_outwards():
    labels = np.asarray(load_bullseye_template().dataobj)
    assert set(np.unique(labels)) == set(range(37))
    assert len(bullseye_names()) == 36
    from scipy import ndimage

    ventricle = np.isin(np.asarray(load_parcels().dataobj), [1, 2])
    distance = ndimage.distance_transform_edt(~ventricle)
    frontal_left = [np.median(distance[labels == shell]) for shell in (1, 2, 3, 4)]
    assert frontal_left == sorted(frontal_left) and frontal_left[0] < 5 < frontal_left[3]


@pytest.mark.real_data
@pytest.mark.slow
def test_real_head_ventricles_and_sums(real_t1_1p75mm):
    from wmhkit.io import check_img
    from wmhkit.preprocess import align_to_mni

    t1 = check_img(real_t1_1p75mm)
    alignment = align_to_mni(t1)
    ijk = np.indices(t1.shape).reshape(3, -1).T
    to_mni = alignment.subject_to_mni @ t1.affine
    mni = ijk @ to_mni[:3, :3].T + to_mni[:3, 3]
    blob = (np.linalg.norm(mni - [-26.0, -20.0, 32.0], axis=1) <= 5).reshape(t1.shape).astype(np.uint8)
    mask = nib.Nifti1Image(blob, t1.affine)
    result = quantify_subject(mask, t1, alignment=alignment)
    # a healthy adult head: lateral ventricles of some 8-40 mL, refined on the T1
    assert result.summary["ventricles_refined"] and 8 < result.summary["ventricle_ml"] < 40
    sums = result.regions.groupby("scheme")["lesion_ml"].sum()
    np.testing.assert_allclose(sums, mask_volume_ml(mask), rtol=1e-9)
    assert result.summary["lesion_count"] == 1 and result.lesions["lobe"].iloc[0] in ("frontal_left", "parietal_left")
