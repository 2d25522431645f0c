"""Cohort throughput: subjects per minute with 1 and 2 local workers and a 2-worker Dask LocalCluster.

One worker is timed twice: with every core (the libraries' thread defaults, what ``--workers 1``
does) and with one thread, the share each of the 2 workers gets; the second is the baseline for
how well the cohort engine itself scales per worker.

Usage::

    python benchmarks/cohort_throughput.py --n-subjects 50 --method baseline \
        --work /tmp/wmhkit-cohort-bench --results benchmarks/results/cohort_throughput.md

Inputs are ``wmhkit.synth.make_phantom(seed, voxel_size_mm=2.0)`` T1 images (seeds 0..N-1)
in a BIDS tree. Each configuration writes into a fresh derivatives folder (no resume); the
time is that of ``run_cohort`` without the report and group map (timed once separately).
Peak memory is the largest peak RSS a worker process reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from bench_environment import environment_line


def _write_inputs(root: Path, n_subjects: int):
    import nibabel as nib

    from wmhkit.synth import make_phantom

    from wmhkit.cohort import discover_inputs

    bids = root / "bids"
    for seed in range(n_subjects):  # phantoms already written by an earlier run are reused
        path = bids / f"sub-{seed:03d}" / "anat" / f"sub-{seed:03d}_T1w.nii.gz"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            nib.save(make_phantom(seed, voxel_size_mm=2.0).t1, path)
    return discover_inputs(bids).head(n_subjects)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (worker processes), seconds."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def _run(label: str, bids, out: Path, method: str, **kwargs) -> dict:
    from wmhkit.cohort import run_cohort

    shutil.rmtree(out, ignore_errors=True)
    load_before = _load()
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    result = run_cohort(bids, out, method=method, resume=False, report=False, group_map=False, progress=False, **kwargs)
    seconds = time.perf_counter() - start
    cpu_s = _cpu_seconds() - cpu_start
    runs = result.runs
    row = {
        "configuration": label,
        "subjects": len(runs),
        "failed": int((runs["status"] == "failed").sum()),
        "wall_s": seconds,
        "subjects_per_min": 60.0 * len(runs) / seconds,
        "median_subject_s": float(runs["seconds"].median()),
        "peak_rss_mb_per_worker": float(runs["peak_rss_mb"].max()),
        "worker_processes": int(runs["pid"].nunique()),
        "cpu_s": cpu_s,
        "load_before": load_before,
        "load_after": _load(),
    }
    print(row, flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=50)
    parser.add_argument("--method", default="baseline", choices=("baseline", "model"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/wmhkit-cohort-bench"))
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "cohort_throughput.md")
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    bids = _write_inputs(args.work, args.n_subjects)
    rows = [
        _run("local, 1 worker (in process)", bids, args.work / "w1", args.method, workers=1),
        _run("local, 2 worker processes", bids, args.work / "w2", args.method, workers=2),
        # last of the in-process runs: it caps this process's torch and BLAS threads for good
        _run("local, 1 worker x 1 thread (in process)", bids, args.work / "w1t1", args.method, workers=1,
             threads_per_worker=1),
    ]
    if not args.skip_dask:
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            rows.append(_run("Dask LocalCluster, 2 workers x 1 thread", bids, args.work / "dask", args.method,
                             scheduler=cluster.scheduler_address))

    from wmhkit.cohort import build_table, write_group_map, write_report

    start = time.perf_counter()
    table = build_table(bids, args.work / "w2")
    write_group_map(table, args.work / "w2")
    write_report(table, args.work / "w2")
    report_s = time.perf_counter() - start

    speedup = rows[1]["subjects_per_min"] / rows[0]["subjects_per_min"]
    speedup_per_worker = rows[1]["subjects_per_min"] / rows[2]["subjects_per_min"]
    # A single subject already runs on more than one core in places (SimpleITK's alignment uses
    # 2 threads); this is how much of the second core one worker leaves idle.
    busy_cores = rows[0]["cpu_s"] / rows[0]["wall_s"]
    command = f"python benchmarks/cohort_throughput.py --n-subjects {args.n_subjects} --method {args.method}"
    lines = [
        "# Cohort throughput",
        "",
        environment_line(),
        "",
        f"Machine: {os.cpu_count()} CPU cores, {_memory_gb():.0f} GB RAM, no GPU; Python {platform.python_version()}; "
        "load averages (1, 5, 15 min) before and after each configuration are in the table.",
        f"Command: `{command}`",
        f"Inputs: {args.n_subjects} phantoms from `wmhkit.synth.make_phantom(seed, voxel_size_mm=2.0)`; "
        f"method `{args.method}`" + (" (no trained model was available)" if args.method == "baseline" else "") + ".",
        "",
        "| configuration | subjects | failed | wall (s) | subjects/min | median s/subject | peak RSS per worker (MB) | worker processes | load before | load after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['configuration']} | {row['subjects']} | {row['failed']} | {row['wall_s']:.1f} | "
            f"{row['subjects_per_min']:.2f} | {row['median_subject_s']:.2f} | {row['peak_rss_mb_per_worker']:.0f} | "
            f"{row['worker_processes']} | {row['load_before']} | {row['load_after']} |"
        )
    lines += [
        "",
        f"Speed-up, 2 local workers over 1 worker using every core: **{speedup:.2f}x** (target >= 1.8x).",
        f"Speed-up, 2 local workers over 1 worker with the same per-worker share (1 thread): "
        f"**{speedup_per_worker:.2f}x**.",
        f"One worker alone keeps {busy_cores:.2f} cores busy on average (process CPU time / wall time; OpenMP "
        "threads waiting for work count too), so a second worker on 2 cores has much less than a whole idle core to use.",
        f"Combined table + group map + HTML report for {args.n_subjects} subjects: {report_s:.1f} s.",
        "",
    ]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


def _memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):  # pragma: no cover
        return float("nan")


if __name__ == "__main__":
    sys.exit(main())
