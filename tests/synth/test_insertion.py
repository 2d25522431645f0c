"""insert_lesions: synthetic lesions in given anatomy, on the given grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from wmhkit.errors import InputImageError, OptionError
from wmhkit.synth import TISSUE_LABELS, insert_lesions, make_phantom


@pytest.fixture(scope="module")
def healthy():
    """A lesion-free 2 mm phantom: its T1, white-matter and ventricle masks."""
    phantom = make_phantom(9, lesion_burden=0.0, voxel_size_mm=2.0)
    tissue = np.asarray(phantom.tissue.dataobj)
    wm = nib.Nifti1Image((tissue == TISSUE_LABELS["wm"]).astype(np.uint8), phantom.t1.affine)
    ventricles = nib.Nifti1Image((tissue == TISSUE_LABELS["ventricle"]).astype(np.uint8), phantom.t1.affine)
    return phantom.t1, wm, ventricles


def test_lesions_darken_white_matter_only(healthy):
    t1, wm, ventricles = healthy
    out, mask, params = insert_lesions(t1, wm, ventricles, seed=1, lesion_burden=2.0, lesion_contrast=0.6)
    lesion = np.asarray(mask.dataobj).astype(bool)
    assert mask.get_data_dtype() == np.uint8 and out.get_data_dtype() == np.float32
    np.testing.assert_array_equal(out.affine, t1.affine)
    assert lesion.sum() > 20
    assert not (lesion & ~np.asarray(wm.dataobj).astype(bool)).any()
    before, after = np.asarray(t1.dataobj), np.asarray(out.dataobj)
    # Darkened by a share of the white-to-grey-matter gap: 0.6 inside, less at the soft rims.
    gap = (1.0 - params["grey_matter_ratio"]) * before[lesion].mean()
    assert 0.3 * gap < before[lesion].mean() - after[lesion].mean() < 0.6 * gap
    assert params["lesion_ml"] == pytest.approx(lesion.sum() * 8 / 1000, rel=0.2)
    # Far from lesions the image is untouched.
    changed = after != before
    assert changed.sum() < 8 * max(lesion.sum(), 1)
    # Periventricular lesions touch the ventricles.
    from scipy import ndimage

    near_ventricles = ndimage.binary_dilation(np.asarray(ventricles.dataobj).astype(bool), iterations=2)
    assert (lesion & near_ventricles).any()


def test_real_mask_placed_through_alignment(healthy, tmp_path):
    """A real mask in MNI space lands where the alignment puts it, inside the white matter only."""
    t1, wm, _ = healthy
    wm_data = np.asarray(wm.dataobj).astype(bool)
    # A 'real' mask in an MNI world that is the T1's own world (identity alignment): a slab
    # across the white matter, on a 1.5 mm grid of its own.
    wm_world = (t1.affine @ np.c_[np.argwhere(wm_data), np.ones(wm_data.sum())].T)[:3]
    low, high = wm_world.min(axis=1) - 6.0, wm_world.max(axis=1) + 6.0
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    affine[:3, 3] = low
    shape = tuple(int(np.ceil(e / 1.5)) for e in high - low)
    slab = np.zeros(shape, np.uint8)
    slab[:, :, shape[2] // 2 - 3: shape[2] // 2 + 3] = 1
    path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(slab, affine), path)
    as_it_is = {"keep_share": 1.0, "grow_mm": 0.0, "flip": False, "warp_mm": 0.0}
    with pytest.raises(OptionError, match="mni_to_subject"):
        insert_lesions(t1, wm, real_lesion_mask=path)
    _, mask, params = insert_lesions(t1, wm, seed=0, lesion_burden=0.0, real_lesion_mask=path,
                                     mni_to_subject=np.eye(4), real_mask_variation=as_it_is)
    lesion = np.asarray(mask.dataobj).astype(bool)
    assert params["real_mask"]["mask"] == "mask" and lesion.sum() > 50
    assert not (lesion & ~wm_data).any()
    world_z = (t1.affine @ np.c_[np.argwhere(lesion), np.ones(lesion.sum())].T)[2]
    slab_z = affine[2, 3] + 1.5 * (shape[2] // 2 + np.array([-3, 3]))
    assert slab_z[0] - 2 < world_z.min() and world_z.max() < slab_z[1] + 2
    # Shifting the alignment by 10 mm moves the lesions by 10 mm.
    shifted = np.eye(4)
    shifted[2, 3] = 10.0
    moved = np.asarray(insert_lesions(t1, wm, seed=0, lesion_burden=0.0, real_lesion_mask=path,
                                      mni_to_subject=shifted, real_mask_variation=as_it_is)[1].dataobj).astype(bool)
    moved_z = (t1.affine @ np.c_[np.argwhere(moved), np.ones(moved.sum())].T)[2]
    assert np.median(moved_z) == pytest.approx(np.median(world_z) + 10.0, abs=2.5)


@pytest.mark.slow
def test_burden_and_seed(healthy):
    t1, wm, ventricles = healthy
    volumes = [insert_lesions(t1, wm, ventricles, seed=4, lesion_burden=b)[2]["lesion_ml"] for b in (0.0, 1.0, 3.0)]
    assert volumes[0] == 0 and volumes[1] < volumes[2]
    first = np.asarray(insert_lesions(t1, wm, seed=4)[1].dataobj)
    again = np.asarray(insert_lesions(t1, wm, seed=4)[1].dataobj)
    other = np.asarray(insert_lesions(t1, wm, seed=5)[1].dataobj)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_bad_inputs(healthy):
    t1, wm, _ = healthy
    with pytest.raises(OptionError):
        insert_lesions(t1, wm, lesion_burden=-1)
    with pytest.raises(InputImageError):
        insert_lesions(t1, nib.Nifti1Image(np.zeros(t1.shape, np.uint8), t1.affine))
    with pytest.raises(InputImageError):
        insert_lesions(t1, nib.Nifti1Image(np.ones((10, 11, 12), np.uint8), np.eye(4)))


@pytest.mark.real_data
@pytest.mark.slow
def test_insert_into_real_head(real_t1_1p75mm):
    """Lesions go into a real skull-on LAS head at 1.75 mm, inside the given WM mask."""
    t1 = nib.load(real_t1_1p75mm)
    data = np.asarray(t1.dataobj, dtype=np.float32)
    shape = np.array(data.shape)
    grid = np.indices(data.shape).astype(np.float32)
    central = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, shape / 2, shape / 3.2)) < 1
    wm = (data > np.percentile(data[central], 75)) & central
    out, mask, params = insert_lesions(real_t1_1p75mm, nib.Nifti1Image(wm.astype(np.uint8), t1.affine), seed=2,
                                       lesion_burden=2.0)
    lesion = np.asarray(mask.dataobj).astype(bool)
    assert lesion.any() and not (lesion & ~wm).any()
    assert params["ventricles"] == "holes in the white-matter mask"
    assert np.asarray(out.dataobj)[lesion].mean() < data[lesion].mean()
    np.testing.assert_allclose(out.affine, t1.affine)
