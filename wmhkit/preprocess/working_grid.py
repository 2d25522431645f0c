"""The working grid: a fine input sampled once onto about 1 mm voxels along its own axes.

Everything :func:`wmhkit.segment` does after loading costs what the grid costs: a 0.7 mm head
(274 x 384 x 384) holds 2.9 times the voxels of the same head at 1 mm, and its distance maps,
brain mask, resamplings and lesion labels took 13 s where a 1 mm head takes 5 s. The network
reads about 1 mm voxels anyway (:mod:`wmhkit.segmentation.subject_grid`), and the atlas, the
envelope and the regional rules are 1 mm products. So an input whose voxels are finer than
:data:`FINE_BELOW_MM` on some axis is sampled once, right after it is checked, onto the working
grid: the same field of view and the same axes, each fine axis cut into voxels of about
:data:`WORKING_MM` (linear interpolation, float32). Every later step runs there exactly as for
a 1 mm head; the segmentation's outputs are brought back onto the input grid at the end
(:mod:`wmhkit.segmentation.input_grid`). Inputs at about 1 mm and coarser are used as they are.

The working grid's voxel ``k`` covers input voxels ``k * f - 1/2`` to ``(k + 1) * f - 1/2``
along an axis resampled by the factor ``f = n / m`` (``n`` input, ``m = round(n * size / 1 mm)``
working voxels), so both grids cover the same field of view edge to edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from wmhkit.io import new_img_like
from wmhkit.preprocess.resampling import resample_along_axes

__all__ = ["FINE_BELOW_MM", "WORKING_MM", "WorkingGrid", "working_grid", "to_working_grid"]

#: Axes with voxels finer than this (mm) are resampled onto the working grid.
FINE_BELOW_MM = 0.85
#: About the working grid's voxel size (mm) along a resampled axis (the field of view, divided
#: into a whole number of voxels, sets it exactly: 0.999 mm for 384 voxels of 0.7 mm).
WORKING_MM = 1.0


@dataclass(frozen=True)
class WorkingGrid:
    """The working grid of an input grid, and how their voxels map onto each other.

    Attributes
    ----------
    shape : tuple of int
        Working grid shape.
    affine : numpy.ndarray
        Its voxel-to-world affine (the input's axes, longer voxels).
    factors : numpy.ndarray
        Input voxels per working voxel along each axis (1 on axes kept as they are).
    input_shape : tuple of int
        The input grid's shape.
    """

    shape: tuple
    affine: np.ndarray
    factors: np.ndarray
    input_shape: tuple

    @property
    def voxel_mm(self) -> list[float]:
        """The working voxel's edge lengths (mm)."""
        return [float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))]

    def input_index(self, working_index) -> np.ndarray:
        """Input voxel index (fractional) of working voxel centres ``working_index`` (per axis)."""
        return np.asarray(working_index, float) * self.factors + (self.factors - 1.0) / 2.0

    def working_index(self, input_index) -> np.ndarray:
        """Working voxel index (fractional) of input voxel centres ``input_index`` (per axis)."""
        return (np.asarray(input_index, float) - (self.factors - 1.0) / 2.0) / self.factors


def working_grid(shape, affine: np.ndarray) -> WorkingGrid | None:
    """The working grid of an input grid, or None when no axis is finer than :data:`FINE_BELOW_MM`.

    Parameters
    ----------
    shape : tuple of int
        The input grid's shape (first 3 axes).
    affine : (4, 4) array
        Its voxel-to-world affine (mm).

    Examples
    --------
    >>> grid = working_grid((274, 384, 384), np.diag([0.7, 0.7, 0.7, 1.0]))
    >>> grid.shape, [round(v, 4) for v in grid.voxel_mm]
    ((192, 269, 269), [0.999, 0.9993, 0.9993])
    >>> working_grid((256, 256, 170), np.diag([1.0, 1.0, 1.2, 1.0])) is None
    True
    """
    shape = np.asarray(tuple(shape)[:3], int)
    affine = np.asarray(affine, float)
    sizes = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    fine = sizes < FINE_BELOW_MM
    if not fine.any():
        return None
    out_shape = np.where(fine, np.maximum(1, np.round(shape * sizes / WORKING_MM)), shape).astype(int)
    factors = shape / out_shape
    scale = np.eye(4)
    scale[:3, :3] = np.diag(factors)
    scale[:3, 3] = (factors - 1.0) / 2.0
    return WorkingGrid(tuple(int(n) for n in out_shape), affine @ scale, factors, tuple(int(n) for n in shape))


def to_working_grid(img: nib.Nifti1Image) -> tuple[nib.Nifti1Image, WorkingGrid] | None:
    """A checked image sampled onto its working grid (float32, linear), or None when it needs none.

    Parameters
    ----------
    img : nibabel.Nifti1Image
        A checked image (:func:`wmhkit.io.check_img`); its voxels are read once, in their own
        memory order and dtype (no float64 copy of the input).

    Returns
    -------
    (nibabel.Nifti1Image, WorkingGrid) or None
        The working image (the input's qform/sform codes and source path kept) and its grid.
    """
    grid = working_grid(img.shape, img.affine)
    if grid is None:
        return None
    data = resample_along_axes(np.asanyarray(img.dataobj), grid.factors, grid.input_index(np.zeros(3)), grid.shape,
                               order=1, mode="nearest", dtype=np.float32)
    working = new_img_like(img, data)
    working.set_sform(grid.affine, int(working.header["sform_code"]))
    working.set_qform(grid.affine, int(working.header["qform_code"]))
    source = getattr(img, "_wmhkit_source", None)
    if source:
        working._wmhkit_source = source  # noqa: SLF001 - messages and the output stem name the input file
    return working, grid

