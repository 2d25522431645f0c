"""``wmhkit cohort``: segment a whole dataset into a BIDS-derivatives folder, and rebuild its report.

``wmhkit cohort run INPUT --out DERIV`` processes every T1 (resumable; local processes or a
Dask cluster); ``wmhkit cohort report INPUT --out DERIV`` rebuilds the combined table, the
QC report and the group map from what is already in DERIV. One run at a time may use DERIV:
a second one refuses at once (the lock goes with the process that holds it, even after
``kill -9``). The exit code is 0 when every subject succeeded, 1 when any failed (see
``wmhkit_errors.tsv``), 2 for a usage error. The BIDS-Apps call ``wmhkit BIDS_DIR OUT
participant|group`` (:mod:`wmhkit.cli.bidsapp`) runs the same code in two steps.
"""

from __future__ import annotations

import argparse

__all__ = ["register", "run", "run_report", "add_run_options", "run_options", "print_summary"]


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="INPUT",
                        help="BIDS dataset, folder of images, quoted glob ('/data/*/t1.nii.gz') or CSV manifest")
    parser.add_argument("--out", "-o", required=True, metavar="DERIV", help="BIDS-derivatives output folder")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The segmentation and execution options of ``cohort run`` (shared with the BIDS-App call)."""
    parser.add_argument("--workers", "-j", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="BLAS/torch threads per local worker (default: cores / workers)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler address (tcp://host:8786); runs on its workers instead")
    parser.add_argument("--method", choices=("model", "baseline"), default="model",
                        help="ConvNet model (default) or the classical baseline")
    parser.add_argument("--model", default="default", help="model name or .pt path (default: default)")
    parser.add_argument("--threshold", type=float, help="probability threshold for the mask (default: the model's)")
    parser.add_argument("--force", action="store_true",
                        help="segment images that do not look like a brain T1 anyway (recorded in each JSON)")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help="recompute subjects whose outputs are already complete")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    # Another per-subject function (module:function), e.g. for testing; not part of the documented interface.
    parser.add_argument("--processor", default=None, help=argparse.SUPPRESS)


def run_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of :func:`wmhkit.cohort.run_cohort` from the options of :func:`add_run_options`."""
    from wmhkit.cohort.worker import DEFAULT_PROCESSOR

    options = {} if args.threshold is None else {"threshold": args.threshold}
    if args.force:
        options["force"] = True
    return dict(workers=args.workers, threads_per_worker=args.threads, scheduler=args.scheduler, method=args.method,
                model=args.model, resume=args.resume, progress=args.progress,
                processor=args.processor or DEFAULT_PROCESSOR, **options)


def register(subparsers) -> None:
    """Add ``cohort run`` and ``cohort report`` to the ``wmhkit`` parser."""
    parser = subparsers.add_parser("cohort", help="segment a whole cohort (resumable, parallel) with a QC report",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="cohort_command", metavar="ACTION")
    run_parser = actions.add_parser("run", help="segment every T1 of INPUT into DERIV")
    _add_common(run_parser)
    add_run_options(run_parser)
    run_parser.add_argument("--no-report", dest="report", action="store_false", help="skip the HTML QC report")
    run_parser.set_defaults(func=run)
    report_parser = actions.add_parser("report", help="rebuild table, QC report and group map of DERIV")
    _add_common(report_parser)
    report_parser.set_defaults(func=run_report)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def print_summary(result, out: str) -> int:
    """One line of counts (and where the table and failures are); returns 1 when any subject failed, else 0."""
    table = result.table
    counts = table["status"].value_counts()
    failed = int(counts.get("failed", 0))
    where = f"; table {out}/wmhkit_cohort.tsv" if result.table_path is not None else ""
    print(f"wmhkit cohort: {int(counts.get('ok', 0))} ok, {failed} failed, {int(counts.get('not run', 0))} not run"
          f"{where}")
    if failed and result.errors_path is not None:
        print(f"wmhkit cohort: failures listed in {result.errors_path}")
    elif failed:
        for row in table[table["status"] == "failed"].itertuples():
            print(f"wmhkit cohort: {row.stem} failed: {row.error}")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    """Run ``wmhkit cohort run``; returns 0 when every subject succeeded, else 1."""
    from wmhkit.cohort import run_cohort

    result = run_cohort(args.input, args.out, report=args.report, **run_options(args))
    return print_summary(result, args.out)


def run_report(args: argparse.Namespace) -> int:
    """Run ``wmhkit cohort report``: rebuild the outputs of a run from its per-subject files."""
    from wmhkit.cohort import run_group

    result = run_group(args.input, args.out)
    print(f"wmhkit cohort: report {result.report_path}")
    return print_summary(result, args.out)
