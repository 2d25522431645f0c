"""Resample voxel arrays between grids through a world-to-world affine map.

Every resampling in wmhkit.preprocess goes through :func:`resample_array`, which calls
``scipy.ndimage.affine_transform`` once: it walks the output grid and reads the input where
each output voxel lands, so time and memory grow with the output size only (no coordinate
arrays, no copy of the input for orders 0 and 1). Grids that share their axes (a zoom and a
shift, as between an input and its working grid) go through :func:`resample_along_axes`, which
interpolates one axis after the other in the input's memory order.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from wmhkit.errors import OptionError

__all__ = ["resample_array", "resample_along_axes", "nearest_indices", "block_mean", "block_affine",
           "axis_aligned_grid", "box_on_grid"]


def resample_array(
    data: np.ndarray,
    data_affine: np.ndarray,
    out_shape: tuple[int, int, int],
    out_affine: np.ndarray,
    out_world_to_data_world: np.ndarray | None = None,
    *,
    order: int = 1,
    cval: float = 0.0,
    dtype: np.dtype | type | None = None,
) -> np.ndarray:
    """Sample ``data`` on the grid ``(out_shape, out_affine)``.

    Parameters
    ----------
    data : numpy.ndarray
        3D input voxels.
    data_affine : (4, 4) array
        Voxel-to-world affine of ``data`` (mm).
    out_shape : tuple of 3 int
        Output grid shape (voxels).
    out_affine : (4, 4) array
        Voxel-to-world affine of the output grid (mm).
    out_world_to_data_world : (4, 4) array, optional
        Maps output world mm to input world mm (e.g. MNI -> subject). Identity by default.
    order : {0, 1, 3}, default 1
        0 nearest neighbour (labels), 1 trilinear, 3 cubic spline (copies the input as float64).
    cval : float, default 0.0
        Value outside the input field of view.
    dtype : numpy dtype, optional
        Output dtype; default ``data.dtype`` for order 0, else float32.

    Returns
    -------
    numpy.ndarray
        Array of shape ``out_shape``.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    >>> shift = np.eye(4); shift[0, 3] = 1.0   # output voxel i reads input voxel i + 1
    >>> resample_array(data, np.eye(4), (1, 3, 4), shift, order=0).ravel()[:4].tolist()
    [12.0, 13.0, 14.0, 15.0]
    """
    if order not in (0, 1, 3):
        raise OptionError(f"Interpolation order {order} is not supported; use 0 (labels), 1 or 3.")
    world_map = np.eye(4) if out_world_to_data_world is None else np.asarray(out_world_to_data_world, float)
    out_voxel_to_data_voxel = np.linalg.inv(np.asarray(data_affine, float)) @ world_map @ np.asarray(out_affine, float)
    if dtype is None:
        dtype = data.dtype if order == 0 else np.float32
    if data.dtype == bool:
        data = data.view(np.uint8)
    output = np.empty(tuple(int(n) for n in out_shape), dtype=dtype)
    ndimage.affine_transform(
        data,
        out_voxel_to_data_voxel[:3, :3],
        offset=out_voxel_to_data_voxel[:3, 3],
        output=output,
        order=order,
        mode="constant",
        cval=cval,
        prefilter=order > 1,
    )
    return output


#: Nearest-neighbour ties (an output voxel centre midway between two input ones, as with 1.5 input
#: voxels per output voxel) go to the lower index; this margin keeps rounding noise from deciding.
_TIE_MARGIN = 1e-6


def nearest_indices(n_out: int, scale: float, offset: float) -> np.ndarray:
    """Index of the input voxel nearest each of ``n_out`` output voxels along one axis (``i * scale + offset``),
    ties to the lower index (not clipped).

    >>> nearest_indices(5, 1 / 1.5, -0.5 / 1.5 / 2).tolist()
    [0, 0, 1, 2, 2]
    """
    x = np.arange(n_out, dtype=np.float64) * scale + offset
    return np.floor(x + (0.5 - _TIE_MARGIN)).astype(np.intp)


def _axis_weights(n_out: int, scale: float, offset: float, n_in: int, order: int, mode: str):
    """Input indices and weights along one axis: ``(low, high, w_low, w_high)`` (order 1) or ``(index, inside)``."""
    if order == 0:
        index = nearest_indices(n_out, scale, offset)
        inside = (index >= 0) & (index < n_in)
        return np.clip(index, 0, n_in - 1), inside
    x = np.arange(n_out, dtype=np.float64) * scale + offset
    low = np.floor(x).astype(np.intp)
    w_high = (x - low).astype(np.float32)
    w_low = (1.0 - w_high).astype(np.float32)
    high = low + 1
    if mode == "grid-constant":  # beyond the input: weight 0 (the constant is added once, at the end)
        w_low[(low < 0) | (low >= n_in)] = 0.0
        w_high[(high < 0) | (high >= n_in)] = 0.0
    return np.clip(low, 0, n_in - 1), np.clip(high, 0, n_in - 1), w_low, w_high


def _shaped(weights: np.ndarray, axis: int) -> np.ndarray:
    return weights.reshape([-1 if a == axis else 1 for a in range(3)])


def resample_along_axes(
    data: np.ndarray,
    scale,
    offset,
    out_shape: tuple[int, int, int],
    *,
    order: int = 1,
    mode: str = "nearest",
    cval: float = 0.0,
    dtype: np.dtype | type | None = None,
    slab: int = 8,
) -> np.ndarray:
    """Sample ``data`` at ``index * scale + offset`` along each axis: a grid along the same axes, zoomed and shifted.

    The input's voxel index of output voxel ``i`` is ``i * scale + offset`` (per axis), so the
    grids share their axes (no rotation) and linear interpolation (or nearest neighbour) is
    separable: it runs along one axis after the other, ``slab`` output planes at a time (a few
    planes of memory), in the input's memory order. On a 0.7 mm head that is about twice as fast
    as scipy's per-voxel sampling, and nibabel's Fortran-ordered arrays read in C order
    (:func:`resample_array`) were five times slower still. Values agree with
    :func:`resample_array` to single precision.

    Parameters
    ----------
    data : numpy.ndarray
        3D input voxels (any numeric dtype or bool; never copied whole, never as float64).
    scale, offset : sequence of 3 float
        Input voxels per output voxel, and the input index of output voxel 0, per axis.
    out_shape : tuple of 3 int
        Output shape.
    order : {0, 1}, default 1
        Nearest neighbour (ties to the lower index: :func:`nearest_indices`) or linear.
    mode : {"nearest", "grid-constant"}, default "nearest"
        Beyond the input: its edge values, or ``cval`` (interpolated up to the edge).
    cval : float, default 0.0
        Value beyond the input for ``mode="grid-constant"``.
    dtype : numpy dtype, optional
        Output dtype; default ``data.dtype`` for order 0, else float32.
    slab : int, default 8
        Output planes (along the slowest axis) made at a time.

    Returns
    -------
    numpy.ndarray
        ``out_shape``, Fortran-ordered when ``data`` is (or is a view of a Fortran-ordered array).

    Examples
    --------
    >>> data = np.arange(4.0, dtype=np.float32).reshape(4, 1, 1)
    >>> resample_along_axes(data, (0.5, 1, 1), (0.0, 0, 0), (7, 1, 1)).ravel().tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    >>> resample_along_axes(data, (1, 1, 1), (-1.5, 0, 0), (3, 1, 1), mode="grid-constant", cval=8).ravel().tolist()
    [8.0, 4.0, 0.5]
    """
    if order not in (0, 1):
        raise OptionError(f"Interpolation order {order} is not supported here; use 0 (labels) or 1.")
    if mode not in ("nearest", "grid-constant"):
        raise OptionError(f"Boundary mode {mode!r} is not supported here; use 'nearest' or 'grid-constant'.")
    dtype = np.dtype(dtype if dtype is not None else (data.dtype if order == 0 else np.float32))
    scale, offset, out_shape = np.asarray(scale, float), np.asarray(offset, float), tuple(int(n) for n in out_shape)
    # Work on a view whose last axis is the fastest in memory (a Fortran array's transpose).
    fortran = data.ndim == 3 and abs(data.strides[0]) < abs(data.strides[2])
    axes = (2, 1, 0) if fortran else (0, 1, 2)
    view = data.T if fortran else data
    if view.dtype == bool:
        view = view.view(np.uint8)
    plan = [_axis_weights(out_shape[a], scale[a], offset[a], data.shape[a], order, mode) for a in axes]
    out = np.empty(tuple(out_shape[a] for a in axes), dtype=dtype)
    for start in range(0, out.shape[0], slab):
        rows = slice(start, min(start + slab, out.shape[0]))
        if order == 0:
            block = np.take(view, plan[0][0][rows], axis=0)
            for axis in (1, 2):
                block = np.take(block, plan[axis][0], axis=axis)
            if mode == "grid-constant":
                inside = _shaped(plan[0][1][rows], 0) & _shaped(plan[1][1], 1) & _shaped(plan[2][1], 2)
                block = np.where(inside, block, np.asarray(cval).astype(block.dtype))
        else:
            low, high, w_low, w_high = plan[0]
            block = (np.take(view, low[rows], axis=0) * _shaped(w_low[rows], 0)
                     + np.take(view, high[rows], axis=0) * _shaped(w_high[rows], 0)).astype(np.float32, copy=False)
            for axis in (1, 2):
                low, high, w_low, w_high = plan[axis]
                block = (np.take(block, low, axis=axis) * _shaped(w_low, axis)
                         + np.take(block, high, axis=axis) * _shaped(w_high, axis))
            if mode == "grid-constant" and cval != 0:
                weight = (_shaped(plan[0][2][rows] + plan[0][3][rows], 0) * _shaped(plan[1][2] + plan[1][3], 1)
                          * _shaped(plan[2][2] + plan[2][3], 2))
                block += np.float32(cval) * (1.0 - weight)
        out[rows] = block
    return out.T if fortran else out


def block_mean(data: np.ndarray, affine: np.ndarray, factors: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Average non-overlapping blocks of ``factors`` voxels (anti-aliased downsampling).

    Trailing voxels that do not fill a block are dropped.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        float32 block means and their voxel-to-world affine (block centres).

    Examples
    --------
    >>> import numpy as np
    >>> small, aff = block_mean(np.ones((4, 5, 6)), np.eye(4), (2, 2, 3))
    >>> small.shape, aff[:3, 3].tolist()
    ((2, 2, 2), [0.5, 0.5, 1.0])
    """
    factors = tuple(max(1, int(f)) for f in factors)
    shape = tuple(n // f for n, f in zip(data.shape, factors))
    if factors == (1, 1, 1):
        reduced = data.astype(np.float32, copy=False)
    else:
        cropped = data[: shape[0] * factors[0], : shape[1] * factors[1], : shape[2] * factors[2]]
        reduced = cropped.reshape(shape[0], factors[0], shape[1], factors[1], shape[2], factors[2]).mean(
            axis=(1, 3, 5), dtype=np.float32
        )
    return reduced, block_affine(affine, factors)


def block_affine(affine: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Voxel-to-world affine of the block centres of :func:`block_mean`.

    Examples
    --------
    >>> block_affine(np.eye(4), (2, 2, 3))[:3, 3].tolist()
    [0.5, 0.5, 1.0]
    """
    factors = tuple(max(1, int(f)) for f in factors)
    scale = np.eye(4)
    scale[:3, :3] = np.diag(factors)
    scale[:3, 3] = (np.asarray(factors) - 1) / 2.0
    return np.asarray(affine, float) @ scale


def axis_aligned_grid(shape: tuple[int, ...], affine: np.ndarray, spacing_mm: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """The world-axis-aligned grid of ``spacing_mm`` voxels that covers a (possibly oblique) grid.

    Examples
    --------
    >>> import numpy as np
    >>> shape, aff = axis_aligned_grid((10, 20, 30), np.diag([-1.0, 1.0, 1.0, 1.0]), 2.0)
    >>> shape, aff[:3, 3].tolist()
    ((6, 11, 16), [-9.0, 0.0, 0.0])
    """
    corners = np.array([[i, j, k, 1.0] for i in (0, shape[0] - 1) for j in (0, shape[1] - 1) for k in (0, shape[2] - 1)])
    world = corners @ np.asarray(affine, float).T
    low, high = world[:, :3].min(axis=0), world[:, :3].max(axis=0)
    out_shape = tuple(int(np.ceil((h - lo) / spacing_mm - 1e-9)) + 1 for lo, h in zip(low, high))
    out_affine = np.diag([spacing_mm, spacing_mm, spacing_mm, 1.0])
    out_affine[:3, 3] = low
    return out_shape, out_affine


def box_on_grid(
    points: np.ndarray, to_grid: np.ndarray, shape: tuple[int, ...], *, pad: tuple[int, int] = (0, 1)
) -> tuple[slice, slice, slice]:
    """Slices of a grid that hold some points (a box's corners) once mapped onto it.

    Every crop of a subject grid to a part of the MNI brain (the brain box, the white-matter
    envelope's box, the network box's footprint) goes through here: the points are mapped to
    voxel indices, and the box runs from ``floor(min) - pad[0]`` to ``ceil(max) + pad[1]``
    (exclusive), clipped to the grid.

    Parameters
    ----------
    points : numpy.ndarray
        (n, 4) homogeneous points (or (n, 3), completed with ones) in the space ``to_grid`` reads.
    to_grid : (4, 4) array
        Maps the points to voxel indices of the grid (e.g. ``inv(affine) @ mni_to_subject``).
    shape : tuple of int
        The grid's shape (its first 3 axes are used).
    pad : (int, int), default (0, 1)
        Voxels added below the lowest and above the highest index; (0, 1) covers the points
        exactly.

    Returns
    -------
    tuple of 3 slice
        Possibly empty (``stop <= start``) when the points lie off the grid.

    Examples
    --------
    >>> corners = np.array([[1.2, 0.0, 3.0], [4.5, 2.0, 9.9]])
    >>> box_on_grid(corners, np.eye(4), (10, 10, 8), pad=(1, 1))
    (slice(0, 6, None), slice(0, 3, None), slice(2, 8, None))
    """
    points = np.asarray(points, float)
    if points.shape[1] == 3:
        points = np.c_[points, np.ones(len(points))]
    voxels = points @ np.asarray(to_grid, float).T
    size = np.asarray(shape[:3])
    start = np.clip(np.floor(voxels[:, :3].min(axis=0)).astype(int) - pad[0], 0, size)
    stop = np.clip(np.ceil(voxels[:, :3].max(axis=0)).astype(int) + pad[1], 0, size)
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
