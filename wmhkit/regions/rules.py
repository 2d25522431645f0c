"""Regional schemes: periventricular/deep rules, lobes, bullseye and the reference tool's four regions.

Every scheme assigns each lesion voxel to exactly one of its regions or to ``other`` (lesion
voxels outside the cerebrum: infratentorial, ventral diencephalon, outside the atlas), so the
regional volumes of one scheme add up to the total lesion volume. ``region_ml`` is the volume
of the region's tissue on the subject's grid, where the scheme defines tissue regions.

Distances are those of :class:`wmhkit.regions.anatomy.SubjectAnatomy` (mm, voxel centre to
the nearest lateral-ventricle or cortex voxel centre).

Schemes (names accepted by ``quantify_subject(schemes=...)``):

``pv_10mm``
    periventricular: distance to the ventricles < 10 mm; deep: the rest (e.g. DeCarli et
    al. 2005). Voxel-wise.
``pv_3_13mm``
    juxtaventricular < 3 mm, periventricular 3-13 mm, deep >= 13 mm (e.g. Kim et al. 2008).
    Voxel-wise.
``pv_continuity``
    the continuity rule (e.g. Griffanti et al. 2018): a connected lesion (26-connectivity)
    that comes within :data:`CONTINUITY_MM` (3 mm) of a ventricle voxel, i.e. touches the
    ventricle allowing for about one voxel of alignment error, is periventricular as a whole;
    every other lesion is deep. It classifies lesions, not tissue: ``region_ml`` is empty.
``pv_nearest``
    periventricular where the voxel is nearer to the ventricles than to the cortex
    (normalised depth < 0.5), deep otherwise. Voxel-wise.
``lobes``
    the lobe (frontal incl. insula, parietal, temporal, occipital; left/right) of the cortex
    or white-matter parcel, and the deep grey nuclei per side.
``bullseye``
    36 regions, see :mod:`wmhkit.regions.bullseye`.
``reference4``
    the four regions reported by the authors' reference tool, with wmhkit's own definitions,
    first match wins: ``inner_grey`` (lesion in the deep grey nuclei), ``periventricular``
    (< 10 mm from the ventricles), ``juxtacortical`` (< :data:`JUXTACORTICAL_MM` = 4 mm from
    the cortex, or in the cortex parcel itself), ``deep_white`` (the rest of the cerebral
    white matter). ``region_ml`` counts white matter and deep grey only.

Voxel-wise pv schemes classify every cerebral lesion voxel (white matter, deep grey, and the
few voxels that the atlas calls cortex or ventricle); their ``region_ml`` counts the cerebral
white matter and deep grey in each class.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from wmhkit.errors import OptionError
from wmhkit.regions.anatomy import SubjectAnatomy
from wmhkit.regions.parcels import LOBES, PARCEL_CODES
from wmhkit.regions.bullseye import bullseye_labels, bullseye_names, classes_by_edges

__all__ = [
    "CONTINUITY_MM",
    "DEFAULT_SCHEMES",
    "JUXTACORTICAL_MM",
    "SCHEMES",
    "SchemeRegions",
    "apply_scheme",
    "continuity_classes",
    "per_lesion_reduce",
]

#: A lesion within this distance (mm) of a ventricle voxel touches it (continuity rule).
CONTINUITY_MM = 3.0
#: White matter within this distance (mm) of the cortex is juxtacortical (reference4).
JUXTACORTICAL_MM = 4.0
#: Periventricular distance of the ``pv_10mm`` and ``reference4`` schemes (mm).
PV_MM = 10.0


@dataclasses.dataclass
class SchemeRegions:
    """A scheme's regions on a subject.

    Attributes
    ----------
    names : list of str
        Region names, in table order (``other`` is appended by the caller).
    tissue : numpy.ndarray or None
        Region index (0..len(names)-1, -1 none) of every voxel of the box, for ``region_ml``;
        None when the scheme defines no tissue regions.
    lesion : numpy.ndarray
        Region index of every lesion voxel (in the order of ``np.nonzero(lesion)``),
        ``len(names)`` for ``other``.
    """

    names: list[str]
    tissue: np.ndarray | None
    lesion: np.ndarray


def _cerebral(anatomy: SubjectAnatomy) -> np.ndarray:
    return anatomy.tissue("ventricle", "other_csf", "cortex", "white_matter", "deep_grey")


def _white_and_deep_grey(anatomy: SubjectAnatomy) -> np.ndarray:
    return anatomy.tissue("white_matter", "deep_grey")


def _voxelwise(names, classes: np.ndarray, domain: np.ndarray, cerebral: np.ndarray, lesion: np.ndarray) -> SchemeRegions:
    tissue = np.where(domain, classes, -1).astype(np.int16, copy=False)
    lesion_classes = np.where(cerebral[lesion], classes[lesion], len(names)).astype(np.int16)
    return SchemeRegions(list(names), tissue, lesion_classes)


def _pv_10mm(anatomy, lesion, components):
    classes = (anatomy.distance_to_ventricle_mm >= PV_MM).astype(np.int16)
    return _voxelwise(["periventricular", "deep"], classes, _white_and_deep_grey(anatomy), _cerebral(anatomy), lesion)


def _pv_3_13mm(anatomy, lesion, components):
    classes = classes_by_edges(anatomy.distance_to_ventricle_mm, (3.0, 13.0))
    names = ["juxtaventricular", "periventricular", "deep"]
    return _voxelwise(names, classes, _white_and_deep_grey(anatomy), _cerebral(anatomy), lesion)


def _pv_nearest(anatomy, lesion, components):
    classes = (anatomy.distance_to_ventricle_mm >= anatomy.distance_to_cortex_mm).astype(np.int16)
    return _voxelwise(["periventricular", "deep"], classes, _white_and_deep_grey(anatomy), _cerebral(anatomy), lesion)


def continuity_classes(anatomy: SubjectAnatomy, components: np.ndarray, n_components: int) -> np.ndarray:
    """Continuity-rule class of each lesion 1..n: 0 periventricular, 1 deep (index 0 unused).

    A lesion is periventricular when its nearest voxel is within :data:`CONTINUITY_MM` of a
    ventricle voxel.
    """
    lesion = components > 0
    nearest = per_lesion_reduce(anatomy.distance_to_ventricle_mm[lesion], components[lesion], n_components, np.minimum)
    return np.r_[0, nearest > CONTINUITY_MM].astype(np.int16)


def per_lesion_reduce(values: np.ndarray, ids: np.ndarray, n_lesions: int, ufunc=np.minimum) -> np.ndarray:
    """Reduce ``values`` per lesion id 1..n with ``ufunc`` (np.minimum, np.maximum); inf/-inf for empty ids.

    >>> per_lesion_reduce(np.array([3.0, 1.0, 5.0]), np.array([1, 1, 2]), 2).tolist()
    [1.0, 5.0]
    """
    start = np.inf if ufunc is np.minimum else -np.inf
    out = np.full(n_lesions + 1, start)
    ufunc.at(out, ids, values)
    return out[1:]


def _pv_continuity(anatomy, lesion, components):
    labels, n_components = components
    per_lesion = continuity_classes(anatomy, labels, n_components)
    classes = per_lesion[labels[lesion]]
    cerebral = _cerebral(anatomy)[lesion]
    return SchemeRegions(["periventricular", "deep"], None, np.where(cerebral, classes, 2).astype(np.int16))


def _lobes(anatomy, lesion, components):
    lookup = np.full(256, -1, dtype=np.int16)
    cortex_first, wm_first = PARCEL_CODES["cortex_frontal_left"], PARCEL_CODES["white_matter_frontal_left"]
    lookup[cortex_first : cortex_first + 8] = np.arange(8)
    lookup[wm_first : wm_first + 8] = np.arange(8)
    lookup[PARCEL_CODES["deep_grey_left"]] = 8
    lookup[PARCEL_CODES["deep_grey_right"]] = 9
    names = [f"{lobe}_{side}" for side in ("left", "right") for lobe in LOBES] + ["deep_grey_left", "deep_grey_right"]
    tissue = lookup[anatomy.parcels]
    lesion_regions = tissue[lesion]
    return SchemeRegions(names, tissue, np.where(lesion_regions >= 0, lesion_regions, len(names)).astype(np.int16))


def _bullseye(anatomy, lesion, components):
    labels = bullseye_labels(anatomy.parcels, anatomy.depth).astype(np.int16) - 1
    names = bullseye_names()
    return SchemeRegions(names, labels, np.where(labels[lesion] >= 0, labels[lesion], len(names)).astype(np.int16))


def _reference4(anatomy, lesion, components):
    names = ["periventricular", "deep_white", "juxtacortical", "inner_grey"]
    deep_grey = anatomy.tissue("deep_grey")
    classes = np.full(anatomy.parcels.shape, 1, dtype=np.int16)
    classes[anatomy.distance_to_cortex_mm < JUXTACORTICAL_MM] = 2
    classes[anatomy.distance_to_ventricle_mm < PV_MM] = 0
    classes[deep_grey] = 3
    return _voxelwise(names, classes, _white_and_deep_grey(anatomy), _cerebral(anatomy), lesion)


#: Scheme name -> function(anatomy, lesion (bool, box), (components, n)) -> SchemeRegions.
SCHEMES = {
    "pv_10mm": _pv_10mm,
    "pv_3_13mm": _pv_3_13mm,
    "pv_continuity": _pv_continuity,
    "pv_nearest": _pv_nearest,
    "lobes": _lobes,
    "bullseye": _bullseye,
    "reference4": _reference4,
}
#: Every scheme, the default of ``quantify_subject``.
DEFAULT_SCHEMES = tuple(SCHEMES)


def apply_scheme(name: str, anatomy: SubjectAnatomy, lesion: np.ndarray, components: tuple[np.ndarray, int]) -> SchemeRegions:
    """Regions of scheme ``name`` for the lesion voxels ``lesion`` (bool, on the anatomy's box).

    Raises
    ------
    wmhkit.errors.OptionError
        When ``name`` is not one of :data:`SCHEMES`.
    """
    if name not in SCHEMES:
        raise OptionError(f"Region scheme {name!r} is unknown; choose among {', '.join(SCHEMES)}.")
    return SCHEMES[name](anatomy, lesion, components)
