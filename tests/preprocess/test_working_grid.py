"""The working grid: fine inputs are sampled once onto about 1 mm along their own axes; others are left alone."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from wmhkit.io import check_img
from wmhkit.preprocess.working_grid import FINE_BELOW_MM, working_grid, to_working_grid


def _oblique(sizes) -> np.ndarray:
    angle = np.deg2rad(10.0)
    rotation = np.eye(4)
    rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    affine = rotation @ np.diag([*sizes, 1.0])
    affine[:3, 3] = [-40.0, 12.0, -30.0]
    return affine


@pytest.mark.parametrize("sizes", [(1.0, 1.0, 1.0), (FINE_BELOW_MM, 1.2, 1.0), (1.75, 1.75, 1.75), (1.0, 1.0, 3.0)])
def test_inputs_at_about_1mm_or_coarser_get_no_working_grid(sizes):
    assert working_grid((40, 50, 30), _oblique(sizes)) is None


def test_fine_axes_get_about_1mm_over_the_same_field_of_view():
    shape, affine = (57, 40, 46), _oblique((0.7, 1.2, 0.5))
    grid = working_grid(shape, affine)
    assert grid.shape == (40, 40, 23)  # 39.9 and 23 mm: rounded to whole 1 mm voxels; the 1.2 mm axis is kept
    np.testing.assert_allclose(grid.voxel_mm, [57 * 0.7 / 40, 1.2, 1.0], rtol=1e-6)
    # Same axes, same field of view: the outer corners of both grids coincide.
    for corner in ([-0.5, -0.5, -0.5], np.array(grid.shape) - 0.5):
        working = grid.affine @ np.r_[corner, 1.0]
        inner = grid.input_index(corner)
        np.testing.assert_allclose(working, affine @ np.r_[inner, 1.0], atol=1e-9)
    np.testing.assert_allclose(grid.working_index(grid.input_index([3.0, 7.0, 2.5])), [3.0, 7.0, 2.5])
    np.testing.assert_allclose(grid.input_index([0, 0, 0]) * [1, 0, 1], [(57 / 40 - 1) / 2, 0, 0.5])


def test_to_working_grid_samples_the_input_once(rng):
    shape, affine = (57, 40, 46), _oblique((0.7, 1.2, 0.5))
    ramp = np.add.outer(np.add.outer(np.arange(57) * 0.7, np.zeros(40)), np.arange(46) * 0.5)  # x + z in mm
    noisy = np.round(100 * ramp + rng.normal(0.0, 0.1, shape)).astype(np.int16)  # an int16 scan, read as it is
    img = check_img(nib.Nifti1Image(np.asfortranarray(noisy), affine), min_extent_mm=0)
    img._wmhkit_source = "/data/sub-01_T1w.nii.gz"
    working, grid = to_working_grid(img)
    data = np.asanyarray(working.dataobj)
    assert working.shape == grid.shape and data.dtype == np.float32 and data.flags.f_contiguous
    np.testing.assert_allclose(working.affine, grid.affine, atol=1e-4)
    assert working._wmhkit_source == img._wmhkit_source  # messages and output names still name the input
    # A linear ramp is sampled exactly (away from the edges, where it is held constant).
    index = np.array([10, 20, 11])
    x, _, z = grid.input_index(index)
    assert data[tuple(index)] == pytest.approx(100 * (x * 0.7 + z * 0.5), abs=0.6)
    assert to_working_grid(check_img(nib.Nifti1Image(ramp.astype(np.float32), _oblique((1.0, 1.0, 1.0))),
                                     min_extent_mm=0)) is None
