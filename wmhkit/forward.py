"""The thick-slice forward model A: what a 2D acquisition with thick slices sees of a 3D map.

A low-resolution (LR) voxel of a 2D FLAIR integrates the tissue inside its *footprint*: a box
centred on the voxel centre, as wide as the in-plane voxel size along the two in-plane axes
and as long as the slice thickness along the slice normal (``slice_axis``). When slices are
spaced further apart than they are thick, the difference is the *gap*, and tissue inside it is
seen by no slice. :func:`thick_slice_average` returns the mean of a high-resolution (HR) map
over every LR footprint, for any relative orientation of the two grids (given by their
affines). Training (``wmhkit.train``) applies the same operator, written in torch, to the
network's 1 mm probability map and compares the result with labels drawn on thick slices;
:func:`footprint_offsets` gives the exact sample points so both implementations agree.

The mean is computed with the midpoint rule: along each footprint axis of extent ``L`` mm the
footprint is cut into ``n = ceil(L / step_mm)`` equal cells and the HR map is sampled at the
cell centres by trilinear interpolation (HR voxel centres at integer indices; outside the HR
array the map is 0 and interpolation blends towards 0 over the last voxel, like torch's
``grid_sample(..., padding_mode="zeros", align_corners=True)``).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage

from wmhkit.errors import OptionError

__all__ = ["thick_slice_average", "thick_slice_average_where", "footprint_offsets", "slice_geometry"]

logger = logging.getLogger(__name__)

#: LR voxels processed per block, bounding memory (coordinates are 3 float64 per voxel).
_BLOCK_VOXELS = 1 << 21


def _voxel_sizes(affine: np.ndarray) -> np.ndarray:
    return np.sqrt((np.asarray(affine, dtype=np.float64)[:3, :3] ** 2).sum(axis=0))


def slice_geometry(
    lr_affine: np.ndarray, *, slice_axis: int = 2, thickness_mm: float | None = None, gap_mm: float = 0.0
) -> tuple[np.ndarray, float]:
    """LR voxel sizes and the slice thickness implied by the options.

    Parameters
    ----------
    lr_affine : (4, 4) array
        Voxel-to-world affine of the low-resolution grid (mm).
    slice_axis : {0, 1, 2}, default 2
        The LR array axis along which slices are stacked.
    thickness_mm : float, optional
        Slice thickness in mm. Default: slice spacing (voxel size along ``slice_axis``) minus
        ``gap_mm``.
    gap_mm : float, default 0.0
        Gap between slices in mm; used only to derive the default thickness.

    Returns
    -------
    voxel_sizes_mm : (3,) array
    thickness_mm : float

    Examples
    --------
    >>> import numpy as np
    >>> sizes, thickness = slice_geometry(np.diag([0.9, 0.9, 6.0, 1.0]), gap_mm=1.0)
    >>> sizes.tolist(), thickness
    ([0.9, 0.9, 6.0], 5.0)
    """
    if slice_axis not in (0, 1, 2):
        raise OptionError(f"slice_axis={slice_axis!r} is not an array axis; use 0, 1 or 2.")
    sizes = _voxel_sizes(lr_affine)
    spacing = float(sizes[slice_axis])
    if gap_mm < 0:
        raise OptionError(f"gap_mm={gap_mm} is negative; give the gap between slices in mm (0 or more).")
    thickness = spacing - float(gap_mm) if thickness_mm is None else float(thickness_mm)
    if not thickness > 0:
        raise OptionError(
            f"Slice thickness {thickness:g} mm (spacing {spacing:g} mm, gap {gap_mm:g} mm) is not positive; "
            "give thickness_mm or a smaller gap_mm."
        )
    return sizes, thickness


def footprint_offsets(
    lr_affine: np.ndarray,
    *,
    slice_axis: int = 2,
    thickness_mm: float | None = None,
    gap_mm: float = 0.0,
    step_mm: float = 0.5,
) -> np.ndarray:
    """Sample points of one LR footprint, as offsets from the voxel centre in LR voxel units.

    Parameters are those of :func:`thick_slice_average`.

    Returns
    -------
    (S, 3) float64 array
        One row per sample, in the order the samples are summed (C order over the three
        axes). The footprint mean is the plain average over the S samples.

    Examples
    --------
    A 0.9 x 0.9 x 5 mm voxel sampled every 0.5 mm or less: 2 x 2 x 10 samples.

    >>> import numpy as np
    >>> offsets = footprint_offsets(np.diag([0.9, 0.9, 5.0, 1.0]))
    >>> offsets.shape, offsets[:, 2].round(2).tolist()[:3]
    ((40, 3), [-0.45, -0.35, -0.25])
    """
    if not step_mm > 0:
        raise OptionError(f"step_mm={step_mm!r} must be a positive distance in mm (default 0.5).")
    sizes, thickness = slice_geometry(lr_affine, slice_axis=slice_axis, thickness_mm=thickness_mm, gap_mm=gap_mm)
    per_axis = []
    for axis in range(3):
        extent_mm = thickness if axis == slice_axis else float(sizes[axis])
        count = max(1, math.ceil(extent_mm / step_mm - 1e-9))
        extent_vox = extent_mm / float(sizes[axis])
        per_axis.append(((np.arange(count) + 0.5) / count - 0.5) * extent_vox)
    grid = np.meshgrid(*per_axis, indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=1)


def _lr_to_hr(hr_affine: np.ndarray, lr_affine: np.ndarray) -> np.ndarray:
    hr_affine = np.asarray(hr_affine, dtype=np.float64)
    lr_affine = np.asarray(lr_affine, dtype=np.float64)
    if hr_affine.shape != (4, 4) or lr_affine.shape != (4, 4):
        raise OptionError("hr_affine and lr_affine must be 4x4 voxel-to-world matrices.")
    return np.linalg.inv(hr_affine) @ lr_affine


def _footprint_mean(hr: np.ndarray, lr_to_hr: np.ndarray, hr_offsets: np.ndarray, lr_ijk) -> np.ndarray:
    """Footprint means at the LR voxels ``lr_ijk`` (three index arrays of one shape).

    Every LR voxel's value depends only on its own indices, computed elementwise in a fixed
    order, so a subset gives bit-identical values to the full grid.
    """
    i, j, k = (np.asarray(a, dtype=np.float64) for a in lr_ijk)
    base = np.stack([lr_to_hr[c, 0] * i + lr_to_hr[c, 1] * j + lr_to_hr[c, 2] * k + lr_to_hr[c, 3] for c in range(3)])
    total = np.zeros(base.shape[1:], dtype=np.float64)
    coords = np.empty_like(base)
    for delta in hr_offsets:
        np.add(base, delta.reshape((3,) + (1,) * (base.ndim - 1)), out=coords)
        total += ndimage.map_coordinates(hr, coords, order=1, mode="grid-constant", cval=0.0, output=np.float64)
    return total / len(hr_offsets)


def _prepare(hr_data, hr_affine, lr_affine, slice_axis, thickness_mm, gap_mm, step_mm):
    hr = np.asarray(hr_data)
    if hr.ndim != 3:
        raise OptionError(f"hr_data has {hr.ndim} dimensions; thick_slice_average needs a 3D array.")
    # float32 values are exact in double, which map_coordinates computes in: no copy needed.
    if hr.dtype not in (np.float32, np.float64):
        hr = hr.astype(np.float32)
    lr_to_hr = _lr_to_hr(hr_affine, lr_affine)
    offsets = footprint_offsets(
        lr_affine, slice_axis=slice_axis, thickness_mm=thickness_mm, gap_mm=gap_mm, step_mm=step_mm
    )
    hr_offsets = offsets @ lr_to_hr[:3, :3].T
    return hr, lr_to_hr, hr_offsets


def thick_slice_average(
    hr_data: np.ndarray,
    hr_affine: np.ndarray,
    lr_shape: tuple[int, int, int],
    lr_affine: np.ndarray,
    *,
    slice_axis: int = 2,
    thickness_mm: float | None = None,
    gap_mm: float = 0.0,
    step_mm: float = 0.5,
) -> np.ndarray:
    """Mean of a high-resolution map over each low-resolution voxel's footprint.

    Parameters
    ----------
    hr_data : (X, Y, Z) array
        The high-resolution map (a lesion mask, a probability map or an image).
    hr_affine : (4, 4) array
        Its voxel-to-world affine (mm).
    lr_shape : tuple of 3 int
        Shape of the low-resolution (thick-slice) grid.
    lr_affine : (4, 4) array
        Voxel-to-world affine of the low-resolution grid; any orientation relative to
        ``hr_affine``. Its voxel size along ``slice_axis`` is the slice spacing.
    slice_axis : {0, 1, 2}, default 2
        LR array axis along the slice normal.
    thickness_mm : float, optional
        Slice thickness (mm); default: slice spacing minus ``gap_mm``.
    gap_mm : float, default 0.0
        Gap between consecutive slices (mm); tissue in the gap is seen by no slice.
    step_mm : float, default 0.5
        Largest distance between footprint samples (mm); see the module docstring.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``lr_shape``; the mean of ``hr_data`` (trilinearly
        interpolated, 0 outside its array) over each LR footprint.

    Examples
    --------
    A 1 mm slab five voxels thick, seen by 5 mm slices aligned with it, fills one slice
    (trilinear interpolation blurs its edges by half a voxel into the neighbours):

    >>> import numpy as np
    >>> hr = np.zeros((20, 22, 30)); hr[:, :, 10:15] = 1
    >>> lr_affine = np.diag([1.0, 1.0, 5.0, 1.0]); lr_affine[2, 3] = 2.0
    >>> lr = thick_slice_average(hr, np.eye(4), (20, 22, 6), lr_affine)
    >>> lr[10, 11].round(3).tolist()
    [0.0, 0.025, 0.95, 0.025, 0.0, 0.0]
    """
    lr_shape = tuple(int(n) for n in lr_shape)
    if len(lr_shape) != 3 or min(lr_shape) < 1:
        raise OptionError(f"lr_shape={lr_shape} must be three positive integers.")
    hr, lr_to_hr, hr_offsets = _prepare(hr_data, hr_affine, lr_affine, slice_axis, thickness_mm, gap_mm, step_mm)
    out = np.empty(lr_shape, dtype=np.float64)
    plane = lr_shape[1] * lr_shape[2]
    rows = max(1, _BLOCK_VOXELS // plane)
    j, k = np.meshgrid(np.arange(lr_shape[1]), np.arange(lr_shape[2]), indexing="ij")
    for start in range(0, lr_shape[0], rows):
        stop = min(lr_shape[0], start + rows)
        i = np.broadcast_to(np.arange(start, stop)[:, None, None], (stop - start,) + j.shape)
        out[start:stop] = _footprint_mean(
            hr, lr_to_hr, hr_offsets, (i, np.broadcast_to(j, i.shape), np.broadcast_to(k, i.shape))
        )
    return out


def thick_slice_average_where(
    hr_data: np.ndarray,
    hr_affine: np.ndarray,
    lr_shape: tuple[int, int, int],
    lr_affine: np.ndarray,
    lr_mask: np.ndarray,
    **options,
) -> np.ndarray:
    """:func:`thick_slice_average` computed only where ``lr_mask`` is true (0 elsewhere).

    Values inside the mask are bit-identical to those of :func:`thick_slice_average`; use it
    when the map is known to be 0 around the footprints outside the mask (a lesion mask's
    bounding box), to save time.
    """
    lr_mask = np.asarray(lr_mask, dtype=bool)
    if lr_mask.shape != tuple(lr_shape):
        raise OptionError(f"lr_mask has shape {lr_mask.shape}; it must match lr_shape {tuple(lr_shape)}.")
    hr, lr_to_hr, hr_offsets = _prepare(
        hr_data,
        hr_affine,
        lr_affine,
        options.get("slice_axis", 2),
        options.get("thickness_mm"),
        options.get("gap_mm", 0.0),
        options.get("step_mm", 0.5),
    )
    out = np.zeros(lr_shape, dtype=np.float64)
    index = np.nonzero(lr_mask)
    if index[0].size:
        out[index] = _footprint_mean(hr, lr_to_hr, hr_offsets, index)
    return out
