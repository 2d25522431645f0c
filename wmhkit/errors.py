"""Exceptions for problems a user can fix.

Every wmhkit exception carries one sentence that names the file, column or option at fault
and says what to do. The command line prints that sentence without a traceback and exits
non-zero (``--debug`` shows the traceback).
"""

from __future__ import annotations

__all__ = [
    "WmhkitError",
    "InputImageError",
    "OutputError",
    "TableError",
    "OptionError",
    "ModelError",
]


class WmhkitError(Exception):
    """Base class of every error a user can cause and fix."""


class InputImageError(WmhkitError, ValueError):
    """An input image is missing, unreadable or unsuitable (shape, affine, voxels)."""


class OutputError(WmhkitError, OSError):
    """An output cannot be written where it was asked for."""


class TableError(WmhkitError, ValueError):
    """A table lacks a column, holds bad values in one, or repeats a subject ID."""


class OptionError(WmhkitError, ValueError):
    """An option or argument has a value wmhkit cannot use."""


class ModelError(WmhkitError):
    """A model file or training run cannot be used."""
