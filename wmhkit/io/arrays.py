"""Small array helpers shared across layers (no image semantics)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["bounding_box", "dilated", "grown_box"]


def bounding_box(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """First and one-past-last index of ``mask`` along each axis, or None when it is empty.

    >>> m = np.zeros((4, 5, 6), bool); m[1, 2:4, 5] = True
    >>> [b.tolist() for b in bounding_box(m)]
    [[1, 2, 5], [2, 4, 6]]
    """
    start, stop = [], []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        if hits.size == 0:
            return None
        start.append(hits[0])
        stop.append(hits[-1] + 1)
    return np.array(start), np.array(stop)


def grown_box(mask: np.ndarray, margin: int) -> tuple[slice, ...] | None:
    """Slices of ``mask``'s bounding box grown by ``margin`` voxels (clipped); None when it is empty.

    >>> m = np.zeros((5, 6, 7), bool); m[2, 3, 1:4] = True
    >>> grown_box(m, 1)
    (slice(1, 4, None), slice(2, 5, None), slice(0, 5, None))
    """
    found = bounding_box(mask)
    if found is None:
        return None
    return tuple(slice(max(int(a) - margin, 0), min(int(b) + margin, n)) for a, b, n in zip(*found, mask.shape))


def dilated(mask: np.ndarray, structure: np.ndarray, iterations: int) -> np.ndarray:
    """``scipy.ndimage.binary_dilation(mask, structure, iterations)``, computed only in the box
    around ``mask`` that the dilation can reach (the same result; far cheaper for a small mask
    in a large volume).

    >>> m = np.zeros((9, 10, 11), bool); m[4, 5, 5] = True
    >>> six = ndimage.generate_binary_structure(3, 1)
    >>> bool((dilated(m, six, 2) == ndimage.binary_dilation(m, six, iterations=2)).all())
    True
    """
    out = np.zeros(np.shape(mask), dtype=bool)
    box = grown_box(mask, iterations + 1)
    if box is not None:
        out[box] = ndimage.binary_dilation(mask[box], structure=structure, iterations=iterations)
    return out
