"""The ``wmhkit`` command: one entry point with subcommands.

Each subcommand lives in its own module ``wmhkit.cli.<name>`` with two functions:
``register(subparsers)`` adds its parser (and sets ``func``), and the function it sets runs
it and returns an exit code. Modules import heavy libraries (torch, Dask) inside the run
function so that ``wmhkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from wmhkit import __version__
from wmhkit.errors import WmhkitError

__all__ = ["main", "build_parser"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("segment", "regions", "train", "cohort", "synth", "demo", "cache")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="wmhkit",
        description="White-matter hyperintensities from 3D T1: segmentation, training, regions, cohorts.",
    )
    parser.add_argument("--version", action="version", version=f"wmhkit {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log messages (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"wmhkit.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"wmhkit.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def configure_logging(verbose: int = 0, quiet: bool = False):
    """Send wmhkit's log records to stderr at the level the flags ask for.

    Returns a function that restores the previous logging set-up (the command line may run
    inside a Python process, e.g. a notebook or a test, that has its own).
    """
    root = logging.getLogger("wmhkit")
    previous = (list(root.handlers), root.level, root.propagate)

    def restore() -> None:
        root.handlers[:], root.level, root.propagate = previous[0], previous[1], previous[2]

    level = logging.WARNING if quiet else (logging.INFO if verbose <= 1 else logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose > 1 else "%(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    return restore


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 2 a user error, 1 a failure)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    restore_logging = configure_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except WmhkitError as exc:
        if args.debug:
            raise
        print(f"wmhkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("wmhkit: interrupted", file=sys.stderr)
        return 130
    finally:
        restore_logging()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
