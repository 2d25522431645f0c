"""``wmhkit demo`` writes phantoms, segmentations scored against the truth, a figure and a cohort."""

from __future__ import annotations

import pandas as pd
import pytest

from wmhkit.cli import main


@pytest.mark.slow
def test_demo_writes_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--out", str(out), "--n", "1", "--voxel-size", "2", "--method", "baseline"]) == 0
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert list(summary["subject"]) == ["sub-demo01_T1w"]
    assert summary.loc[0, "true_lesion_ml"] > 0
    assert 0.0 <= summary.loc[0, "dice"] <= 1.0
    assert 1000 < summary.loc[0, "etiv_ml"] < 2200
    assert (out / "derivatives" / "sub-demo01_desc-wmh_mask.nii.gz").exists()
    assert (out / "derivatives" / "sub-demo01_wmh.json").exists()
    assert (out / "figures" / "sub-demo01_T1w_overlay.png").stat().st_size > 10_000
    assert len(pd.read_csv(out / "cohort.tsv", sep="\t")) == 2000
    assert "sub-demo01_T1w" in capsys.readouterr().out


def test_demo_refuses_zero_phantoms(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--n", "0"]) == 2
    assert "--n 0" in capsys.readouterr().err
