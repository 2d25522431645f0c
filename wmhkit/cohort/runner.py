"""Run a cohort: discover inputs, spread subjects over local processes or a Dask cluster,
then rebuild the combined table, the QC report and the group map from the files on disk.

The BIDS-Apps split runs the same code in two levels: :func:`run_cohort` with ``group=False``
segments some participants (several such runs may share one output folder, each on its own
subjects) and :func:`run_group` builds the group outputs from what they left.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import pandas as pd

from wmhkit.cohort.derivatives import source_uri, write_dataset_description
from wmhkit.cohort.discover import discover_inputs, is_bids_dataset, select_inputs
from wmhkit.cohort.lock import cohort_lock, subject_locks
from wmhkit.cohort.worker import (DEFAULT_PROCESSOR, discard_outputs, error_text, init_worker, process_subject,
                                  resolve_processor, write_error)
from wmhkit.errors import OptionError

__all__ = ["CohortResult", "run_cohort", "run_group", "write_dataset_description", "METHODS"]

logger = logging.getLogger(__name__)

METHODS = ("model", "baseline")


@dataclass
class CohortResult:
    """What a cohort run produced.

    Attributes
    ----------
    out_dir : pathlib.Path
        The BIDS-derivatives folder.
    table : pandas.DataFrame
        The combined table (one row per input; also written to ``table_path``).
    table_path, errors_path, report_path : pathlib.Path or None
        ``wmhkit_cohort.tsv``, ``wmhkit_errors.tsv`` (only when a subject failed) and
        ``wmhkit_report.html``; all None for a participant-level run, which writes no group output.
    runs : pandas.DataFrame
        This run's per-subject records: stem, status (ok/skipped/failed), error, seconds,
        peak_rss_mb, pid.
    seconds : float
        Wall time of the whole run.
    """

    out_dir: Path
    table: pd.DataFrame
    table_path: Path | None
    errors_path: Path | None
    report_path: Path | None
    runs: pd.DataFrame = field(repr=False)
    seconds: float = 0.0

    @property
    def n_failed(self) -> int:
        """Subjects whose status in the combined table is ``failed``."""
        return int((self.table["status"] == "failed").sum()) if len(self.table) else 0

    @property
    def ok(self) -> bool:
        """True when no subject failed."""
        return self.n_failed == 0


def _tasks(inputs: pd.DataFrame, out_dir: Path, method, model, resume, processor, options,
           bids_root: Path | None = None) -> list[dict]:
    return [
        {
            "input_path": row.input_path,
            "out_dir": str(out_dir / row.out_subdir),
            "out_subdir": Path(row.out_subdir).as_posix(),
            "source_uri": source_uri(row.input_path, bids_root),
            "stem": row.stem,
            "method": method,
            "model": model,
            "resume": resume,
            "processor": processor,
            "options": options,
        }
        for row in inputs.itertuples()
    ]


def _run_serial(tasks: list[dict], method: str, model: str, threads: int | None = None) -> Iterator[dict]:
    init_worker(method, model, threads=threads)
    for task in tasks:
        yield process_subject(task)


def _run_processes(tasks: list[dict], workers: int, method: str, model: str, threads: int | None = None) -> Iterator[dict]:
    """Run tasks on ``workers`` local processes, never more in flight than there are workers.

    A worker that dies hard (segfault, out-of-memory kill) breaks the whole pool, and every task
    in flight fails with it. Because at most ``workers`` tasks are in flight, those are the only
    suspects: each is retried alone in a fresh process, so only the scan that kills its worker
    again is recorded as failed, and the rest of the cohort continues on a new pool.
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    # forkserver/spawn start clean interpreters (no threads or locks inherited from the parent).
    context = multiprocessing.get_context("forkserver" if os.name == "posix" else "spawn")
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    queue = list(reversed(tasks))
    while queue:
        suspects = []
        with ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker,
                                 initargs=(method, model, threads)) as pool:
            running: dict = {}
            while (queue or running) and not suspects:
                while queue and len(running) < workers:
                    task = queue.pop()
                    running[pool.submit(process_subject, task)] = task
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    if isinstance(future.exception(), BrokenProcessPool):
                        suspects.append(task)
                    else:
                        yield _result_or_failure(future, task)
            suspects.extend(running.values())  # in flight when the pool broke
        for task in suspects:
            logger.warning("A worker died while %s was in flight; retrying it alone.", task["stem"])
            with ProcessPoolExecutor(1, mp_context=context, initializer=init_worker,
                                     initargs=(method, model, threads)) as alone:
                yield _result_or_failure(alone.submit(process_subject, task), task)


