"""``wmhkit regions`` on a mask and T1 files."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from wmhkit.cli import main
from wmhkit.cli.regions import _SCHEMES
from wmhkit.io import mask_volume_ml, save_img
from wmhkit.preprocess import load_template
from wmhkit.regions import DEFAULT_SCHEMES


def test_cli_schemes_match_the_library():
    assert _SCHEMES == DEFAULT_SCHEMES


@pytest.mark.slow
def test_regions_command_writes_tables(tmp_path, subject, capsys):
    # The T1 is the MNI template itself, seen through the subject grid (align_to_mni runs for real).
    template = load_template("t1")
    t1 = subject.alignment.resample_to_subject(template, subject.grid, order=1)
    centre = subject.pick([22], (12.0, 30.0), near=(-25, -40, 30))
    mask = subject.mask((centre, 5.0))
    t1_path = save_img(t1, tmp_path / "sub-01_T1w.nii.gz")
    mask_path = save_img(mask, tmp_path / "sub-01_desc-wmh_mask.nii.gz")
    labels = tmp_path / "labels.tsv"
    labels.write_text("index\tname\n1\tall\n")
    atlas = save_img(nib.Nifti1Image(np.ones(subject.grid.shape, np.uint8), subject.grid.affine), tmp_path / "atlas.nii.gz")
    code = main(["regions", "--mask", str(mask_path), "--t1", str(t1_path), "--out", str(tmp_path / "out"),
                 "--scheme", "bullseye", "--scheme", "pv_10mm", "--atlas", str(atlas), "--atlas-labels", str(labels), "--mni"])
    assert code == 0
    assert "sub-01_desc-wmh_mask" in capsys.readouterr().out
    regions = pd.read_csv(tmp_path / "out" / "sub-01_desc-wmh_mask_regions.tsv", sep="\t")
    assert set(regions["scheme"]) == {"bullseye", "pv_10mm", "atlas"}
    sums = regions.groupby("scheme")["lesion_ml"].sum()
    np.testing.assert_allclose(sums, mask_volume_ml(mask), rtol=1e-6)
    lesions = pd.read_csv(tmp_path / "out" / "sub-01_desc-wmh_mask_lesions.tsv", sep="\t")
    assert len(lesions) == 1 and lesions["lobe"].iloc[0] == "parietal_left"
    assert (tmp_path / "out" / "sub-01_desc-wmh_mask_space-MNI152NLin2009aSym_desc-wmh_mask.nii.gz").is_file()


def test_regions_command_reports_a_bad_label_table(tmp_path, subject, capsys):
    t1 = save_img(nib.Nifti1Image(np.random.default_rng(0).random(subject.grid.shape).astype(np.float32), subject.grid.affine),
                  tmp_path / "t1.nii.gz")
    bad = tmp_path / "bad.tsv"
    bad.write_text("code\ttitle\n1\tx\n")
    code = main(["regions", "--mask", str(t1), "--t1", str(t1), "--out", str(tmp_path / "o"),
                 "--atlas", str(t1), "--atlas-labels", str(bad)])
    assert code == 2
    assert "bad.tsv" in capsys.readouterr().err
