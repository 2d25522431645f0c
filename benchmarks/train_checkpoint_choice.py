"""Which checkpoint to ship: models compared at 1 mm on 16 validation phantoms.

A training run keeps the checkpoint with the best validation Dice on its few validation
phantoms (3-4: the recipe's budget). That choice is noisy, so before shipping, candidate
checkpoints are compared here on 16 validation phantoms (seeds 900000-900015: the recipe's
validation range, never its training or test seeds), scored by ``wmhkit.train.loop.validate``
(MNI 1 mm brain box, inside the white-matter envelope, against the exact lesion masks).

Usage::

    python benchmarks/train_checkpoint_choice.py runs/default/model.pt \
        runs/default_ft/step1/best.pt runs/default_ft/step1/last.pt

Writes ``benchmarks/results/train_checkpoint_choice.md``.
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
from bench_environment import environment_line

CACHE = Path("runs/validation_cases")


def _build(seed: int) -> str:
    from wmhkit.train.cases import save_case
    from wmhkit.train.recipe import phantom_case

    folder = CACHE / f"phantom-{seed}"
    return str(folder) if folder.is_dir() else str(save_case(phantom_case(seed), CACHE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--phantoms", type=int, default=16)
    parser.add_argument("--out", default="benchmarks/results/train_checkpoint_choice.md")
    args = parser.parse_args()
    import torch

    from wmhkit.segmentation.network import load_checkpoint
    from wmhkit.train.loop import validate

    torch.set_num_threads(2)
    CACHE.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(2) as pool:
        folders = list(pool.map(_build, range(900000, 900000 + args.phantoms)))
    rows, per_case = [], {}
    for path in args.checkpoints:
        net, _, metadata = load_checkpoint(path)
        table = validate(net, folders)
        lesioned = table[table["true_voxels"] > 0]
        per_case[path] = lesioned.set_index("case_id")["dice"]
        rows.append({"checkpoint": path, "step": metadata.get("step", ""), "phantoms with lesions": len(lesioned),
                     "Dice mean": lesioned["dice"].mean(), "Dice median": lesioned["dice"].median(),
                     "lesion F1 mean": lesioned["lesion_f1"].mean(), "AVD % median": lesioned["avd_pct"].median()})
        print(rows[-1], flush=True)
    summary = pd.DataFrame(rows)
    text = [
        "# Checkpoint choice on 16 validation phantoms",
        "",
        environment_line(),
        "",
        f"Machine: {os.cpu_count()} CPU cores, no GPU. Command: `python benchmarks/train_checkpoint_choice.py "
        + " ".join(args.checkpoints) + "`.",
        "",
        f"Validation phantoms: seeds 900000-{900000 + args.phantoms - 1} (`wmhkit.train.recipe.phantom_case`); "
        "those without lesions are left out of the means. Scores at 1 mm on the MNI brain box inside the "
        "white-matter envelope (`wmhkit.train.loop.validate`).",
        "",
        summary.round(3).to_string(index=False),
        "",
        "Dice per phantom:",
        "",
        pd.DataFrame(per_case).round(3).to_string(),
        "",
    ]
    Path(args.out).write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