def _result_or_failure(future, task: dict) -> dict:
    try:
        return future.result()
    except Exception as exc:  # the worker process itself died (memory, segfault)
        error = f"worker died: {error_text(exc)}"
        # The worker could not record its own failure; record it here so the table shows it.
        from wmhkit.cohort.resume import cohort_paths
        from wmhkit.io import OutputPaths

        paths = OutputPaths(Path(task["out_dir"]), task["stem"])
        discard_outputs(paths)
        write_error(cohort_paths(paths)["error_json"], {"input": task["input_path"], "input_sha256": None, "error": error})
        return {"stem": task["stem"], "status": "failed", "error": error,
                "seconds": float("nan"), "peak_rss_mb": float("nan"), "pid": None}


def _run_dask(tasks: list[dict], scheduler, method: str, model: str) -> Iterator[dict]:
    try:
        from distributed import Client, as_completed as dask_as_completed
    except ImportError:
        raise OptionError("Option --scheduler needs dask[distributed]; install wmhkit[dask].") from None
    client = scheduler if isinstance(scheduler, Client) else None
    try:
        if client is None:
            try:
                client = Client(getattr(scheduler, "scheduler_address", scheduler), timeout="30s")
            except OSError as exc:
                raise OptionError(f"Option --scheduler {scheduler}: cannot reach a Dask scheduler ({exc}); "
                                  "check the address (tcp://host:8786).") from None
        # The model is loaded once per Dask worker process (init_worker caches it there), also in
        # the workers a nanny starts after one died mid-run (the scheduler retries its task there).
        from wmhkit.cohort.dask_setup import PLUGIN_NAME, WorkerSetup

        client.register_plugin(WorkerSetup(method, model, 1), name=PLUGIN_NAME)
        futures = [client.submit(process_subject, task, key=f"wmhkit-{task['stem']}-{time.time_ns()}", pure=False)
                   for task in tasks]
        by_key = {future.key: task for future, task in zip(futures, tasks)}
        for future in dask_as_completed(futures):
            yield _result_or_failure(future, by_key[future.key])
    finally:
        if client is not None and client is not scheduler:
            client.close()


def _progress(records: Iterable[dict], total: int, show: bool | None) -> Iterator[dict]:
    from tqdm.auto import tqdm

    counts = {"ok": 0, "skipped": 0, "failed": 0}
    with tqdm(total=total, unit="subject", desc="wmhkit cohort", disable=None if show is None else not show) as bar:
        for record in records:
            counts[record["status"]] = counts.get(record["status"], 0) + 1
            bar.set_postfix(done=counts["ok"] + counts["skipped"], failed=counts["failed"], refresh=False)
            bar.update(1)
            yield record


