"""Lesion burden in the regions of any label atlas (like a labels masker).

The atlas may be on the lesion mask's grid (subject space) or in MNI152 space; an MNI atlas is
brought to the subject with the alignment's ``resample_to_subject`` (nearest neighbour). Its
label table is a TSV or CSV with an integer label column (``index``, ``label``, ``value`` or
``id``) and a name column (``name``, ``label_name`` or ``region``). Labels present in the atlas
but missing from the table are named ``label_<n>``; lesion voxels on label 0 (or outside the
atlas) are reported as ``other``, so the rows add up to the total lesion volume.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from wmhkit.errors import OptionError, TableError
from wmhkit.io import ImgLike, check_img, img_label

__all__ = ["read_label_table", "atlas_on_grid", "atlas_regions"]

_INDEX_COLUMNS = ("index", "label", "value", "id", "label_index")
_NAME_COLUMNS = ("name", "label_name", "region", "region_name")


def read_label_table(labels: str | os.PathLike | pd.DataFrame | dict) -> dict[int, str]:
    """Read an atlas label table into ``{label: name}``.

    Parameters
    ----------
    labels : path, DataFrame or dict
        TSV/CSV file (tab or comma separated), a DataFrame with the same columns, or a dict.

    Raises
    ------
    wmhkit.errors.TableError
        When the table lacks an integer label column or a name column.

    Examples
    --------
    >>> import pandas as pd
    >>> read_label_table(pd.DataFrame({"index": [1, 2], "name": ["a", "b"]}))
    {1: 'a', 2: 'b'}
    """
    if isinstance(labels, dict):
        return {int(k): str(v) for k, v in labels.items()}
    if isinstance(labels, pd.DataFrame):
        table, where = labels, "the label table"
    else:
        path = Path(labels)
        if not path.is_file():
            raise TableError(f"Atlas label table {path} does not exist; pass a TSV with columns index and name.")
        table = pd.read_csv(path, sep=None, engine="python")
        where = str(path)
    columns = {str(c).strip().lower(): c for c in table.columns}
    index_col = next((columns[c] for c in _INDEX_COLUMNS if c in columns), None)
    name_col = next((columns[c] for c in _NAME_COLUMNS if c in columns), None)
    if index_col is None or name_col is None:
        raise TableError(
            f"Atlas label table {where} needs an integer label column ({'/'.join(_INDEX_COLUMNS)}) and a "
            f"name column ({'/'.join(_NAME_COLUMNS)}); it has {', '.join(map(str, table.columns))}."
        )
    values = pd.to_numeric(table[index_col], errors="coerce")
    if values.isna().any() or (values != values.round()).any():
        raise TableError(f"Column {index_col!r} of atlas label table {where} must hold integer labels.")
    return dict(zip(values.astype(int).tolist(), table[name_col].astype(str).tolist()))


def atlas_on_grid(atlas: ImgLike, reference: nib.Nifti1Image, *, alignment=None, space: str = "auto") -> np.ndarray:
    """Integer atlas labels on ``reference``'s grid.

    Parameters
    ----------
    atlas : path or nibabel image
        3D integer label image.
    reference : nibabel.Nifti1Image
        The lesion mask whose grid the labels take.
    alignment : MNIAlignment or any object with ``resample_to_subject``, optional
        Needed for an MNI-space atlas.
    space : {"auto", "subject", "mni"}, default "auto"
        "auto": subject space when the atlas shares the reference's shape and affine, else MNI.

    Raises
    ------
    wmhkit.errors.OptionError
        For an unknown ``space``, a subject-space atlas on another grid, or an MNI atlas
        without an alignment.
    """
    checked = check_img(atlas, check_voxels=False, min_extent_mm=0)
    same_grid = checked.shape == reference.shape[:3] and np.allclose(checked.affine, reference.affine, atol=1e-3)
    if space not in ("auto", "subject", "mni"):
        raise OptionError(f"Atlas space {space!r} is unknown; use 'auto', 'subject' or 'mni'.")
    if space == "subject" and not same_grid:
        raise OptionError(f"Atlas {img_label(atlas)} is not on the lesion mask's grid; pass space='mni' or resample it.")
    if space == "subject" or (space == "auto" and same_grid):
        data = np.asarray(checked.dataobj)
    else:
        if alignment is None:
            raise OptionError(f"Atlas {img_label(atlas)} is in MNI space; pass the T1 or an alignment to bring it to the subject.")
        data = np.asarray(alignment.resample_to_subject(checked, reference=reference, order=0).dataobj)
    if data.dtype.kind == "f":
        data = np.rint(data)
    return data.astype(np.int64, copy=False)


def atlas_regions(labels: np.ndarray, lesion: np.ndarray, names: dict[int, str] | None, voxel_ml: float) -> pd.DataFrame:
    """Per-label lesion_ml, region_ml and fraction (plus an ``other`` row for lesions off the atlas).

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels on the mask grid (0 background).
    lesion : numpy.ndarray of bool
        Lesion voxels on the same grid.
    names : dict or None
        ``{label: name}``; None names every label ``label_<n>``.
    voxel_ml : float
        Volume of one voxel (mL).

    Returns
    -------
    pandas.DataFrame
        Columns ``region``, ``label``, ``lesion_ml``, ``region_ml``, ``fraction``.

    Examples
    --------
    >>> labels = np.array([0, 1, 1, 2, 2, 2])
    >>> lesion = np.array([1, 1, 0, 1, 1, 0], dtype=bool)
    >>> atlas_regions(labels, lesion, {1: "a", 2: "b"}, 1.0)[["region", "lesion_ml", "fraction"]].values.tolist()
    [['a', 1.0, 0.5], ['b', 2.0, 0.6666666666666666], ['other', 1.0, nan]]
    """
    names = dict(names or {})
    present = np.unique(labels)
    for value in present[present > 0]:
        names.setdefault(int(value), f"label_{int(value)}")
    ordered = sorted(k for k in names if k > 0)
    region_voxels = {int(v): int(c) for v, c in zip(*np.unique(labels, return_counts=True))}
    lesion_labels = labels[lesion]
    lesion_voxels = {int(v): int(c) for v, c in zip(*np.unique(lesion_labels, return_counts=True))}
    rows = []
    for value in ordered:
        region_ml = region_voxels.get(value, 0) * voxel_ml
        lesion_ml = lesion_voxels.get(value, 0) * voxel_ml
        rows.append((names[value], value, lesion_ml, region_ml, lesion_ml / region_ml if region_ml else np.nan))
    off_atlas = int(lesion_labels.size - sum(lesion_voxels.get(v, 0) for v in ordered))
    rows.append(("other", 0, off_atlas * voxel_ml, np.nan, np.nan))
    return pd.DataFrame(rows, columns=["region", "label", "lesion_ml", "region_ml", "fraction"])
