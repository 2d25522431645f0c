"""The outputs of a run on the working grid, brought back onto the input grid (fine inputs only).

An input with voxels finer than 0.85 mm is segmented on its working grid of about 1 mm along
its own axes (:mod:`wmhkit.preprocess.working_grid`). :func:`outputs_on_input` then puts the
three images on the input grid:

* the **probability**: linear interpolation of the working probability, only over the input
  voxels that can receive a non-zero value (the box of the non-zero working probability), 0
  outside the brain mask below. A method that ran on the MNI grid (the baseline, MNI-space
  models) samples its probability straight from there instead
  (:meth:`wmhkit.segmentation.spaces.Grid.to_image`), as it read the T1 straight from the
  input: two interpolations in a row on each side (input to working grid to MNI and back)
  blurred the baseline's near-binary map from 0.91 to 0.52 mL of lesion on the 0.7 mm head;
* the **brain mask**: nearest neighbour of the working brain mask;
* the **lesion mask**: the interpolated probability thresholded at the run's threshold, keeping
  only the connected clusters (26-connectivity) that touch a lesion of the working mask (nearest
  neighbour). Thresholding the smooth, interpolated probability gives lesion borders at the input's
  resolution instead of 1 mm blocks, and keeping only the working mask's lesions carries over what
  was decided there (minimum lesion size, cortex-contact rule), so no lesion is added. It is
  the written probability thresholded, as on any other input.

``lesion_ml`` is the volume of this mask (input voxels). ``lesion_count`` and the lesion and
regional tables are those of the working grid: their volumes sum to the working mask's volume
(``working_lesion_ml`` in the JSON record). Counting whole 1 mm voxels at the borders of small
lesions gives more volume than the thresholded interpolation: 1.56 against 1.32 mL for the
shipped model on the 0.7 mm head (0.95 against 0.96 mL for the baseline), and the written mask
may split a thin working lesion in two (``benchmarks/results/segment_speed.md``).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["outputs_on_input"]

logger = logging.getLogger(__name__)


def _input_box(working, start, stop, reach: float) -> tuple[slice, slice, slice]:
    """The input voxels whose centres lie within ``reach`` working voxels of the working box ``start:stop``."""
    low = working.input_index(np.asarray(start, float) - reach)
    high = working.input_index(np.asarray(stop, float) - 1.0 + reach)
    first = np.clip(np.ceil(low - 1e-9).astype(int), 0, working.input_shape)
    last = np.clip(np.floor(high + 1e-9).astype(int) + 1, 0, working.input_shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(first, np.maximum(first, last)))


def _linear(array: np.ndarray, array_start, working, box: tuple) -> np.ndarray:
    """``array`` (working voxels from ``array_start`` on) at the input voxels of ``box`` (linear; 0 beyond it)."""
    from wmhkit.preprocess.resampling import resample_along_axes

    offset = working.working_index([s.start for s in box]) - np.asarray(array_start, float)
    return resample_along_axes(array, 1.0 / working.factors, offset, tuple(s.stop - s.start for s in box),
                               order=1, mode="grid-constant", cval=0.0)


def _nearest(working, axis: int, start: int, stop: int) -> np.ndarray:
    """Index of the nearest working voxel of input voxels ``start:stop`` along ``axis`` (clipped to the grid),
    as the brain mask's nearest-neighbour sampling finds it."""
    from wmhkit.preprocess.resampling import nearest_indices

    factor = float(working.factors[axis])
    index = nearest_indices(stop - start, 1.0 / factor, (start - (factor - 1.0) / 2.0) / factor)
    return np.clip(index, 0, working.shape[axis] - 1)


def _brain_mask_on_input(brain: np.ndarray, working) -> np.ndarray:
    """uint8 brain mask on the whole input grid (Fortran order): nearest neighbour of the working one.

    Sampled from a Fortran-ordered copy of the working mask, so that the input-grid mask comes out in
    the order NIfTI stores (nibabel writes a 0.7 mm head's C-ordered mask in 0.3 s, a Fortran one in 0.05 s).
    """
    from wmhkit.preprocess.resampling import resample_along_axes

    return resample_along_axes(np.asfortranarray(brain), 1.0 / working.factors, working.working_index(np.zeros(3)),
                               working.input_shape, order=0, mode="nearest")


def _lesions_on_input(probability: np.ndarray, sub: tuple, working_mask: np.ndarray, working,
                      threshold: float) -> np.ndarray:
    """uint8 on ``sub``: the clusters of ``probability >= threshold`` that hold a voxel whose nearest
    working voxel is in ``working_mask`` (the working grid's lesion mask)."""
    from scipy import ndimage

    from wmhkit.io.arrays import lookup

    above = probability >= threshold
    labels, count = ndimage.label(above, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return np.zeros(probability.shape, dtype=np.uint8)
    found = np.nonzero(above)  # few voxels: their nearest working voxels are looked up one by one
    nearest = tuple(_nearest(working, axis, s.start, s.stop)[index] for axis, (s, index) in enumerate(zip(sub, found)))
    keep = np.zeros(count + 1, dtype=np.uint8)
    keep[labels[found][working_mask[nearest] > 0]] = 1
    keep[0] = 0
    return lookup(keep, labels)


def outputs_on_input(prepared, inferred, lesions, threshold: float):
    """The probability, lesion mask and brain mask of a working-grid run on the input grid.

    Parameters
    ----------
    prepared : wmhkit.preprocess.PreparedT1
        Prepared with a working grid (``input_img`` and ``working`` set).
    inferred : wmhkit.segmentation.pipeline.Inferred
        The working grid's probability (non-zero only in ``inferred.sub``).
    lesions : wmhkit.segmentation.pipeline.Lesions
        The working grid's lesion mask and table.
    threshold : float
        The run's probability threshold.

    Returns
    -------
    (sub, probability, mask, brain_mask)
        ``sub``: slices of the input grid outside which the probability is 0; ``probability``:
        float32 there; ``mask``: uint8 lesion mask and ``brain_mask``: uint8 brain mask, both on
        the whole input grid.
    """
    from wmhkit.io.arrays import grown_box

    working = prepared.working
    brain = _brain_mask_on_input(np.asanyarray(prepared.brain_mask.dataobj), working)
    mask = np.zeros(working.input_shape, dtype=np.uint8, order="F")
    found = grown_box(inferred.probability > 0, 0)
    if found is None:
        return (slice(0, 0),) * 3, np.zeros((0, 0, 0), np.float32), mask, brain
    if inferred.on_input is not None:  # sampled straight from the grid the method ran on (the MNI box)
        sub, probability = inferred.on_input
    else:
        start = [s.start + f.start for s, f in zip(inferred.sub, found)]
        sub = _input_box(working, start, [s.start + f.stop for s, f in zip(inferred.sub, found)], 1.0)
        probability = _linear(inferred.probability[found], start, working, sub)  # reaches one working voxel out
        np.clip(probability, 0.0, 1.0, out=probability)
    probability[brain[sub] == 0] = 0.0
    mask[sub] = _lesions_on_input(probability, sub, lesions.mask, working, threshold)
    logger.debug("Working-grid outputs on the input grid: probability box %s, %d lesion voxels",
                 [(s.start, s.stop) for s in sub], int(np.count_nonzero(mask[sub])))
    return sub, probability, mask, brain
