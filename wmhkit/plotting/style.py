"""House style shared by every wmhkit figure, and saving figures in one call.

The palette is Okabe & Ito's (2008) colour-blind-safe set; sequential maps are perceptually
uniform (``magma`` for lesion probability and frequency, ``viridis`` for burden). Fonts are
sized for a single journal column at 300 dpi.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator, Sequence

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from wmhkit.errors import OptionError, TableError
from wmhkit.io import atomic_path

__all__ = [
    "PALETTE",
    "SEX_COLOURS",
    "PROBABILITY_CMAP",
    "BURDEN_CMAP",
    "house_style",
    "new_figure",
    "save_figure",
    "colour_cycle",
    "require_columns",
]

logger = logging.getLogger(__name__)

#: Okabe-Ito colours, distinguishable with every common colour-vision deficiency.
PALETTE = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
    "grey": "#999999",
}

#: Colours of the cycle, in order (yellow last: weak on white).
CYCLE = [PALETTE[name] for name in ("blue", "vermillion", "green", "orange", "purple", "sky", "black", "yellow")]

#: Colours for sex groups; keys are matched case-insensitively on their first letter.
SEX_COLOURS = {"F": PALETTE["vermillion"], "M": PALETTE["blue"]}

#: Colour map for lesion probability and lesion frequency.
PROBABILITY_CMAP = "magma"
#: Colour map for regional burden (mL).
BURDEN_CMAP = "viridis"

#: Matplotlib settings of the house style.
RC_PARAMS = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=CYCLE),
    "axes.grid": False,
    "lines.linewidth": 1.5,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "image.interpolation": "nearest",
}

#: File endings :func:`save_figure` writes.
FORMATS = ("png", "pdf", "svg")


@contextlib.contextmanager
def house_style() -> Iterator[None]:
    """Apply the wmhkit style to figures created inside the block (restored afterwards)."""
    with mpl.rc_context(RC_PARAMS):
        yield


def new_figure(width_in: float = 3.5, height_in: float = 2.8, **kwargs) -> Figure:
    """A :class:`matplotlib.figure.Figure` that does not go through pyplot.

    Figures built this way never accumulate in pyplot's registry (no memory growth over a
    loop of hundreds of subjects) and render with any backend. Call inside
    :func:`house_style` so that the style applies. Jupyter shows the returned Figure inline.

    Parameters
    ----------
    width_in, height_in : float, default 3.5 x 2.8
        Size in inches (3.5 in is one journal column).
    **kwargs
        Passed to :class:`~matplotlib.figure.Figure` (``layout="constrained"`` is the default).
    """
    kwargs.setdefault("layout", "constrained")
    return Figure(figsize=(width_in, height_in), **kwargs)


def colour_cycle(n: int) -> list[str]:
    """The first ``n`` palette colours (repeating after eight).

    >>> colour_cycle(2)
    ['#0072B2', '#D55E00']
    """
    return [CYCLE[i % len(CYCLE)] for i in range(n)]


def sex_colour(value, index: int = 0) -> str:
    """Colour of a sex group: ``F``/female vermillion, ``M``/male blue, others from the cycle."""
    key = str(value).strip()[:1].upper()
    return SEX_COLOURS.get(key, CYCLE[(index + 2) % len(CYCLE)])


def require_columns(table: pd.DataFrame, columns: Sequence[str | None], what: str) -> pd.DataFrame:
    """Check that ``table`` is a DataFrame holding ``columns`` (``None`` entries skipped).

    Raises
    ------
    wmhkit.errors.TableError
        Naming the first missing column and the columns the table has.
    """
    if not isinstance(table, pd.DataFrame):
        raise TableError(f"{what} needs a pandas DataFrame, not {type(table).__name__}; build one with pd.DataFrame.")
    for column in columns:
        if column is not None and column not in table.columns:
            raise TableError(
                f"{what}: the table has no column {column!r} (it has {list(table.columns)}); "
                "pass the right column name."
            )
    return table


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 300, *, formats: Sequence[str] | None = None) -> list[Path]:
    """Write a figure to PNG, PDF or SVG atomically, in one call.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, e.g. the return value of any ``wmhkit.plotting.plot_*`` function.
    path : str or os.PathLike
        Output file; its ending (``.png``, ``.pdf``, ``.svg``) picks the format. With
        ``formats``, the ending is replaced by each format in turn.
    dpi : int, default 300
        Resolution of raster output in dots per inch (PNG, and images embedded in PDF/SVG).
    formats : sequence of str, optional
        Write several formats at once, e.g. ``("png", "pdf")``.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    wmhkit.errors.OptionError
        For an unknown ending or a non-positive dpi.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> fig = new_figure()
    >>> _ = fig.add_subplot().plot([0, 1], [0, 1])
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "line.png"
    >>> [p.name for p in save_figure(fig, out, formats=("png", "svg"))]
    ['line.png', 'line.svg']
    """
    if not isinstance(fig, Figure):
        raise OptionError(f"save_figure needs a matplotlib Figure, not {type(fig).__name__}.")
    if not (isinstance(dpi, (int, float, np.integer, np.floating)) and dpi > 0):
        raise OptionError(f"dpi={dpi!r} is not a positive number; use e.g. dpi=300.")
    path = Path(path)
    if formats is None:
        ending = path.suffix.lower().lstrip(".")
        targets = [(path, ending)]
    else:
        targets = [(path.with_suffix("." + str(f).lower().lstrip(".")), str(f).lower().lstrip(".")) for f in formats]
    written = []
    for target, fmt in targets:
        if fmt not in FORMATS:
            raise OptionError(
                f"Figure file {target} has format {fmt!r}; use one of {', '.join('.' + f for f in FORMATS)}."
            )
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt)
        logger.info("wrote figure %s", target)
        written.append(target)
    return written
