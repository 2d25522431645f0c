"""End-to-end time and peak memory of ``wmhkit segment``, each stage's share, against its targets.

Runs the command line in a fresh process per run (imports, model load, the six stages of
:func:`wmhkit.segment` and the written outputs, regional table included) under
``/usr/bin/time -v``, and reads each stage's wall and CPU seconds and the peak memory after it from
the ``<prefix>_wmh.json`` the run writes (``timings_s``, ``cpu_s``, ``peak_rss_gb_after``).

Inputs (``../shared/data/real_t1``, or ``$WMHKIT_REAL_T1_DIR``) and targets (issue 24, 2 idle cores):

* the typical 1 mm heads (``head_t1_conformed_1mm``, 256^3 uint8; ``head_t1_1mm_colin27``):
  <= 5 s and <= 1.0 GB;
* the 0.7 mm head (``head_t1_0p7mm_studyforrest``, 274 x 384 x 384 int16): <= 8 s and <= 1.2 GB;
* the 1.75 mm head (``head_t1_1p75mm``): <= 0.25 x the wall time of the authors' tool run beside
  it (not run here: time it separately and compare with this table's line);
* a 512 x 512 x 300 input (the 1 mm head resampled to 0.5 x 0.5 x 0.8 mm, int16; ``--large``): < 3 GB.

Usage::

    python benchmarks/segment_speed.py [--method model baseline ...] [--repeats 3] [--large]
        [--inputs head_t1_conformed_1mm ...] [--model default] [--out benchmarks/results/segment_speed.md]

Run it on an idle machine: the 1-minute load average before each run is recorded beside it
(2.0 = both cores busy), and the table reports the fastest run of each input. Wall time is what
the targets are about; CPU seconds (all threads) barely change when other jobs share the machine,
so they tell a busy machine's run apart from a slow stage.
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
RESULTS = ROOT / "benchmarks" / "results" / "segment_speed.md"
#: Input name -> (description, target wall s, target peak RSS GB); None: no target of that kind.
INPUTS = {
    "head_t1_conformed_1mm": ("real head 256^3, 1 mm, LIA, uint8", 5.0, 1.0),
    "head_t1_1mm_colin27": ("real head 181 x 217 x 181, 1 mm, RAS, uint8", 5.0, 1.0),
    "head_t1_0p7mm_studyforrest": ("real head 274 x 384 x 384, 0.7 mm, LPS, int16", 8.0, 1.2),
    "head_t1_1p75mm": ("real head 137^2 x 93, 1.75 mm, LAS, float64 (target: <= 0.25 x the authors' tool)", None, 1.2),
}
LARGE = ("512 x 512 x 300, 0.5 x 0.5 x 0.8 mm, int16 (the 1 mm head resampled)", None, 3.0)
#: Stages of wmhkit.segment (wmhkit.segmentation.pipeline) and the write, in order (``to_input``: inputs
#: finer than 0.85 mm only, which run on their working grid).
STAGES = ("load", "prepare", "infer", "postprocess", "quantify", "to_input", "write")
#: Everything in the results file from this line on is hand-written (measurements this script does
#: not make, such as what the working grid changed on the 0.7 mm head) and kept when it rewrites the file.
NOTES_MARKER = "<!-- Hand-written notes: segment_speed.py keeps everything below this line. -->"


def make_large_input(path: Path) -> Path:
    """The 1 mm head resampled (trilinear) to a 512 x 512 x 300 grid of 0.5 x 0.5 x 0.8 mm, int16."""
    from wmhkit.preprocess.resampling import resample_array

    img = nib.load(str(REAL / "head_t1_conformed_1mm.nii.gz"))
    data = np.asanyarray(img.dataobj).astype(np.float32)
    sizes = np.array([0.5, 0.5, 0.8])
    shape = (512, 512, 300)
    centre = img.affine @ np.r_[(np.array(img.shape) - 1) / 2.0, 1.0]
    affine = np.diag([-sizes[0], sizes[1], sizes[2], 1.0])  # LAS, 0.5 x 0.5 x 0.8 mm
    affine[:3, 3] = centre[:3] - affine[:3, :3] @ ((np.array(shape) - 1) / 2.0)
    large = resample_array(data, img.affine, shape, affine, order=1)
    nib.save(nib.Nifti1Image(np.round(large * 16).astype(np.int16), affine), str(path))
    return path


def cli_options(method: str) -> list[str]:
    """``wmhkit segment`` options of a benchmark method (:data:`segment_accuracy.METHOD_OPTIONS`)."""
    options = METHOD_OPTIONS[method]
    out = ["--method", options["method"]]
    out += ["--space", options["space"]] if "space" in options else []
    out += ["--flip-average"] if options.get("flip_average") else []
    return out


def run_once(path: Path, method: str, out_dir: Path, model: str = "default") -> dict:
    """One ``wmhkit segment`` process: wall time, peak RSS, and each stage's wall, CPU and memory."""
    load = os.getloadavg()[0]
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "wmhkit", "segment", str(path), "--out", str(out_dir),
               "--model", model, *cli_options(method)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"wmhkit segment failed:\n{proc.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", proc.stderr).group(1)) for kind in ("User", "System"))
    from wmhkit.io import output_paths

    summary = json.loads(output_paths(path, out_dir).summary_json.read_text())
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_gb": rss_kb / 1024**2, "load_avg_before": load,
            "timings": summary["timings_s"], "cpu": summary.get("cpu_s", {}),
            "rss_after": summary.get("peak_rss_gb_after", {}), "lesion_ml": summary["lesion_ml"]}


