"""Outputs of a working-grid run brought back onto the input grid: smooth lesions, only the working mask's."""

from __future__ import annotations

import dataclasses

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from wmhkit.preprocess.working_grid import working_grid
from wmhkit.segmentation.input_grid import outputs_on_input
from wmhkit.segmentation.pipeline import Inferred, Lesions

THRESHOLD = 0.4


@dataclasses.dataclass
class _Prepared:
    working: object
    brain_mask: nib.Nifti1Image


def _blob(shape, centre, radius) -> np.ndarray:
    grid = np.indices(shape, dtype=float)
    distance = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre)))
    return np.clip(1.0 - distance / radius, 0.0, 1.0).astype(np.float32)


@pytest.fixture
def working_run():
    """A 0.7 x 0.7 x 1.2 mm input grid, its working grid, two probability blobs and a lesion mask holding one."""
    shape, affine = (47, 54, 20), np.diag([0.7, 0.7, 1.2, 1.0])
    grid = working_grid(shape, affine)
    assert grid.shape == (33, 38, 20)
    probability = _blob(grid.shape, (10, 12, 9), 4.0) + _blob(grid.shape, (24, 27, 11), 3.0)
    mask = (probability >= THRESHOLD).astype(np.uint8)
    labels, _ = ndimage.label(mask)
    mask[labels == labels[24, 27, 11]] = 0  # the second blob was dropped on the working grid (too small, say)
    brain = np.zeros(grid.shape, np.uint8)
    brain[2:31, 2:36, 1:19] = 1
    sub = (slice(4, 30), slice(5, 34), slice(3, 17))  # the probability is 0 outside this box
    inferred = Inferred(sub, np.ascontiguousarray(probability[sub]), grid.shape, {})
    lesions = Lesions(mask, None, float(mask.sum()), 1)
    return _Prepared(grid, nib.Nifti1Image(np.asfortranarray(brain), grid.affine)), inferred, lesions, probability


def test_outputs_lie_on_the_input_grid(working_run):
    prepared, inferred, lesions, working_probability = working_run
    sub, probability, mask, brain = outputs_on_input(prepared, inferred, lesions, THRESHOLD)
    grid = prepared.working
    assert mask.shape == brain.shape == grid.input_shape and mask.dtype == brain.dtype == np.uint8
    assert probability.dtype == np.float32 and probability.shape == tuple(s.stop - s.start for s in sub)
    # The interpolated probability, within rounding, at an input voxel that lies between working voxels.
    voxel = np.array([14, 17, 9])
    inside = voxel - [s.start for s in sub]
    expected = ndimage.map_coordinates(working_probability, grid.working_index(voxel)[:, None], order=1)[0]
    assert probability[tuple(inside)] == pytest.approx(expected, abs=1e-5)
    # The mask is the written probability thresholded, only where the working mask had its lesion.
    full = np.zeros(grid.input_shape, np.float32)
    full[sub] = probability
    assert (full[mask > 0] >= THRESHOLD).all() and mask.any()
    near_kept, near_dropped = np.indices(grid.input_shape)[0] * 0.7 < 12.0, np.indices(grid.input_shape)[0] * 0.7 > 14.0
    assert mask[near_kept].any() and not mask[near_dropped].any()
    assert (full[near_dropped] >= THRESHOLD).any()  # the dropped blob is still in the probability map
    # Nothing outside the brain mask, which is the working one's nearest neighbour.
    assert not (full[brain == 0] > 0).any()
    assert brain[0].sum() == 0 and brain[int(grid.input_index([15, 0, 0])[0])].sum() > 0


def test_nothing_found_gives_empty_outputs(working_run):
    prepared, inferred, lesions, _ = working_run
    empty = Inferred(inferred.sub, np.zeros_like(inferred.probability), inferred.shape, {})
    nothing = dataclasses.replace(lesions, mask=lesions.mask * 0)
    sub, probability, mask, brain = outputs_on_input(prepared, empty, nothing, THRESHOLD)
    assert probability.size == 0 and not mask.any() and brain.any()


def test_a_probability_sampled_straight_onto_the_input_grid_is_used_as_it_is(working_run):
    """The MNI grid's way back (Grid.to_image) replaces the working grid's interpolation; the rules stay."""
    prepared, inferred, lesions, _ = working_run
    shape = prepared.working.input_shape
    box = (slice(5, 40), slice(6, 50), slice(2, 18))
    direct = np.full(tuple(s.stop - s.start for s in box), 0.2, np.float32)
    direct[10:20, 12:22, 5:10] = 0.9  # around the kept working lesion
    direct[30:34, 35:40, 8:12] = 0.9  # no working lesion here: not in the mask
    given = dataclasses.replace(inferred, on_input=(box, direct.copy()))
    sub, probability, mask, brain = outputs_on_input(prepared, given, lesions, THRESHOLD)
    assert sub == box and mask.shape == shape
    np.testing.assert_array_equal(probability, np.where(brain[box] > 0, direct, 0.0))
    full = np.zeros(shape, np.uint8)
    full[box][10:20, 12:22, 5:10] = 1
    np.testing.assert_array_equal(mask, full)
