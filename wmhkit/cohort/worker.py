"""The per-subject task that every executor (local processes, Dask workers) runs.

:func:`process_subject` never raises for a problem with one subject: it returns a record
with ``status`` ``"ok"``, ``"skipped"`` (complete from an earlier run) or ``"failed"`` (with
the reason), and writes ``<stem>_error.json`` for a failure so that the combined table can
be rebuilt from the files alone.
"""

from __future__ import annotations

import functools
import gc
import importlib
import pickle
import logging
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

from wmhkit.errors import OptionError, OutputError
from wmhkit.io import OutputPaths, file_sha256, write_json
from wmhkit.cohort.resume import cohort_paths, flatten, incomplete_reason, sidecar_paths

__all__ = ["DEFAULT_PROCESSOR", "segment_subject", "resolve_processor", "init_worker", "restore_malloc_thresholds", "release_memory", "process_subject",
           "expected_model", "peak_rss_mb", "discard_outputs", "write_error"]

logger = logging.getLogger(__name__)

#: The worker's thread cap set by :func:`init_worker` (None: libraries' defaults).
_THREAD_CAP: int | None = None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / 1024.0**2


def segment_subject(input_path, out_dir, *, stem: str | None = None, **options):
    """Segment one T1 file, write its outputs, and hand the result over in memory.

    :func:`wmhkit.segmentation.segment_file`, except that it returns the
    :class:`~wmhkit.segmentation.SegmentationResult` itself (with its mask and the JSON
    content), so that the cohort's QC step neither reads the JSON back nor aligns again.

    Parameters
    ----------
    input_path : str or path
        The T1 file or DICOM series folder.
    out_dir : str or path
        The subject's output folder (created if missing).
    stem : str, optional
        Output file stem; default the input's name without its ending.
    **options
        Passed to :func:`wmhkit.segment` (``method``, ``model``, ``threshold``, ``force``, ...).

    Returns
    -------
    wmhkit.segmentation.SegmentationResult
    """
    from wmhkit.io import save_converted_t1
    from wmhkit.segmentation import segment

    result = segment(input_path, **options)
    save_converted_t1(input_path, out_dir, stem)  # a DICOM input's T1 first: masks never lack their image
    result.save(out_dir, stem=stem)
    return result


#: The per-subject function: writes every output and returns the
#: :class:`~wmhkit.segmentation.SegmentationResult` (another processor may return the JSON content).
DEFAULT_PROCESSOR: Callable = segment_subject


def _name(processor) -> str:
    if isinstance(processor, str):
        return processor
    return f"{getattr(processor, '__module__', '?')}:{getattr(processor, '__qualname__', repr(processor))}"


def resolve_processor(processor: Callable | str, *, picklable: bool = False) -> Callable:
    """The per-subject function from a callable or its ``"module:function"`` name.

    Parameters
    ----------
    processor : callable or str
        A function, or its import name as ``"module:function"`` (the form the command line's
        hidden ``--processor`` takes).
    picklable : bool, default False
        Also check that a callable can be sent to worker processes (a top-level function can;
        a lambda or a nested function cannot).

    Returns
    -------
    callable

    Raises
    ------
    wmhkit.errors.OptionError
        When the name cannot be imported, or the callable cannot be pickled with ``picklable``.

    Examples
    --------
    >>> resolve_processor("os.path:basename")("/a/b.nii.gz")
    'b.nii.gz'
    """
    if callable(processor):
        if picklable:
            try:
                pickle.dumps(processor)
            except Exception:
                raise OptionError(f"Option processor {_name(processor)} cannot be sent to worker processes; "
                                  "pass a top-level function (not a lambda or nested function).") from None
        return processor
    module, _, name = str(processor).partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise OptionError(f"Option processor {processor!r} cannot be imported; give a function or "
                          "'module:function' importable by the workers.") from None


def _handed_over(outcome, processor) -> tuple:
    """The alignment and mask a processor handed over: (alignment, mask or None).

    A :class:`~wmhkit.segmentation.SegmentationResult` carries both; a ``<stem>_wmh.json``
    content (dict) carries the alignment, and the mask is then read from its file. The
    alignment is taken as the JSON records it (matrix to 6 decimals, quality to 4) in both
    cases, so that a subject's QC values do not depend on the processor's form and match
    those of earlier releases (full precision moves the contrast ratio in its 6th digit).
    """
    mask = getattr(outcome, "mask", None)
    summary = outcome.summary() if mask is not None and callable(getattr(outcome, "summary", None)) else outcome
    if isinstance(summary, dict):
        from wmhkit.cohort.qc import alignment_from_summary

        alignment = alignment_from_summary(flatten(summary)) or getattr(outcome, "alignment", None)
        if alignment is not None:
            return alignment, mask
    raise OptionError(f"Option processor {_name(processor)} returned {type(outcome).__name__} without an MNI "
                      "alignment; return the SegmentationResult or the <stem>_wmh.json content.")


