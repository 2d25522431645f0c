"""``wmhkit synth``: phantoms and cohort tables written through the command line."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from wmhkit.cli import main


@pytest.mark.slow
def test_synth_phantoms_writes_images_and_params(tmp_path, capsys):
    out = tmp_path / "phantoms"
    code = main(["synth", "phantoms", "--n", "2", "--seed", "3", "--out", str(out), "--voxel-size", "2",
                 "--burden", "1.5", "--slice-mm", "4", "--skull"])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert "phantom-0003_T1w.nii.gz" in names and "phantom-0004_params.json" in names
    assert len(names) == 2 * 7
    params = json.loads((out / "phantom-0004_params.json").read_text())
    assert params["seed"] == 4 and params["skull"] is True and params["flair_slice_mm"] == 4.0
    label = nib.load(out / "phantom-0003_space-FLAIR_desc-wmh_mask.nii.gz")
    assert label.get_data_dtype() == np.uint8
    np.testing.assert_allclose(label.header.get_zooms(), [0.9, 0.9, 4.0], rtol=1e-6)
    assert "phantom-0003_T1w.nii.gz: lesion" in capsys.readouterr().out


def test_synth_phantoms_refuses_bad_options(tmp_path, capsys):
    assert main(["synth", "phantoms", "--n", "1", "--out", str(tmp_path), "--burden", "-2"]) == 2
    assert "lesion_burden" in capsys.readouterr().err
    assert main(["synth", "phantoms", "--n", "0", "--out", str(tmp_path)]) == 2


def test_synth_cohort_writes_table_and_params(tmp_path):
    out = tmp_path / "cohort"
    assert main(["synth", "cohort", "--n", "50", "--seed", "1", "--out", str(out)]) == 0
    table = pd.read_csv(out / "cohort.tsv", sep="\t")
    assert len(table) == 50
    assert json.loads((out / "cohort_params.json").read_text())
