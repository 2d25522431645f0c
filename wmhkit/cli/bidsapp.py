"""The BIDS-Apps call: ``wmhkit bids_dir output_dir {participant,group} [options]``.

The calling convention of fMRIPrep and MRIQC, beside ``wmhkit cohort run``: the participant
level segments the listed participants (all when none is listed) into ``output_dir``; the group
level builds the combined table, the QC report and the MNI lesion-frequency map from what the
participant runs left. A cluster array runs one participant per task on the same
``output_dir``, then one group step::

    wmhkit /data/bids /data/bids/derivatives/wmhkit participant --participant-label 01
    wmhkit /data/bids /data/bids/derivatives/wmhkit group

Resume and failure rules are those of ``wmhkit cohort run``: complete, current outputs are
skipped; one subject's failure is recorded (``<prefix>_error.json``) and the exit code is 1; a
usage error exits with 2. Participant runs on different participants share ``output_dir``; two
on the same participant, or the group step while a participant run works, refuse at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["LEVELS", "build_parser", "run", "is_bids_app_call"]

#: The BIDS-Apps analysis levels.
LEVELS = ("participant", "group")


def is_bids_app_call(argv: list[str], commands) -> bool:
    """True when the command line is ``wmhkit bids_dir output_dir level ...`` rather than a subcommand.

    The first positional argument is then not a subcommand name and either an existing folder
    or followed by an analysis level as the third positional argument.

    >>> is_bids_app_call(["-v", "/no/such/bids", "out", "group"], ["segment"])
    True
    >>> is_bids_app_call(["segment", "t1.nii.gz", "--out", "d"], ["segment"])
    False
    """
    positionals = [arg for arg in argv if not arg.startswith("-")]
    if not positionals or positionals[0] in commands:
        return False
    return Path(positionals[0]).is_dir() or (len(positionals) >= 3 and positionals[2] in LEVELS)


def build_parser(commands_help: str = "") -> argparse.ArgumentParser:
    """The BIDS-App parser; ``commands_help`` (the other commands, one a line) ends its help."""
    from wmhkit import __version__
    from wmhkit.cli import _add_global_flags
    from wmhkit.cli.cohort import add_run_options

    parser = argparse.ArgumentParser(
        prog="wmhkit",
        usage="wmhkit [-h] [--version] bids_dir output_dir {participant,group} [options]\n"
              "       wmhkit COMMAND [options]",
        description="wmhkit: white-matter hyperintensities from 3D T1. As a BIDS App it segments the T1w\n"
                    "images of a BIDS dataset into a BIDS-derivatives folder (participant level), then\n"
                    "builds the cohort's table, QC report and lesion-frequency map (group level).",
        epilog=commands_help or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bids_dir", help="the root folder of a BIDS dataset (sub-*/[ses-*/]anat/*_T1w.nii[.gz])")
    parser.add_argument("output_dir", help="the BIDS-derivatives output folder, e.g. bids_dir/derivatives/wmhkit")
    parser.add_argument("analysis_level", choices=LEVELS,
                        help="participant: segment the participants (several runs on different participants "
                             "may share output_dir); group: build the table, QC report and group map from what "
                             "the participant runs left")
    parser.add_argument("--version", action="version", version=f"wmhkit {__version__}")
    select = parser.add_argument_group("selecting the data")
    select.add_argument("--participant-label", "--participant_label", dest="participant_label", nargs="+",
                        metavar="LABEL", help="participants to analyse, with or without 'sub-' (default: all)")
    select.add_argument("--session-label", "--session_label", dest="session_label", nargs="+", metavar="LABEL",
                        help="sessions to analyse, with or without 'ses-' (default: all)")
    segmentation = parser.add_argument_group("participant level (as wmhkit cohort run)")
    add_run_options(segmentation)
    group = parser.add_argument_group("group level")
    group.add_argument("--no-report", dest="report", action="store_false", help="skip the HTML QC report")
    _add_global_flags(parser.add_argument_group("messages"), level=0)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run one analysis level; returns 0 when every selected subject succeeded, 1 when any failed."""
    from wmhkit.cli.cohort import print_summary, run_options
    from wmhkit.cohort import run_cohort, run_group
    from wmhkit.cohort.discover import is_bids_dataset
    from wmhkit.errors import OptionError

    bids_dir, output_dir = Path(args.bids_dir), Path(args.output_dir)
    if not bids_dir.is_dir():
        raise OptionError(f"bids_dir {bids_dir} does not exist; give the BIDS dataset's root folder.")
    if not is_bids_dataset(bids_dir):
        raise OptionError(f"bids_dir {bids_dir} is not a BIDS dataset (no sub-*/anat, no dataset_description.json); "
                          "give the dataset's root folder.")
    if output_dir.resolve() == bids_dir.resolve():
        raise OptionError(f"output_dir {output_dir} is the BIDS dataset itself; give a folder such as "
                          f"{bids_dir / 'derivatives' / 'wmhkit'}.")
    labels = dict(participant_label=args.participant_label, session_label=args.session_label)
    if args.analysis_level == "participant":
        result = run_cohort(bids_dir, output_dir, group=False, **labels, **run_options(args))
    else:
        result = run_group(bids_dir, output_dir, report=args.report, **labels)
        if result.report_path is not None:
            print(f"wmhkit cohort: report {result.report_path}")
    return print_summary(result, str(output_dir))
