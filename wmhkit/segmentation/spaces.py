"""Where the network runs: one interface over the two grids it can read.

A :class:`Grid` holds what the network (or the classical baseline) needs on one grid -- the
normalised T1 (white matter 1.0), the cerebral white-matter envelope and the zone where the
ventricles may lie, cropped to the part that can hold lesions -- and brings a probability map
computed there back onto the input grid (:meth:`Grid.to_input`). Two spaces implement it:

* ``"subject"`` (:mod:`wmhkit.segmentation.subject_grid`): the input's own voxels, reordered so
  that the slice axis runs inferior-superior but never interpolated when they are about 1 mm;
  other inputs are sampled once onto 1 mm along their own axes;
* ``"mni"`` (:mod:`wmhkit.segmentation.mni_grid`): the MNI brain box of the 1 mm template grid,
  the T1 sampled in through the affine alignment and the probability sampled back.

:func:`grid_for` builds the one a model asks for; :mod:`wmhkit.segmentation.inference` runs the
network or the baseline on it without knowing which it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SPACES", "Grid", "grid_for", "on_grid"]

#: Where the network can run (see ``segment(space=...)``).
SPACES = ("mni", "subject")


@dataclass
class Grid:
    """The network's input on one grid, and the way back to the input grid.

    Attributes
    ----------
    space : str
        "mni" or "subject".
    t1 : numpy.ndarray
        float32 normalised T1 (white matter 1.0, background 0), slices along axis 2 running
        inferior-superior and axis 0 left-right (what the 2.5D network was trained on).
    envelope : numpy.ndarray
        bool, the cerebral white-matter envelope on the grid (lesions are looked for only there).
    ventricle_zone : numpy.ndarray
        bool, where the lateral ventricles may lie.
    affine : numpy.ndarray
        4x4 voxel-to-mm affine of ``t1`` (MNI mm on the MNI grid, the input's world mm otherwise).
    """

    space: str
    t1: np.ndarray
    envelope: np.ndarray
    ventricle_zone: np.ndarray
    affine: np.ndarray

    @property
    def voxel_mm3(self) -> float:
        """Volume of one grid voxel (mm^3)."""
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    def to_input(self, probability: np.ndarray) -> tuple[tuple[slice, slice, slice], np.ndarray]:
        """A probability on this grid brought onto the input grid, where it can be non-zero.

        Returns the slices of the input grid outside which the probability is 0 (the white-matter
        envelope's box) and the float32 probability (0-1) there. Only that part is ever held, so
        later steps cost what the brain costs, not what the field of view does.
        """
        raise NotImplementedError

    def to_image(self, probability: np.ndarray, img) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
        """The probability sampled straight onto another grid of the subject (``img``'s), where it is non-zero;
        None when this grid has no more direct way there than through :meth:`to_input`."""
        return None

    def to_input_grid(self, probability: np.ndarray) -> np.ndarray:
        """The probability on the whole input grid (float32, 0 outside :meth:`to_input`'s box)."""
        sub, part = self.to_input(probability)
        return on_grid(sub, part, self.input_shape)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of the input grid."""
        raise NotImplementedError


def on_grid(sub: tuple[slice, slice, slice], part: np.ndarray, shape: tuple[int, ...], *,
            order: str = "C") -> np.ndarray:
    """``part`` placed at ``sub`` in a zero array of ``shape`` (its dtype; memory ``order`` "C" or "F")."""
    out = np.zeros(tuple(shape[:3]), dtype=part.dtype, order=order)
    out[sub] = part
    return out


def grid_for(prepared, space: str) -> Grid:
    """The grid of ``space`` ("mni" or "subject") for a prepared T1 (:class:`wmhkit.preprocess.PreparedT1`)."""
    if space == "subject":
        from wmhkit.segmentation.subject_grid import subject_grid

        return subject_grid(prepared)
    from wmhkit.segmentation.mni_grid import mni_grid

    return mni_grid(prepared)
