"""Super-resolution loss vs naive up-sampled labels: same phantoms, same budget, 3/5/6 mm slices.

For each slice thickness, one set of phantoms (axial FLAIR labels of that thickness, no gap) is
built once and two models are trained on it with identical settings and seeds: ``loss="sr"``
(BCE + soft Dice between A(p) and the thick label) and ``loss="naive"`` (the label up-sampled
to 1 mm by nearest neighbour). Both are scored at 1 mm on held-out phantoms of the same
thickness against the exact lesion masks (MNI brain box). A figure shows both predictions on
one coronal slice, where thick axial slices make naive labels blocky.

Usage (the small budget the committed table used; raise --steps / --phantoms when you can)::

    python benchmarks/train_sr_vs_naive.py --thickness 3 5 6 --phantoms 6 --steps 300 \
        --out-dir runs/bench_sr --table benchmarks/results/train_sr_vs_naive.md
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from wmhkit.segmentation.network import load_checkpoint, predict_volume
from wmhkit.train import load_config, train
from wmhkit.train.cases import load_case
from wmhkit.train.loop import validate
from bench_environment import environment_line


def _config(thickness: float, args, loss: str, cache: Path) -> dict:
    return load_config(None, {
        "name": f"bench-{thickness:g}mm-{loss}",
        "data": {"phantoms": args.phantoms, "validation_phantoms": args.validation, "cache_dir": str(cache),
                 "phantom_seed_start": 2000, "validation_seed_start": 910000,
                 "phantom_options": {"voxel_size_mm": args.voxel_mm, "flair_slice_mm": [thickness, thickness],
                                     "flair_gap_mm": [0.0, 0.0], "orientations": ["axial"],
                                     "skull_fraction": 0.0, "healthy_fraction": 0.0,
                                     "lesion_burden": args.burden}},
        "training": {"steps": args.steps, "loss": loss, "validate_every": args.steps,
                     "checkpoint_every": args.steps, "batch_patches": 4, "patch_size": args.patch,
                     "lesion_fraction": 0.9, "workers": 1, "threads": 1},
    })


def _figure(rows: list, path: Path) -> None:
    from wmhkit.plotting.training import plot_slice_panels

    panels = []
    for thickness, case, probs in rows:
        index = np.argwhere(case.lesion_mni > 0)
        y = int(np.median(index[:, 1])) if len(index) else case.t1.shape[1] // 2
        panels.append([(f"{thickness:g} mm: {title}", image[:, y, :], "gray" if title == "T1" else "magma")
                       for title, image in (("T1", case.t1), ("exact lesion", case.lesion_mni),
                                            ("SR loss p", probs["sr"]), ("naive loss p", probs["naive"]))])
    plot_slice_panels(panels).savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thickness", type=float, nargs="+", default=[3.0, 5.0, 6.0])
    parser.add_argument("--phantoms", type=int, default=6)
    parser.add_argument("--validation", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--voxel-mm", type=float, default=1.0)
    parser.add_argument("--patch", type=int, nargs=3, default=[64, 64, 16], help="patch size (voxels)")
    parser.add_argument("--burden", type=float, nargs=2, default=[1.5, 3.0],
                        help="lesion burden range of the phantoms (more lesions: a stronger signal per step)")
    parser.add_argument("--out-dir", default="runs/bench_sr")
    parser.add_argument("--table", default="benchmarks/results/train_sr_vs_naive.md")
    args = parser.parse_args()
    out_dir = Path(args.out_dir)
    results, figure_rows = [], []
    for thickness in args.thickness:
        cache = out_dir / f"cache-{thickness:g}mm"
        probs, val_case = {}, None
        for loss in ("sr", "naive"):
            started = time.perf_counter()
            result = train(_config(thickness, args, loss, cache), out_dir / f"{thickness:g}mm-{loss}", resume=True)
            net = load_checkpoint(result.model_path)[0]
            val_dirs = result.cases.loc[result.cases["role"] == "validation", "case_dir"].tolist()
            table = validate(net, val_dirs)
            results.append({"thickness_mm": thickness, "loss": loss, "dice_1mm": table["dice"].mean(),
                            "lesion_f1": table["lesion_f1"].mean(), "avd_pct": table["avd_pct"].mean(),
                            "train_s": time.perf_counter() - started})
            print(results[-1], flush=True)
            val_case = load_case(val_dirs[0], mmap=False)
            probs[loss] = predict_volume(net, val_case.t1)
        figure_rows.append((thickness, val_case, probs))
    frame = pd.DataFrame(results)
    wide = frame.pivot(index="thickness_mm", columns="loss", values="dice_1mm")
    wide["sr_minus_naive"] = wide["sr"] - wide["naive"]
    figure = Path(args.table).with_suffix(".png")
    _figure(figure_rows, figure)
    text = [
        "# Super-resolution loss vs naive up-sampled labels",
        "",
        environment_line(),
        "",
        f"Machine: {os.cpu_count()} CPU cores, no GPU. Command: `python "
        f"benchmarks/train_sr_vs_naive.py --thickness {' '.join(f'{t:g}' for t in args.thickness)} --phantoms "
        f"{args.phantoms} --validation {args.validation} --steps {args.steps} --voxel-mm {args.voxel_mm:g} --patch {' '.join(map(str, args.patch))} "
        f"--burden {args.burden[0]:g} {args.burden[1]:g}`.",
        "",
        f"Per thickness: {args.phantoms} training phantoms (axial labels, no gap, {args.voxel_mm:g} mm T1), "
        f"{args.validation} held-out phantoms (lesion burden {args.burden[0]:g}-{args.burden[1]:g}); both losses get "
        f"the same cases, seeds and {args.steps} steps of 4 patches ({'x'.join(map(str, args.patch))}). Dice at 1 mm on the MNI brain box against the exact masks.",
        "",
        frame.round(3).to_string(index=False),
        "",
        "Dice at 1 mm (SR minus naive):",
        "",
        wide.round(3).to_string(),
        "",
        f"Figure: `{figure.name}` (coronal slice of a held-out phantom; columns T1, exact lesion, SR p, naive p).",
        "",
    ]
    Path(args.table).write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
