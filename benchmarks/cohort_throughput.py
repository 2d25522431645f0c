"""Cohort throughput: subjects per minute with 1 and 2 local workers and a 2-worker Dask LocalCluster.

One worker is timed twice: with every core (the libraries' thread defaults, what ``--workers 1``
does) and with one thread, the share each of the 2 workers gets; the second is the baseline for
how well the cohort engine itself scales per worker.

Usage::

    python benchmarks/cohort_throughput.py --n-subjects 50 --method model \
        --work /tmp/wmhkit-cohort-bench --results benchmarks/results/cohort_throughput.md

``--configs w2`` reruns one configuration and reads the others from the results CSV.

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
import threading
import time
from pathlib import Path

import pandas as pd
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


class CpuMeter:
    """CPU seconds of this process and every descendant process while a run lasts.

    Pool workers are children of multiprocessing's fork server, which reaps them, so their
    CPU time never reaches ``os.times()`` here: a thread reads every descendant's CPU time
    with psutil twice a second and keeps the last reading of each (what a worker spends in its
    last half second before exiting is missed; workers are idle then).
    """

    def __init__(self, interval_s: float = 0.5):
        import psutil

        self._psutil = psutil
        self.interval_s = interval_s
        self._start = self._readings()
        self._last = dict(self._start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _readings(self) -> dict:
        readings = {}
        me = self._psutil.Process()
        for process in [me, *me.children(recursive=True)]:
            try:
                cpu = process.cpu_times()
                readings[(process.pid, process.create_time())] = cpu.user + cpu.system
            except self._psutil.Error:  # exited between listing and reading
                continue
        return readings

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._last.update(self._readings())

    def stop(self) -> float:
        """Stop polling; CPU seconds used by all processes since the meter started."""
        self._stop.set()
        self._thread.join()
        self._last.update(self._readings())
        return sum(value - self._start.get(key, 0.0) for key, value in self._last.items())


def _load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def _run(label: str, bids, out: Path, method: str, **kwargs) -> dict:
    from wmhkit.cohort import run_cohort

    shutil.rmtree(out, ignore_errors=True)
    load_before = _load()
    meter = CpuMeter()
    start = time.perf_counter()
    result = run_cohort(bids, out, method=method, resume=False, report=False, group_map=False, progress=False, **kwargs)
    seconds = time.perf_counter() - start
    cpu_s = meter.stop()
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
        "cpu_s_per_subject": cpu_s / max(1, len(runs)),
        "load_before": load_before,
        "load_after": _load(),
    }
    print(row, flush=True)
    return row


#: Configurations: name -> (label, run_cohort keyword arguments); "dask" runs on a LocalCluster.
CONFIGS = {
    "w1": ("local, 1 worker (in process)", {"workers": 1}),
    "w2": ("local, 2 worker processes x 1 thread", {"workers": 2}),
    "w1t1": ("local, 1 worker x 1 thread (in process)", {"workers": 1, "threads_per_worker": 1}),
    "dask": ("Dask LocalCluster, 2 workers x 1 thread", {}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-subjects", type=int, default=50)
    parser.add_argument("--method", default="baseline", choices=("baseline", "model"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/wmhkit-cohort-bench"))
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results" / "cohort_throughput.md")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS),
                        help="configurations to (re)run; the others are read from the results CSV of an earlier run")
    args = parser.parse_args(argv)
    if args.skip_dask:
        args.configs = [name for name in args.configs if name != "dask"]

    args.work.mkdir(parents=True, exist_ok=True)
    bids = _write_inputs(args.work, args.n_subjects)
    rows_csv = args.results.with_suffix(".csv")
    earlier = pd.read_csv(rows_csv).set_index("config").to_dict("index") if rows_csv.is_file() else {}
    rows = {}
    # The 1-thread in-process run goes last of the in-process runs: it caps this process's torch
    # and BLAS threads for good.
    for name in ("w1", "w2", "w1t1", "dask"):
        if name not in args.configs:
            if name in earlier:
                rows[name] = {"config": name, **earlier[name]}
            continue
        label, kwargs = CONFIGS[name]
        if name == "dask":
            from distributed import LocalCluster

            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
                rows[name] = {"config": name, **_run(label, bids, args.work / name, args.method,
                                                     scheduler=cluster.scheduler_address)}
        else:
            rows[name] = {"config": name, **_run(label, bids, args.work / name, args.method, **kwargs)}
    rows_csv.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(list(rows.values())).to_csv(rows_csv, index=False)
    rows = [rows[name] for name in ("w1", "w2", "w1t1", "dask") if name in rows]

    from wmhkit.cohort import build_table, write_group_map, write_report

    start = time.perf_counter()
    table = build_table(bids, args.work / "w2")
    write_group_map(table, args.work / "w2")
    write_report(table, args.work / "w2")
    report_s = time.perf_counter() - start

    by_name = {row["config"]: row for row in rows}
    speedup = by_name["w2"]["subjects_per_min"] / by_name["w1"]["subjects_per_min"]
    speedup_per_worker = by_name["w2"]["subjects_per_min"] / by_name["w1t1"]["subjects_per_min"]
    # A single subject already runs on more than one core in places (SimpleITK's alignment uses
    # 2 threads); this is how much of the second core one worker leaves idle.
    busy_cores = by_name["w1"]["cpu_s"] / by_name["w1"]["wall_s"]
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
        "| configuration | subjects | failed | wall (s) | subjects/min | median s/subject | CPU s/subject | peak RSS per worker (MB) | worker processes | load before | load after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['configuration']} | {row['subjects']} | {row['failed']} | {row['wall_s']:.1f} | "
            f"{row['subjects_per_min']:.2f} | {row['median_subject_s']:.2f} | {row['cpu_s_per_subject']:.2f} | "
            f"{row['peak_rss_mb_per_worker']:.0f} | "
            f"{row['worker_processes']} | {row['load_before']} | {row['load_after']} |"
        )
    lines += [
        "",
        f"Speed-up, 2 local workers x 1 thread over 1 worker x 1 thread: **{speedup_per_worker:.2f}x** "
        "(target >= 1.8x).",
        f"Speed-up, 2 local workers over 1 worker using every core: {speedup:.2f}x.",
        "CPU s/subject is the cost a cluster pays: CPU seconds of every process of the run "
        "(this one, the worker processes, the Dask nannies and workers) divided by the subjects.",
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
