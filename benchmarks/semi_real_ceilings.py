"""What the T1 itself allows on the semi-real benchmark: two intensity oracles.

The cases are those of ``semi_real.py`` (the held-out real lesion masks placed in the held-out
real head at each contrast). Both oracles read the T1 as a ratio to the local white-matter level
(a normalised 6 mm Gaussian average of white-matter-like voxels), on the head's own grid.

1. **Location oracle** (as in ``segment_ceilings.py``): told where every lesion is, to within one
   voxel, it labels the voxels there darker than the midpoint between normal white matter and
   the lesions' median level. It measures how far soft borders, texture and the head's own
   intensity variation let anyone draw the lesions that are known to be there.
2. **Intensity-only oracle**: not told where; it labels every white-matter voxel (the region the
   masks were placed in, taken from the unmodified head) whose ratio, smoothed by a Gaussian of
   ``sigma`` voxels (0: none), lies below a cut, and it is given the cut with the best Dice for
   each case. Its white matter is that of the unmodified head (ratio >= :data:`NORMAL_RATIO`
   inside the region the masks were placed in), so it is also told which voxels were normal white
   matter before the lesions darkened them. The same cut on the unmodified head shows what that reading marks in healthy white
   matter. It measures how separable mild lesions are from normal white matter by darkness alone:
   a method must use shape and context to do better.

Neither is a strict bound. Usage::

    python benchmarks/semi_real_ceilings.py [--contrasts 0.2 0.4 0.7] [--sigmas 0 1] [--out-suffix S]

Writes ``benchmarks/results/semi_real_ceilings<S>.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_environment import environment_line, markdown_table  # noqa: E402
from segment_ceilings import oracle_row, white_matter_ratio  # noqa: E402
from semi_real import REAL, RESULTS, ROOT, darkening_percent, lesioned_case  # noqa: E402

CUTS = np.round(np.arange(0.70, 1.001, 0.005), 3)
#: The intensity-only oracle reads voxels at or above this ratio in the unmodified head (its white matter).
NORMAL_RATIO = 0.9


def smoothed_ratios(t1, prepared, sigmas) -> dict:
    """T1 over its local white-matter level (about 1 in normal white matter), smoothed by each sigma (voxels)."""
    from scipy import ndimage

    ratio = white_matter_ratio(t1, prepared.intensity_levels, np.zeros(t1.shape[:3], bool))
    return {sigma: ndimage.gaussian_filter(ratio, sigma) if sigma > 0 else ratio for sigma in sigmas}


def best_cut(ratio: np.ndarray, truth: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """The cut with the highest voxel Dice when ``region & (ratio < cut)`` is labelled: (cut, Dice)."""
    inside = ratio[region]
    lesion = truth[region]
    # counts of lesion and normal voxels below each cut, from one sorted pass
    below_lesion = np.searchsorted(np.sort(inside[lesion]), CUTS)
    below_normal = np.searchsorted(np.sort(inside[~lesion]), CUTS)
    outside = int(truth[~region].sum())  # lesion voxels the region misses count as misses
    dice = 2 * below_lesion / np.maximum(below_lesion + below_normal + lesion.sum() + outside, 1)
    k = int(np.argmax(dice))
    return float(CUTS[k]), float(dice[k])


def case_rows(head_path: Path, mask_path: Path, contrast: float, work: Path, sigmas, healthy_ratios, region, prepared_head):
    """Both oracles' rows for one case; ``healthy_ratios`` (by sigma) and ``region`` come from the unmodified head."""
    from wmhkit.stats.overlap import evaluate_segmentation
    from wmhkit.synth.real_masks import stem

    t1_path, reference = lesioned_case(head_path, mask_path, contrast, work)
    t1 = nib.load(t1_path)
    truth = np.asanyarray(reference.dataobj) > 0
    voxel_ml = float(np.prod(t1.header.get_zooms()[:3])) / 1000.0
    base = {"head": stem(head_path), "mask": stem(mask_path), "contrast": contrast,
            "darkening_percent": darkening_percent(head_path, t1_path, reference),
            "reference_ml": round(float(truth.sum() * voxel_ml), 2)}
    location = oracle_row(t1, reference, reaches=(1,))
    rows = [{**base, "oracle": "location (1 voxel)", "sigma_vox": np.nan, "cut": np.nan,
             "dice": location["oracle1_dice"], "lesion_f1": location["oracle1_lesion_f1"],
             "avd_percent": location["oracle1_avd_percent"], "healthy_ml": np.nan}]
    for sigma, ratio in smoothed_ratios(t1, prepared_head, sigmas).items():
        cut, _ = best_cut(ratio, truth, region)
        found = nib.Nifti1Image((region & (ratio < cut)).astype(np.uint8), t1.affine)
        scores = evaluate_segmentation(reference, found)
        healthy_ml = float((region & (healthy_ratios[sigma] < cut)).sum() * voxel_ml)
        rows.append({**base, "oracle": "intensity only", "sigma_vox": sigma, "cut": cut, "dice": scores["dice"],
                     "lesion_f1": scores["lesion_f1"], "avd_percent": scores["avd_percent"],
                     "healthy_ml": round(healthy_ml, 2)})
    for row in rows:
        print({k: row[k] for k in ("mask", "contrast", "oracle", "sigma_vox", "cut", "dice", "healthy_ml")}, flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contrasts", nargs="+", type=float, default=[0.2, 0.4, 0.7])
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.0, 1.0])
    parser.add_argument("--out-suffix", default="")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from wmhkit.io import check_img, code_fingerprint
    from wmhkit.synth.real_masks import HELD_OUT_HEADS, real_mask_paths, stem
    from wmhkit.train.recipe import _prepared_head, head_white_matter

    heads = [h for h in sorted(REAL.glob("*.nii*")) if stem(h) in HELD_OUT_HEADS]
    masks = real_mask_paths(role="held_out")
    if not heads or not masks:
        print("semi_real_ceilings: the real masks or the held-out head are missing (../shared/data).")
        return 1
    work = ROOT / "benchmarks" / "_work" / "semi_real" / code_fingerprint()
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for head_path in heads:
        head = check_img(head_path)
        prepared = _prepared_head(str(head_path))
        healthy = smoothed_ratios(head, prepared, [0.0, *args.sigmas])
        # normal white matter of the unmodified head (its partial-volume rims left out)
        region = head_white_matter(head, prepared) & (healthy[0.0] >= NORMAL_RATIO)
        for mask_path in masks:
            for contrast in args.contrasts:
                rows.extend(case_rows(head_path, mask_path, contrast, work, args.sigmas, healthy, region, prepared))
                pd.DataFrame(rows).to_csv(RESULTS / f"semi_real_ceilings{args.out_suffix}.csv", index=False,
                                          float_format="%.4f")
    write_table(pd.DataFrame(rows), args)
    return 0


