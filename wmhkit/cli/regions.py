"""``wmhkit regions``: regional lesion tables for a lesion mask made by any tool.

Examples
--------
    wmhkit regions --mask sub-01_desc-wmh_mask.nii.gz --t1 sub-01_T1w.nii.gz --out out
    wmhkit regions --mask m.nii.gz --t1 t1.nii.gz --out out --atlas atlas.nii.gz --atlas-labels atlas.tsv
    wmhkit regions --mask m.nii.gz --t1 t1.nii.gz --out out --aseg freesurfer/sub-01/mri/aparc+aseg.mgz
"""

from __future__ import annotations

import argparse

__all__ = ["register", "run"]

_SCHEMES = ("pv_10mm", "pv_3_13mm", "pv_continuity", "pv_nearest", "lobes", "bullseye", "reference4")


def register(subparsers) -> None:
    """Add the ``regions`` subcommand."""
    parser = subparsers.add_parser(
        "regions",
        help="regional lesion volumes and a lesion table for an existing lesion mask",
        description=(
            "Quantify a lesion mask (from wmhkit or any other tool) by region: periventricular/deep "
            "rules, lobes, the 36-region bullseye, the reference tool's four regions and an optional "
            "user atlas. Writes <stem>_regions.tsv (subject, scheme, region, lesion_ml, region_ml, "
            "fraction) and <stem>_lesions.tsv into --out, <stem> being the mask's name."
        ),
    )
    parser.add_argument("--mask", required=True, metavar="MASK", help="lesion mask or probability map (>0.5 is lesion)")
    parser.add_argument("--t1", required=True, metavar="T1",
                        help="the subject's 3D T1 on the mask's grid (a file, or a DICOM series folder)")
    parser.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--atlas", metavar="ATLAS", help="label atlas in MNI152 or the subject's space")
    parser.add_argument("--atlas-labels", metavar="TSV", help="the atlas's label table (columns index and name)")
    parser.add_argument(
        "--atlas-space", choices=("auto", "subject", "mni"), default="auto",
        help="space of --atlas (default auto: subject when on the mask's grid, else MNI)",
    )
    parser.add_argument(
        "--scheme", action="append", choices=_SCHEMES, metavar="NAME",
        help=f"region scheme, repeatable (default all: {', '.join(_SCHEMES)})",
    )
    parser.add_argument("--subject", metavar="ID", help="subject identifier for the tables (default the mask's stem)")
    parser.add_argument("--no-refine", action="store_true", help="keep the atlas ventricles (no refinement on the T1)")
    parser.add_argument(
        "--aseg", metavar="PATH",
        help="the subject's FreeSurfer aseg.mgz/aparc+aseg.mgz or SynthSeg labels, in its space: the regions follow "
        "its ventricles, cortex and lobes instead of the MNI atlas",
    )
    parser.add_argument("--mni", action="store_true", help="also write the mask warped to MNI152 1 mm space")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Quantify one mask; returns 0."""
    from wmhkit.io import bids_stem, check_img, output_paths, safe_output_path, save_img
    from wmhkit.preprocess import align_to_mni
    from wmhkit.regions import DEFAULT_SCHEMES, quantify_subject, read_label_table, warp_to_mni

    # Refuse a bad label table before the alignment (seconds) rather than after.
    labels = read_label_table(args.atlas_labels) if args.atlas_labels else None
    t1 = check_img(args.t1)
    alignment = align_to_mni(t1)
    result = quantify_subject(
        args.mask,
        t1,
        alignment=alignment,
        subject=args.subject,
        schemes=tuple(args.scheme) if args.scheme else DEFAULT_SCHEMES,
        atlas=args.atlas,
        atlas_labels=labels,
        atlas_space=args.atlas_space,
        refine_ventricles=not args.no_refine,
        aseg=args.aseg,
    )
    stem = bids_stem(args.mask)
    paths = output_paths(args.mask, args.out)
    for path in (paths.regions_tsv, paths.lesions_tsv, paths.mni_mask):
        safe_output_path(path, args.out, inputs=(args.mask, args.t1))
    written = result.save(args.out, stem)
    if args.mni:
        written["mni_mask"] = save_img(warp_to_mni(args.mask, alignment, kind="mask"), paths.mni_mask)
    summary = result.summary
    print(
        f"{stem}: {summary['lesion_ml']:.2f} mL in {summary['lesion_count']} lesions, "
        f"Fazekas-like estimate {summary['fazekas_estimate']} (alignment quality {alignment.quality:.2f}; "
        f"regions from {summary['regions_anatomy']})"
    )
    for path in written.values():
        print(f"  wrote {path}")
    return 0
