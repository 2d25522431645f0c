"""``wmhkit bids_dir output_dir {participant,group}``: the BIDS-Apps call beside ``wmhkit cohort run``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from wmhkit.cli import main
from wmhkit.cohort.lock import cohort_lock, subject_locks
from wmhkit.cohort.table import TABLE_NAME


def _read_table(out_dir) -> pd.DataFrame:
    return pd.read_csv(Path(out_dir) / TABLE_NAME, sep="\t", dtype=str, keep_default_na=False)


def test_help_reads_like_a_bids_app(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: wmhkit [-h] [--version] bids_dir output_dir {participant,group}")
    for text in ("--participant-label", "--session-label", "--method", "other commands", "cohort "):
        assert text in out, text


def test_label_matching_nothing_is_a_clean_error(cohort_bids, tmp_path, capsys):
    out = tmp_path / "deriv"
    assert main([str(cohort_bids), str(out), "participant", "--participant-label", "01", "sub-99",
                 "--method", "baseline"]) == 2
    err = capsys.readouterr().err
    assert "--participant-label sub-99 matches no T1" in err and "sub-01, sub-02, sub-03" in err
    assert "Traceback" not in err and not list(out.glob("sub-*"))
    assert main([str(cohort_bids), str(out), "group", "--session-label", "7"]) == 2
    assert "--session-label ses-7 matches no T1" in capsys.readouterr().err


def test_bids_dir_must_be_a_bids_dataset(cohort_bids, tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    assert main([str(tmp_path / "plain"), str(tmp_path / "d"), "participant"]) == 2
    assert "is not a BIDS dataset" in capsys.readouterr().err
    assert main([str(tmp_path / "missing"), str(tmp_path / "d"), "group"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(cohort_bids), str(cohort_bids), "group"]) == 2
    assert "is the BIDS dataset itself" in capsys.readouterr().err


@pytest.mark.slow
def test_participant_runs_then_group_give_the_cohort_table(cohort_bids, reference_run, tmp_path, capsys):
    out = tmp_path / "deriv"
    participant = [str(cohort_bids), str(out), "participant", "--method", "baseline", "--no-progress"]
    group = [str(cohort_bids), str(out), "group"]
    # A participant run on sub-01 holds the folder, as a concurrent task of a cluster array does ...
    with cohort_lock(out, shared=True), subject_locks(out, ["sub-01/anat"]):
        assert main(participant + ["--participant-label", "01"]) == 2  # the same subject: refused at once
        assert "sub-01/anat is in use by another wmhkit run" in capsys.readouterr().err
        assert main(group) == 2  # the group step waits for the participant runs
        assert "in use by another wmhkit run" in capsys.readouterr().err
        # ... while a run on another participant (labels with the prefix, other spelling) works beside it.
        assert main(participant + ["--participant_label", "sub-02", "--session-label", "ses-1"]) == 0
    assert main(participant + ["--participant-label", "01"]) == 0
    assert not (out / TABLE_NAME).exists()  # the participant level writes no group output
    assert main(group) == 0
    assert _read_table(out)["status"].tolist() == ["ok", "ok", "not run"]
    assert "2 ok, 0 failed, 1 not run" in capsys.readouterr().out
    assert main(participant + ["--participant-label", "03"]) == 1  # corrupt T1: recorded, exit code 1
    assert main(participant + ["--participant-label", "01", "02"]) == 0  # resumed: nothing to do
    assert main(group) == 1
    pd.testing.assert_frame_equal(_read_table(out), _read_table(reference_run.out_dir))
    assert (out / "wmhkit_report.html").is_file() and (out / "wmhkit_errors.tsv").is_file()
