"""End-to-end time and peak memory of ``wmhkit segment`` against its targets (docs/results.md).

Runs the command line in a fresh process (load to written outputs, regional table included)
under ``/usr/bin/time -v`` and reads each stage's time from the ``<stem>_wmh.json`` it writes.

* the real 137 x 137 x 93 head at 1.75 mm (``../shared/data/real_t1``): target <= 10 s, <= 1.2 GB;
* a 512 x 512 x 300 input (the 1 mm real head resampled to 0.5 x 0.5 x 0.8 mm, int16): < 3 GB.

Usage::

    python benchmarks/segment_speed.py [--method model|model_mni|model_subject|model_flip|baseline ...] [--repeats 2] [--skip-large]

Writes ``benchmarks/results/segment_speed.md``. Times depend on what else runs on the machine:
the load average before each run is recorded beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from bench_environment import environment_line
from segment_accuracy import METHOD_OPTIONS

ROOT = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("WMHKIT_REAL_T1_DIR", ROOT.parent / "shared" / "data" / "real_t1"))
HEAD = REAL / "head_t1_1p75mm.nii.gz"
HEAD_1MM = REAL / "head_t1_conformed_1mm.nii.gz"
RESULTS = ROOT / "benchmarks" / "results" / "segment_speed.md"


def make_large_input(path: Path) -> Path:
    """The 1 mm head resampled (trilinear) to a 512 x 512 x 300 grid of 0.5 x 0.5 x 0.8 mm, int16."""
    from wmhkit.preprocess.resampling import resample_array

    img = nib.load(str(HEAD_1MM))
    data = np.asanyarray(img.dataobj).astype(np.float32)
    sizes = np.array([0.5, 0.5, 0.8])
    shape = (512, 512, 300)
    centre = img.affine @ np.r_[(np.array(img.shape) - 1) / 2.0, 1.0]
    affine = np.diag([-sizes[0], sizes[1], sizes[2], 1.0])  # LAS, 0.5 x 0.5 x 0.8 mm
    affine[:3, 3] = centre[:3] - affine[:3, :3] @ ((np.array(shape) - 1) / 2.0)
    large = resample_array(data, img.affine, shape, affine, order=1)
    out = nib.Nifti1Image(np.round(large * 16).astype(np.int16), affine)
    nib.save(out, str(path))
    return path


def cli_options(method: str) -> list[str]:
    """``wmhkit segment`` options of a benchmark method (:data:`segment_accuracy.METHOD_OPTIONS`)."""
    options = METHOD_OPTIONS[method]
    out = ["--method", options["method"]]
    out += ["--space", options["space"]] if "space" in options else []
    out += ["--flip-average"] if options.get("flip_average") else []
    return out


def run_once(path: Path, method: str, out_dir: Path, model: str = "default") -> dict:
    """One ``wmhkit segment`` process: wall time, peak RSS, stage times."""
    load = os.getloadavg()[0]
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "wmhkit", "segment", str(path), "--out", str(out_dir),
               "--model", model, *cli_options(method)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"wmhkit segment failed:\n{proc.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    stem = path.name.replace(".nii.gz", "").replace(".nii", "")
    summary = json.loads((out_dir / f"{stem}_wmh.json").read_text())
    return {"wall_s": wall, "peak_rss_gb": rss_kb / 1024**2, "load_avg_before": load, "timings": summary["timings_s"],
            "rss_after": summary.get("peak_rss_gb_after", {}),
            "lesion_ml": summary["lesion_ml"], "shape": summary["input"]["shape"]}


def stage_table(timings: dict, wall: float) -> list[str]:
    rows = []
    stages = ["load_model", "preprocess", "inference", "to_subject", "postprocess", "regions", "write"]
    accounted = 0.0
    for name in stages:
        if name in timings:
            accounted += timings[name]
            rows.append(f"| {name} | {timings[name]:.2f} | {100 * timings[name] / wall:.0f} % |")
    rows.append(f"| imports + start-up (rest of the wall time) | {wall - accounted:.2f} | {100 * (wall - accounted) / wall:.0f} % |")
    detail = timings.get("preprocess_stages", {})
    if detail:
        rows.append("| preprocess detail | " + ", ".join(f"{k} {v:.2f}" for k, v in detail.items() if k != "total") + " | |")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", nargs="+", default=["model", "baseline"], choices=sorted(METHOD_OPTIONS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--model", default="default",
                        help="model name or .pt path for --method model (e.g. random weights of the default "
                             "architecture, to time inference before trained weights exist)")
    args = parser.parse_args(argv)
    if not HEAD.exists():
        print(f"{HEAD} is absent; nothing to measure.")
        return 1
    from wmhkit.segmentation import available_models

    methods = [m for m in args.method
               if not m.startswith("model") or args.model != "default" or "default" in available_models()]
    skipped = sorted(set(args.method) - set(methods))
    lines = [
        "# `wmhkit segment`: end-to-end time and peak memory",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GB RAM,"
        f" no GPU; {platform.python_implementation()} {platform.python_version()}, torch threads 2. The machine is shared"
        " with other jobs: the 1-minute load average before each run is given (2.0 = both cores busy).",
        "",
        environment_line(),
        "",
        f"Command: `python benchmarks/segment_speed.py --method {' '.join(args.method)} --repeats {args.repeats}"
        + (f" --model {args.model}" if args.model != "default" else "") + "`"
        " (each run is a fresh `python -m wmhkit segment IMAGE --out DIR --method METHOD` process under"
        " `/usr/bin/time -v`; load to written outputs, regional table included).",
        "",
        "Targets (docs/results.md): real 1.75 mm head <= 10 s and <= 1.2 GB; 512 x 512 x 300 input < 3 GB.",
        "",
    ]
    if skipped:
        lines += [f"Not measured: method {', '.join(skipped)} (no default model installed yet).", ""]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = [("real head 137x137x93, 1.75 mm, LAS, float64", HEAD)]
        if not args.skip_large and HEAD_1MM.exists():
            inputs.append(("512x512x300, 0.5x0.5x0.8 mm, int16 (resampled real head)", make_large_input(tmp / "large_T1w.nii")))
        for method in methods:
            for label, path in inputs:
                runs = [run_once(path, method, tmp / f"out-{method}-{i}", args.model) for i in range(args.repeats)]
                best = min(runs, key=lambda r: r["wall_s"])
                model_note = "" if not method.startswith("model") else f" (model {args.model})"
                lines += [
                    f"## {method}{model_note}: {label}",
                    "",
                    "| run | wall (s) | peak RSS (GB) | load avg before | lesion (mL) |",
                    "|---|---|---|---|---|",
                ]
                lines += [
                    f"| {i + 1} | {r['wall_s']:.2f} | {r['peak_rss_gb']:.2f} | {r['load_avg_before']:.1f} | {r['lesion_ml']:.2f} |"
                    for i, r in enumerate(runs)
                ]
                lines += ["", f"Stage times of the fastest run ({best['wall_s']:.2f} s):", "", "| stage | s | share |",
                          "|---|---|---|"]
                lines += stage_table(best["timings"], best["wall_s"]) + [""]
                if best["rss_after"]:
                    lines += ["Peak RSS of the process after each stage (GB): " + ", ".join(
                        f"{k} {v:.2f}" for k, v in best["rss_after"].items() if v is not None) + " (write: the whole run).", ""]
                print(f"{method} {label}: " + ", ".join(f"{r['wall_s']:.1f} s / {r['peak_rss_gb']:.2f} GB" for r in runs))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
