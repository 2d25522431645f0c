"""Cohort runs for real (baseline segmentation of small phantoms): outputs, failure isolation,
resume (also after a real kill -9), local processes and a Dask LocalCluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from wmhkit import __version__
from wmhkit.cohort import run_cohort
from wmhkit.cohort.table import ERRORS_NAME, TABLE_NAME

pytestmark = pytest.mark.slow


def _read_table(out_dir) -> pd.DataFrame:
    return pd.read_csv(Path(out_dir) / TABLE_NAME, sep="\t", dtype=str, keep_default_na=False)


def _assert_no_partial_files(out_dir: Path) -> None:
    """Every visible output is a whole file: images load fully, JSON parses."""
    for path in out_dir.rglob("*"):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.name.endswith(".nii.gz"):
            nib.load(path).get_fdata()
        elif path.suffix == ".json":
            json.loads(path.read_text())


def test_reference_run_outputs_and_failure_isolation(reference_run, cohort_bids):
    out = reference_run.out_dir
    table = reference_run.table
    assert table["stem"].tolist() == ["sub-01_T1w", "sub-02_ses-1_T1w", "sub-03_T1w"]
    assert table["status"].tolist() == ["ok", "ok", "failed"]
    assert "InputImageError" in table.loc[2, "error"] and table.loc[2, "error"].count("\n") == 0
    assert not reference_run.ok and reference_run.n_failed == 1
    errors = pd.read_csv(reference_run.errors_path, sep="\t")
    assert errors["stem"].tolist() == ["sub-03_T1w"]
    # participants.tsv joined in; versions, volumes and regions in wide form present.
    assert table["age"].tolist() == [60, 63, 66] and table["site"].tolist() == ["site0", "site1", "site0"]
    for column in ("lesion_ml", "etiv_ml", "model_version", "wmhkit_version", "input_sha256", "qc_wm_gm_ratio"):
        assert table.loc[:1, column].notna().all(), column
    assert any(c.startswith("lesion_ml_") for c in table.columns)
    assert not any(word in c for c in table.columns for word in ("timings", "created", "rss"))
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0] == {"Name": "wmhkit", "Version": __version__, "Description": "WMH from 3D T1"}
    for subdir, prefix in (("sub-01/anat", "sub-01"), ("sub-02/ses-1/anat", "sub-02_ses-1")):
        names = {p.name for p in (out / subdir).iterdir()}
        assert {f"{prefix}_desc-wmh_mask.nii.gz", f"{prefix}_wmh.json", f"{prefix}_qc.json",
                f"{prefix}_desc-overlay_qc.png", f"{prefix}_space-MNI152NLin2009aSym_desc-wmh_mask.nii.gz",
                f"{prefix}_desc-wmh_mask.json", f"{prefix}_space-MNI152NLin2009aSym_desc-wmh_mask.json"} <= names
    assert (out / "sub-03/anat/sub-03_error.json").is_file()
    assert (out / "wmhkit_report.html").is_file()
    frequency = nib.load(out / "wmhkit_space-MNI152NLin2009aSym_desc-lesionfrequency_map.nii.gz").get_fdata()
    masks = [nib.load(out / path).get_fdata() > 0 for path in table.loc[:1, "mni_mask"]]
    assert frequency.shape == (197, 233, 189)
    assert abs(frequency.sum() - sum(m.sum() for m in masks) / 2) < 1e-3 * max(1, frequency.sum())
    assert set(np.unique(frequency)) <= {0.0, 0.5, 1.0}
    # The written table is the returned one.
    written = _read_table(out)
    assert written["status"].tolist() == table["status"].tolist()


def test_rerun_skips_complete_subjects_and_redoes_changed_ones(reference_copy, cohort_bids, reference_run):
    result = run_cohort(cohort_bids, reference_copy, method="baseline", progress=False)
    assert dict(zip(result.runs["stem"], result.runs["status"])) == {
        "sub-01_T1w": "skipped", "sub-02_ses-1_T1w": "skipped", "sub-03_T1w": "failed"}
    pd.testing.assert_frame_equal(_read_table(reference_copy), _read_table(reference_run.out_dir))
    # A different recorded input hash (as if the scan changed) makes that subject run again.
    summary_path = reference_copy / "sub-01/anat/sub-01_wmh.json"
    summary = json.loads(summary_path.read_text())
    summary["input"]["sha256"] = "0" * 64
    summary_path.write_text(json.dumps(summary))
    again = run_cohort(cohort_bids, reference_copy, method="baseline", progress=False, report=False, group_map=False)
    assert again.runs.set_index("stem").loc["sub-01_T1w", "status"] == "ok"
    assert again.runs.set_index("stem").loc["sub-02_ses-1_T1w", "status"] == "skipped"
    pd.testing.assert_frame_equal(_read_table(reference_copy), _read_table(reference_run.out_dir))


def test_kill_minus_9_then_resume_gives_the_same_table(cohort_bids, reference_run, tmp_path):
    out = tmp_path / "deriv"
    command = [sys.executable, "-m", "wmhkit", "cohort", "run", str(cohort_bids), "--out", str(out),
               "--method", "baseline", "--workers", "2", "--no-progress"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not list(out.rglob("*_qc.json")):
            assert process.poll() is None, "the run ended before any subject completed"
            assert time.monotonic() < deadline, "no subject completed in time"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the CLI and its worker processes
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (out / TABLE_NAME).exists()
    _assert_no_partial_files(out)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 1, rerun.stderr  # sub-03 is corrupt
    assert "1 failed" in rerun.stdout
    pd.testing.assert_frame_equal(_read_table(out), _read_table(reference_run.out_dir))
    assert not [p for p in out.rglob(".*") if ".tmp" in p.name]
    assert (out / ERRORS_NAME).is_file()


def test_dask_local_cluster_runs_the_same_code(reference_copy, cohort_bids, reference_run):
    distributed = pytest.importorskip("distributed")
    for path in (reference_copy / "sub-02/ses-1/anat").iterdir():
        path.unlink()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = run_cohort(cohort_bids, reference_copy, scheduler=cluster.scheduler_address, method="baseline",
                            progress=False)
        with distributed.Client(cluster) as client:
            worker_pids = set(client.run(os.getpid).values())
    runs = result.runs.set_index("stem")
    assert runs.loc["sub-02_ses-1_T1w", "status"] == "ok"
    assert runs.loc["sub-01_T1w", "status"] == "skipped"
    assert set(runs["pid"]) <= worker_pids and os.getpid() not in set(runs["pid"])
    pd.testing.assert_frame_equal(_read_table(reference_copy), _read_table(reference_run.out_dir))


def test_unknown_method_and_workers_refused(cohort_bids, tmp_path):
    from wmhkit.errors import OptionError

    with pytest.raises(OptionError, match="--method"):
        run_cohort(cohort_bids, tmp_path, method="magic")
    with pytest.raises(OptionError, match="--workers"):
        run_cohort(cohort_bids, tmp_path, workers=0)
    with pytest.raises(OptionError, match="--threads"):
        run_cohort(cohort_bids, tmp_path, threads_per_worker=0)


def test_a_worker_killed_by_one_scan_fails_only_that_scan(cohort_bids, tmp_path):
    # sub-01 and sub-02 are in flight together when sub-02 kills its worker: sub-01 is retried
    # alone and succeeds; only sub-02 (and the corrupt sub-03) are recorded as failed.
    result = run_cohort(cohort_bids, tmp_path / "deriv", workers=2, threads_per_worker=1, method="baseline",
                        progress=False, report=False, group_map=False, processor="tests.cohort.crashing_processor:segment_or_crash")
    status = dict(zip(result.table["stem"], result.table["status"]))
    assert status == {"sub-01_T1w": "ok", "sub-02_ses-1_T1w": "failed", "sub-03_T1w": "failed"}
    errors = dict(zip(result.table["stem"], result.table["error"]))
    assert errors["sub-02_ses-1_T1w"].startswith("worker died") and "InputImageError" in errors["sub-03_T1w"]
    assert len(result.runs) == 3 and not result.ok
