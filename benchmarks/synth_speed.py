"""Time make_phantom at 1 mm and 2 mm (skull off and on), and the one-off template build.

Writes benchmarks/results/synth_speed.md. Run from the repository root::

    python benchmarks/synth_speed.py [--repeats 3] [--out benchmarks/results/synth_speed.md]

Each configuration is timed over ``--repeats`` seeds after a warm-up phantom (so the MNI
tissue maps are already in memory). Wall time and the process's CPU time are both reported:
on a shared machine the CPU time is the better estimate of the wall time on an idle one.
The template build is timed in a fresh cache folder, in a fresh process.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_environment import environment_line

CONFIGS = [
    ("1 mm, skull off", {"voxel_size_mm": 1.0}),
    ("1 mm, skull on", {"voxel_size_mm": 1.0, "skull": True}),
    ("2 mm, skull off (test path)", {"voxel_size_mm": 2.0}),
    ("2 mm, skull on", {"voxel_size_mm": 2.0, "skull": True}),
]

_BUILD = """
import time
t, c = time.perf_counter(), time.process_time()
from wmhkit.synth.templates import load_tissue_maps
load_tissue_maps({voxel})
print(time.perf_counter() - t, time.process_time() - c)
"""


def _template_build(voxel: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "WMHKIT_CACHE_DIR": folder}
        out = subprocess.run([sys.executable, "-c", _BUILD.format(voxel=voxel)], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
        cached = subprocess.run([sys.executable, "-c", _BUILD.format(voxel=voxel)], env=env, check=True,
                                capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), float(cached[0]), float(cached[1])


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "synth_speed.md"))
    args = parser.parse_args(argv)
    from wmhkit.synth import make_phantom

    rows = []
    for name, options in CONFIGS:
        make_phantom(100, **options)  # warm-up: tissue maps in memory
        walls, cpus, voxels, lesion = [], [], [], []
        for seed in range(args.repeats):
            start, cpu = time.perf_counter(), time.process_time()
            phantom = make_phantom(seed, **options)
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
            voxels.append(int(np.prod(phantom.t1.shape)))
            lesion.append(phantom.params["lesion_ml"])
        rows.append((name, np.median(walls), np.median(cpus), np.median(voxels) / 1e6, np.median(lesion)))
        print(rows[-1], flush=True)
    builds = {voxel: _template_build(voxel) for voxel in (2, 1)}
    load = os.getloadavg()
    lines = [
        "# make_phantom speed",
        "",
        environment_line(),
        "",
        f"Machine: {os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}, no GPU "
        "(the shared 2-core, 24 GB development machine).",
        f"Load average while measuring: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min); "
        + ("other jobs shared the cores, so wall times are inflated and the CPU column is the better "
           "estimate of an idle machine's wall time (make_phantom is single-threaded numpy/scipy)."
           if load[0] > 1.5 else "about one busy core: the wall times are those of an idle machine."),
        "",
        f"Command: `python benchmarks/synth_speed.py --repeats {args.repeats}` "
        f"(median over seeds 0-{args.repeats - 1}, "
        "after one warm-up phantom; lesion_burden 1, FLAIR 0.9 x 0.9 x 5 mm).",
        "",
        "| configuration | wall s / phantom | CPU s / phantom | T1 voxels (M) | lesion mL (median) |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {n} | {w:.2f} | {c:.2f} | {v:.2f} | {l:.1f} |" for n, w, c, v, l in rows]
    lines += [
        "",
        "One-off preparation of the MNI tissue maps (fresh process; first in an empty cache, then from the cache):",
        "",
        "| maps | build wall s | build CPU s | cached wall s | cached CPU s |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {v} mm | {b[0]:.2f} | {b[1]:.2f} | {b[2]:.2f} | {b[3]:.2f} |" for v, b in builds.items()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(out)
    return out


if __name__ == "__main__":
    main()