def run_cohort(
    source,
    out_dir,
    *,
    workers: int = 1,
    threads_per_worker: int | None = None,
    scheduler=None,
    method: str = "model",
    model: str = "default",
    resume: bool = True,
    report: bool = True,
    group_map: bool = True,
    progress: bool | None = None,
    processor: Callable | str = DEFAULT_PROCESSOR,
    on_result: Callable[[dict], None] | None = None,
    force: bool = False,
    participant_label: Sequence[str] | None = None,
    session_label: Sequence[str] | None = None,
    group: bool = True,
    **options,
) -> CohortResult:
    """Segment every T1 of a cohort (or some participants) into a BIDS-derivatives folder.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        BIDS dataset, folder, glob or CSV manifest (see :func:`discover_inputs`), or a table
        it returned.
    out_dir : str or path
        The derivatives folder (created). Per-subject outputs go to
        ``sub-<id>/[ses-<id>/]anat/``.
    workers : int, default 1
        Local worker processes (1 runs in this process). Each gets ``cpu_count // workers``
        BLAS and torch threads; SimpleITK's alignment keeps its fixed 2 threads so that results
        do not depend on the number of workers. A worker killed while busy (``kill -9``, out of
        memory) has its subjects retried alone in a fresh process: only a scan that kills its
        worker again is recorded as failed. Ignored with ``scheduler``.
    threads_per_worker : int, optional
        BLAS and torch threads of each local worker instead of ``cpu_count // workers`` (one
        worker in this process: the libraries' defaults). Set it on a shared node to keep to
        the cores you were given.
    scheduler : str, distributed.Client or cluster, optional
        A Dask scheduler address (``tcp://host:8786``), client or cluster: subjects run on its
        workers with the same per-subject code. Each worker loads the model once, caps torch
        and BLAS at one thread (one thread per Dask worker thread) and undoes the tiny
        ``MALLOC_TRIM_THRESHOLD_`` Dask's nanny sets, which made every subject about 3 s slower
        (:func:`wmhkit.cohort.worker.restore_malloc_thresholds`); a worker that a nanny starts
        after one died is set up the same way (:mod:`wmhkit.cohort.dask_setup`), and Dask
        retries the dead worker's task (up to its ``allowed-failures``, 3 by default).
    method : {"model", "baseline"}, default "model"
        Segmentation method passed to :func:`wmhkit.segmentation.segment_file`.
    model : str, default "default"
        Model name or checkpoint path (``method="model"``).
    resume : bool, default True
        Skip subjects whose outputs are complete and whose input sha256 and model version
        match their JSON; False recomputes everything.
    report, group_map : bool, default True
        Write the HTML QC report and the MNI lesion-frequency map after the run.
    progress : bool or None, default None
        Progress bar (None: only on a terminal).
    processor : callable or str, default :func:`wmhkit.cohort.worker.segment_subject`
        The per-subject function, called as ``processor(input_path, out_dir, method=...,
        model=..., **options)``: it writes the segmentation outputs and returns the
        :class:`~wmhkit.segmentation.SegmentationResult` or the ``<stem>_wmh.json`` content
        (e.g. :func:`wmhkit.segmentation.segment_file`), whose MNI alignment the QC step uses
        in memory. A top-level function (worker processes and Dask receive it pickled), or its
        name as ``"module:function"`` (importable by the workers; the hidden ``--processor``
        option of the command line).
    on_result : callable, optional
        Called in this process with each per-subject record as it arrives.
    force : bool, default False
        Segment images that do not look like a brain T1 anyway (``--force``); without it such a
        subject is recorded as failed with the reason (:mod:`wmhkit.preprocess.content_check`).
        A forced subject's JSON records the override and the table flags it (``forced``).
    participant_label, session_label : list of str, optional
        Only these participants and sessions (labels with or without ``sub-``/``ses-``); a
        label that matches nothing is an :class:`~wmhkit.errors.OptionError`
        (:func:`wmhkit.cohort.discover.select_inputs`).
    group : bool, default True
        Write the group outputs (combined table, errors file, QC report, group map). False is
        the BIDS-Apps participant level: no group output is written, and the folder is shared
        with other participant-level runs on other subjects (:func:`wmhkit.cohort.lock.subject_locks`);
        :func:`run_group` builds the group outputs afterwards.
    **options
        More keyword arguments for the processor (``threshold``, ``min_lesion_mm3``, ...).

    Raises
    ------
    wmhkit.errors.OptionError, wmhkit.errors.ModelError, wmhkit.errors.TableError
        Unknown method, fewer than one worker, unreachable scheduler, missing model, a processor
        that cannot be imported (or pickled for worker processes), or inputs that cannot be
        discovered. A problem with one subject never raises: it is recorded.
    wmhkit.errors.OutputError
        Another run holds ``out_dir`` (:mod:`wmhkit.cohort.lock`; refused at once, before any
        input is read), or the combined table cannot be written.

    Returns
    -------
    CohortResult
        The combined table is rebuilt from the per-subject files, so an interrupted run
        followed by a rerun gives the same table as one uninterrupted run.
    """
    from wmhkit.cohort.table import build_table

    start = time.perf_counter()
    if method not in METHODS:
        raise OptionError(f"Option --method {method!r} is not known; use one of {', '.join(METHODS)}.")
    if int(workers) < 1:
        raise OptionError(f"Option --workers {workers} must be at least 1.")
    if threads_per_worker is not None and int(threads_per_worker) < 1:
        raise OptionError(f"Option --threads {threads_per_worker} must be at least 1 (or left out).")
    threads = None if threads_per_worker is None else int(threads_per_worker)
    resolve_processor(processor, picklable=scheduler is not None or int(workers) > 1)
    if method == "model":
        from wmhkit.segmentation.models import model_path

        model_path(model)  # a missing model is one error for the run, not one per subject
    out_dir = Path(out_dir)
    if force:
        options["force"] = True
    # A second run on the same folder refuses here, at once; participant-level runs share it.
    with cohort_lock(out_dir, shared=not group, action="cohort run" if group else "participant run"):
        inputs, bids_root = _inputs(source, out_dir, participant_label, session_label)
        tasks = _tasks(inputs, out_dir, method, model, resume, processor, options, bids_root)
        with subject_locks(out_dir, inputs["out_subdir"]) if not group else contextlib.nullcontext():
            if scheduler is not None:
                records = _run_dask(tasks, scheduler, method, model)
            elif int(workers) == 1 or len(tasks) == 1:
                records = _run_serial(tasks, method, model, threads)
            else:
                records = _run_processes(tasks, min(int(workers), len(tasks)), method, model, threads)
            runs = []
            for record in _progress(records, len(tasks), progress):
                runs.append(record)
                if on_result is not None:
                    on_result(record)
        runs = pd.DataFrame(runs, columns=["stem", "status", "error", "seconds", "peak_rss_mb", "pid"])
        # This run's failures count even where their error file could not be written (full disk).
        failed = runs[runs["status"] == "failed"]
        failures = dict(zip(failed["stem"], failed["error"]))
        if not group:
            table = build_table(inputs, out_dir, failures=failures)
            return CohortResult(out_dir, table, None, None, None, runs, time.perf_counter() - start)
        result = _group_outputs(inputs, out_dir, failures, report=report, group_map=group_map)
    return CohortResult(out_dir, *result, runs, time.perf_counter() - start)