def write_table(table: pd.DataFrame, args) -> Path:
    table = table.assign(sigma_vox=table["sigma_vox"].fillna(-1))
    keys = ["oracle", "sigma_vox"]
    metrics = {"darkening_percent": "median", "cut": "mean", "dice": "mean", "lesion_f1": "mean",
               "avd_percent": "median", "healthy_ml": "mean"}

    def summary(by) -> str:
        grouped = table.groupby(by).agg({**metrics, "mask": "count"}).rename(columns={"mask": "cases"}).reset_index()
        grouped["sigma_vox"] = grouped["sigma_vox"].map(lambda s: "" if s < 0 else f"{s:g}")
        return markdown_table(grouped.round(3))

    command = " ".join(["python benchmarks/semi_real_ceilings.py", *sys.argv[1:]])
    text = [
        "# Semi-real benchmark: what the T1 itself allows (intensity oracles)", "",
        environment_line(), "",
        f"Machine: {os.cpu_count()} CPU cores. Command: `{command}`. The cases of `semi_real.py`: the held-out"
        " real lesion masks placed in the held-out head. Location oracle: told where each lesion is (within one"
        " voxel), labels voxels darker than the midpoint between local white matter and the lesions' median level."
        " Intensity only: every white-matter voxel whose ratio to the local white-matter level (smoothed by"
        " sigma voxels) lies below the cut that gives this case its best Dice; healthy mL: what that cut marks"
        " in the white matter of the unmodified head. Means over cases (AVD: median).", "",
        "## By oracle", "", summary(keys), "",
        "## By oracle and contrast", "", summary(keys + ["contrast"]), "",
        "## Every case", "", markdown_table(table.round(3)), "",
    ]
    out = RESULTS / f"semi_real_ceilings{args.out_suffix}.md"
    out.write_text("\n".join(text))
    return out


if __name__ == "__main__":
    sys.exit(main())
