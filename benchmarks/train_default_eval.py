"""Accuracy of a trained model at 1 mm on held-out phantoms, and its false positives on the real heads.

Every phantom is made with ``wmhkit.synth.make_phantom(seed)`` at its defaults (1 mm T1,
lesion burden 1.0) from seeds the training recipe never uses (990000 and up); the model runs
through the product path ``wmhkit.segment`` and is scored on the phantom's own T1 grid against
the exact lesion mask. The classical baseline (``method="baseline"``) is scored side by side.

Usage::

    python benchmarks/train_default_eval.py --model wmhkit/segmentation/weights/default.pt \
        --phantoms 4 --out benchmarks/results/train_default_eval.md
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from wmhkit import segment
from wmhkit.synth import make_phantom
from wmhkit.train.metrics import segmentation_scores
from wmhkit.train.pipeline import default_real_t1_dir
from bench_environment import environment_line


def evaluate(model: str, n_phantoms: int, seed_start: int, baseline: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for seed in range(seed_start, seed_start + n_phantoms):
        phantom = make_phantom(seed)
        truth = np.asarray(phantom.lesion_mask.dataobj) > 0
        methods = [("model", {"model": model})] + ([("baseline", {"method": "baseline"})] if baseline else [])
        for name, options in methods:
            started = time.perf_counter()
            result = segment(phantom.t1, regions=False, **options)
            seconds = time.perf_counter() - started
            scores = segmentation_scores(np.asarray(result.mask.dataobj), truth)
            voxel_ml = float(abs(np.linalg.det(phantom.t1.affine[:3, :3]))) / 1000.0
            rows.append({"seed": seed, "method": name, "dice": scores["dice"], "lesion_f1": scores["lesion_f1"],
                         "avd_pct": scores["avd_pct"], "true_ml": scores["true_voxels"] * voxel_ml,
                         "predicted_ml": result.lesion_ml, "seconds": seconds})
            print(rows[-1], flush=True)
    heads = []
    real_dir = default_real_t1_dir()
    for head in sorted(real_dir.glob("*.nii*")) if real_dir else []:
        result = segment(head, model=model, regions=False)
        heads.append({"head": head.name, "wmh_ml": result.lesion_ml})
        print(heads[-1], flush=True)
    return pd.DataFrame(rows), pd.DataFrame(heads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="wmhkit/segmentation/weights/default.pt")
    parser.add_argument("--phantoms", type=int, default=4)
    parser.add_argument("--seed-start", type=int, default=990000)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/train_default_eval.md")
    args = parser.parse_args()
    table, heads = evaluate(args.model, args.phantoms, args.seed_start, not args.no_baseline)
    summary = table.groupby("method")[["dice", "lesion_f1", "avd_pct", "seconds"]].mean().round(3)
    text = [
        "# Default model: accuracy at 1 mm on held-out phantoms, false positives on real heads",
        "",
        environment_line(),
        "",
        f"Machine: {os.cpu_count()} cores shared with other jobs, {platform.machine()}, no GPU. "
        f"Command: `python benchmarks/train_default_eval.py --model {args.model} --phantoms {args.phantoms}`.",
        "",
        "Phantoms: `make_phantom(seed)` defaults (1 mm T1, burden 1.0), seeds "
        f"{args.seed_start}-{args.seed_start + args.phantoms - 1} (never used in training); scored on the T1 grid "
        "against the exact lesion mask through `wmhkit.segment` (threshold 0.5, default post-processing).",
        "",
        "## Mean over phantoms",
        "",
        summary.to_string(),
        "",
        "## Per phantom",
        "",
        table.round(3).to_string(index=False),
        "",
        "## Healthy real heads (WMH should be <= 2 mL)",
        "",
        heads.round(3).to_string(index=False) if len(heads) else "(real heads not found)",
        "",
    ]
    Path(args.out).write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
