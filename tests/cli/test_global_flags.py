"""Global flags (-q, -v, --debug) work before or after the subcommand, at any depth."""

from __future__ import annotations

import logging
import subprocess
import sys

import pandas as pd
import pytest

import wmhkit.cli.segment
import wmhkit.cli.synth
from wmhkit.cli import main
from wmhkit.errors import InputImageError


def _spy(monkeypatch, module, name):
    """Wrap a subcommand's run function: record the wmhkit log level it runs at, then run it."""
    seen = {}
    real = getattr(module, name)

    def spy(args):
        seen["level"] = logging.getLogger("wmhkit").level
        seen["args"] = args
        logging.getLogger("wmhkit.cli.probe").debug("debug probe")
        logging.getLogger("wmhkit.cli.probe").info("info probe")
        return real(args)

    monkeypatch.setattr(module, name, spy)  # register() reads it when main() builds the parser
    return seen


COHORT = ["synth", "cohort", "--n", "30", "--seed", "1", "--out"]


@pytest.mark.parametrize(
    ("before", "between", "after", "level"),
    [
        ([], [], [], logging.INFO),
        (["-q"], [], [], logging.WARNING),
        ([], [], ["-q"], logging.WARNING),
        ([], ["--quiet"], [], logging.WARNING),
        (["-vv"], [], [], logging.DEBUG),
        ([], [], ["-vv"], logging.DEBUG),
        (["-v"], [], ["-v"], logging.DEBUG),  # counts add up: a later -v does not reset an earlier one
        (["-v"], ["-v"], [], logging.DEBUG),
        (["-vv"], [], ["--debug"], logging.DEBUG),  # a later flag of another kind keeps -vv
    ],
    ids=["none", "q-before", "q-after", "q-between", "vv-before", "vv-after", "v-before-and-after",
         "v-before-and-between", "vv-before-debug-after"],
)
def test_flags_anywhere_set_the_log_level_and_the_command_runs(
    tmp_path, monkeypatch, capsys, before, between, after, level
):
    seen = _spy(monkeypatch, wmhkit.cli.synth, "run_cohort")
    argv = [*before, COHORT[0], *between, *COHORT[1:], str(tmp_path), *after]
    assert main(argv) == 0
    assert seen["level"] == level
    assert len(pd.read_csv(tmp_path / "cohort.tsv", sep="\t")) == 30
    err = capsys.readouterr().err
    assert ("debug probe" in err) == (level == logging.DEBUG)
    assert ("info probe" in err) == (level <= logging.INFO)
    assert not [k for k in vars(seen["args"]) if k.startswith(("verbose_", "quiet_", "debug_"))]


@pytest.mark.parametrize("argv_flags", [(["-q"], []), ([], ["-q"])], ids=["before", "after"])
def test_segment_quiet_before_or_after(tmp_path, monkeypatch, capsys, argv_flags):
    before, after = argv_flags
    seen = _spy(monkeypatch, wmhkit.cli.segment, "run")
    missing = tmp_path / "a.nii.gz"
    assert main([*before, "segment", str(missing), "--out", str(tmp_path / "d"), *after]) == 2
    assert seen["level"] == logging.WARNING
    assert seen["args"].quiet and not seen["args"].debug
    err = capsys.readouterr().err
    assert "does not exist" in err  # the command ran and refused the missing input in one sentence
    assert "info probe" not in err


@pytest.mark.parametrize("argv_flags", [(["--debug"], []), ([], ["--debug"])], ids=["before", "after"])
def test_debug_before_or_after_raises_instead_of_printing(tmp_path, argv_flags):
    before, after = argv_flags
    with pytest.raises(InputImageError, match="does not exist"):
        main([*before, "segment", str(tmp_path / "a.nii.gz"), "--out", str(tmp_path / "d"), *after])


def test_issue_command_line_is_accepted(tmp_path):
    """``wmhkit segment a.nii.gz --out d -q`` used to stop at 'unrecognized arguments'."""
    result = subprocess.run(
        [sys.executable, "-m", "wmhkit", "segment", "a.nii.gz", "--out", "d", "-q"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    assert "unrecognized arguments" not in result.stderr
    assert result.returncode == 2
    assert result.stderr.strip() == "wmhkit: error: Input image a.nii.gz does not exist; check the path."
