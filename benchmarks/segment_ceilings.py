"""Two ceilings on segmentation accuracy that no network can beat, measured on phantoms.

1. Resampling: the *exact* lesion mask is pushed through what the pipeline does to a prediction
   in each inference space (MNI: sampled onto the MNI grid through the estimated alignment, cut to
   the white-matter envelope, sampled back and thresholded at 0.5; subject: nothing is resampled
   for ~1 mm inputs, only the envelope cut), then scored against itself.
2. Labels: the share of lesion voxels (1 mm) that lie inside a labelled voxel of the thick-slice
   FLAIR label (``wmhkit.synth`` labels a thick voxel when lesion fills > 50 % of its footprint).
   A loss that asks A(p) to equal the label teaches the network to miss the rest.

Usage::

    python benchmarks/segment_ceilings.py --n 6 --first-seed 950000

Seeds 950000+ are validation-style seeds: never training (1000+) nor test (10000+) seeds.
Writes ``benchmarks/results/segment_ceilings.md``.
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
from segment_accuracy import BURDENS, RESULTS, cached_phantom  # noqa: E402
from bench_environment import environment_line  # noqa: E402


def _score(reference, mask) -> dict:
    from wmhkit.stats.overlap import evaluate_segmentation

    return evaluate_segmentation(reference, nib.Nifti1Image(mask.astype(np.uint8), reference.affine))


def resampling_row(t1, reference) -> dict:
    from wmhkit.preprocess import prepare_t1
    from wmhkit.preprocess.resampling import resample_array
    from wmhkit.segmentation import inference
    from wmhkit.segmentation.atlas import wm_envelope_mni
    from wmhkit.segmentation.postprocess import threshold_and_clean
    from wmhkit.preprocess.templates import TEMPLATE_AFFINE

    prepared = prepare_t1(t1)
    alignment = prepared.alignment
    _, box_affine, box = inference.t1_on_brain_box(prepared.t1_mni)
    shape = tuple(s.stop - s.start for s in box)
    truth = np.asanyarray(reference.dataobj).astype(np.float32)
    in_mni = resample_array(truth, reference.affine, shape, box_affine, alignment.mni_to_subject, order=1)
    in_mni[~wm_envelope_mni()[box]] = 0.0
    back, _ = inference.mni_box_to_subject(in_mni, box_affine, alignment, prepared.img)
    mni_mask, _, _ = threshold_and_clean(back, 1.0, 0.5, 5.0)

    envelope = resample_array(wm_envelope_mni().view(np.uint8), TEMPLATE_AFFINE, truth.shape, reference.affine,
                              alignment.subject_to_mni, order=0).astype(bool)
    # the subject path cuts with the same envelope, on the input's own voxels, and resamples nothing
    subject_mask, _, _ = threshold_and_clean(truth * envelope, 1.0, 0.5, 5.0)
    mni, subject = _score(reference, mni_mask), _score(reference, subject_mask)
    return {"mni_dice": mni["dice"], "mni_f1": mni["lesion_f1"], "mni_avd_pct": mni["avd_percent"],
            "subject_dice": subject["dice"], "subject_f1": subject["lesion_f1"],
            "subject_avd_pct": subject["avd_percent"]}


def label_row(seed: int, burden: float, slice_mm: float) -> dict:
    from wmhkit.preprocess.resampling import resample_array
    from wmhkit.synth import make_phantom

    phantom = make_phantom(seed=seed, lesion_burden=burden, voxel_size_mm=1.0, flair_slice_mm=slice_mm)
    lesion = np.asanyarray(phantom.lesion_mask.dataobj) > 0
    label = phantom.flair_label
    covered = resample_array(np.asanyarray(label.dataobj).astype(np.float32), label.affine, lesion.shape,
                             phantom.lesion_mask.affine, order=0) > 0.5
    return {"seed": seed, "lesion_burden": burden, "slice_mm": slice_mm, "lesion_ml": lesion.sum() / 1000.0,
            "labelled_share": float((lesion & covered).sum() / max(lesion.sum(), 1))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--first-seed", type=int, default=950000)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from wmhkit.synth import make_phantom

    rows, labels = [], []
    for k in range(args.n):
        seed, burden = args.first_seed + k, BURDENS[k % len(BURDENS)]
        t1, reference = cached_phantom(seed, burden, make_phantom)
        rows.append({"seed": seed, "lesion_burden": burden, **resampling_row(t1, reference)})
        for slice_mm in (3.0, 5.0):
            labels.append(label_row(seed, burden, slice_mm))
        print(rows[-1], labels[-2:], flush=True)
    resampling, coverage = pd.DataFrame(rows), pd.DataFrame(labels)
    text = [
        "# Ceilings on segmentation accuracy (phantoms)",
        "",
        environment_line(),
        "",
        f"Machine: {os.cpu_count()} CPU cores. Command: `python benchmarks/segment_ceilings.py --n {args.n} "
        f"--first-seed {args.first_seed}`. Phantoms at 1 mm, lesion burden cycling {', '.join(map(str, BURDENS))}.",
        "",
        "## 1. Exact lesion masks through each inference space (threshold 0.5, minimum lesion 5 mm^3)",
        "",
        "| space | Dice mean | Dice min | lesion F1 mean | AVD % median |",
        "|---|---|---|---|---|",
    ]
    for space in ("mni", "subject"):
        text.append(f"| {space} | {resampling[f'{space}_dice'].mean():.3f} | {resampling[f'{space}_dice'].min():.3f} | "
                    f"{resampling[f'{space}_f1'].mean():.3f} | {resampling[f'{space}_avd_pct'].median():.1f} |")
    text += ["", "By burden (mean Dice, MNI / subject):", "",
             resampling.groupby("lesion_burden")[["mni_dice", "subject_dice"]].mean().round(3).to_string(), "",
             "## 2. Share of lesion voxels inside a labelled thick-slice voxel", "",
             coverage.groupby(["slice_mm", "lesion_burden"])["labelled_share"].agg(["mean", "min", "max"]).round(3)
             .to_string(), "", "Per phantom:", "", coverage.round(3).to_string(index=False), ""]
    out = RESULTS / "segment_ceilings.md"
    out.write_text("\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
