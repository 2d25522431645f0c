"""Regions driven by the subject's own FreeSurfer/SynthSeg parcellation (:mod:`wmhkit.regions.aseg`)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from wmhkit.cli import main
from wmhkit.errors import InputImageError, OptionError
from wmhkit.io import save_img
from wmhkit.regions import identity_alignment, quantify_subject
from wmhkit.regions.aseg import freesurfer_etiv, parcels_from_aseg, phantom_aseg
from wmhkit.regions.parcels import PARCEL_CODES

SHAPE = (34, 40, 30)  # unequal axes, 4 mm voxels: 136 x 160 x 120 mm around the MNI origin


def _grid_affine(voxel_mm: float = 4.0, shape=SHAPE) -> np.ndarray:
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -(np.asarray(shape) - 1) / 2 * voxel_mm + np.array([0.0, -18.0, 10.0])
    return affine


def _mni_mm(affine: np.ndarray, shape=SHAPE) -> np.ndarray:
    ijk = np.indices(shape).reshape(3, -1)
    return (affine[:3, :3] @ ijk + affine[:3, 3:4]).reshape((3, *shape))


def _toy_aseg(with_lobes: bool) -> nib.Nifti1Image:
    """An ellipsoid brain in MNI mm: cortex shell, white matter, lateral ventricles, a thalamus, an odd label."""
    affine = _grid_affine()
    x, y, z = _mni_mm(affine)
    radius = np.sqrt((x / 65) ** 2 + (y / 90) ** 2 + (z / 55) ** 2)
    left = x < 0
    labels = np.zeros(SHAPE, np.int16)
    labels[radius < 1.0] = np.where(left, 3, 42)[radius < 1.0]
    labels[radius < 0.85] = np.where(left, 2, 41)[radius < 0.85]
    vent = (np.abs(np.abs(x) - 8) < 5) & (np.abs(y + 10) < 20) & (np.abs(z - 12) < 6)
    labels[vent] = np.where(left, 4, 43)[vent]
    thal = (np.abs(np.abs(x) - 12) < 5) & (np.abs(y + 20) < 6) & (np.abs(z - 2) < 5) & ~vent
    labels[thal] = np.where(left, 10, 49)[thal]
    labels[(np.abs(x) < 2) & (radius < 0.5) & ~vent] = 253  # corpus callosum: midline white matter
    labels[(np.abs(x - 30) < 3) & (np.abs(y) < 3) & (np.abs(z) < 3)] = 1004  # not in the table: filled
    if with_lobes:  # aparc+aseg: frontal in front of y = -10, occipital behind y = -60, parietal between
        cortex = np.isin(labels, (3, 42))
        base = np.where(left, 1000, 2000)
        lobe = np.where(y > -10, 28, np.where(y < -60, 11, 29))  # superiorfrontal, lateraloccipital, superiorparietal
        labels[cortex] = (base + lobe)[cortex]
    return nib.Nifti1Image(labels, affine)


def _parcels(aseg, reference=None, alignment=None) -> np.ndarray:
    reference = aseg if reference is None else reference
    return np.asarray(parcels_from_aseg(aseg, reference, alignment).dataobj)


def test_aparc_aseg_gives_tissues_sides_and_lobes():
    aseg = _toy_aseg(with_lobes=True)
    labels = np.asarray(aseg.dataobj)
    parcels = _parcels(aseg)
    assert parcels.dtype == np.uint8 and parcels.shape == SHAPE
    assert np.all(parcels[labels == 4] == PARCEL_CODES["lateral_ventricle_left"])
    assert np.all(parcels[labels == 49] == PARCEL_CODES["deep_grey_right"])
    assert np.all(parcels[labels == 1028] == PARCEL_CODES["cortex_frontal_left"])
    assert np.all(parcels[labels == 2011] == PARCEL_CODES["cortex_occipital_right"])
    assert np.all(parcels[labels == 0] == 0)
    # Every white-matter voxel, midline and unknown labels included, has a lobe: codes 21..28.
    wm = np.isin(labels, (2, 41, 253))
    assert set(np.unique(parcels[wm])) <= set(range(21, 29))
    assert parcels[labels == 1004].min() > 0
    x, y, _ = _mni_mm(aseg.affine)
    front_left = wm & (x < -20) & (y > 20)
    assert np.all(parcels[front_left] == PARCEL_CODES["white_matter_frontal_left"])


def test_another_grid_in_the_same_space_gives_the_same_parcels():
    """FreeSurfer's conformed grid (LIA, finer voxels) is sampled onto the reference's voxels."""
    aseg = _toy_aseg(with_lobes=True)
    expected = _parcels(aseg)
    data = np.asarray(aseg.dataobj)
    fine = np.repeat(np.repeat(np.repeat(data, 2, 0), 2, 1), 2, 2)
    fine_affine = aseg.affine.copy()
    fine_affine[:3, :3] /= 2
    fine_affine[:3, 3] -= 1.0  # the centre of the first 2 mm voxel inside the first 4 mm one
    lia = np.flip(fine.transpose(0, 2, 1), axis=(0, 1))  # array axes: x reversed, z reversed, y
    to_lia = np.zeros((4, 4))
    to_lia[0, 0], to_lia[2, 1], to_lia[1, 2], to_lia[3, 3] = -1, -1, 1, 1
    to_lia[0, 3], to_lia[2, 3] = fine.shape[0] - 1, fine.shape[2] - 1
    lia_img = nib.MGHImage(lia.astype(np.int32), fine_affine @ to_lia)
    reference = nib.Nifti1Image(np.zeros(SHAPE, np.uint8), aseg.affine)
    np.testing.assert_array_equal(_parcels(lia_img, reference), expected)


def test_plain_aseg_takes_its_cortex_lobes_from_the_mni_atlas():
    aseg = _toy_aseg(with_lobes=False)
    labels = np.asarray(aseg.dataobj)
    parcels = _parcels(aseg, alignment=identity_alignment())
    x, y, z = _mni_mm(aseg.affine)
    cortex = np.isin(labels, (3, 42))
    assert set(np.unique(parcels[cortex])) <= set(range(11, 19))
    frontal_pole = cortex & (x < -5) & (y > 45)
    assert frontal_pole.any() and np.all(parcels[frontal_pole] == PARCEL_CODES["cortex_frontal_left"])
    occipital_pole = cortex & (x > 5) & (y < -80)
    assert occipital_pole.any() and np.all(parcels[occipital_pole] == PARCEL_CODES["cortex_occipital_right"])
    with pytest.raises(OptionError, match="without lobes"):
        parcels_from_aseg(aseg, aseg)


def test_refuses_a_parcellation_off_the_t1_or_without_freesurfer_labels(tmp_path):
    aseg = _toy_aseg(with_lobes=True)
    far = aseg.affine.copy()
    far[:3, 3] += 1000.0
    path = save_img(nib.Nifti1Image(np.asarray(aseg.dataobj), far), tmp_path / "far_aseg.nii.gz")
    with pytest.raises(InputImageError, match="far_aseg.nii.gz.*does not overlap"):
        parcels_from_aseg(path, aseg)
    odd = save_img(nib.Nifti1Image(np.full(SHAPE, 500, np.int16), aseg.affine), tmp_path / "odd.nii.gz")
    with pytest.raises(InputImageError, match="odd.nii.gz holds no FreeSurfer labels"):
        parcels_from_aseg(odd, aseg)


def test_freesurfer_etiv_reads_aseg_stats_beside_mri(tmp_path):
    mri = tmp_path / "sub-01" / "mri"
    mri.mkdir(parents=True)
    aseg = mri / "aseg.mgz"
    nib.save(nib.MGHImage(np.zeros((4, 5, 6), np.int32), np.eye(4)), aseg)
    assert freesurfer_etiv(aseg) is None
    (tmp_path / "sub-01" / "stats").mkdir()
    (tmp_path / "sub-01" / "stats" / "aseg.stats").write_text(
        "# Title Segmentation Statistics\n"
        "# Measure BrainSeg, BrainSegVol, Brain Segmentation Volume, 1100000.000000, mm^3\n"
        "# Measure EstimatedTotalIntraCranialVol, eTIV, Estimated Total Intracranial Volume, 1523456.789000, mm^3\n"
    )
    assert freesurfer_etiv(aseg) == pytest.approx(1523.456789)
    assert freesurfer_etiv(nib.MGHImage(np.zeros((4, 5, 6), np.int32), np.eye(4))) is None


@pytest.fixture(scope="module")
def phantom():
    from wmhkit.synth import make_phantom

    return make_phantom(2, voxel_size_mm=2.0)


@pytest.mark.slow
def test_phantom_regions_from_its_true_labels_agree_with_the_atlas(phantom):
    from wmhkit.preprocess import MNIAlignment

    alignment = MNIAlignment(phantom.subject_to_mni)
    atlas = quantify_subject(phantom.lesion_mask, phantom.t1, alignment=alignment, subject="p")
    own = quantify_subject(phantom.lesion_mask, phantom.t1, alignment=alignment, subject="p", aseg=phantom_aseg(phantom))
    assert atlas.summary["regions_anatomy"] == "mni_atlas" and own.summary["regions_anatomy"] == "aseg:image"
    assert own.summary["ventricles_refined"] is False
    both = atlas.regions.merge(own.regions, on=["scheme", "region"], suffixes=("_atlas", "_aseg"))
    sums = both.groupby("scheme")[["lesion_ml_atlas", "lesion_ml_aseg"]].sum()
    np.testing.assert_allclose(sums["lesion_ml_aseg"], sums["lesion_ml_atlas"], rtol=1e-9)
    # Same lesions, two anatomies: every regional volume within a small share of the total.
    assert (both["lesion_ml_atlas"] - both["lesion_ml_aseg"]).abs().max() < 0.25 * atlas.summary["lesion_ml"]


@pytest.mark.slow
def test_regions_command_with_aseg(tmp_path, phantom, capsys):
    t1 = save_img(phantom.t1, tmp_path / "sub-01_T1w.nii.gz")
    mask = save_img(phantom.lesion_mask, tmp_path / "sub-01_desc-wmh_mask.nii.gz")
    aseg = save_img(phantom_aseg(phantom), tmp_path / "fs" / "mri" / "aseg.nii.gz")
    code = main(["regions", "--mask", str(mask), "--t1", str(t1), "--aseg", str(aseg), "--out", str(tmp_path / "out"),
                 "--scheme", "lobes"])
    assert code == 0
    assert "regions from aseg:aseg.nii.gz" in capsys.readouterr().out
    regions = pd.read_csv(tmp_path / "out" / "sub-01_desc-wmh_mask_regions.tsv", sep="\t")
    assert set(regions["scheme"]) == {"lobes"}
    code = main(["regions", "--mask", str(mask), "--t1", str(t1), "--aseg", str(tmp_path / "none.mgz"), "--out",
                 str(tmp_path / "out2")])
    assert code != 0
    assert "none.mgz" in capsys.readouterr().err


@pytest.mark.slow
def test_segment_with_aseg_records_its_anatomy_and_freesurfer_etiv(tmp_path, phantom):
    import json

    t1 = save_img(phantom.t1, tmp_path / "sub-01_T1w.nii.gz")
    aseg = save_img(phantom_aseg(phantom), tmp_path / "fs" / "mri" / "aparc+aseg.nii.gz")
    (tmp_path / "fs" / "stats").mkdir()
    (tmp_path / "fs" / "stats" / "aseg.stats").write_text(
        "# Measure EstimatedTotalIntraCranialVol, eTIV, Estimated Total Intracranial Volume, 1411000.0, mm^3\n")
    code = main(["segment", str(t1), "--method", "baseline", "--aseg", str(aseg), "--out", str(tmp_path / "out")])
    assert code == 0
    record = json.loads((tmp_path / "out" / "sub-01_wmh.json").read_text())
    assert record["regions_anatomy"] == "aseg:aparc+aseg.nii.gz"
    assert record["etiv_source"] == "freesurfer" and record["etiv_ml"] == pytest.approx(1411.0)
    assert record["etiv_ml_wmhkit"] > 0 and record["etiv_ml_wmhkit"] != pytest.approx(1411.0)
    assert (tmp_path / "out" / "sub-01_regions.tsv").is_file()
