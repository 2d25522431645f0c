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
    out, mask, params = insert_lesions(t1, wm, ventricles, seed=1, lesion_burden=2.0)
    lesion = np.asarray(mask.dataobj).astype(bool)
    assert mask.get_data_dtype() == np.uint8 and out.get_data_dtype() == np.float32
    np.testing.assert_array_equal(out.affine, t1.affine)
    assert lesion.sum() > 20
    assert not (lesion & ~np.asarray(wm.dataobj).astype(bool)).any()
    before, after = np.asarray(t1.dataobj), np.asarray(out.dataobj)
    assert after[lesion].mean() < 0.92 * before[lesion].mean()
    assert params["lesion_ml"] == pytest.approx(lesion.sum() * 8 / 1000, rel=0.2)
    # Far from lesions the image is untouched.
    changed = after != before
    assert changed.sum() < 8 * max(lesion.sum(), 1)
    # Periventricular lesions touch the ventricles.
    from scipy import ndimage

    near_ventricles = ndimage.binary_dilation(np.asarray(ventricles.dataobj).astype(bool), iterations=2)
    assert (lesion & near_ventricles).any()


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
