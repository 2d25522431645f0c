"""``wmhkit segment``: WMH masks, probability maps, volumes and regional tables for T1 images.

Examples
--------
    wmhkit segment sub-01_T1w.nii.gz sub-02_T1w.nii.gz --out derivatives/wmhkit
    wmhkit segment head.nii.gz --out out --method baseline
    wmhkit segment dicom_folder/ --out d
    wmhkit segment exam@5 --out d            # series 5 of a folder holding several
    wmhkit segment t1.nii.gz --aseg freesurfer/sub-01/mri/aparc+aseg.mgz --out d
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register", "run"]


def register(subparsers) -> None:
    """Add the ``segment`` subcommand."""
    from wmhkit.segmentation.pipeline import SPACES
    from wmhkit.segmentation.postprocess import DEFAULT_MIN_LESION_MM3, DEFAULT_THRESHOLD

    parser = subparsers.add_parser(
        "segment",
        help="segment white-matter hyperintensities in 3D T1 images",
        description=(
            "Segment white-matter hyperintensities in one or more 3D T1-weighted images. For each "
            "input <stem>.nii[.gz] writes <stem>_desc-wmh_mask.nii.gz, <stem>_desc-wmh_probseg.nii.gz, "
            "<stem>_desc-brain_mask.nii.gz, <stem>_wmh.json, <stem>_regions.tsv and <stem>_lesions.tsv "
            "into --out; a BIDS name loses its suffix, as BIDS derivatives do (sub-01_T1w.nii.gz writes "
            "sub-01_desc-wmh_mask.nii.gz, ...). A folder holding one DICOM series is converted with "
            "dcm2niix (pip install \"wmhkit[dicom]\") and its T1 written as <folder>_T1w.nii.gz beside the "
            "masks; FOLDER@N picks series number N of a folder holding several. An input that cannot be used "
            "is reported in one sentence; the others are still processed and the exit code is 2."
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="T1",
                        help="3D T1 images (.nii, .nii.gz, .mgz), DICOM series folders or FOLDER@N")
    parser.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument(
        "--method",
        choices=("model", "baseline"),
        default="model",
        help="trained network (default) or the classical training-free baseline",
    )
    parser.add_argument("--model", default="default", metavar="NAME|PATH", help="model name or .pt file (default: default)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help=f"lesion probability threshold, 0-1 (default: the model's own; {DEFAULT_THRESHOLD:g} for the baseline)",
    )
    parser.add_argument(
        "--min-lesion-mm3",
        type=float,
        default=DEFAULT_MIN_LESION_MM3,
        metavar="N",
        help=f"drop lesions smaller than N mm^3 (default {DEFAULT_MIN_LESION_MM3:g})",
    )
    parser.add_argument(
        "--space",
        choices=SPACES,
        default=None,
        help="where the network runs: the input's own voxels or the MNI grid (default: where the model was trained)",
    )
    parser.add_argument(
        "--flip-average",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average the network's map with that of the left-right mirrored T1: about twice the inference "
        "time, a little more accurate, with the threshold the model declares for it (default: the model's "
        "own setting, off for the shipped model)",
    )
    parser.add_argument(
        "--max-cortex-contact",
        type=float,
        default=None,
        metavar="SHARE",
        help="drop the network's lesions whose shell touches the cortex over more than SHARE, 0-1 "
        "(default 0.2; 1 turns the rule off)",
    )
    parser.add_argument(
        "--max-speck-mm3",
        type=float,
        default=None,
        metavar="MM3",
        help="drop the network's lesions smaller than MM3 whose darkest voxels are as dark as fluid "
        "(perivascular spaces, lacunes); default 0, off; 30 is the measured setting",
    )
    parser.add_argument(
        "--min-peak-probability",
        type=float,
        default=None,
        metavar="P",
        help="keep a lesion only when its probability reaches P somewhere, 0-1 (default: the model's own; "
        "the shipped model declares none; 0 turns the rule off)",
    )
    parser.add_argument("--device", default="cpu", help="torch device for the network: cpu (default) or cuda")
    parser.add_argument("--no-regions", action="store_true", help="skip the regional table")
    parser.add_argument(
        "--aseg", action="append", metavar="PATH",
        help="the subject's FreeSurfer aseg.mgz/aparc+aseg.mgz or SynthSeg labels, in its space: the regions follow "
        "its ventricles, cortex and lobes instead of the MNI atlas, and FreeSurfer's eTIV (../stats/aseg.stats) "
        "is reported when found; repeat it once per T1, in the same order",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="segment an image that does not look like a brain T1 (a FLAIR, T2 or PD image, no brain found) "
        "anyway; the override is recorded in <stem>_wmh.json",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Segment every input; returns 0 when all succeeded, 2 when any input was refused."""
    import gc

    from tqdm import tqdm

    from wmhkit.errors import WmhkitError
    from wmhkit.io import save_converted_t1
    from wmhkit.segmentation import segment
    from wmhkit.segmentation.cortex import check_max_contact
    from wmhkit.segmentation.mimics import check_max_speck
    from wmhkit.segmentation.models import model_path
    from wmhkit.segmentation.postprocess import check_min_peak, check_options

    check_options(args.threshold, args.min_lesion_mm3)
    check_min_peak(args.min_peak_probability)
    check_max_contact(args.max_cortex_contact)
    check_max_speck(args.max_speck_mm3)
    asegs = _asegs(args)
    out_dir = Path(args.out)
    if args.method == "model":
        # Fail on a missing model before any input; the model itself is loaded by the first
        # segment() call (once per process), while that call preprocesses its image.
        model_path(args.model)
    failures = 0
    for index, (path, aseg) in enumerate(tqdm(list(zip(args.inputs, asegs)), desc="segment", unit="image",
                                              disable=None)):
        if index:  # the program runs without the cyclic collector (wmhkit.cli.run_program): one pass per image
            gc.collect()
        try:
            result = segment(
                path,
                method=args.method,
                model=args.model,
                threshold=args.threshold,
                min_lesion_mm3=args.min_lesion_mm3,
                device=args.device,
                regions=not args.no_regions,
                space=args.space,
                flip_average=args.flip_average,
                max_cortex_contact=args.max_cortex_contact,
                min_peak_probability=args.min_peak_probability,
                max_speck_mm3=args.max_speck_mm3,
                force=args.force,
                aseg=aseg,
            )
            save_converted_t1(path, out_dir)  # a DICOM input's T1, for the masks to sit on
            paths = result.save(out_dir)
        except WmhkitError as exc:
            if getattr(args, "debug", False):
                raise
            failures += 1
            print(f"wmhkit: error: {exc}", file=sys.stderr)
            continue
        tqdm.write(
            f"{path}: {result.lesion_ml:.2f} mL WMH in {result.lesion_count} lesions, eTIV {result.etiv_ml:.0f} mL"
            f" -> {paths.wmh_mask}"
        )
    return 2 if failures else 0


def _asegs(args: argparse.Namespace) -> list:
    """One ``--aseg`` per input (None for each without)."""
    from wmhkit.errors import OptionError

    asegs = getattr(args, "aseg", None) or []
    if asegs and len(asegs) != len(args.inputs):
        raise OptionError(
            f"Option --aseg was given {len(asegs)} times for {len(args.inputs)} T1 images; give one per T1, in order."
        )
    return asegs or [None] * len(args.inputs)
