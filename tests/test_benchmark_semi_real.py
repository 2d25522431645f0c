"""Helpers of benchmarks/semi_real.py: the measured darkening and the summary table."""

from __future__ import annotations

from argparse import Namespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

BENCHMARK = "semi_real"


@pytest.fixture(scope="module")
def semi_real(benchmark_script):
    return benchmark_script


def test_darkening_percent_is_the_median_inside_the_mask(semi_real, tmp_path):
    before = np.full((6, 7, 5), 200.0, np.float32)
    after = before.copy()
    inside = np.zeros(before.shape, bool)
    inside[1:4, 2:5, 1:3] = True
    after[inside] = 180.0                      # 10 % darker
    after[1, 2, 1] = 100.0                     # one dark core does not move the median
    after[~inside] = 150.0                     # outside the mask is not looked at
    head, lesioned = tmp_path / "head.nii.gz", tmp_path / "lesioned.nii.gz"
    nib.save(nib.Nifti1Image(before, np.eye(4)), head)
    nib.save(nib.Nifti1Image(after, np.eye(4)), lesioned)
    reference = nib.Nifti1Image(inside.astype(np.uint8), np.eye(4))
    assert semi_real.darkening_percent(head, lesioned, reference) == pytest.approx(10.0)
    empty = nib.Nifti1Image(np.zeros(before.shape, np.uint8), np.eye(4))
    assert np.isnan(semi_real.darkening_percent(head, lesioned, empty))


def test_table_groups_by_contrast_with_the_median_darkening(semi_real, tmp_path, monkeypatch):
    monkeypatch.setattr(semi_real, "RESULTS", tmp_path)
    rows = pd.DataFrame({
        "head": ["h"] * 4, "mask": ["a", "b", "a", "b"], "contrast": [0.2, 0.2, 0.7, 0.7],
        "darkening_percent": [4.0, 6.0, 15.0, 17.0], "method": ["model"] * 4, "threshold": [0.35] * 4,
        "reference_ml": [2.0, 40.0, 2.0, 40.0], "prediction_ml": [1.0, 10.0, 2.0, 30.0],
        "dice": [0.1, 0.3, 0.5, 0.7], "lesion_recall": [0.2] * 4, "lesion_f1": [0.2] * 4, "avd_percent": [50.0] * 4})
    out = semi_real.write_table(rows, pd.DataFrame(), Namespace(model="default", out_suffix="_t"))
    text = out.read_text()
    by_contrast = text.split("## By method and contrast")[1].split("##")[0]
    assert "| model | 0.35 | 0.2 | 5 | 0.2 |" in by_contrast     # median darkening 5 %, mean Dice 0.2
    assert "| model | 0.35 | 0.7 | 16 | 0.6 |" in by_contrast
    assert "> 30 mL" in text and "< 5 mL" in text


def test_operating_curve_picks_the_best_dice_within_the_head_limit(semi_real):
    cases = pd.DataFrame({
        "method": ["model"] * 6 + ["baseline"] * 2, "threshold": [0.3, 0.3, 0.5, 0.5, 0.7, 0.7, 0.5, 0.5],
        "dice": [0.4, 0.4, 0.3, 0.3, 0.2, 0.2, 0.1, 0.1], "lesion_recall": [0.5] * 8, "lesion_f1": [0.3] * 8,
        "avd_percent": [20.0] * 8})
    healthy = pd.DataFrame({
        "method": ["model"] * 6 + ["baseline"] * 2, "threshold": [0.3, 0.5, 0.7] * 2 + [None, None],
        "held_out": [True] * 3 + [False] * 3 + [True, False],
        "lesion_ml": [3.0, 0.9, 0.2, 0.1, 0.1, 0.1, 0.5, 2.0]})
    lines = semi_real.operating_curve(cases, healthy)
    # 0.3 has the best Dice but 3 mL in the held-out head; 0.5 is the best within 1 mL
    assert "* model: best Dice with the held-out head <= 1 mL: 0.300 at threshold 0.5 (lesion recall 0.500)" in lines
    # the baseline's heads, run at its own threshold only, are matched to it
    assert any(line.startswith("* baseline: best Dice") and "threshold 0.5" in line for line in lines)
    table = "\n".join(lines)
    assert "| model | 0.7 | 0.2 | 0.5 | 0.3 | 20 | 0.2 | 0.1 |" in table
