"""The command line: version, help, and user errors printed as one sentence with exit code 2."""

from __future__ import annotations

import subprocess
import sys

from wmhkit import __version__
from wmhkit.cli import COMMANDS, build_parser, main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "wmhkit", *args], capture_output=True, text=True, check=False)


def test_version():
    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"wmhkit {__version__}"


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_every_available_subcommand_has_help():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")  # noqa: SLF001
    assert set(subparsers.choices) <= set(COMMANDS)
    for name in subparsers.choices:
        result = _run(name, "--help")
        assert result.returncode == 0, result.stderr
        assert "usage: wmhkit " + name in result.stdout
