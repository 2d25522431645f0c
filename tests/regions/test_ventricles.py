"""Ventricle refinement on a synthetic T1 whose ventricles are larger than the atlas's."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from wmhkit.io import voxel_sizes_mm
from wmhkit.regions import quantify_subject, refine_ventricles
from wmhkit.regions.parcels import load_parcels, tissue_lookup

ENLARGE_MM = 6.0


@pytest.fixture(scope="module")
def enlarged(subject):
    """T1 with ventricles 6 mm larger than the atlas's and a lesion 2-3 mm from the real wall."""
    parcels = np.asarray(subject.alignment.resample_to_subject(load_parcels(), subject.grid, order=0).dataobj)
    sampling = voxel_sizes_mm(subject.grid)
    template = tissue_lookup("ventricle")[parcels]
    d_template = ndimage.distance_transform_edt(~template, sampling=sampling)
    inner = tissue_lookup("white_matter", "deep_grey", "ventricle")[parcels]
    true_ventricle = (d_template <= ENLARGE_MM) & inner
    d_true = ndimage.distance_transform_edt(~true_ventricle, sampling=sampling)
    intensity = np.full(256, 0.1, np.float32)
    for tissue, value in (("white_matter", 1.0), ("deep_grey", 0.75), ("cortex", 0.6), ("other_csf", 0.25)):
        intensity[tissue_lookup(tissue)] = value
    t1 = intensity[parcels]
    t1[true_ventricle] = 0.25
    rng = np.random.default_rng(7)
    t1 = t1 + rng.normal(0, 0.03, t1.shape).astype(np.float32)
    # lesion centre: left white matter 2-3 mm from the real wall, 8-9 mm from the atlas's
    candidates = np.argwhere(
        tissue_lookup("white_matter")[parcels] & (d_true >= 2) & (d_true <= 3) & (d_template >= 8) & (d_template <= 9)
    )
    centre = candidates[len(candidates) // 2]
    lesion = np.linalg.norm((np.indices(parcels.shape).T - centre).T * sampling[:, None, None, None], axis=0) <= 2.5
    t1[lesion] = 0.3  # as dark as CSF: must not become ventricle
    return {
        "parcels": parcels, "t1": t1, "true": true_ventricle, "template": template, "lesion": lesion,
        "t1_img": nib.Nifti1Image(t1, subject.grid.affine), "mask": nib.Nifti1Image(lesion.astype(np.uint8), subject.grid.affine),
    }


def test_refinement_recovers_enlarged_ventricles(enlarged, subject):
    refined, record = refine_ventricles(
        enlarged["parcels"], enlarged["t1"], voxel_sizes_mm(subject.grid), lesion=enlarged["lesion"]
    )
    ventricle = tissue_lookup("ventricle")[refined]
    truth = enlarged["true"] & ~enlarged["lesion"]
    dice = 2 * (ventricle & truth).sum() / (ventricle.sum() + truth.sum())
    assert record["refined"] and dice > 0.85
    assert record["refined_voxels"] > 1.5 * record["template_voxels"]
    assert not (ventricle & enlarged["lesion"]).any()


def test_refinement_turns_a_lesion_periventricular(enlarged, subject):
    with_t1 = quantify_subject(enlarged["mask"], enlarged["t1_img"], alignment=subject.alignment)
    without = quantify_subject(enlarged["mask"], enlarged["t1_img"], alignment=subject.alignment, refine_ventricles=False)
    assert with_t1.summary["ventricles_refined"] and not without.summary["ventricles_refined"]
    assert with_t1.summary["ventricle_ml"] > 1.5 * without.summary["ventricle_ml"]
    assert with_t1.lesions.iloc[0]["distance_to_ventricle_mm"] <= 3.0
    assert with_t1.lesions.iloc[0]["pv_class"] == "periventricular"
    assert without.lesions.iloc[0]["distance_to_ventricle_mm"] > 3.0
    assert without.lesions.iloc[0]["pv_class"] == "deep"


def test_no_contrast_keeps_the_atlas(enlarged, subject):
    flat = np.random.default_rng(3).normal(1.0, 0.01, enlarged["t1"].shape).astype(np.float32)
    refined, record = refine_ventricles(enlarged["parcels"], flat, voxel_sizes_mm(subject.grid))
    assert not record["refined"]
    np.testing.assert_array_equal(refined, enlarged["parcels"])
