"""``wmhkit cohort`` on the command line: usage errors and the report action."""

from __future__ import annotations

import pytest

from wmhkit.cli import main


def test_missing_input_is_a_usage_error(tmp_path, capsys):
    assert main(["cohort", "run", str(tmp_path / "nothing"), "--out", str(tmp_path / "d"), "--method", "baseline"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_out_is_required(tmp_path):
    with pytest.raises(SystemExit):
        main(["cohort", "run", str(tmp_path)])


def test_help_lists_actions(capsys):
    with pytest.raises(SystemExit):
        main(["cohort", "--help"])
    out = capsys.readouterr().out
    assert "run" in out and "report" in out


@pytest.mark.slow
def test_report_action_rebuilds_outputs(reference_copy, cohort_bids, capsys):
    for name in ("wmhkit_cohort.tsv", "wmhkit_report.html", "wmhkit_lesion_frequency.png"):
        (reference_copy / name).unlink()
    assert main(["cohort", "report", str(cohort_bids), "--out", str(reference_copy)]) == 1  # sub-03 failed
    assert "2 ok, 1 failed" in capsys.readouterr().out
    for name in ("wmhkit_cohort.tsv", "wmhkit_report.html", "wmhkit_lesion_frequency.png"):
        assert (reference_copy / name).is_file()


def test_missing_model_is_one_usage_error(tmp_path, capsys):
    code = main(["cohort", "run", str(tmp_path), "--out", str(tmp_path / "d"), "--model", str(tmp_path / "no.pt")])
    assert code == 2
    assert "no.pt does not exist" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
