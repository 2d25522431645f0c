"""Ceilings on segmentation accuracy, measured on phantoms.

1. Resampling: the *exact* lesion mask is pushed through what the pipeline does to a prediction
   in each inference space (MNI: sampled onto the MNI grid through the estimated alignment, cut to
   the white-matter envelope, sampled back and thresholded at 0.5; subject: nothing is resampled
   for ~1 mm inputs, only the envelope cut), then scored against itself.
2. Labels: the share of lesion voxels (1 mm) that lie inside a labelled voxel of the thick-slice
   FLAIR label (``wmhkit.synth`` labels a thick voxel when lesion fills > 50 % of its footprint).
   A loss that asks A(p) to equal the label teaches the network to miss the rest.
3. T1 signal: an *oracle* told where every lesion is, to within ``--reach`` voxels, that labels a
   voxel when its T1 lies below the partial-volume midpoint between the local white matter and
   the lesion. It measures how far the T1 itself (noise, blur, partial volume, lesion contrast)
   lets anyone draw a lesion's border. It is not a strict bound: a method that pools evidence
   along a smooth border could do better (smoothing the oracle's fraction estimate did not).
4. T1 signal with perfect knowledge: the same kind of oracle, but it also knows the phantom
   exactly without its lesions and without noise (made with the same seed, lesion burden 0 and
   the Rician noise replaced by the identity; every other random draw is the same), and the
   lesion contrast. A voxel is lesion when the T1 lies below that lesion-free image by more than
   half a full lesion's darkening. Only the noise and the blur stand between it and the truth;
   run on the noise-free phantom too, it shows what the blur alone costs.

Usage::

    python benchmarks/segment_ceilings.py --n 6 --first-seed 950000 [--out-suffix S]

Seeds 950000+ are validation-style seeds: never training (1000+) nor test (10000+) seeds. The
oracle tunes nothing, so it may also run on the test seeds (``--first-seed 10000 --out-suffix _test``).
Writes ``benchmarks/results/segment_ceilings<S>.md``.
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
    from wmhkit.anatomy.atlas import wm_envelope_mni
    from wmhkit.preprocess import prepare_t1
    from wmhkit.preprocess.resampling import resample_array
    from wmhkit.preprocess.templates import TEMPLATE_AFFINE
    from wmhkit.segmentation.mni_grid import mni_grid
    from wmhkit.segmentation.postprocess import threshold_and_clean

    prepared = prepare_t1(t1, mni_t1=False)
    alignment = prepared.alignment
    grid = mni_grid(prepared)  # the MNI brain box the network reads, and the way back
    truth = np.asanyarray(reference.dataobj).astype(np.float32)
    in_mni = resample_array(truth, reference.affine, grid.t1.shape, grid.affine, alignment.mni_to_subject, order=1)
    in_mni[~grid.envelope] = 0.0
    back = grid.to_input_grid(in_mni)
    mni_mask, _, _ = threshold_and_clean(back, 1.0, 0.5, 5.0)

    envelope = resample_array(wm_envelope_mni().view(np.uint8), TEMPLATE_AFFINE, truth.shape, reference.affine,
                              alignment.subject_to_mni, order=0).astype(bool)
    # the subject path cuts with the same envelope, on the input's own voxels, and resamples nothing
    subject_mask, _, _ = threshold_and_clean(truth * envelope, 1.0, 0.5, 5.0)
    mni, subject = _score(reference, mni_mask), _score(reference, subject_mask)
    return {"mni_dice": mni["dice"], "mni_f1": mni["lesion_f1"], "mni_avd_pct": mni["avd_percent"],
            "subject_dice": subject["dice"], "subject_f1": subject["lesion_f1"],
            "subject_avd_pct": subject["avd_percent"]}


def local_white_matter(t1n: np.ndarray, exclude: np.ndarray, sigma_vox) -> np.ndarray:
    """White-matter level that follows the bias field: a normalised Gaussian average over
    white-matter-like voxels (0.85-1.25 of the global level) outside ``exclude``."""
    from scipy import ndimage

    weight = ((t1n > 0.85) & (t1n < 1.25) & ~exclude).astype(np.float32)
    numerator = ndimage.gaussian_filter(t1n * weight, sigma_vox)
    denominator = ndimage.gaussian_filter(weight, sigma_vox)
    return np.where(denominator > 1e-3, numerator / np.maximum(denominator, 1e-3), 1.0)


def white_matter_ratio(t1, intensity_levels, exclude: np.ndarray) -> np.ndarray:
    """``t1`` over its local white-matter level (6 mm, :func:`local_white_matter` outside ``exclude``): about 1
    in normal white matter. ``intensity_levels``: (background, white matter), as ``PreparedT1`` gives them."""
    background, white_matter = intensity_levels
    t1n = (np.asanyarray(t1.dataobj).astype(np.float32) - background) / (white_matter - background)
    sigma_vox = 6.0 / np.asarray(t1.header.get_zooms()[:3], dtype=float)
    return t1n / np.maximum(local_white_matter(t1n, exclude, sigma_vox), 1e-3)


def oracle_row(t1, reference, reaches=(1, 2)) -> dict:
    """Scores of the intensity oracle (section 3 of the module docstring) for each reach."""
    from scipy import ndimage

    from wmhkit.preprocess import prepare_t1

    prepared = prepare_t1(t1, mni_t1=False)
    truth = np.asanyarray(reference.dataobj) > 0
    cross = ndimage.generate_binary_structure(3, 1)
    ratio = white_matter_ratio(prepared.img, prepared.intensity_levels, ndimage.binary_dilation(truth, cross, 5))
    core = ndimage.binary_erosion(truth, cross)
    lesion_level = float(np.median(ratio[core] if core.sum() >= 20 else ratio[truth]))
    # fraction > 0.5 is the phantom's lesion definition; 0.45 keeps ventricle CSF out
    darker = (ratio < (1.0 + lesion_level) / 2.0) & (ratio > 0.45)
    row = {"lesion_level": lesion_level}
    for reach in reaches:
        scores = _score(reference, darker & ndimage.binary_dilation(truth, cross, reach))
        row.update({f"oracle{reach}_{k}": scores[k] for k in ("dice", "lesion_f1", "avd_percent")})
    return row


def perfect_oracle_row(seed: int, burden: float, t1, reference) -> dict:
    """Section 4 of the module docstring: Dice of the perfect-knowledge oracle, noisy and noise-free.

    ``t1`` and ``reference`` are the phantom of ``seed`` and ``burden`` as made; only its
    noise-free and lesion-free twins are made here.
    """
    from unittest import mock

    from scipy import ndimage

    import wmhkit.synth.contrast as contrast
    from wmhkit.synth import make_phantom

    def noise_free_t1(lesion_burden: float):
        # the same phantom, its T1 without Rician noise (noise is the last draw of the T1 stream,
        # so the parameters, noise level included, are those of the phantom as made)
        with warnings.catch_warnings(), mock.patch.object(contrast, "_rician", lambda rng, image, sigma: image):
            warnings.simplefilter("ignore")
            phantom = make_phantom(seed=seed, lesion_burden=lesion_burden, voxel_size_mm=1.0)
        return np.asanyarray(phantom.t1.dataobj, dtype=np.float32), phantom.params

    observed = np.asanyarray(t1.dataobj, dtype=np.float32)
    noise_free, params = noise_free_t1(burden)
    lesion_free, _ = noise_free_t1(0.0)
    truth = np.asanyarray(reference.dataobj) > 0
    # the white-matter level times the bias field, from the noise-free lesion-free image
    level = float(np.median(lesion_free[lesion_free > 0.85 * np.percentile(lesion_free[lesion_free > 0], 90)]))
    sigma_vox = 6.0 / np.asarray(reference.header.get_zooms()[:3], dtype=float)
    white = local_white_matter(lesion_free / level, np.zeros(truth.shape, bool), sigma_vox) * level
    half_darkening = 0.5 * white * (1.0 - params["contrasts"]["t1"]["lesion"])
    near = ndimage.binary_dilation(truth, ndimage.generate_binary_structure(3, 1), 1)
    noisy = _score(reference, near & (lesion_free - observed > half_darkening))
    quiet = _score(reference, near & (lesion_free - noise_free > half_darkening))
    corruption = params["t1_corruption"]
    return {"perfect_dice": noisy["dice"], "perfect_lesion_f1": noisy["lesion_f1"],
            "perfect_noise_free_dice": quiet["dice"], "blur_sigma_vox": corruption["blur_sigma_vox"],
            "noise_sigma": corruption["noise_sigma"], "t1_lesion_contrast": 1.0 - params["contrasts"]["t1"]["lesion"]}


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
    parser.add_argument("--out-suffix", default="", help="written as segment_ceilings<SUFFIX>.md")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    from wmhkit.synth import make_phantom

    rows, labels = [], []
    for k in range(args.n):
        seed, burden = args.first_seed + k, BURDENS[k % len(BURDENS)]
        t1, reference = cached_phantom(seed, burden, make_phantom)
        rows.append({"seed": seed, "lesion_burden": burden, **resampling_row(t1, reference),
                     **oracle_row(t1, reference), **perfect_oracle_row(seed, burden, t1, reference)})
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
        f"--first-seed {args.first_seed}{' --out-suffix ' + args.out_suffix if args.out_suffix else ''}`. Phantoms at 1 mm, lesion burden cycling {', '.join(map(str, BURDENS))}.",
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
             .to_string(), "", "Per phantom:", "", coverage.round(3).to_string(index=False), "",
             "## 3. T1 intensity oracle told where each lesion is (to within 1 or 2 voxels, 6-connected)", "",
             "A voxel is lesion when its T1 is below the midpoint between the local white matter (a "
             "bias-following average) and the phantom's lesion level (median of the eroded true lesions); "
             "no minimum lesion size.", "",
             "| reach (voxels) | Dice mean | Dice min | Dice max | lesion F1 mean | AVD % median |", "|---|---|---|---|---|---|"]
    for reach in (1, 2):
        dice = resampling[f"oracle{reach}_dice"]
        text.append(f"| {reach} | {dice.mean():.3f} | {dice.min():.3f} | {dice.max():.3f} | "
                    f"{resampling[f'oracle{reach}_lesion_f1'].mean():.3f} | "
                    f"{resampling[f'oracle{reach}_avd_percent'].median():.1f} |")
    text += ["", "By burden (mean Dice, reach 1 / 2):", "",
             resampling.groupby("lesion_burden")[["oracle1_dice", "oracle2_dice"]].mean().round(3).to_string(), "",
             "Per phantom:", "", resampling[["seed", "lesion_burden", "lesion_level", "oracle1_dice", "oracle2_dice"]]
             .round(3).to_string(index=False), "",
             "## 4. Oracle with perfect knowledge (lesion-free noise-free image, lesion contrast; within 1 voxel)", "",
             "A voxel is lesion when the T1 lies below the lesion-free image by more than half a full lesion's "
             "darkening. Noise-free: the same rule on the phantom without its Rician noise (blur and partial volume only).", "",
             "| T1 | Dice mean | Dice min | Dice max | lesion F1 mean |", "|---|---|---|---|---|",
             f"| as made (noise and blur) | {resampling['perfect_dice'].mean():.3f} | {resampling['perfect_dice'].min():.3f} | "
             f"{resampling['perfect_dice'].max():.3f} | {resampling['perfect_lesion_f1'].mean():.3f} |",
             f"| noise-free | {resampling['perfect_noise_free_dice'].mean():.3f} | "
             f"{resampling['perfect_noise_free_dice'].min():.3f} | {resampling['perfect_noise_free_dice'].max():.3f} | |", "",
             "By burden (mean Dice, as made / noise-free):", "",
             resampling.groupby("lesion_burden")[["perfect_dice", "perfect_noise_free_dice"]].mean().round(3).to_string(), "",
             "Per phantom (blur: Gaussian sigma in voxels; noise: Rician sigma, white matter = 1; contrast: 1 - lesion / white matter):", "",
             resampling[["seed", "lesion_burden", "blur_sigma_vox", "noise_sigma", "t1_lesion_contrast", "perfect_dice",
                         "perfect_noise_free_dice"]].round(3).to_string(index=False), ""]
    out = RESULTS / f"segment_ceilings{args.out_suffix}.md"
    out.write_text("\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
