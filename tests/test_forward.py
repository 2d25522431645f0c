"""Hand-built checks of the thick-slice forward model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from wmhkit.errors import OptionError
from wmhkit.forward import footprint_offsets, thick_slice_average, thick_slice_average_where


def _stack_affine(inplane_mm=1.0, slice_mm=5.0, z0=2.0):
    """5 mm axial slices whose first slice covers HR voxels 0-4 of a 1 mm identity grid."""
    affine = np.diag([inplane_mm, inplane_mm, slice_mm, 1.0])
    affine[2, 3] = z0
    return affine


def test_lesion_one_slice_thick_fills_exactly_one_slice():
    hr = np.zeros((21, 24, 35))
    hr[5:12, 6:15, 10:15] = 1.0  # HR slices 10-14 = LR slice 2
    lr = thick_slice_average(hr, np.eye(4), (21, 24, 7), _stack_affine())
    label = lr > 0.5
    assert label[..., 2].sum() == 7 * 9
    assert label.sum() == 7 * 9
    assert lr[8, 10, 2] == pytest.approx(0.95)  # half-voxel blur at both faces
    # Mass is conserved: each LR voxel holds 5 HR voxels.
    assert lr.sum() * 5 == pytest.approx(hr.sum())


def test_lesion_straddling_two_slices_splits_by_overlap():
    hr = np.zeros((21, 24, 35))
    hr[5:12, 6:15, 13:18] = 1.0  # 2 voxels in LR slice 2 (10-14), 3 in slice 3 (15-19)
    lr = thick_slice_average(hr, np.eye(4), (21, 24, 7), _stack_affine())
    assert lr[8, 10, 2] == pytest.approx(0.4)
    assert lr[8, 10, 3] == pytest.approx(0.6)
    assert np.flatnonzero((lr > 0.5).any(axis=(0, 1))).tolist() == [3]


def _oblique_lr_affine(rotation, inplane_mm, slice_mm, centre_mm, lr_shape):
    sizes = np.array([inplane_mm, inplane_mm, slice_mm])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(sizes)
    affine[:3, 3] = centre_mm - affine[:3, :3] @ ((np.array(lr_shape) - 1) / 2)
    return affine


def test_oblique_stack_is_exact_for_a_linear_field():
    # The mean of a linear field over a symmetric footprint is its value at the centre.
    hr_shape = (60, 66, 57)
    hr_affine = np.diag([0.8, 0.8, 0.8, 1.0])
    ijk = np.indices(hr_shape).reshape(3, -1)
    world = hr_affine[:3, :3] @ ijk
    gradient = np.array([0.3, -0.2, 0.5])
    hr = (gradient @ world + 7.0).reshape(hr_shape)
    rotation = Rotation.from_euler("xyz", [25, -15, 40], degrees=True).as_matrix()
    lr_shape = (9, 11, 4)
    lr_affine = _oblique_lr_affine(rotation, 1.1, 4.0, np.array([24.0, 26.0, 22.0]), lr_shape)
    lr = thick_slice_average(hr, hr_affine, lr_shape, lr_affine)
    centres = lr_affine[:3, :3] @ np.indices(lr_shape).reshape(3, -1) + lr_affine[:3, 3:4]
    expected = (gradient @ centres + 7.0).reshape(lr_shape)
    np.testing.assert_allclose(lr, expected, atol=1e-9)


def test_oblique_slab_lands_in_the_oblique_slices():
    rotation = Rotation.from_euler("zyx", [30, 20, 0], degrees=True).as_matrix()
    lr_shape = (25, 27, 9)
    centre = np.array([30.0, 32.0, 31.0])
    lr_affine = _oblique_lr_affine(rotation, 1.0, 4.0, centre, lr_shape)
    hr_shape = (62, 65, 63)
    world = np.indices(hr_shape).reshape(3, -1).astype(float)
    normal = rotation[:, 2]
    # Distance along the LR slice normal, in units of slices, from LR slice 4's centre.
    slice_coordinate = (normal @ (world - centre[:, None])) / 4.0
    hr = (np.abs(slice_coordinate) < 0.5).reshape(hr_shape).astype(float)  # exactly LR slice 4
    lr = thick_slice_average(hr, np.eye(4), lr_shape, lr_affine)
    core = lr[6:-6, 6:-6]
    # A 4 mm slab rasterised at 1 mm has jagged faces: means near 0.9, neighbours near 0.1.
    assert core[..., 4].min() > 0.75
    assert np.delete(core, 4, axis=2).max() < 0.25
    assert core[..., 4].mean() > 0.85


def test_gap_hides_tissue_between_slices():
    hr_affine = np.diag([0.5, 0.5, 0.5, 1.0])
    hr = np.zeros((40, 44, 100))
    # World z 4.5-5.5 mm: inside the 2 mm gap between slices centred at z=2 and z=8.
    hr[:, :, 9:12] = 1.0
    lr_affine = np.diag([1.0, 1.0, 6.0, 1.0])
    lr_affine[2, 3] = 2.0
    with_gap = thick_slice_average(hr, hr_affine, (20, 22, 8), lr_affine, gap_mm=2.0)
    without_gap = thick_slice_average(hr, hr_affine, (20, 22, 8), lr_affine)
    assert with_gap.max() < 0.05
    assert without_gap[10, 11, :2].sum() == pytest.approx(1.5 / 6.0, abs=0.02)
    thick = thick_slice_average(hr, hr_affine, (20, 22, 8), lr_affine, thickness_mm=4.0)
    np.testing.assert_array_equal(thick, with_gap)


def test_subset_is_bit_identical_to_full_grid():
    rng = np.random.default_rng(3)
    hr = rng.random((30, 34, 28))
    lr_affine = _oblique_lr_affine(
        Rotation.from_euler("x", 12, degrees=True).as_matrix(), 0.9, 3.0, np.array([15.0, 16.0, 14.0]), (20, 23, 6)
    )
    full = thick_slice_average(hr, np.eye(4), (20, 23, 6), lr_affine, step_mm=0.7)
    mask = rng.random((20, 23, 6)) > 0.6
    part = thick_slice_average_where(hr, np.eye(4), (20, 23, 6), lr_affine, mask, step_mm=0.7)
    np.testing.assert_array_equal(part[mask], full[mask])
    assert not part[~mask].any()


def test_footprint_sample_count_follows_step():
    affine = np.diag([0.9, 0.9, 5.0, 1.0])
    assert footprint_offsets(affine, step_mm=1.0).shape == (5, 3)
    across = footprint_offsets(affine, slice_axis=0, thickness_mm=2.7, step_mm=1.0)
    assert across.shape == (3 * 5, 3)
    assert np.unique(across[:, 0]).round(6).tolist() == [-1.0, 0.0, 1.0]  # 2.7 mm = 3 voxels of 0.9
    assert footprint_offsets(affine, gap_mm=1.0, step_mm=1.0).shape == (4, 3)


@pytest.mark.parametrize(
    "options", [{"gap_mm": 5.0}, {"thickness_mm": -1.0}, {"slice_axis": 3}, {"step_mm": 0.0}, {"gap_mm": -1.0}]
)
def test_bad_options_raise_option_error(options):
    with pytest.raises(OptionError):
        thick_slice_average(np.zeros((4, 5, 6)), np.eye(4), (4, 5, 2), np.diag([1.0, 1.0, 5.0, 1.0]), **options)
