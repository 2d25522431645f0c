"""Post-processing sweep: probability threshold x minimum lesion size, phantoms and healthy heads.

Each validation phantom (seeds 950000+, 1 mm, made as in ``segment_accuracy.py``; settings are
chosen here, so the test seeds 10000+ of ``segment_accuracy.py`` stay untouched) and each real head of
``../shared/data/real_t1`` is segmented once with the chosen model (default: the shipped one); the probability map is then
thresholded and cleaned with every setting (:func:`wmhkit.segmentation.postprocess.threshold_and_clean`)
and scored with the MICCAI 2017 definitions. The trade-off it shows: higher settings remove the
false positives in healthy heads and cost recall on phantoms.

Usage::

    python benchmarks/segment_postprocess_sweep.py [--n 12] [--model default] [--flip-average on|off]

Writes ``benchmarks/results/segment_postprocess_sweep.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from segment_accuracy import BURDENS, RESULTS, cached_phantom

THRESHOLDS = (0.3, 0.4, 0.45, 0.5, 0.6, 0.7)
MIN_SIZES_MM3 = (0, 2, 5, 10, 20)


def _markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None) -> int:
    from wmhkit.segmentation import segment
    from wmhkit.segmentation.postprocess import threshold_and_clean
    from wmhkit.stats.overlap import evaluate_segmentation
    from wmhkit.synth import make_phantom
    from wmhkit.train.pipeline import default_real_t1_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--first-seed", type=int, default=950000)
    parser.add_argument("--model", default="default")
    parser.add_argument("--flip-average", choices=("model", "on", "off"), default="model",
                        help="left-right flip averaging (default: the model's own setting)")
    parser.add_argument("--out-suffix", default="", help="written as segment_postprocess_sweep<SUFFIX>.md/.csv")
    args = parser.parse_args(argv)
    inputs = [(f"phantom {args.first_seed + k}", *cached_phantom(args.first_seed + k, BURDENS[k % 3], make_phantom))
              for k in range(args.n)]
    real_dir = default_real_t1_dir()
    heads = sorted(Path(real_dir).glob("*.nii*")) if real_dir else []
    inputs += [(path.name.split(".")[0], nib.load(str(path)), None) for path in heads]
    rows = []
    for name, t1, truth in inputs:
        flip = {"model": None, "on": True, "off": False}[args.flip_average]
        result = segment(t1, method="model", model=args.model, regions=False, flip_average=flip)
        probability = np.asarray(result.probseg.dataobj, dtype=np.float32)
        voxel_mm3 = float(np.prod(result.probseg.header.get_zooms()[:3]))
        for threshold in THRESHOLDS:
            for min_mm3 in MIN_SIZES_MM3:
                mask, _, _ = threshold_and_clean(probability, voxel_mm3, threshold, min_mm3)
                row = {"case": name, "threshold": threshold, "min_lesion_mm3": min_mm3,
                       "lesion_ml": float(mask.sum()) * voxel_mm3 / 1000.0}
                if truth is not None:
                    row.update(evaluate_segmentation(truth, nib.Nifti1Image(mask, result.probseg.affine)))
                rows.append(row)
        print(name, flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(RESULTS / f"segment_postprocess_sweep{args.out_suffix}.csv", index=False, float_format="%.4f")
    phantoms = table[table["case"].str.startswith("phantom")]
    keys = ["threshold", "min_lesion_mm3"]
    summary = phantoms.groupby(keys).agg(dice=("dice", "mean"), lesion_f1=("lesion_f1", "mean"),
                                         lesion_recall=("lesion_recall", "mean"),
                                         median_avd_percent=("avd_percent", "median"),
                                         median_hd95_mm=("hd95_mm", "median"))
    healthy = table[~table["case"].str.startswith("phantom")].pivot_table(index=keys, columns="case", values="lesion_ml")
    healthy.columns = [f"{c} (mL)" for c in healthy.columns]
    summary = summary.join(healthy).round(3).reset_index()
    text = [
        f"# Post-processing sweep: threshold x minimum lesion size (model {args.model}, flip averaging {args.flip_average})",
        "",
        f"Machine: {os.cpu_count()} CPU cores, no GPU. Command: `python benchmarks/segment_postprocess_sweep.py "
        f"--n {args.n} --first-seed {args.first_seed} --model {args.model} --flip-average {args.flip_average}"
        f"{' --out-suffix ' + args.out_suffix if args.out_suffix else ''}`. Phantom columns: means over {args.n} "
        "1 mm validation phantoms (seeds "
        f"{args.first_seed}-{args.first_seed + args.n - 1}) except the medians; the real-head columns are the "
        "lesion volume found in each healthy head (target <= 2 mL). Default minimum lesion size: 5 mm^3; each model declares its threshold (model card).",
        "",
        _markdown(summary),
        "",
    ]
    (RESULTS / f"segment_postprocess_sweep{args.out_suffix}.md").write_text("\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
