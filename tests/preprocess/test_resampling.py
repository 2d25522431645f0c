"""Resampling between grids through world-to-world affines."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.errors import OptionError
from wmhkit.preprocess.resampling import axis_aligned_grid, block_mean, resample_array


def test_identity_resampling_returns_the_input(rng):
    data = rng.random((7, 9, 5)).astype(np.float32)
    affine = np.diag([-1.5, 2.0, 1.0, 1.0])
    np.testing.assert_allclose(resample_array(data, affine, data.shape, affine), data, atol=1e-6)
    assert resample_array(data.astype(np.int16), affine, data.shape, affine, order=0).dtype == np.int16


def test_world_map_moves_the_content(rng):
    data = np.zeros((20, 22, 18), dtype=np.float32)
    data[5, 6, 7] = 1.0
    shift = np.eye(4)
    shift[:3, 3] = [2.0, -3.0, 1.0]  # output world x maps to input world x + shift
    out = resample_array(data, np.eye(4), data.shape, np.eye(4), shift, order=0)
    assert tuple(np.argwhere(out == 1.0)[0]) == (3, 9, 6)


def test_block_mean_keeps_the_mean_and_centres(rng):
    data = rng.random((8, 6, 9))
    small, affine = block_mean(data, np.diag([2.0, 2.0, 2.0, 1.0]), (2, 2, 3))
    assert small.shape == (4, 3, 3)
    assert np.isclose(small.mean(), data.mean(), atol=1e-6)
    np.testing.assert_allclose(affine[:3, 3], [1.0, 1.0, 2.0])


def test_axis_aligned_grid_covers_an_oblique_grid():
    angle = np.deg2rad(30)
    affine = np.eye(4)
    affine[:3, :3] = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    shape, grid = axis_aligned_grid((10, 20, 5), affine, 1.0)
    corners = np.array([[i, j, k, 1.0] for i in (0, 9) for j in (0, 19) for k in (0, 4)]) @ affine.T
    voxels = corners @ np.linalg.inv(grid).T
    assert voxels[:, :3].min() >= -1e-9 and np.all(voxels[:, :3].max(axis=0) <= np.asarray(shape) - 1 + 1e-9)


def test_unsupported_order_is_an_option_error(rng):
    with pytest.raises(OptionError, match="order"):
        resample_array(rng.random((3, 4, 5)), np.eye(4), (3, 4, 5), np.eye(4), order=2)


def test_box_on_grid_pads_and_clips():
    from wmhkit.preprocess.resampling import box_on_grid

    points = np.array([[2.2, -3.0, 5.5, 1.0], [6.0, 4.1, 7.0, 1.0]])
    assert box_on_grid(points, np.eye(4), (9, 12, 7)) == (slice(2, 7), slice(0, 6), slice(5, 7))
    assert box_on_grid(points[:, :3], np.eye(4), (9, 12, 7), pad=(2, 3)) == (slice(0, 9), slice(0, 8), slice(3, 7))
    far = box_on_grid(points + [100, 0, 0, 0], np.eye(4), (9, 12, 7))
    assert far[0].stop <= far[0].start  # off the grid: an empty box


def test_resample_along_axes_matches_the_general_resampling(rng):
    """A zoom and shift along the same axes: the values of resample_array, read in the input's memory order."""
    from wmhkit.preprocess.resampling import resample_along_axes

    data = np.asfortranarray(rng.random((11, 14, 9)).astype(np.float32))
    scale, offset, shape = np.array([0.7, 1.0, 1.4]), np.array([0.3, 0.0, 0.2]), (13, 14, 6)
    out_affine = np.eye(4)
    out_affine[:3, :3] = np.diag(scale)
    out_affine[:3, 3] = offset
    expected = resample_array(data, np.eye(4), shape, out_affine, order=1)
    for array in (data, np.ascontiguousarray(data)):
        got = resample_along_axes(array, scale, offset, shape, order=1)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert got.flags.f_contiguous == array.flags.f_contiguous
    labels = np.asfortranarray(rng.integers(0, 5, (11, 14, 9)).astype(np.uint8))
    nearest = resample_along_axes(labels, scale, offset, shape, order=0)
    np.testing.assert_array_equal(nearest, resample_array(labels, np.eye(4), shape, out_affine, order=0))
    # Beyond the input: the constant, interpolated up to the edge (scipy's "grid-constant").
    shifted = resample_along_axes(data, (1, 1, 1), (-0.25, 0, 0), data.shape, mode="grid-constant", cval=2.0)
    np.testing.assert_allclose(shifted[0], 0.25 * 2.0 + 0.75 * data[0], atol=1e-6)
    with pytest.raises(OptionError):
        resample_along_axes(data, scale, offset, shape, order=3)
