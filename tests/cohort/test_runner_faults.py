"""Faults a 10,000-scan run meets, for real (baseline segmentation of small phantoms): an image
that is not a brain T1, outputs that cannot be written (a file-size limit, a folder that cannot be
created or written), and a worker killed with ``kill -9`` mid-subject, locally and on Dask."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import nibabel as nib
import pandas as pd
import pytest

from wmhkit.cohort import run_cohort
from wmhkit.cohort.table import TABLE_NAME

pytestmark = pytest.mark.slow

GOOD = ("sub-01_T1w", "sub-02_ses-1_T1w")


def _read_table(out_dir) -> pd.DataFrame:
    return pd.read_csv(Path(out_dir) / TABLE_NAME, sep="\t", dtype=str, keep_default_na=False)


def _outputs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_flair_given_as_t1_fails_with_the_reason_and_force_segments_it(tmp_path):
    from wmhkit.synth import make_phantom

    anat = tmp_path / "bids" / "sub-01" / "anat"
    anat.mkdir(parents=True)
    (tmp_path / "bids" / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    nib.save(make_phantom(11, voxel_size_mm=2.0).flair, str(anat / "sub-01_T1w.nii.gz"))
    out = tmp_path / "deriv"
    result = run_cohort(tmp_path / "bids", out, method="baseline", progress=False, group_map=False)
    row = result.table.iloc[0]
    assert row["status"] == "failed" and "does not look like a brain T1" in row["error"]
    assert _outputs(out / "sub-01" / "anat") == ["sub-01_error.json"]
    report = (out / "wmhkit_report.html").read_text()
    assert "does not look like a brain T1" in report and 'class="failed"' in report
    forced = run_cohort(tmp_path / "bids", out, method="baseline", progress=False, group_map=False, force=True)
    row = forced.table.iloc[0]
    assert row["status"] == "ok" and row["content_check_forced"] and row["flag_forced"]
    assert "forced" in row["qc_flags"]
    summary = json.loads((out / "sub-01" / "anat" / "sub-01_wmh.json").read_text())
    assert summary["content_check"]["forced"] is True and summary["content_check"]["reasons"]


_SEGMENTATION_OUTPUTS = ("_desc-wmh_mask.nii.gz", "_desc-wmh_probseg.nii.gz", "_desc-brain_mask.nii.gz", "_wmh.json",
                        "_regions.tsv", "_lesions.tsv")
_QC_OUTPUTS = ("_desc-overlay_qc.png", "_space-MNI152NLin2009aSym_desc-wmh_mask.nii.gz")


@pytest.mark.parametrize("stage", ["segmentation", "qc"])
def test_a_file_size_limit_fails_the_subject_cleanly_and_the_rerun_completes_it(cohort_bids, reference_run, tmp_path,
                                                                                 stage):
    # sub-02's worker may not write a file as large as its largest segmentation output ("segmentation":
    # the segmentation cannot be saved), or as its largest QC file ("qc": the segmentation is saved,
    # its QC files are not, which once left a partial set of outputs behind).
    sizes = {suffix: (reference_run.out_dir / "sub-02/ses-1/anat" / f"sub-02_ses-1{suffix}").stat().st_size
             for suffix in _SEGMENTATION_OUTPUTS + _QC_OUTPUTS}
    largest_segmentation = max(sizes[suffix] for suffix in _SEGMENTATION_OUTPUTS)
    if stage == "segmentation":
        limit = largest_segmentation - 1
    else:
        limit = largest_segmentation + 2000  # the JSON's timings vary a little
        assert max(sizes[suffix] for suffix in _QC_OUTPUTS) > limit, sizes
    out = tmp_path / "deriv"
    result = run_cohort(cohort_bids, out, workers=2, threads_per_worker=1, method="baseline", progress=False,
                        processor="tests.cohort.busy_processor:segment_with_file_size_limit", fsize_limit=limit,
                        keep_limit=stage == "qc")
    status = dict(zip(result.table["stem"], result.table["status"]))
    assert status == {"sub-01_T1w": "ok", "sub-02_ses-1_T1w": "failed", "sub-03_T1w": "failed"}
    error = result.table.set_index("stem").loc["sub-02_ses-1_T1w", "error"]
    assert error.startswith("OutputError: Output /") and "(File too large)" in error
    assert _outputs(out / "sub-02" / "ses-1" / "anat") == ["sub-02_ses-1_error.json"]  # no partial file or set
    rerun = run_cohort(cohort_bids, out, workers=2, threads_per_worker=1, method="baseline", progress=False)
    assert dict(zip(rerun.runs["stem"], rerun.runs["status"]))["sub-02_ses-1_T1w"] == "ok"
    pd.testing.assert_frame_equal(_read_table(out), _read_table(reference_run.out_dir))
    assert not [p for p in out.rglob(".*") if ".tmp" in p.name]


def test_a_folder_that_cannot_be_created_is_a_recorded_failure(cohort_bids, reference_run, tmp_path):
    # Even the error file cannot be written there: the failure is still in the table.
    out = tmp_path / "deriv"
    (out / "sub-01").mkdir(parents=True)
    (out / "sub-01" / "anat").write_text("not a folder")
    result = run_cohort(cohort_bids, out, method="baseline", progress=False)
    row = result.table.set_index("stem").loc["sub-01_T1w"]
    assert row["status"] == "failed" and row["error"].startswith("OutputError: Output folder") and "sub-01" in row["error"]
    assert "sub-01_T1w" in pd.read_csv(result.errors_path, sep="\t")["stem"].tolist()
    (out / "sub-01" / "anat").unlink()
    run_cohort(cohort_bids, out, method="baseline", progress=False)
    pd.testing.assert_frame_equal(_read_table(out), _read_table(reference_run.out_dir))


def _writes_into_read_only_folders(tmp_path: Path) -> bool:
    """True for a user the permissions do not stop (root with CAP_DAC_OVERRIDE)."""
    folder = tmp_path / "read-only-probe"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "x").write_text("x")
    except PermissionError:
        return False
    finally:
        folder.chmod(0o755)
    return True


def test_a_read_only_folder_is_a_recorded_failure(cohort_bids, reference_copy, reference_run, tmp_path):
    if os.name != "posix" or _writes_into_read_only_folders(tmp_path):
        pytest.skip("this user writes into read-only folders (root); run without CAP_DAC_OVERRIDE to test")
    anat = reference_copy / "sub-02" / "ses-1" / "anat"
    for path in anat.iterdir():
        path.unlink()
    anat.chmod(0o555)
    try:
        result = run_cohort(cohort_bids, reference_copy, method="baseline", progress=False)
        row = result.table.set_index("stem").loc["sub-02_ses-1_T1w"]
        assert row["status"] == "failed" and "Permission denied" in row["error"]
        assert _outputs(anat) == []
    finally:
        anat.chmod(0o755)
    run_cohort(cohort_bids, reference_copy, method="baseline", progress=False)
    pd.testing.assert_frame_equal(_read_table(reference_copy), _read_table(reference_run.out_dir))


class _Killer(threading.Thread):
    """Kills (SIGKILL) the first process that announces itself busy with a good subject."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        self.folder, self.killed, self.stop = folder, None, threading.Event()

    def run(self):
        while not self.stop.is_set():
            for path in sorted(self.folder.iterdir()):
                pid, _, name = path.name.partition("-")
                if name.removesuffix(".nii.gz") in GOOD:
                    time.sleep(0.3)  # mid-segmentation
                    os.kill(int(pid), signal.SIGKILL)
                    self.killed = (int(pid), name.removesuffix(".nii.gz"))
                    return
            time.sleep(0.02)


