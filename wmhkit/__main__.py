"""``python -m wmhkit`` runs the command line (:func:`wmhkit.cli.run_program`)."""

from wmhkit.cli import run_program

run_program()
