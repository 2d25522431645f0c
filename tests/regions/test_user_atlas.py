"""Any user atlas, in the subject's space or in MNI space, with its label table."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import OptionError, TableError
from wmhkit.io import mask_volume_ml
from wmhkit.regions import quantify_subject, read_label_table
from wmhkit.regions.user_atlas import atlas_on_grid


def _write_labels(path, rows, columns=("index", "name")):
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, sep="\t", index=False)
    return path


def test_subject_space_atlas(subject, tmp_path):
    # label 1: the left half of the grid (voxel i < 43 in an LAS grid is the right side), 2: the rest
    shape = subject.grid.shape
    labels = np.zeros(shape, np.int16)
    labels[:43] = 1
    labels[43:, :50] = 2
    atlas = nib.Nifti1Image(labels, subject.grid.affine)
    table = _write_labels(tmp_path / "atlas.tsv", [(1, "first"), (2, "second"), (3, "absent")])
    mask_data = np.zeros(shape, np.uint8)
    mask_data[40:46, 30:34, 40:42] = 1  # 3 x 4 x 2 voxels on each side of i = 43, in y < 50
    mask_data[60, 80, 40] = 1  # on label 0
    mask = nib.Nifti1Image(mask_data, subject.grid.affine)
    result = quantify_subject(mask, alignment=subject.alignment, schemes=("lobes",), atlas=atlas, atlas_labels=table)
    rows = result.regions[result.regions["scheme"] == "atlas"].set_index("region")
    voxel_ml = 0.008
    assert rows.loc["first", "lesion_ml"] == pytest.approx(24 * voxel_ml)
    assert rows.loc["second", "lesion_ml"] == pytest.approx(24 * voxel_ml)
    assert rows.loc["other", "lesion_ml"] == pytest.approx(voxel_ml)
    assert rows.loc["absent", "lesion_ml"] == 0 and np.isnan(rows.loc["absent", "fraction"])
    assert rows.loc["first", "region_ml"] == pytest.approx(43 * 104 * 78 * voxel_ml)
    assert rows.loc["second", "fraction"] == pytest.approx(24 / (43 * 50 * 78))
    assert rows["lesion_ml"].sum() == pytest.approx(mask_volume_ml(mask))


def test_mni_space_atlas_follows_the_alignment(subject):
    # MNI atlas: 1 where MNI x < 0 (left), 2 where x >= 0, on a 2 mm MNI grid.
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90.0, -126.0, -72.0]
    x_mm = np.arange(91) * 2.0 - 90.0
    labels = np.broadcast_to(np.where(x_mm < 0, 1, 2)[:, None, None], (91, 109, 91)).astype(np.uint8)
    atlas = nib.Nifti1Image(labels, affine)
    left = subject.pick([23], (15.0, 30.0), near=(-30, -20, 20))
    mask = subject.mask((left, 4.0))
    grid_labels = atlas_on_grid(atlas, mask, alignment=subject.alignment)
    assert set(np.unique(grid_labels[mask.get_fdata() > 0])) == {1}
    result = quantify_subject(mask, alignment=subject.alignment, schemes=("pv_10mm",), atlas=atlas,
                              atlas_labels={1: "left", 2: "right"})
    rows = result.regions[result.regions["scheme"] == "atlas"].set_index("region")["lesion_ml"]
    assert rows["left"] == pytest.approx(mask_volume_ml(mask)) and rows["right"] == 0


def test_label_table_errors(tmp_path):
    bad = _write_labels(tmp_path / "bad.tsv", [(1, "a")], columns=("code", "title"))
    with pytest.raises(TableError, match="bad.tsv"):
        read_label_table(bad)
    with pytest.raises(TableError, match="does not exist"):
        read_label_table(tmp_path / "missing.tsv")
    csv = tmp_path / "labels.csv"
    csv.write_text("Label,Name\n5,five\n7,seven\n")
    assert read_label_table(csv) == {5: "five", 7: "seven"}


def test_mni_atlas_needs_an_alignment(subject):
    atlas = nib.Nifti1Image(np.ones((10, 12, 14), np.uint8), np.eye(4))
    with pytest.raises(OptionError, match="MNI space"):
        atlas_on_grid(atlas, subject.grid)
    with pytest.raises(OptionError, match="not on the lesion mask's grid"):
        atlas_on_grid(atlas, subject.grid, space="subject")