def _announcements(folder: Path, stem: str) -> set[int]:
    return {int(p.name.partition("-")[0]) for p in folder.iterdir() if p.name.startswith(tuple("0123456789"))
            and p.name.partition("-")[2].removesuffix(".nii.gz") == stem}


def test_kill_9_of_a_busy_local_worker_still_completes_every_subject(cohort_bids, reference_run, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    killer = _Killer(busy)
    killer.start()
    try:
        result = run_cohort(cohort_bids, tmp_path / "deriv", workers=2, threads_per_worker=1, method="baseline",
                            progress=False, processor="tests.cohort.busy_processor:segment_and_announce",
                            busy_dir=str(busy))
    finally:
        killer.stop.set()
        killer.join()
    assert killer.killed is not None, "no worker was killed"
    pid, stem = killer.killed
    assert len(_announcements(busy, stem) - {pid}) == 1  # retried once, in a fresh process
    runs = dict(zip(result.runs["stem"], result.runs["status"]))
    assert runs == {"sub-01_T1w": "ok", "sub-02_ses-1_T1w": "ok", "sub-03_T1w": "failed"}
    pd.testing.assert_frame_equal(_read_table(tmp_path / "deriv"), _read_table(reference_run.out_dir))


def test_kill_9_of_a_busy_dask_worker_is_retried_and_the_table_is_complete(cohort_bids, reference_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    busy = tmp_path / "busy"
    busy.mkdir()
    killer = _Killer(busy)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        killer.start()
        try:
            result = run_cohort(cohort_bids, tmp_path / "deriv", scheduler=cluster.scheduler_address, method="baseline",
                                progress=False, processor="tests.cohort.busy_processor:segment_and_announce",
                                busy_dir=str(busy))
        finally:
            killer.stop.set()
            killer.join()
        with distributed.Client(cluster) as client:
            client.wait_for_workers(2, timeout=60)
            caps = client.run(lambda: __import__("wmhkit.cohort.worker", fromlist=["x"])._THREAD_CAP)
    assert killer.killed is not None, "no worker was killed"
    pid, stem = killer.killed
    assert _announcements(busy, stem) - {pid}, "the killed worker's subject was not retried"
    runs = result.runs.set_index("stem")
    assert runs["status"].to_dict() == {"sub-01_T1w": "ok", "sub-02_ses-1_T1w": "ok", "sub-03_T1w": "failed"}
    assert runs.loc[stem, "pid"] != pid
    # The worker the nanny started in place of the killed one was set up like the others.
    assert set(caps.values()) == {1}, caps
    pd.testing.assert_frame_equal(_read_table(tmp_path / "deriv"), _read_table(reference_run.out_dir))