def _inputs(source, out_dir: Path, participant_label, session_label) -> tuple[pd.DataFrame, Path | None]:
    """The selected inputs and the BIDS root (None for another source); writes the dataset files."""
    table = isinstance(source, pd.DataFrame)
    name = "manifest" if table else str(source)
    inputs = select_inputs(source if table else discover_inputs(source), participant_label, session_label, source=name)
    bids_root = None if table or not is_bids_dataset(source) else Path(source)
    write_dataset_description(out_dir, name, bids_root=bids_root)
    return inputs, bids_root


def _group_outputs(inputs: pd.DataFrame, out_dir: Path, failures: dict, *, report: bool, group_map: bool):
    """Combined table, errors file, group map and QC report; returns (table, table, errors, report paths)."""
    from wmhkit.cohort.table import build_table, write_tables

    table = build_table(inputs, out_dir, failures=failures)
    table_path, errors_path = write_tables(table, out_dir)
    if group_map and (table["status"] == "ok").any():
        from wmhkit.cohort.groupmaps import write_group_map

        write_group_map(table, out_dir)
    report_path = None
    if report and len(table):
        from wmhkit.cohort.report import write_report

        report_path = write_report(table, out_dir)
    return table, table_path, errors_path, report_path


def run_group(
    source,
    out_dir,
    *,
    participant_label: Sequence[str] | None = None,
    session_label: Sequence[str] | None = None,
    report: bool = True,
    group_map: bool = True,
) -> CohortResult:
    """Build the group outputs of a derivatives folder from the per-subject files it holds.

    The BIDS-Apps group level (and ``wmhkit cohort report``): the combined table, the errors
    file, the QC report and the MNI lesion-frequency map, from what participant-level runs (or
    a cohort run) left. Nothing is segmented. Subjects without outputs are ``not run``.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        The cohort's input, as given to :func:`run_cohort`.
    out_dir : str or path
        The derivatives folder.
    participant_label, session_label : list of str, optional
        Restrict the group outputs to these participants and sessions.
    report, group_map : bool, default True
        Write the HTML QC report and the MNI lesion-frequency map.

    Raises
    ------
    wmhkit.errors.OutputError
        While any other run (a participant-level run included) holds ``out_dir``.
    wmhkit.errors.OptionError, wmhkit.errors.TableError
        A label that matches nothing, or inputs that cannot be discovered.

    Returns
    -------
    CohortResult
        With an empty ``runs`` table.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    with cohort_lock(out_dir, action="group"):
        inputs, _ = _inputs(source, out_dir, participant_label, session_label)
        result = _group_outputs(inputs, out_dir, {}, report=report, group_map=group_map)
    if not (result[0]["status"] != "not run").any():
        logger.warning("No participant outputs found in %s; run the participant level first.", out_dir)
    runs = pd.DataFrame(columns=["stem", "status", "error", "seconds", "peak_rss_mb", "pid"])
    return CohortResult(out_dir, *result, runs, time.perf_counter() - start)
