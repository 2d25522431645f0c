"""``wmhkit synth``: synthetic phantoms and cohorts with known ground truth.

Examples::

    wmhkit synth phantoms --n 3 --seed 0 --out phantoms/
    wmhkit synth phantoms --n 10 --burden 2 --skull --slice-mm 3 --out phantoms/
    wmhkit synth cohort --n 1000 --seed 0 --out cohort/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wmhkit.errors import OptionError

__all__ = ["register", "run_phantoms", "run_cohort"]


def register(subparsers) -> None:
    """Add ``synth phantoms`` and ``synth cohort`` to the ``wmhkit`` parser."""
    parser = subparsers.add_parser(
        "synth",
        help="make synthetic phantoms (T1, thick-slice FLAIR, masks) or a synthetic cohort table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="synth_command", metavar="ACTION")
    phantoms = actions.add_parser("phantoms", help="write N phantoms (NIfTI images + a params JSON each)")
    phantoms.add_argument("--n", type=int, default=1, help="number of phantoms (default 1)")
    phantoms.add_argument("--seed", type=int, default=0, help="seed of the first phantom; then seed+1, ... (default 0)")
    phantoms.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder (created if missing)")
    phantoms.add_argument("--burden", type=float, default=1.0, help="lesion burden: 0 none, 1 moderate, 3 severe")
    phantoms.add_argument("--voxel-size", type=float, default=1.0, metavar="MM", help="T1 voxel size (default 1.0)")
    phantoms.add_argument("--slice-mm", type=float, default=5.0, metavar="MM", help="FLAIR slice thickness (default 5)")
    phantoms.add_argument("--gap-mm", type=float, default=0.0, metavar="MM",
                          help="gap between FLAIR slices (default 0)")
    phantoms.add_argument("--orientation", choices=("axial", "coronal", "sagittal"), default="axial",
                          help="FLAIR slice orientation (default axial)")
    phantoms.add_argument("--skull", action="store_true", help="skull-on heads instead of skull-stripped brains")
    phantoms.add_argument("--age", type=float, default=None, metavar="YEARS", help="subject age (default random 50-90)")
    phantoms.add_argument("--label-noise", type=float, default=0.0, metavar="LEVEL",
                          help="FLAIR label noise level 0-1 (default 0: exact labels)")
    phantoms.set_defaults(func=run_phantoms)
    cohort = actions.add_parser("cohort", help="write a synthetic cohort table (TSV) and its parameters (JSON)")
    cohort.add_argument("--n", type=int, default=1000, help="number of subjects (default 1000)")
    cohort.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    cohort.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder (created if missing)")
    cohort.set_defaults(func=run_cohort)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_phantoms(args: argparse.Namespace) -> int:
    """Make ``args.n`` phantoms and write them to ``args.out`` as ``phantom-<seed>_*``."""
    from wmhkit.synth import make_phantom

    if args.n < 1:
        raise OptionError(f"--n {args.n} must be at least 1.")
    out = Path(args.out)
    for seed in range(args.seed, args.seed + args.n):
        phantom = make_phantom(
            seed,
            lesion_burden=args.burden,
            voxel_size_mm=args.voxel_size,
            flair_slice_mm=args.slice_mm,
            flair_gap_mm=args.gap_mm,
            flair_orientation=args.orientation,
            skull=args.skull,
            age_years=args.age,
            label_noise=args.label_noise or None,
        )
        paths = phantom.save(out, stem=f"phantom-{seed:04d}")
        print(f"{paths['t1'].name}: lesion {phantom.params['lesion_ml']:.2f} mL, "
              f"FLAIR label {phantom.params['flair_label_ml']:.2f} mL")
    return 0


def run_cohort(args: argparse.Namespace) -> int:
    """Make a synthetic cohort and write ``cohort.tsv`` and ``cohort_params.json`` to ``args.out``."""
    from wmhkit.io import write_json, write_tsv
    from wmhkit.synth.cohort import make_cohort

    if args.n < 1:
        raise OptionError(f"--n {args.n} must be at least 1.")
    cohort = make_cohort(n_subjects=args.n, seed=args.seed)
    out = Path(args.out)
    table = write_tsv(cohort.table, out / "cohort.tsv")
    write_json(cohort.params, out / "cohort_params.json")
    print(f"{table}: {len(cohort.table)} subjects")
    return 0