def stage_table(run: dict) -> list[str]:
    """Each stage's wall seconds, share of the run's wall time, CPU seconds and peak memory after it."""
    timings, cpu, rss, wall = run["timings"], run["cpu"], run["rss_after"], run["wall_s"]
    rows = ["| stage | wall (s) | share | CPU (s) | peak RSS after (GB) |", "|---|---|---|---|---|"]
    accounted = 0.0
    for name in STAGES:
        if name in timings:
            accounted += timings[name]
            after = f"{rss[name]:.2f}" if rss.get(name) is not None else ""
            rows.append(f"| {name} | {timings[name]:.2f} | {100 * timings[name] / wall:.0f} % | "
                        f"{cpu.get(name, float('nan')):.2f} | {after} |")
    rest = wall - accounted
    rows.append(f"| interpreter, imports, exit (rest of the wall time) | {rest:.2f} | {100 * rest / wall:.0f} % | | |")
    detail = timings.get("prepare_stages", {})
    if detail:
        rows.append("| prepare detail (wall) | " + ", ".join(f"{k} {v:.2f}" for k, v in detail.items() if k != "total")
                    + " | | | |")
    return rows


def _verdict(value: float, target: float | None) -> str:
    return "" if target is None else (" (meets" if value <= target else " (misses") + f" <= {target:g})"


def report(method: str, label: str, targets: tuple, runs: list[dict], model: str) -> list[str]:
    """The section of one method and input: every run, then the fastest run's stages."""
    _, target_s, target_gb = targets
    best = min(runs, key=lambda r: r["wall_s"])
    model_note = f" (model {model})" if method.startswith("model") else ""
    lines = [f"## {method}{model_note}: {label}", "",
             "| run | wall (s) | CPU (s) | peak RSS (GB) | load avg before | lesion (mL) |", "|---|---|---|---|---|---|"]
    lines += [f"| {i + 1} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['peak_rss_gb']:.2f} | {r['load_avg_before']:.1f} | "
              f"{r['lesion_ml']:.2f} |" for i, r in enumerate(runs)]
    lines += ["", f"Fastest run: {best['wall_s']:.2f} s{_verdict(best['wall_s'], target_s)}, peak "
              f"{max(r['peak_rss_gb'] for r in runs):.2f} GB over the runs{_verdict(max(r['peak_rss_gb'] for r in runs), target_gb)}.",
              "", *stage_table(best), ""]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", nargs="+", default=["model", "baseline"], choices=sorted(METHOD_OPTIONS))
    parser.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", action="store_true", help="also the 512 x 512 x 300 input (memory target < 3 GB)")
    parser.add_argument("--model", default="default",
                        help="model name or .pt path for the model methods (e.g. random weights of the default "
                             "architecture, to time inference before trained weights exist)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results table (default %(default)s)")
    args = parser.parse_args(argv)
    inputs = [(INPUTS[name], REAL / f"{name}.nii.gz") for name in args.inputs if (REAL / f"{name}.nii.gz").exists()]
    if not inputs:
        print(f"No input of {args.inputs} in {REAL}; nothing to measure.")
        return 1
    from wmhkit.segmentation import available_models

    methods = [m for m in args.method
               if not m.startswith("model") or args.model != "default" or "default" in available_models()]
    lines = [
        "# `wmhkit segment`: end-to-end time, peak memory and each stage's share",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 1024**3:.0f} GB"
        f" RAM, no GPU; {platform.python_implementation()} {platform.python_version()}. The 1-minute load average"
        " before each run is given (2.0 = both cores busy): numbers from a busy machine are not the targets' numbers.",
        "",
        environment_line(),
        "",
        f"Command: `python benchmarks/segment_speed.py --method {' '.join(args.method)} --inputs {' '.join(args.inputs)}"
        f" --repeats {args.repeats}{' --large' if args.large else ''}"
        + (f" --model {args.model}" if args.model != "default" else "") + "` (each run is a fresh"
        " `python -m wmhkit segment IMAGE --out DIR --method METHOD` process under `/usr/bin/time -v`: interpreter,"
        " imports, model load, the stages of `wmhkit.segment` and the written outputs, regional table included;"
        " stages: `wmhkit.segmentation.pipeline`).",
        "",
        "Targets (issue 24, 2 idle cores): 1 mm heads <= 5 s and <= 1.0 GB; the 0.7 mm head <= 8 s and <= 1.2 GB;"
        " the 1.75 mm head <= 0.25 x the authors' tool on its own example image (timed beside this table, not by"
        " it); the 512 x 512 x 300 input < 3 GB. GB here are GiB (`Maximum resident set size` / 1024^2).",
        "",
    ]
    skipped = sorted(set(args.method) - set(methods))
    if skipped:
        lines += [f"Not measured: method {', '.join(skipped)} (no default model installed).", ""]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.large and (REAL / "head_t1_conformed_1mm.nii.gz").exists():
            inputs.append((LARGE, make_large_input(tmp / "large_T1w.nii")))
        for method in methods:
            for targets, path in inputs:
                runs = [run_once(path, method, tmp / f"out-{method}-{i}", args.model) for i in range(args.repeats)]
                lines += report(method, targets[0], targets, runs, args.model)
                print(f"{method} {path.name}: " + ", ".join(
                    f"{r['wall_s']:.1f} s / {r['cpu_s']:.1f} s CPU / {r['peak_rss_gb']:.2f} GB" for r in runs), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = args.out.read_text() if args.out.exists() else ""
    notes = previous[previous.index(NOTES_MARKER):] if NOTES_MARKER in previous else ""
    args.out.write_text("\n".join(lines) + "\n" + notes)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
