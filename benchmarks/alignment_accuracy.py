"""Accuracy and speed of wmhkit's MNI alignment against ANTs affine registration.

Cases: the two real skull-on heads in ../shared/data/real_t1 (no ground truth: both methods
are scored by the alignment quality, their distance to each other and the volume of the
template brain brought to the subject) and synthetic phantoms from ``wmhkit.synth.make_phantom``
(skull on and off) whose linear subject -> MNI map is known. Errors are the mean distance
(mm) between where the estimated and true maps send the template brain (every 4th voxel),
and the Dice overlap of the template brain mask brought onto the subject grid by each map.

ANTs runs through antspyx (``pip install antspyx``; benchmark only), ``type_of_transform="Affine"``
with the same fixed template and the same dilated-brain fixed mask; it is skipped when
antspyx is not installed.

Usage::

    python benchmarks/alignment_accuracy.py [--seeds 3] [--no-ants] [--out benchmarks/results/alignment_accuracy.md]
    python benchmarks/alignment_accuracy.py --shift-table   # quality of deliberately shifted alignments (appends)
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

from wmhkit.io import check_img, mask_volume_ml
from wmhkit.preprocess import MNIAlignment, align_to_mni, load_template
from wmhkit.preprocess.alignment import _working_image, alignment_distance_mm, alignment_quality
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, template_data
from bench_environment import environment_line

REAL_T1_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_t1"
REAL_HEADS = ("head_t1_1p75mm.nii.gz", "head_t1_conformed_1mm.nii.gz")


def mean_distance_mm(mni_to_subject_a: np.ndarray, mni_to_subject_b: np.ndarray) -> float:
    return alignment_distance_mm(MNIAlignment(np.linalg.inv(mni_to_subject_a)), MNIAlignment(np.linalg.inv(mni_to_subject_b)))


def warped_brain(subject_to_mni: np.ndarray, reference: nib.Nifti1Image) -> np.ndarray:
    return np.asanyarray(MNIAlignment(subject_to_mni).resample_to_subject(load_template("brain_mask"), reference, order=0).dataobj) > 0


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2.0 * np.logical_and(a, b).sum() / max(1, a.sum() + b.sum()))


def quality_of(img: nib.Nifti1Image, subject_to_mni: np.ndarray) -> float:
    work, work_affine = _working_image(np.asanyarray(img.dataobj), img.affine, 2.0)
    return alignment_quality(np.clip(work - np.percentile(work, 0.5), 0, None), work_affine, np.linalg.inv(subject_to_mni))


def run_wmhkit(img: nib.Nifti1Image) -> tuple[np.ndarray, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    alignment = align_to_mni(img)
    return alignment.subject_to_mni, time.perf_counter() - wall, time.process_time() - cpu


def run_ants(img: nib.Nifti1Image) -> tuple[np.ndarray, float, float]:
    import ants
    from scipy import ndimage

    fixed = ants.from_nibabel_nifti(nib.Nifti1Image(template_data("t1").astype(np.float32), TEMPLATE_AFFINE))
    mask = ndimage.binary_dilation(template_data("brain_mask") > 0, iterations=2).astype(np.float32)
    fixed_mask = ants.from_nibabel_nifti(nib.Nifti1Image(mask, TEMPLATE_AFFINE))
    moving = ants.from_nibabel_nifti(nib.Nifti1Image(np.asanyarray(img.dataobj).astype(np.float32), img.affine))
    cpu, wall = time.process_time(), time.perf_counter()
    result = ants.registration(fixed, moving, type_of_transform="Affine", mask=fixed_mask, aff_metric="mattes")
    seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    transform = ants.read_transform(result["fwdtransforms"][0])
    # ANTs maps fixed (MNI) LPS points to moving (subject) LPS points: x -> A (x - c) + c + t.
    linear = np.asarray(transform.parameters[:9]).reshape(3, 3)
    centre, translation = np.asarray(transform.fixed_parameters), np.asarray(transform.parameters[9:])
    lps = np.eye(4)
    lps[:3, :3] = linear
    lps[:3, 3] = translation + centre - linear @ centre
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return np.linalg.inv(flip @ lps @ flip), seconds, cpu_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="phantom seeds per skull setting (default 3)")
    parser.add_argument("--no-ants", action="store_true", help="skip ANTs")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "alignment_accuracy.md"))
    parser.add_argument("--shift-table", action="store_true", help="append the quality of shifted alignments of the real heads")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.shift_table:
        shift_table(args.out)
        return
    os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "2")
    methods = {"wmhkit": run_wmhkit}
    if not args.no_ants:
        try:
            import ants  # noqa: F401

            methods["ANTs affine"] = run_ants
        except ImportError:
            print("antspyx is not installed: ANTs is skipped")
    align_to_mni(load_template("t1"))  # warm the template caches once, as a long-lived process would

    from wmhkit.synth import make_phantom

    cases = []
    for name in REAL_HEADS:
        if (REAL_T1_DIR / name).exists():
            cases.append((f"real {name}", check_img(REAL_T1_DIR / name), None, None))
    for skull in (False, True):
        for seed in range(100, 100 + args.seeds):
            phantom = make_phantom(seed=seed, voxel_size_mm=1.0, skull=skull)
            truth_mask = np.asanyarray(phantom.brain_mask.dataobj) > 0
            label = f"phantom seed {seed} {'skull-on' if skull else 'skull-stripped'}"
            cases.append((label, check_img(phantom.t1), phantom.subject_to_mni, truth_mask))

    rows = []
    for label, img, truth, truth_mask in cases:
        results = {name: run(img) for name, run in methods.items()}
        for name, (subject_to_mni, seconds, cpu_seconds) in results.items():
            warped = warped_brain(subject_to_mni, img)
            row = {
                "case": label,
                "method": name,
                "quality": quality_of(img, subject_to_mni),
                "brain_ml": mask_volume_ml(nib.Nifti1Image(warped.astype(np.uint8), img.affine)),
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
            }
            if truth is not None:
                row["error_mm"] = mean_distance_mm(np.linalg.inv(subject_to_mni), np.linalg.inv(truth))
                row["dice"] = dice(warped, truth_mask)
                row["dice_true_linear"] = dice(warped_brain(truth, img), truth_mask)
            elif len(results) > 1:
                other = [r for n, r in results.items() if n != name][0][0]
                row["other_method_mm"] = mean_distance_mm(np.linalg.inv(subject_to_mni), np.linalg.inv(other))
            rows.append(row)
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    write_table(rows, args, methods)


def write_table(rows: list[dict], args, methods) -> None:
    lines = [
        "# MNI alignment accuracy: wmhkit vs ANTs affine",
        "",
        environment_line(),
        "",
        f"Machine: 2 CPU cores (shared with other jobs while measured), 24 GB RAM, no GPU; "
        f"{platform.python_implementation()} {platform.python_version()}.",
        f"Command: `python benchmarks/alignment_accuracy.py --seeds {args.seeds}{' --no-ants' if args.no_ants else ''}`",
        "",
        "Columns: `error_mm` mean distance between where the estimated and the true linear "
        "subject->MNI maps send the template brain (phantoms only); `dice` overlap of the template "
        "brain mask brought to the subject with the phantom's true brain mask (`dice_true_linear`: "
        "the same with the true linear map, the ceiling an affine can reach against the phantom's "
        "non-linear warp); `quality` wmhkit's alignment score (0..1, flagged below 0.5); `brain_ml` "
        "volume of the brought template brain; `other_method_mm` distance between the two methods "
        "(real heads, no ground truth); `seconds`/`cpu_seconds` wall and CPU time of the registration "
        "call alone (template caches warm).",
        "",
    ]
    keys = ["case", "method", "error_mm", "dice", "dice_true_linear", "other_method_mm", "quality", "brain_ml", "seconds", "cpu_seconds"]
    keys = [k for k in keys if any(k in row for row in rows)]
    lines.append("| " + " | ".join(keys) + " |")
    lines.append("|" + "---|" * len(keys))
    for row in rows:
        cells = []
        for key in keys:
            value = row.get(key, "")
            cells.append(f"{value:.3f}" if isinstance(value, float) and key in ("dice", "dice_true_linear", "quality") else f"{value:.2f}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for name in methods:
        phantom = [r for r in rows if r["method"] == name and "error_mm" in r]
        if phantom:
            lines.append(
                f"* {name}: phantoms mean error {np.mean([r['error_mm'] for r in phantom]):.2f} mm "
                f"(max {np.max([r['error_mm'] for r in phantom]):.2f}), mean Dice {np.mean([r['dice'] for r in phantom]):.3f}, "
                f"median wall {np.median([r['seconds'] for r in rows if r['method'] == name]):.2f} s."
            )
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


def shift_table(out: str) -> None:
    """Quality score of each real head's alignment shifted by 0-20 mm along x (L-R) and z (I-S)."""
    shifts = (0.0, 5.0, 10.0, 15.0, 20.0)
    lines = [
        "",
        "## Quality score against misalignment (sets QUALITY_THRESHOLD = 0.5)",
        "",
        "Command: `python benchmarks/alignment_accuracy.py --shift-table`. wmhkit's alignment of each "
        "real head, then shifted in MNI space; cells give the quality along x / along z.",
        "",
        "| head | " + " | ".join(f"{shift:g} mm" for shift in shifts) + " |",
        "|---|" + "---|" * len(shifts),
    ]
    for name in REAL_HEADS:
        if not (REAL_T1_DIR / name).exists():
            continue
        img = check_img(REAL_T1_DIR / name)
        subject_to_mni = align_to_mni(img).subject_to_mni
        cells = []
        for shift in shifts:
            pair = []
            for axis in (0, 2):
                moved = np.eye(4)
                moved[axis, 3] = shift
                pair.append(quality_of(img, moved @ subject_to_mni))
            cells.append(f"{pair[0]:.2f} / {pair[1]:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    with open(out, "a") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
