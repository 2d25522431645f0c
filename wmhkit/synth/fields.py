"""Smooth random fields and cheap resampling helpers shared by the phantom modules."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from wmhkit.io.arrays import bounding_box

__all__ = ["upsample_linear", "smooth_field", "fourier_noise", "sample", "trilinear", "bounding_box", "warp_volumes"]


def _axis_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Left index and right weight mapping ``n_in`` nodes spread over ``n_out`` samples (ends aligned)."""
    if n_in == 1:
        return np.zeros(n_out, dtype=np.intp), np.zeros(n_out, dtype=np.float32)
    position = np.linspace(0.0, n_in - 1, n_out)
    left = np.minimum(np.floor(position).astype(np.intp), n_in - 2)
    return left, (position - left).astype(np.float32)


def upsample_linear(coarse: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Separable linear interpolation of a small array onto ``shape`` (first/last nodes at the ends).

    >>> upsample_linear(np.array([[0.0, 2.0]]), (1, 5)).tolist()
    [[0.0, 0.5, 1.0, 1.5, 2.0]]
    """
    out = np.asarray(coarse, dtype=np.float32)
    for axis, n_out in enumerate(shape):
        if out.shape[axis] == n_out:
            continue
        left, weight = _axis_weights(n_out, out.shape[axis])
        right = np.minimum(left + 1, out.shape[axis] - 1)
        view = [None] * out.ndim
        view[axis] = slice(None)
        weight = weight[tuple(view)]
        out = np.take(out, left, axis=axis) * (1.0 - weight) + np.take(out, right, axis=axis) * weight
    return out


def smooth_field(rng: np.random.Generator, shape: tuple[int, int, int], spacing_vox: float) -> np.ndarray:
    """Random smooth field with values of order 1: normal nodes every ``spacing_vox`` voxels, interpolated."""
    nodes = tuple(max(2, int(np.ceil(n / spacing_vox)) + 1) for n in shape)
    coarse = rng.standard_normal(nodes).astype(np.float32)
    if min(nodes) >= 4:
        coarse = ndimage.gaussian_filter(coarse, 0.5) * 1.6
    return upsample_linear(coarse, shape)


def fourier_noise(rng: np.random.Generator, points_mm: np.ndarray, wavelength_mm: float, count: int = 16) -> np.ndarray:
    """Smooth noise (standard deviation about 1) at arbitrary points, from random plane waves.

    Parameters
    ----------
    rng : numpy.random.Generator
    points_mm : (3, N) array
        Positions in mm.
    wavelength_mm : float
        Typical wavelength of the variations.
    count : int, default 16
        Number of plane waves.
    """
    directions = rng.standard_normal((count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavenumbers = 2 * np.pi / (wavelength_mm * rng.uniform(0.7, 1.4, count))
    phases = rng.uniform(0, 2 * np.pi, count)
    out = np.zeros(points_mm.shape[1], dtype=np.float32)
    for direction, wavenumber, phase in zip(directions, wavenumbers, phases):
        out += np.cos((wavenumber * direction).astype(np.float32) @ points_mm + np.float32(phase))
    return out * np.float32(np.sqrt(2.0 / count))


def sample(
    volume: np.ndarray, index: np.ndarray, *, order: int = 1, mode: str = "nearest", cval: float = 0.0
) -> np.ndarray:
    """Values of ``volume`` at fractional voxel indices ``index`` (3, N), as float32."""
    return ndimage.map_coordinates(volume, index, order=order, mode=mode, cval=cval, output=np.float32)


def trilinear(stack: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Trilinear values of every channel of ``stack`` (X, Y, Z, C) at voxel indices (3, N).

    Indices beyond the array take the nearest edge value. One set of corner gathers serves
    all channels, which is several times faster than one ``map_coordinates`` per channel.

    >>> stack = np.arange(8, dtype=np.float32).reshape(2, 2, 2, 1)
    >>> trilinear(stack, np.array([[0.5], [0.5], [0.5]], dtype=np.float32)).ravel().tolist()
    [3.5]
    """
    shape = stack.shape[:3]
    channels = stack.shape[3]
    flat = np.ascontiguousarray(stack, dtype=np.float32).reshape(-1, channels)
    # Gather whole voxels as one wide scalar (complex types as 8- or 16-byte containers):
    # numpy's 1D take is far faster than fancy row indexing.
    wide = {1: np.float32, 2: np.complex64, 4: np.complex128}.get(channels)
    packed = flat.view(wide).ravel() if wide is not None else None
    base = np.zeros(index.shape[1], dtype=np.int64)
    weights = []
    strides = (shape[1] * shape[2], shape[2], 1)
    for axis in range(3):
        position = np.clip(index[axis], 0, shape[axis] - 1)
        left = np.minimum(position.astype(np.int64), max(shape[axis] - 2, 0))
        weights.append((position - left).astype(np.float32)[:, None])
        base += left * strides[axis]
    out = np.zeros((index.shape[1], stack.shape[3]), dtype=np.float32)
    for corner in range(8):
        offset = sum(strides[axis] for axis in range(3) if corner >> (2 - axis) & 1)
        weight = None
        for axis in range(3):
            w = weights[axis] if corner >> (2 - axis) & 1 else 1.0 - weights[axis]
            weight = w if weight is None else weight * w
        if packed is not None:
            values = np.take(packed, base + offset).view(np.float32).reshape(-1, channels)
        else:
            values = np.take(flat, base + offset, axis=0)
        out += values * weight
    return out


def warp_volumes(rng: np.random.Generator, volumes, voxel_mm, *, amplitude_mm: float, wavelength_mm: float = 40.0,
                 orders=None) -> tuple[list[np.ndarray], float]:
    """The same smooth random non-linear deformation applied to several volumes of one grid.

    Each voxel's source position moves by a smooth displacement field (one :func:`smooth_field`
    per axis, nodes ``wavelength_mm / 2`` apart) of root-mean-square length about
    ``amplitude_mm``: the ventricles, the white matter and the cortex bend together, so one real
    head yields many plausible anatomies.

    Parameters
    ----------
    rng : numpy.random.Generator
    volumes : sequence of 3D arrays
        Arrays of one shape (an image and its masks).
    voxel_mm : sequence of 3 float
        Voxel sizes (mm).
    amplitude_mm : float
        Root-mean-square displacement (mm); 0 returns the volumes unchanged.
    wavelength_mm : float, default 40.0
        Scale over which the displacement changes (mm).
    orders : sequence of int, optional
        Interpolation order per volume (1 for images, 0 for masks); default 1 for floats, 0 otherwise.

    Returns
    -------
    warped : list of arrays (each in its input dtype)
    rms_mm : float
        The displacement's measured root-mean-square length (mm).

    Examples
    --------
    >>> image = np.random.default_rng(0).random((12, 14, 10)).astype(np.float32)
    >>> same, rms = warp_volumes(np.random.default_rng(1), [image], (1, 1, 1), amplitude_mm=0.0)
    >>> bool(np.array_equal(same[0], image)), rms
    (True, 0.0)
    """
    volumes = [np.asarray(v) for v in volumes]
    if amplitude_mm <= 0:
        return volumes, 0.0
    shape = volumes[0].shape
    sizes = np.broadcast_to(np.asarray(voxel_mm, dtype=np.float32), (3,))
    coords = np.indices(shape, dtype=np.float32)
    squared = np.zeros(shape, dtype=np.float32)
    for axis in range(3):
        displacement_mm = smooth_field(rng, shape, float(wavelength_mm / 2.0 / sizes.min()))
        displacement_mm *= np.float32(amplitude_mm / np.sqrt(3.0) / max(float(displacement_mm.std()), 1e-6))
        squared += displacement_mm * displacement_mm
        coords[axis] += displacement_mm / sizes[axis]
    if orders is None:
        orders = [1 if np.issubdtype(v.dtype, np.floating) else 0 for v in volumes]
    warped = [ndimage.map_coordinates(v, coords, order=int(order), mode="nearest").astype(v.dtype, copy=False)
              for v, order in zip(volumes, orders)]
    return warped, float(np.sqrt(squared.mean()))
