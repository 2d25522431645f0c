"""``python -m wmhkit`` runs the command line."""

import sys

from wmhkit.cli import main

sys.exit(main())