def expected_model(method: str, model: str) -> tuple[str | None, str | None]:
    """Name and version of the model a run asks for (loaded once per process and cached).

    The classical baseline is ``("baseline", BASELINE_VERSION)``.
    """
    if method != "model":
        from wmhkit.segmentation import BASELINE_VERSION

        return method, BASELINE_VERSION
    from wmhkit.segmentation.models import load_model

    loaded = load_model(model)
    return loaded.name, loaded.version


#: glibc mallopt parameters, and the values of glibc's own dynamic thresholds at their ceiling.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
_TRIM_THRESHOLD_BYTES = 2 * _MMAP_THRESHOLD_BYTES


@functools.lru_cache(maxsize=1)
def _glibc():
    """glibc through ctypes, or None (other C libraries, other systems)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both exist in glibc only
    except (OSError, AttributeError):  # musl, ...
        return None
    return libc


def restore_malloc_thresholds() -> bool:
    """Undo a tiny ``MALLOC_TRIM_THRESHOLD_`` (set by Dask's nanny) in this process; True if done.

    Setting any glibc malloc threshold turns off glibc's dynamic mmap threshold, so every
    array above 128 kB is mapped afresh and zero-filled by the kernel: a segmentation then
    takes 9 times more page faults and about 3 s more of system time per subject
    (benchmarks/results/cohort_throughput.md). This sets the thresholds to the values glibc's
    dynamic scheme reaches by itself (mmap 32 MB, trim 64 MB): a worker keeps at most 64 MB
    of freed memory. Nothing happens without the variable or outside glibc.
    """
    libc = _glibc()
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or libc is None:
        return False
    done = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) == 1
    return bool(done and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES) == 1)


def release_memory() -> bool:
    """Hand the memory a finished subject freed back to the system (glibc only); True if done.

    glibc keeps freed heap memory for later allocations, so without this a worker's resident
    memory between subjects climbs over its first subjects (0.74 to 0.97 GB on 2 mm phantoms)
    and stays high; after a trim it is 0.54-0.56 GB, and the peak is about 0.1 GB lower. The
    trim costs about 0.13 s per subject. That resident memory is what Dask's memory limits and
    cluster schedulers count.
    """
    libc = _glibc()
    if libc is None:
        return False
    gc.collect()
    return bool(libc.malloc_trim(0))


def init_worker(method: str, model: str, threads: int | None = 1) -> None:
    """Prepare a worker process: cap its threads, load the model once.

    Parameters
    ----------
    method : {"model", "baseline"}
        Segmentation method.
    model : str
        Model name or path (ignored for ``"baseline"``).
    threads : int or None, default 1
        Threads per worker for BLAS and torch; None leaves the libraries' defaults.
        With N workers on N cores, one thread each avoids oversubscription.
    """
    global _THREAD_CAP
    _THREAD_CAP = int(threads) if threads else None
    if restore_malloc_thresholds():
        logger.debug("glibc malloc thresholds restored (MALLOC_TRIM_THRESHOLD_ was set).")
    if threads:
        # BLAS (through threadpoolctl, as numpy is already loaded) and torch get the worker's
        # share of the cores. SimpleITK needs no cap: the MNI alignment always runs on one
        # thread, as its answer changes in the 6th decimal with the thread count (a cohort must
        # not depend on how it was spread over workers).
        for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[variable] = str(threads)
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
        if "torch" in sys.modules or method == "model":
            try:
                import torch

                torch.set_num_threads(threads)
            except ImportError:  # pragma: no cover - torch is optional for baseline runs
                pass
    try:
        expected_model(method, model)
    except Exception as exc:  # reported per subject, where the failure is recorded
        logger.warning("Model %s could not be loaded in the worker: %s", model, exc)


def error_text(exc: BaseException) -> str:
    """One line for a failure: the exception type and the first line of its message."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def discard_outputs(paths: OutputPaths) -> list[Path]:
    """Remove a failed subject's outputs, so that its folder never holds a partial set.

    Each file is whole (written atomically), but a set with, say, the segmentation and without
    its QC files would be read as a result. What cannot be removed stays, and the subject is
    computed again on the next run anyway (its outputs are incomplete). Returns what was removed.
    """
    extra = cohort_paths(paths)
    candidates = list(paths.all().values()) + [paths.mni_mask, paths.mni_probseg, extra["qc_json"], extra["thumbnail"]]
    candidates += list(sidecar_paths(paths).values())
    if paths.out_dir.is_dir():
        candidates += list(paths.out_dir.glob(f".{paths.prefix}_*.tmp*"))  # left by a process killed mid-write
    removed = []
    for path in candidates:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.warning("%s could not be removed (%s).", path, exc.strerror)
            continue
        removed.append(path)
    return removed


def write_error(path: Path, content: dict) -> bool:
    """Write ``<stem>_error.json``; False (and a warning) when even that cannot be written.

    A full disk or a folder that cannot be written must not stop the cohort: the runner still
    records the failure in the combined table from the subject's record.
    """
    try:
        write_json(content, path)
    except OSError as exc:
        logger.warning("The error file %s could not be written either (%s); the failure is kept in the table.",
                       path, exc)
        return False
    return True


def process_subject(task: dict) -> dict:
    """Segment one subject (unless complete), run its QC, and report.

    Parameters
    ----------
    task : dict
        ``input_path``, ``out_dir`` (the subject's output folder), ``stem``, ``method``,
        ``model``, ``resume`` (bool), ``options`` (more keyword arguments for the processor)
        and ``processor`` (a function or its ``"module:function"`` name, default
        :data:`DEFAULT_PROCESSOR`; it returns the result or the JSON content, whose alignment
        the QC step uses as it is: nothing is read back or aligned again); optional
        ``source_uri`` and ``out_subdir`` for the image sidecars
        (:func:`wmhkit.cohort.derivatives.write_sidecars`).

    Returns
    -------
    dict
        ``stem``, ``status`` (ok/skipped/failed), ``error`` (one line or ""), ``seconds``,
        ``peak_rss_mb`` and ``pid``.
    """
    from wmhkit.cohort.derivatives import source_uri, write_sidecars
    from wmhkit.cohort.qc import subject_qc

    start = time.perf_counter()
    if _THREAD_CAP and "torch" in sys.modules:
        # torch's thread count is per calling thread (OpenMP), and Dask runs tasks in a thread
        # other than the one init_worker ran in: apply the cap where the work happens.
        sys.modules["torch"].set_num_threads(_THREAD_CAP)
    paths = OutputPaths(Path(task["out_dir"]), task["stem"])
    extra = cohort_paths(paths)
    record = {"stem": task["stem"], "status": "ok", "error": "", "pid": os.getpid()}
    sha = None
    try:
        try:
            paths.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"Output folder {paths.out_dir} cannot be created ({exc.strerror}); check the "
                              "derivatives folder, then run again.") from None
        sha = file_sha256(task["input_path"]) if Path(task["input_path"]).is_file() else None
        if task.get("resume", True) and sha is not None:
            name, version = expected_model(task["method"], task["model"])
            reason = incomplete_reason(task["input_path"], paths, method=task["method"], model_name=name,
                                       model_version=version, input_sha256=sha)
            if reason is None:
                record.update(status="skipped", seconds=time.perf_counter() - start, peak_rss_mb=peak_rss_mb())
                return record
            logger.debug("%s: recomputing (%s)", task["stem"], reason)
        # Leftovers of an interrupted run: temporary files (never final outputs) and stale QC.
        stale = list(paths.out_dir.glob(f".{paths.prefix}_*.tmp*")) if paths.out_dir.is_dir() else []
        for path in stale + [extra["qc_json"], extra["thumbnail"], paths.mni_mask]:
            path.unlink(missing_ok=True)
        processor = resolve_processor(task.get("processor") or DEFAULT_PROCESSOR)
        options = dict(task.get("options") or {})
        outcome = processor(task["input_path"], task["out_dir"], method=task["method"], model=task["model"], **options)
        alignment, mask = _handed_over(outcome, processor)
        qc = subject_qc(task["input_path"], paths, alignment, extra["thumbnail"], mask=mask)
        write_sidecars(paths, task.get("source_uri") or source_uri(task["input_path"]), task.get("out_subdir"))
        write_json(qc, extra["qc_json"])  # last: the table reads a subject with its QC file as done
        extra["error_json"].unlink(missing_ok=True)
    except Exception as exc:  # one bad scan must not stop the cohort
        record.update(status="failed", error=error_text(exc))
        logger.warning("%s failed: %s", task["stem"], record["error"])
        discard_outputs(paths)
        write_error(extra["error_json"], {"input": task["input_path"], "input_sha256": sha, "error": record["error"],
                                          "traceback": traceback.format_exc()})
    release_memory()
    record.update(seconds=time.perf_counter() - start, peak_rss_mb=peak_rss_mb())
    return record
