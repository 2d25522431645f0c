"""One cohort run per output folder: a second run refuses at once, a killed run frees the folder,
and two real runs started together never mix their tables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from wmhkit.cli import main
from wmhkit.cohort.lock import LOCK_NAME, cohort_lock, lock_holder, subject_locks
from wmhkit.cohort.table import TABLE_NAME
from wmhkit.errors import OutputError

REPO_ROOT = Path(__file__).resolve().parents[2]
_HOLD = "import sys, time\nfrom wmhkit.cohort.lock import cohort_lock\nwith cohort_lock(sys.argv[1]):\n" \
        "    print('locked', flush=True)\n    time.sleep(300)\n"


def _holder(out: Path) -> subprocess.Popen:
    """A real process that takes the folder's lock and keeps it (until killed)."""
    process = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdout=subprocess.PIPE, text=True,
                               cwd=REPO_ROOT)
    assert process.stdout.readline().strip() == "locked"
    return process


def test_lock_in_one_process(tmp_path):
    with cohort_lock(tmp_path / "deriv") as path:
        assert path.name == LOCK_NAME and f"pid {os.getpid()}" in lock_holder(tmp_path / "deriv")
    assert lock_holder(tmp_path / "deriv") == ""
    with cohort_lock(tmp_path / "deriv"):  # free again after a normal end
        pass


def test_second_run_refuses_at_once_and_a_killed_holder_frees_the_folder(tmp_path, capsys):
    out = tmp_path / "deriv"
    holder = _holder(out)
    try:
        started = time.perf_counter()
        code = main(["cohort", "run", str(tmp_path / "not-read"), "--out", str(out), "--method", "baseline",
                     "--no-progress"])
        elapsed = time.perf_counter() - started
        err = capsys.readouterr().err
        assert code == 2 and elapsed < 10, (code, elapsed)
        assert f"is in use by another wmhkit run (pid {holder.pid} on" in err and "Traceback" not in err
        assert "choose another --out" in err and not (out / TABLE_NAME).exists()
        assert main(["cohort", "report", str(tmp_path), "--out", str(out)]) == 2
        assert "in use by another wmhkit run" in capsys.readouterr().err
        with pytest.raises(OutputError, match="in use"):
            with cohort_lock(out):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)  # a crashed run: no clean-up of its own
        holder.wait()
    assert holder.returncode == -signal.SIGKILL
    with cohort_lock(out):  # the kernel released the lock with the process
        pass


@pytest.mark.slow
def test_two_real_runs_on_one_folder(cohort_bids, reference_run, tmp_path):
    out = tmp_path / "deriv"
    command = [sys.executable, "-m", "wmhkit", "cohort", "run", str(cohort_bids), "--out", str(out),
               "--method", "baseline", "--no-progress"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 120
        while "pid" not in lock_holder(out):
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took the folder"
            time.sleep(0.05)
        second = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
        assert first.poll() is None, "the first run ended before the second was refused: no overlap tested"
        assert second.returncode == 2 and f"in use by another wmhkit run (pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 1, stderr  # sub-03 is corrupt
    written = pd.read_csv(out / TABLE_NAME, sep="\t", dtype=str, keep_default_na=False)
    expected = pd.read_csv(reference_run.out_dir / TABLE_NAME, sep="\t", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(written, expected)


def test_participant_runs_share_the_folder_and_lock_their_subjects(tmp_path):
    out = tmp_path / "deriv"
    with cohort_lock(out, shared=True), subject_locks(out, ["sub-01/anat"]):
        with cohort_lock(out, shared=True), subject_locks(out, ["sub-02/anat", "sub-02/ses-1/anat"]):
            pass  # another participant run on other subjects
        with pytest.raises(OutputError, match="sub-01/anat is in use"):
            with subject_locks(out, ["sub-03/anat", "sub-01/anat"]):
                pass
        with subject_locks(out, ["sub-03/anat"]):  # released, all or none, after the refusal
            pass
        with pytest.raises(OutputError, match="in use by another wmhkit run"):  # a cohort run or the group step
            with cohort_lock(out):
                pass
    with cohort_lock(out):
        with pytest.raises(OutputError, match="in use by another wmhkit run"):  # no participant run beside it
            with cohort_lock(out, shared=True):
                pass
