"""The atlas parcels and distance maps of one subject, on the subject's own grid.

:func:`subject_anatomy` brings the MNI parcel atlas (:func:`wmhkit.regions.parcels.load_parcels`)
to the subject with the alignment's ``resample_to_subject`` (nearest neighbour), optionally
refines the ventricles on the T1 (:mod:`wmhkit.regions.ventricles`), and computes the two
distance maps every rule uses, once, in mm with the voxel spacing
(``scipy.ndimage.distance_transform_edt(..., sampling=voxel sizes)``):

* ``distance_to_ventricle_mm``: from each voxel centre to the nearest lateral-ventricle voxel
  centre (0 inside the ventricles; a voxel touching the ventricle is one voxel size away).
* ``distance_to_cortex_mm``: likewise to the nearest cortex voxel.

All arrays cover only the box of the subject grid that holds the atlas brain (plus the
lesions), so the cost follows the brain, not the field of view.

Grids finer than :data:`COARSE_BELOW_MM` (the 0.7 mm heads) find the parcels' box on blocks of
about 1.5 mm before sampling the atlas at full resolution inside it (the same parcels, less
sampling). The distances are always the exact voxel-wise ones: distances measured on blocks
shift the juxtacortical and deep bands by several mL, which would make a fine-grid site differ
from a 1 mm site.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from concurrent.futures import ThreadPoolExecutor

import nibabel as nib
import numpy as np

from wmhkit.io import voxel_sizes_mm, voxel_volume_ml
from wmhkit.io.arrays import bounding_box, distance_to, grown_box
from wmhkit.regions.parcels import load_parcels, tissue_lookup
from wmhkit.regions.ventricles import refine_ventricles

__all__ = ["SubjectAnatomy", "subject_anatomy", "identity_alignment"]

logger = logging.getLogger(__name__)

_PAD_VOXELS = 3
#: Boxes up to this many voxels (a 1 mm brain has about 4 million) get their two distance maps
#: computed side by side; larger ones one after the other, to bound the memory.
PARALLEL_MAX_VOXELS = 8_000_000
#: Grids with voxels finer than this (mm, the largest axis) look for the parcels' box on blocks
#: of about :data:`COARSE_BLOCK_MM` first.
COARSE_BELOW_MM = 0.85
#: Widest block (mm) the parcels' box of fine grids is looked for on.
COARSE_BLOCK_MM = 1.5


@dataclasses.dataclass
class SubjectAnatomy:
    """Parcels and distances of one subject inside a box of its grid.

    Attributes
    ----------
    box : tuple of slice
        Where the arrays sit in the subject grid.
    parcels : numpy.ndarray
        uint8 parcel codes (``tables/parcels.tsv``).
    distance_to_ventricle_mm, distance_to_cortex_mm : numpy.ndarray
        float32 distances (mm); ``inf`` when the structure is absent from the box.
    voxel_ml : float
        Volume of one voxel (mL).
    ventricles : dict
        The ventricle refinement record (see :func:`wmhkit.regions.ventricles.refine_ventricles`).
    """

    box: tuple
    parcels: np.ndarray
    distance_to_ventricle_mm: np.ndarray
    distance_to_cortex_mm: np.ndarray
    voxel_ml: float
    ventricles: dict

    @functools.cached_property
    def depth(self) -> np.ndarray:
        """Normalised depth ``d_vent / (d_vent + d_cortex)``: 0 at the ventricle wall, 1 at the cortex."""
        total = self.distance_to_ventricle_mm + self.distance_to_cortex_mm
        depth = np.zeros(total.shape, dtype=np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):  # in place: a brain box of float32 at a time
            np.divide(self.distance_to_ventricle_mm, total, out=depth, where=total > 0)
        return np.nan_to_num(depth, copy=False, nan=1.0)

    def tissue(self, *names: str) -> np.ndarray:
        """Boolean map of the parcels of the tissues ``names`` ("white_matter", "deep_grey", ...); cached."""
        cache = self.__dict__.setdefault("_tissue_cache", {})
        if names not in cache:
            cache[names] = tissue_lookup(*names)[self.parcels]
        return cache[names]


def identity_alignment():
    """An alignment for images already in MNI152 space (subject mm = MNI mm)."""
    from wmhkit.preprocess import MNIAlignment

    return MNIAlignment(np.eye(4), quality=1.0, method="identity")


def brain_box(reference: nib.Nifti1Image, alignment, extra: np.ndarray | None = None) -> tuple:
    """The box of ``reference``'s grid that holds the template brain (plus 3 voxels, and the voxels of ``extra``).

    The template brain's box (:func:`wmhkit.preprocess.templates.template_brain_corners_mm`,
    which also bounds every parcel) placed by the alignment (without one: the whole grid).
    """
    from wmhkit.preprocess.resampling import box_on_grid
    from wmhkit.preprocess.templates import template_brain_corners_mm

    shape = reference.shape[:3]
    to_mni = getattr(alignment, "subject_to_mni", None)
    if to_mni is None:
        return tuple(slice(0, n) for n in shape)
    to_grid = np.linalg.inv(np.asarray(reference.affine, float)) @ np.linalg.inv(to_mni)
    box = box_on_grid(template_brain_corners_mm(), to_grid, shape, pad=(_PAD_VOXELS, _PAD_VOXELS + 1))
    box = _with_voxels(box, extra)
    if any(b.stop <= b.start for b in box):
        return tuple(slice(0, n) for n in shape)
    return box


def _with_voxels(box: tuple, extra: np.ndarray | None) -> tuple:
    """``box`` grown to hold the True voxels of ``extra`` (on the whole grid)."""
    found = None if extra is None else bounding_box(extra)  # no uint8 copy of the whole grid
    if found is None:
        return box
    return tuple(slice(min(b.start, int(a)), max(b.stop, int(z))) for b, a, z in zip(box, *found))


def _parcel_box(reference: nib.Nifti1Image, alignment, box: tuple, factor: int) -> tuple:
    """The part of ``box`` that the atlas parcels reach (plus two blocks), found on blocks of ``factor``^3 voxels.

    On fine grids the nearest-neighbour sampling of the atlas is the costliest step after the
    distances; sampling it on blocks first (a ``factor``^3-th of the voxels) finds the parcels'
    box, so that the full-resolution sampling covers that box only instead of the template brain's
    placed box (up to twice the brain).
    """
    shape = tuple(-(-(b.stop - b.start) // factor) for b in box)
    affine = _box_reference(reference, box).affine @ np.diag([factor, factor, factor, 1.0])
    blocks = nib.Nifti1Image(np.zeros(shape, np.uint8), affine)
    found = grown_box(np.asarray(alignment.resample_to_subject(load_parcels(), reference=blocks, order=0).dataobj) > 0, 2)
    if found is None:
        return box
    return tuple(slice(max(b.start, b.start + f.start * factor), min(b.stop, b.start + f.stop * factor))
                 for b, f in zip(box, found))


def _box_reference(reference: nib.Nifti1Image, box: tuple) -> nib.Nifti1Image:
    shift = np.eye(4)
    shift[:3, 3] = [s.start for s in box]
    affine = np.asarray(reference.affine, float) @ shift
    return nib.Nifti1Image(np.zeros(tuple(s.stop - s.start for s in box), np.uint8), affine)


def _tight(box: tuple, parcels: np.ndarray, lesion: np.ndarray | None) -> tuple[tuple, np.ndarray]:
    """The box shrunk to the parcels (and lesions) it holds, plus :data:`_PAD_VOXELS`.

    The template brain's box placed by an affine map is up to twice the brain it holds (its
    corners turn with the head). Nothing that follows reads beyond the parcels and the lesions
    (distances run between parcel voxels; the rest is "outside"), so the results are the same,
    for about half the voxels.
    """
    inside = parcels > 0
    if lesion is not None:
        inside = inside | lesion
    found = grown_box(inside, _PAD_VOXELS)
    if found is None:
        return box, parcels
    tight = tuple(slice(b.start + f.start, b.start + f.stop) for b, f in zip(box, found))
    return tight, np.ascontiguousarray(parcels[found])


def _distances_mm(structures: tuple, sampling: np.ndarray) -> list[np.ndarray]:
    """:func:`_distance_mm` of each structure; two at a time (scipy releases the GIL) when the box is small
    enough that two transforms' memory (16 bytes per voxel each) stays under :data:`PARALLEL_MAX_VOXELS`'s."""
    if structures[0].size > PARALLEL_MAX_VOXELS:
        return [_distance_mm(structure, sampling) for structure in structures]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda structure: _distance_mm(structure, sampling), structures))


def _distance_mm(structure: np.ndarray, sampling: np.ndarray) -> np.ndarray:
    if not structure.any():
        return np.full(structure.shape, np.inf, dtype=np.float32)
    return distance_to(structure, sampling)


def coarse_factor(sampling) -> int:
    """Blocks of ``factor``^3 voxels on which :func:`subject_anatomy` finds the parcels' box.

    1 (no blocks) for voxels of :data:`COARSE_BELOW_MM` and more; on finer grids the largest
    factor whose blocks stay at most :data:`COARSE_BLOCK_MM` wide.

    >>> coarse_factor([1.0, 1.0, 1.0]), coarse_factor([0.7, 0.7, 0.7]), coarse_factor([0.5, 0.5, 0.5])
    (1, 2, 3)
    """
    largest = float(np.max(sampling))
    if largest >= COARSE_BELOW_MM:
        return 1
    return max(1, int(COARSE_BLOCK_MM // largest))


def subject_anatomy(
    reference: nib.Nifti1Image,
    alignment,
    *,
    t1: np.ndarray | None = None,
    lesion: np.ndarray | None = None,
    refine: bool = True,
    parcels: np.ndarray | None = None,
) -> SubjectAnatomy:
    """Parcels and distance maps of a subject on ``reference``'s grid.

    Parameters
    ----------
    reference : nibabel.Nifti1Image
        Checked image whose grid the results take (the lesion mask).
    alignment : MNIAlignment or any object with ``resample_to_subject``
        Maps the subject to MNI152 (``subject_to_mni`` is used to find the brain box when present).
    t1 : numpy.ndarray, optional
        T1 voxels on the same grid (any dtype; only the brain's box is read, as float32); when given
        and ``refine`` is true, the ventricles are refined.
    lesion : numpy.ndarray of bool, optional
        Lesion voxels on the same grid: kept inside the box and never made ventricle.
    refine : bool, default True
        Refine the ventricles on ``t1`` (ignored without ``t1``).
    parcels : numpy.ndarray, optional
        The subject's own uint8 parcels on the whole grid (:func:`wmhkit.regions.aseg.parcels_from_aseg`),
        used instead of the MNI atlas; its ventricles are kept as they are (no refinement).

    Returns
    -------
    SubjectAnatomy
    """
    sampling = voxel_sizes_mm(reference)
    factor = coarse_factor(sampling)
    own = parcels is not None
    if own:  # the subject's own parcellation: already on the grid
        box, refine = tuple(slice(0, n) for n in reference.shape[:3]), False
    elif factor > 1:  # fine grids: the parcels' box first, on blocks
        box = _with_voxels(_parcel_box(reference, alignment, brain_box(reference, alignment), factor), lesion)
    else:
        box = brain_box(reference, alignment, lesion)
    if not own:
        parcels = np.asarray(
            alignment.resample_to_subject(load_parcels(), reference=_box_reference(reference, box), order=0).dataobj
        ).astype(np.uint8, copy=False)
    box, parcels = _tight(box, parcels, None if lesion is None else lesion[box])
    record = {"refined": False}
    if t1 is not None and refine:
        parcels, record = refine_ventricles(
            parcels, np.asarray(t1[box], dtype=np.float32), sampling, lesion=None if lesion is None else lesion[box]
        )
    ventricle = tissue_lookup("ventricle")[parcels]
    cortex = tissue_lookup("cortex")[parcels]
    if not ventricle.any():
        logger.warning("No lateral ventricle found in the subject's field of view; ventricle distances are infinite.")
    voxel_ml = voxel_volume_ml(reference)
    record["ventricle_ml"] = float(ventricle.sum() * voxel_ml)
    d_ventricle, d_cortex = _distances_mm((ventricle, cortex), sampling)
    return SubjectAnatomy(
        box=box,
        parcels=parcels,
        distance_to_ventricle_mm=d_ventricle,
        distance_to_cortex_mm=d_cortex,
        voxel_ml=voxel_ml,
        ventricles=record,
    )
