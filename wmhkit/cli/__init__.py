"""The ``wmhkit`` command: one entry point with subcommands.

Each subcommand lives in its own module ``wmhkit.cli.<name>`` with two functions:
``register(subparsers)`` adds its parser (and sets ``func``), and the function it sets runs
it and returns an exit code. Modules import heavy libraries (torch, Dask) inside the run
function so that ``wmhkit --help`` stays fast.

Beside the subcommands, ``wmhkit bids_dir output_dir {participant,group}`` is the BIDS-Apps
call (:mod:`wmhkit.cli.bidsapp`): a first argument that is no subcommand name but a folder
selects it, and ``wmhkit --help`` shows it first, as a BIDS App's help does.

The global flags ``-q/--quiet``, ``-v/--verbose`` and ``--debug`` work before or after the
subcommand (``wmhkit -q segment a.nii.gz --out d`` and ``wmhkit segment a.nii.gz --out d -q``);
``-v`` counts add up across both places.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from wmhkit._version import __version__
from wmhkit.errors import WmhkitError

__all__ = ["main", "build_parser", "run_program"]

#: Subcommands after which :func:`run_program` ends the process without the interpreter's teardown.
QUICK_EXIT_COMMANDS = ("segment",)
#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("segment", "regions", "train", "cohort", "synth", "demo", "cache")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="wmhkit",
        description="White-matter hyperintensities from 3D T1: segmentation, training, regions, cohorts.",
    )
    parser.add_argument("--version", action="version", version=f"wmhkit {__version__}")
    _add_global_flags(parser, level=0)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"wmhkit.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"wmhkit.cli.{name}":
                continue
            raise
        module.register(subparsers)
    _add_global_flags_below(parser, level=1)
    return parser


#: The flags that work anywhere on the command line, before or after a subcommand.
GLOBAL_FLAGS = ("debug", "verbose", "quiet")


def _add_global_flags(parser: argparse.ArgumentParser, level: int) -> None:
    """Add ``--debug``, ``-v/--verbose`` and ``-q/--quiet`` to one parser.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The top-level parser (``level`` 0) or a subcommand's parser.
    level : int
        Depth below ``wmhkit``: 0 for the top-level parser, 1 for ``wmhkit segment``, 2 for
        ``wmhkit cohort run``. Below the top each parser stores its flags under its own
        names (``debug_1``, ``verbose_1``, ...) with no default, because argparse parses a subcommand into a
        fresh namespace and copies it over the caller's: a shared name would let ``-v`` after
        the subcommand replace, rather than add to, a ``-v`` before it. :func:`_merge_global_flags`
        combines them.
    """
    suffix = f"_{level}" if level else ""
    unset = argparse.SUPPRESS
    parser.add_argument("--debug", dest=f"debug{suffix}", action="store_true", default=unset if level else False,
                        help="show full tracebacks for errors")
    parser.add_argument("-v", "--verbose", dest=f"verbose{suffix}", action="count", default=unset if level else 0,
                        help="more log messages (-vv for debug)")
    parser.add_argument("-q", "--quiet", dest=f"quiet{suffix}", action="store_true", default=unset if level else False,
                        help="only warnings and errors")


def _add_global_flags_below(parser: argparse.ArgumentParser, level: int) -> None:
    """Give every subcommand parser under ``parser`` (at any depth) the global flags."""
    for action in parser._actions:  # noqa: SLF001 - argparse has no public walk of subparsers
        if not isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            continue
        seen = set()
        for child in action.choices.values():
            if id(child) in seen:  # an alias names the same parser twice
                continue
            seen.add(id(child))
            _add_global_flags(child, level)
            _add_global_flags_below(child, level + 1)


def _merge_global_flags(args: argparse.Namespace) -> argparse.Namespace:
    """Combine the global flags given at every level into ``args.debug/verbose/quiet``.

    ``-v`` counts add up (``wmhkit -v segment ... -v`` is ``-vv``); ``-q`` and ``--debug`` hold
    when given anywhere. The per-level attributes are removed.
    """
    for name in GLOBAL_FLAGS:
        for key in [k for k in vars(args) if k.startswith(f"{name}_") and k[len(name) + 1:].isdigit()]:
            value = vars(args).pop(key)
            if name == "verbose":
                args.verbose += value
            else:
                setattr(args, name, getattr(args, name) or value)
    return args


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


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:  # noqa: SLF001
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001


def _commands_help(parser: argparse.ArgumentParser) -> str:
    """The subcommands with their one-line help, for the end of the BIDS-App help."""
    lines = ["other commands (wmhkit COMMAND --help for each):"]
    lines += [f"  {action.dest:<10}  {action.help}" for action in _subcommands(parser)._choices_actions]  # noqa: SLF001
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 success, 2 a user error, 1 a failure)."""
    from wmhkit.cli import bidsapp

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if bidsapp.is_bids_app_call(argv, _subcommands(parser).choices):
        parser = bidsapp.build_parser(_commands_help(parser))
    elif all(arg in ("-h", "--help", "-q", "--quiet", "--debug", "--verbose") or arg.strip("v") == "-" for arg in argv):
        # `wmhkit`, `wmhkit --help`: the BIDS-App usage first, then the subcommands.
        print(bidsapp.build_parser(_commands_help(parser)).format_help())
        return 0 if {"-h", "--help"} & set(argv) else 2
    args = _merge_global_flags(parser.parse_args(argv))
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


def run_program() -> None:
    """The ``wmhkit`` program (the console script and ``python -m wmhkit``): :func:`main`, then exit.

    ``wmhkit segment`` (:data:`QUICK_EXIT_COMMANDS`) runs without the cyclic garbage collector (it
    collects between its images itself): the collector's passes over every object torch, scipy and
    pandas made took 0.2-0.4 s of a 5 s run on 2 cores, and a run makes little cyclic garbage (the
    same peak memory on the real heads). Once it has returned, every output is written and renamed
    into place, and the process ends without the interpreter's teardown (one more such collection,
    then each module's clean-up: 0.3-0.5 s); the atexit handlers still run, and stdout, stderr and
    the log are flushed first. Other commands, errors and ``--help`` exit the usual way; in-process
    callers (tests, notebooks) use :func:`main`, which only returns.
    """
    import gc

    argv = sys.argv[1:]
    quick = next((arg for arg in argv if not arg.startswith("-")), None) in QUICK_EXIT_COMMANDS
    if quick:
        gc.disable()
    code = main(argv)
    if not quick:
        sys.exit(code)
    import atexit
    import os

    atexit._run_exitfuncs()  # noqa: SLF001 - what the interpreter would run at exit
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing left to flush
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run_program()
