"""The atlas parcels and distance maps of one subject, on the subject's own grid.

:func:`subject_anatomy` brings the MNI parcel atlas (:func:`wmhkit.regions.atlases.load_parcels`)
to the subject with the alignment's ``resample_to_subject`` (nearest neighbour), optionally
refines the ventricles on the T1 (:mod:`wmhkit.regions.ventricles`), and computes the two
distance maps every rule uses, once, in mm with the voxel spacing
(``scipy.ndimage.distance_transform_edt(..., sampling=voxel sizes)``):

* ``distance_to_ventricle_mm``: from each voxel centre to the nearest lateral-ventricle voxel
  centre (0 inside the ventricles; a voxel touching the ventricle is one voxel size away).
* ``distance_to_cortex_mm``: likewise to the nearest cortex voxel.

All arrays cover only the box of the subject grid that holds the atlas brain (plus the
lesions), so the cost follows the brain, not the field of view.
"""

from __future__ import annotations

import dataclasses
import functools
import logging

import nibabel as nib
import numpy as np
from scipy import ndimage

from wmhkit.io import voxel_sizes_mm, voxel_volume_ml
from wmhkit.regions.atlases import load_parcels, tissue_lookup
from wmhkit.regions.ventricles import refine_ventricles

__all__ = ["SubjectAnatomy", "subject_anatomy", "identity_alignment"]

logger = logging.getLogger(__name__)

_PAD_VOXELS = 3


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
        with np.errstate(invalid="ignore", divide="ignore"):
            depth = np.where(total > 0, self.distance_to_ventricle_mm / total, 0.0)
        return np.nan_to_num(depth, nan=1.0).astype(np.float32)

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


@functools.lru_cache(maxsize=1)
def _mni_brain_corners() -> np.ndarray:
    parcels = load_parcels()
    found = ndimage.find_objects((np.asarray(parcels.dataobj) > 0).astype(np.uint8))[0]
    ijk = np.array([[a, b, c, 1.0] for a in (found[0].start, found[0].stop - 1)
                    for b in (found[1].start, found[1].stop - 1) for c in (found[2].start, found[2].stop - 1)])
    return ijk @ parcels.affine.T


def brain_box(reference: nib.Nifti1Image, alignment, extra: np.ndarray | None = None) -> tuple:
    """The box of ``reference``'s grid that holds the atlas brain (and the voxels of ``extra``)."""
    shape = reference.shape[:3]
    to_mni = getattr(alignment, "subject_to_mni", None)
    if to_mni is None:
        return tuple(slice(0, n) for n in shape)
    corners = _mni_brain_corners() @ (np.linalg.inv(np.asarray(reference.affine, float)) @ np.linalg.inv(to_mni)).T
    low = np.floor(corners[:, :3].min(axis=0)).astype(int) - _PAD_VOXELS
    high = np.ceil(corners[:, :3].max(axis=0)).astype(int) + _PAD_VOXELS + 1
    if extra is not None and extra.any():
        found = ndimage.find_objects(extra.astype(np.uint8))[0]
        low = np.minimum(low, [s.start for s in found])
        high = np.maximum(high, [s.stop for s in found])
    low = np.clip(low, 0, shape)
    high = np.clip(high, low, shape)
    if np.any(high - low == 0):
        return tuple(slice(0, n) for n in shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def _box_reference(reference: nib.Nifti1Image, box: tuple) -> nib.Nifti1Image:
    shift = np.eye(4)
    shift[:3, 3] = [s.start for s in box]
    affine = np.asarray(reference.affine, float) @ shift
    return nib.Nifti1Image(np.zeros(tuple(s.stop - s.start for s in box), np.uint8), affine)


def _distance_mm(structure: np.ndarray, sampling: np.ndarray) -> np.ndarray:
    if not structure.any():
        return np.full(structure.shape, np.inf, dtype=np.float32)
    return ndimage.distance_transform_edt(~structure, sampling=sampling).astype(np.float32)


def subject_anatomy(
    reference: nib.Nifti1Image,
    alignment,
    *,
    t1: np.ndarray | None = None,
    lesion: np.ndarray | None = None,
    refine: bool = True,
) -> SubjectAnatomy:
    """Parcels and distance maps of a subject on ``reference``'s grid.

    Parameters
    ----------
    reference : nibabel.Nifti1Image
        Checked image whose grid the results take (the lesion mask).
    alignment : MNIAlignment or any object with ``resample_to_subject``
        Maps the subject to MNI152 (``subject_to_mni`` is used to find the brain box when present).
    t1 : numpy.ndarray, optional
        T1 voxels on the same grid; when given and ``refine`` is true, the ventricles are refined.
    lesion : numpy.ndarray of bool, optional
        Lesion voxels on the same grid: kept inside the box and never made ventricle.
    refine : bool, default True
        Refine the ventricles on ``t1`` (ignored without ``t1``).

    Returns
    -------
    SubjectAnatomy
    """
    box = brain_box(reference, alignment, lesion)
    mni_parcels = load_parcels()
    parcels = np.asarray(
        alignment.resample_to_subject(mni_parcels, reference=_box_reference(reference, box), order=0).dataobj
    ).astype(np.uint8, copy=False)
    sampling = voxel_sizes_mm(reference)
    record = {"refined": False}
    if t1 is not None and refine:
        parcels, record = refine_ventricles(
            parcels, t1[box], sampling, lesion=None if lesion is None else lesion[box]
        )
    ventricle = tissue_lookup("ventricle")[parcels]
    cortex = tissue_lookup("cortex")[parcels]
    if not ventricle.any():
        logger.warning("No lateral ventricle found in the subject's field of view; ventricle distances are infinite.")
    voxel_ml = voxel_volume_ml(reference)
    record["ventricle_ml"] = float(ventricle.sum() * voxel_ml)
    return SubjectAnatomy(
        box=box,
        parcels=parcels,
        distance_to_ventricle_mm=_distance_mm(ventricle, sampling),
        distance_to_cortex_mm=_distance_mm(cortex, sampling),
        voxel_ml=voxel_ml,
        ventricles=record,
    )
