"""Accuracy on held-out 1 mm phantoms: the trained model and the classical baseline side by side.

Phantoms come from :func:`wmhkit.synth.make_phantom` with seeds 10000 and up (never used in
training; the training recipe draws seeds below 10000), lesion burden cycling through 0.5, 1
and 2, random orientation, contrast, bias, noise and anatomy. Each is segmented by
:func:`wmhkit.segment` (regions off) and scored against its exact 1 mm lesion mask with the
MICCAI 2017 WMH challenge definitions (:func:`wmhkit.stats.overlap.evaluate_segmentation`):
Dice, 95 % Hausdorff (mm), absolute volume difference (%), lesion-wise recall and F1.

Usage::

    python benchmarks/segment_accuracy.py [--n 20] [--first-seed 10000] [--method model baseline]

Writes ``benchmarks/results/segment_accuracy.md`` and a per-phantom
``benchmarks/results/segment_accuracy.csv``. Targets (docs/results.md): Dice >= 0.80,
lesion F1 >= 0.70, AVD <= 15 %.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bench_environment import environment_line

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BURDENS = (0.5, 1.0, 2.0)
#: Phantoms are made once and reused between runs, in a folder named by wmhkit's code fingerprint
#: (``wmhkit.io.code_fingerprint``): phantoms made by other code are never scored again.
PHANTOM_CACHE = Path(os.environ.get("WMHKIT_BENCH_PHANTOMS", Path(tempfile.gettempdir()) / "wmhkit-bench-phantoms"))
#: Benchmark method names and the ``segment`` options they stand for ("model": the network in the
#: space it declares; "model_subject" / "model_mni": forced onto the input's own voxels or the MNI
#: grid; "model_flip": with left-right flip averaging and the threshold the model declares for it).
METHOD_OPTIONS = {"model": {"method": "model"}, "model_subject": {"method": "model", "space": "subject"},
                  "model_mni": {"method": "model", "space": "mni"},
                  "model_flip": {"method": "model", "flip_average": True},
                  "model_peak09": {"method": "model", "min_peak_probability": 0.9},
                  "model_speck30": {"method": "model", "max_speck_mm3": 30},
                  "baseline": {"method": "baseline"}}
METRICS = ("dice", "lesion_recall", "lesion_f1", "avd_percent", "hd95_mm")


def cached_phantom(seed: int, burden: float, make_phantom):
    """The phantom's T1 and exact lesion mask, made once and kept in :data:`PHANTOM_CACHE`."""
    import nibabel as nib

    from wmhkit.io import code_fingerprint

    folder = PHANTOM_CACHE / code_fingerprint() / f"seed-{seed}_burden-{burden:g}"
    t1_path, mask_path = folder / "t1.nii.gz", folder / "lesion_mask.nii.gz"
    if not (t1_path.exists() and mask_path.exists()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            phantom = make_phantom(seed=seed, lesion_burden=burden, voxel_size_mm=1.0)
        folder.mkdir(parents=True, exist_ok=True)
        nib.save(phantom.lesion_mask, str(mask_path))
        nib.save(phantom.t1, str(t1_path))
    return nib.load(str(t1_path)), nib.load(str(mask_path))


def evaluate(n: int, first_seed: int, methods: list[str], model: str, progress: Path | None = None) -> pd.DataFrame:
    from wmhkit.segmentation import segment
    from wmhkit.stats.overlap import evaluate_segmentation
    from wmhkit.synth import make_phantom

    rows = []
    for k in range(n):
        seed = first_seed + k
        burden = BURDENS[k % len(BURDENS)]
        t1, lesion_mask = cached_phantom(seed, burden, make_phantom)
        for method in methods:
            start = time.perf_counter()
            result = segment(t1, model=model, regions=False, **METHOD_OPTIONS[method])
            seconds = time.perf_counter() - start
            scores = evaluate_segmentation(lesion_mask, result.mask)
            rows.append({"seed": seed, "lesion_burden": burden, "method": method, "seconds": seconds,
                         "alignment_quality": result.alignment.quality, **scores})
            if progress is not None:  # rows so far, so that an interrupted run still leaves its numbers
                pd.DataFrame(rows).to_csv(progress, index=False, float_format="%.4f")
            print(f"seed {seed} burden {burden} {method}: dice {scores['dice']:.3f} F1 {scores['lesion_f1']:.3f} "
                  f"AVD {scores['avd_percent']:.1f} % ({scores['reference_ml']:.2f} -> {scores['prediction_ml']:.2f} mL)",
                  flush=True)
    return pd.DataFrame(rows)


def _model_settings(model: str) -> str:
    """The threshold and flip averaging the network rows ran with (the model declares them)."""
    from wmhkit.segmentation.models import load_model

    loaded = load_model(model)
    return (f"model {loaded.name} {loaded.version}: threshold {loaded.threshold:g}, "
            f"with flip averaging (model_flip) {loaded.flip_threshold:g}")


def summarise(table: pd.DataFrame, args) -> str:
    lines = [
        "# Segmentation accuracy on held-out phantoms",
        "",
        f"Machine: {os.cpu_count()} CPU cores, no GPU. Command: `python benchmarks/segment_accuracy.py --n {args.n}"
        f" --first-seed {args.first_seed} --method {' '.join(args.method)}`.",
        "",
        environment_line(),
        "",
        f"{table['seed'].nunique()} phantoms at 1 mm (`wmhkit.synth.make_phantom`, seeds {table['seed'].min()}-"
        f"{table['seed'].max()}, never used in training; lesion burden cycling {', '.join(map(str, BURDENS))}),"
        " scored against the exact 1 mm lesion mask with the MICCAI 2017 WMH challenge definitions"
        " (`wmhkit.stats.overlap.evaluate_segmentation`: Dice; HD95 in mm; AVD = |V_pred - V_ref| / V_ref;"
        " lesions = 26-connected components; recall = reference lesions touched; F1 with precision = predicted"
        " lesions touching the reference). Defaults: minimum lesion 5 mm^3; threshold 0.5 for the baseline;"
        f" {_model_settings(args.model)}.",
        "",
        "Targets: Dice >= 0.90 x the perfect-knowledge oracle on the same phantoms (`segment_ceilings.py --first-seed 10000`; 0.54 on the current ones), lesion F1 >= 0.70, AVD <= 15 %.",
        "",
        "| method | Dice mean (SD) | Dice median | lesion recall | lesion F1 | AVD % median | HD95 mm median | s / subject |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, group in table.groupby("method", sort=False):
        lines.append(
            f"| {method} | {group['dice'].mean():.3f} ({group['dice'].std():.3f}) | {group['dice'].median():.3f} | "
            f"{group['lesion_recall'].mean():.3f} | {group['lesion_f1'].mean():.3f} | {group['avd_percent'].median():.1f} | "
            f"{group['hd95_mm'].median():.1f} | {group['seconds'].mean():.1f} |"
        )
    lines += ["", "By lesion burden (mean Dice / mean lesion F1 / median AVD %):", "",
              "| method | burden | n | Dice | F1 | AVD % | reference mL (mean) | predicted mL (mean) |",
              "|---|---|---|---|---|---|---|---|"]
    for (method, burden), group in table.groupby(["method", "lesion_burden"], sort=False):
        lines.append(
            f"| {method} | {burden} | {len(group)} | {group['dice'].mean():.3f} | {group['lesion_f1'].mean():.3f} | "
            f"{group['avd_percent'].median():.1f} | {group['reference_ml'].mean():.2f} | {group['prediction_ml'].mean():.2f} |"
        )
    lines += ["", f"Per phantom: `benchmarks/results/{args.name}.csv`.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=10000)
    parser.add_argument("--method", nargs="+", default=["model", "baseline"], choices=sorted(METHOD_OPTIONS))
    parser.add_argument("--model", default="default")
    parser.add_argument("--name", default="segment_accuracy", help="results file stem")
    parser.add_argument("--summarise-only", action="store_true",
                        help="write the table from the rows already computed (the .partial.csv of an interrupted run)")
    parser.add_argument("--keep-other-methods", action="store_true",
                        help="merge with the rows of other methods already in the results CSV (same seeds)")
    args = parser.parse_args(argv)
    from wmhkit.segmentation import available_models

    methods = [m for m in args.method
               if not m.startswith("model") or args.model != "default" or "default" in available_models()]
    if not methods:
        print("No method to evaluate (no default model installed); use --method baseline.")
        return 1
    args.method = methods
    RESULTS.mkdir(parents=True, exist_ok=True)
    previous = RESULTS / f"{args.name}.csv"
    progress = RESULTS / f"{args.name}.partial.csv"
    if args.summarise_only:
        table = pd.read_csv(progress if progress.exists() and not previous.exists() else previous)
    else:
        table = evaluate(args.n, args.first_seed, methods, args.model, progress)
    if args.keep_other_methods and previous.exists():
        # Keep earlier rows of the methods not run now (e.g. the baseline, run before the model existed).
        earlier = pd.read_csv(previous)
        earlier = earlier[~earlier["method"].isin(methods) & earlier["seed"].isin(table["seed"])]
        table = pd.concat([table, earlier], ignore_index=True)
        args.method = list(dict.fromkeys(list(table["method"])))
    table.to_csv(RESULTS / f"{args.name}.csv", index=False, float_format="%.4f")
    text = summarise(table, args)
    (RESULTS / f"{args.name}.md").write_text(text)
    progress.unlink(missing_ok=True)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
