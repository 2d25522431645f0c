"""Agreement between two measurements of the same volumes: scatter against identity, and Bland-Altman."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from wmhkit.errors import TableError
from wmhkit.plotting.style import PALETTE, house_style, new_figure, require_columns

__all__ = ["plot_agreement", "bland_altman_limits"]


def bland_altman_limits(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Mean difference (a - b) and 95 % limits of agreement (mean +- 1.96 SD of the differences).

    >>> [round(v, 3) for v in bland_altman_limits(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 3.0]))]
    [0.667, -0.465, 1.798]
    """
    difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    bias = float(difference.mean())
    spread = 1.96 * float(difference.std(ddof=1)) if difference.size > 1 else 0.0
    return bias, bias - spread, bias + spread


def plot_agreement(
    table: pd.DataFrame,
    a: str,
    b: str,
    *,
    a_label: str | None = None,
    b_label: str | None = None,
    units: str = "mL",
    kind: str = "both",
    log_scale: bool = False,
    title: str | None = None,
    width_in: float | None = None,
) -> Figure:
    """Agreement scatter (with the identity line) and Bland-Altman plot of two measures.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject (or lesion) measured twice.
    a, b : str
        Columns with the two measures, e.g. "wmh_ml" (wmhkit) and "reference_ml" (manual).
        The Bland-Altman difference is ``a - b``.
    a_label, b_label : str, optional
        Display names (default: the column names).
    units : str, default "mL"
        Unit of both measures, shown on the axes.
    kind : {"both", "scatter", "bland-altman"}, default "both"
        Which panels to draw.
    log_scale : bool, default False
        Logarithmic axes on the scatter (positive values only).
    title : str, optional
        Figure title.
    width_in : float, optional
        Figure width in inches (default 3.3 per panel).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    wmhkit.errors.TableError
        When a column is missing or fewer than two rows hold both measures.
    """
    require_columns(table, [a, b], "plot_agreement")
    if kind not in ("both", "scatter", "bland-altman"):
        raise TableError(f"plot_agreement kind={kind!r} is unknown; use 'both', 'scatter' or 'bland-altman'.")
    pairs = table[[a, b]].apply(pd.to_numeric, errors="coerce").dropna()
    if len(pairs) < 2:
        raise TableError(f"plot_agreement: fewer than two rows hold both {a!r} and {b!r}; check the columns.")
    x = pairs[b].to_numpy(dtype=float)
    y = pairs[a].to_numpy(dtype=float)
    a_label = a_label or a
    b_label = b_label or b
    panels = ["scatter", "bland-altman"] if kind == "both" else [kind]
    with house_style():
        fig = new_figure(width_in or 3.3 * len(panels) + 0.2, 3.0)
        axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)[0])
        for ax, panel in zip(axes, panels):
            if panel == "scatter":
                _scatter(ax, x, y, a_label, b_label, units, log_scale)
            else:
                _bland_altman(ax, x, y, a_label, b_label, units)
        if title:
            fig.suptitle(title)
    return fig


def _scatter(ax, x, y, a_label, b_label, units, log_scale) -> None:
    if log_scale:
        keep = (x > 0) & (y > 0)
        x, y = x[keep], y[keep]
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.scatter(x, y, s=10, color=PALETTE["blue"], alpha=0.6, linewidths=0)
    low = float(min(x.min(), y.min()))
    high = float(max(x.max(), y.max()))
    ax.plot([low, high], [low, high], color=PALETTE["grey"], linestyle="--", linewidth=1.0, label="Identity")
    r = float(np.corrcoef(x, y)[0, 1]) if x.size > 2 and x.std() > 0 and y.std() > 0 else float("nan")
    r_text = f"r = {r:.2f}" if np.isfinite(r) else "r: n/a (fewer than 3 pairs)"
    ax.text(0.04, 0.96, f"{r_text}\nn = {x.size}", transform=ax.transAxes, va="top", fontsize=8)
    ax.set_xlabel(f"{b_label} ({units})")
    ax.set_ylabel(f"{a_label} ({units})")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="lower right")


def _bland_altman(ax, x, y, a_label, b_label, units) -> None:
    mean = (x + y) / 2.0
    bias, low, high = bland_altman_limits(y, x)
    ax.scatter(mean, y - x, s=10, color=PALETTE["blue"], alpha=0.6, linewidths=0)
    ax.axhline(bias, color=PALETTE["vermillion"], linewidth=1.2)
    for limit in (low, high):
        ax.axhline(limit, color=PALETTE["vermillion"], linestyle="--", linewidth=1.0)
    ax.axhline(0.0, color=PALETTE["grey"], linewidth=0.8, linestyle=":")
    # One text box rather than labels on the lines: the lines crowd when outliers stretch the axis.
    ax.text(0.98, 0.96, f"bias {bias:+.2f} {units}\n95% limits {low:+.2f} to {high:+.2f} {units}",
            transform=ax.transAxes, ha="right", va="top", fontsize=7, color=PALETTE["vermillion"],
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1.5})
    ax.set_xlabel(f"Mean of both ({units})")
    ax.set_ylabel(f"{a_label} - {b_label} ({units})")
