"""Post-processing sweep: threshold x cortex-contact share x minimum lesion size, phantoms and healthy heads.

Each validation phantom (seeds 950000+, 1 mm, made as in ``segment_accuracy.py``; settings are
chosen here, so the test seeds 10000+ of ``segment_accuracy.py`` stay untouched) and each real head of
``../shared/data/real_t1`` is segmented once with the chosen model (default: the shipped one); the probability map is then
thresholded and cleaned with every setting (:func:`wmhkit.segmentation.postprocess.threshold_and_clean`)
and scored with the MICCAI 2017 definitions. The network runs once per case; for each threshold
the cortex-contact rule (:mod:`wmhkit.segmentation.cortex`) is applied on the network's grid with
each ``--contacts`` share (1 = off), exactly as ``wmhkit.segment`` does, before the map goes back
to the input grid. The trade-off it shows: higher settings remove the false positives in healthy
heads and cost recall on phantoms.

Usage::

    python benchmarks/segment_postprocess_sweep.py [--n 12] [--model default] [--flip-average on|off]
        [--thresholds 0.3 0.4 ...] [--contacts 1 0.3 0.2 0.1]

Writes ``benchmarks/results/segment_postprocess_sweep.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from bench_environment import environment_line, markdown_table
from segment_accuracy import BURDENS, RESULTS, cached_phantom

THRESHOLDS = (0.3, 0.4, 0.45, 0.5, 0.6, 0.7)
MIN_SIZES_MM3 = (0, 2, 5, 10, 20)


def probability_maps(t1, loaded, flip_average: bool, thresholds, contacts):
    """Yield ``(threshold, contact, probability on the input grid, its affine)``, the network run once.

    The same steps as :func:`wmhkit.segmentation.segment` for the model's own space: the
    probability on the network's grid (:mod:`wmhkit.segmentation.spaces`), the cortex-contact rule
    there, back to the input grid, 0 outside the brain mask.
    """
    from wmhkit.preprocess import prepare_t1
    from wmhkit.segmentation.cortex import drop_cortex_attached
    from wmhkit.segmentation.inference import network_probability
    from wmhkit.segmentation.spaces import grid_for

    prepared = prepare_t1(t1, mni_t1=False)
    grid = grid_for(prepared, loaded.space)
    probability, _ = network_probability(grid, loaded.net, flip_average=flip_average)  # no threshold: no rule yet
    brain = np.asanyarray(prepared.brain_mask.dataobj) > 0
    for threshold in thresholds:
        for contact in contacts:
            kept = probability.copy()
            drop_cortex_attached(kept, grid.t1, grid.envelope, grid.ventricle_zone, threshold, contact)
            on_input = grid.to_input_grid(kept)
            on_input[~brain] = 0.0
            yield threshold, contact, on_input, prepared.img.affine


def main(argv=None) -> int:
    from wmhkit.segmentation import load_model
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
    parser.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS),
                        help="probability thresholds to try")
    parser.add_argument("--contacts", type=float, nargs="+", default=[1.0, 0.3, 0.2, 0.1],
                        help="cortex-contact shares to try (1 = rule off)")
    parser.add_argument("--out-suffix", default="", help="written as segment_postprocess_sweep<SUFFIX>.md/.csv")
    args = parser.parse_args(argv)
    inputs = [(f"phantom {args.first_seed + k}", *cached_phantom(args.first_seed + k, BURDENS[k % 3], make_phantom))
              for k in range(args.n)]
    real_dir = default_real_t1_dir()
    heads = sorted(Path(real_dir).glob("*.nii*")) if real_dir else []
    inputs += [(path.name.split(".")[0], nib.load(str(path)), None) for path in heads]
    rows = []
    loaded = load_model(args.model)
    flip = {"model": loaded.flip_average, "on": True, "off": False}[args.flip_average]
    for name, t1, truth in inputs:
        voxel_mm3 = float(np.prod(t1.header.get_zooms()[:3]))
        for threshold, contact, probability, affine in probability_maps(t1, loaded, flip, args.thresholds, args.contacts):
            for min_mm3 in MIN_SIZES_MM3:
                mask, _, _ = threshold_and_clean(probability, voxel_mm3, threshold, min_mm3)
                row = {"case": name, "max_cortex_contact": contact, "threshold": threshold, "min_lesion_mm3": min_mm3,
                       "lesion_ml": float(mask.sum()) * voxel_mm3 / 1000.0}
                if truth is not None:
                    row.update(evaluate_segmentation(truth, nib.Nifti1Image(mask, affine)))
                rows.append(row)
        print(name, flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(RESULTS / f"segment_postprocess_sweep{args.out_suffix}.csv", index=False, float_format="%.4f")
    phantoms = table[table["case"].str.startswith("phantom")]
    keys = ["max_cortex_contact", "threshold", "min_lesion_mm3"]
    summary = phantoms.groupby(keys).agg(dice=("dice", "mean"), lesion_f1=("lesion_f1", "mean"),
                                         lesion_recall=("lesion_recall", "mean"),
                                         median_avd_percent=("avd_percent", "median"),
                                         median_hd95_mm=("hd95_mm", "median"))
    healthy = table[~table["case"].str.startswith("phantom")].pivot_table(index=keys, columns="case", values="lesion_ml")
    healthy.columns = [f"{c} (mL)" for c in healthy.columns]
    summary = summary.join(healthy).round(3).reset_index()
    text = [
        f"# Post-processing sweep: cortex-contact share x threshold x minimum lesion size (model {args.model}, flip averaging {args.flip_average})",
        "",
        f"Machine: {os.cpu_count()} CPU cores, no GPU. Command: `python benchmarks/segment_postprocess_sweep.py "
        f"--n {args.n} --first-seed {args.first_seed} --model {args.model} --flip-average {args.flip_average} "
        f"--thresholds {' '.join(f'{t:g}' for t in args.thresholds)} --contacts {' '.join(f'{c:g}' for c in args.contacts)}"
        f"{' --out-suffix ' + args.out_suffix if args.out_suffix else ''}`. Phantom columns: means over {args.n} "
        "1 mm validation phantoms (seeds "
        f"{args.first_seed}-{args.first_seed + args.n - 1}) except the medians; the real-head columns are the "
        "lesion volume found in each healthy head (target <= 2 mL). Default minimum lesion size: 5 mm^3; default cortex-contact share 0.2 (1 = rule off); each model declares its threshold (model card).",
        "",
        environment_line(),
        "",
        markdown_table(summary),
        "",
    ]
    (RESULTS / f"segment_postprocess_sweep{args.out_suffix}.md").write_text("\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
