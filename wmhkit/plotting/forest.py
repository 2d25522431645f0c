"""Forest plots of odds ratios and hazard ratios with confidence intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from wmhkit.errors import TableError
from wmhkit.plotting.style import PALETTE, colour_cycle, house_style, new_figure, require_columns

__all__ = ["plot_forest"]


def _format_ci(estimate: float, low: float, high: float) -> str:
    """Text such as ``1.72 (1.40-2.10)``.

    >>> _format_ci(1.7234, 1.401, 2.1)
    '1.72 (1.40-2.10)'
    """
    return f"{estimate:.2f} ({low:.2f}-{high:.2f})"


def _format_p(p_value: float) -> str:
    """P value as journals print it.

    >>> [_format_p(p) for p in (0.2345, 0.0123, 0.00001)]
    ['p = 0.23', 'p = 0.012', 'p < 0.001']
    """
    if p_value < 0.001:
        return "p < 0.001"
    if p_value < 0.05:
        return f"p = {p_value:.3f}"
    return f"p = {p_value:.2f}"


def plot_forest(
    table: pd.DataFrame,
    *,
    term: str = "term",
    estimate: str = "estimate",
    ci_low: str = "ci_low",
    ci_high: str = "ci_high",
    p_value: str | None = None,
    group: str | None = None,
    labels: dict | None = None,
    exponentiate: bool = False,
    log_scale: bool = True,
    reference: float = 1.0,
    xlabel: str = "Odds ratio (95% CI)",
    annotate: bool = True,
    title: str | None = None,
    width_in: float = 5.0,
) -> Figure:
    """Point estimates with confidence intervals, one row per term (and group).

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy model output, one row per term (e.g. from ``wmhkit.stats`` logistic or Cox models).
    term, estimate, ci_low, ci_high : str
        Columns with the term name, the estimate and the confidence limits (default names
        "term", "estimate", "ci_low", "ci_high").
    p_value : str, optional
        Column of p values, printed beside each estimate when ``annotate``.
    group : str, optional
        Column splitting rows into series (e.g. "model": unadjusted/adjusted, or "outcome"),
        drawn side by side in palette colours with a legend.
    labels : dict, optional
        Display names for terms, e.g. ``{"wmh_z": "WMH (per SD)"}``.
    exponentiate : bool, default False
        Set True when the table holds log odds/log hazards (the plot shows ratios).
    log_scale : bool, default True
        Logarithmic ratio axis (symmetric for ratios and their inverses).
    reference : float, default 1.0
        Value of no effect, drawn as a vertical line.
    xlabel : str, default "Odds ratio (95% CI)"
        Axis label, e.g. "Hazard ratio (95% CI)".
    annotate : bool, default True
        Print "estimate (low-high)" and p at the right of each row.
    title : str, optional
        Figure title.
    width_in : float, default 5.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    wmhkit.errors.TableError
        When a column is missing or a confidence interval does not contain its estimate.
    """
    require_columns(table, [term, estimate, ci_low, ci_high, p_value, group], "plot_forest")
    data = table.copy()
    for column in (estimate, ci_low, ci_high):
        data[column] = pd.to_numeric(data[column], errors="coerce")
        if exponentiate:
            data[column] = np.exp(data[column])
    data = data.dropna(subset=[estimate, ci_low, ci_high])
    outside = data[(data[ci_low] > data[estimate] + 1e-12) | (data[ci_high] < data[estimate] - 1e-12)]
    if len(outside):
        raise TableError(
            f"plot_forest: the interval [{ci_low}, {ci_high}] excludes {estimate} for term(s) "
            f"{outside[term].tolist()}; check the column names (or exponentiate)."
        )
    if log_scale and (data[ci_low] <= 0).any():
        raise TableError(
            f"plot_forest: {ci_low} holds values <= 0, which a log axis cannot show; pass exponentiate=True "
            "for log-scale estimates or log_scale=False."
        )
    terms = list(dict.fromkeys(data[term]))
    groups = list(dict.fromkeys(data[group])) if group else [None]
    colours = colour_cycle(len(groups)) if group else [PALETTE["black"]]
    step = 0.7 / max(len(groups), 1)
    height_in = 0.9 + 0.28 * len(terms) * max(1, 0.6 * len(groups))
    with house_style():
        fig = new_figure(width_in, height_in)
        ax = fig.add_subplot()
        for g_index, (series, colour) in enumerate(zip(groups, colours)):
            rows = data if series is None else data[data[group] == series]
            offset = ((len(groups) - 1) / 2.0 - g_index) * step  # first series on top
            positions = np.array([len(terms) - 1 - terms.index(t) for t in rows[term]], dtype=float) + offset
            ax.errorbar(rows[estimate], positions,
                        xerr=[rows[estimate] - rows[ci_low], rows[ci_high] - rows[estimate]],
                        fmt="s", color=colour, markersize=4, capsize=2, linewidth=1.2,
                        label=None if series is None else str(series))
            if annotate:
                for y, (_, row) in zip(positions, rows.iterrows()):
                    text = _format_ci(row[estimate], row[ci_low], row[ci_high])
                    if p_value is not None and pd.notna(row[p_value]):
                        text += f", {_format_p(float(row[p_value]))}"
                    ax.annotate(text, (1.02, y), xycoords=("axes fraction", "data"), va="center",
                                fontsize=7, color=colour, annotation_clip=False)
        ax.axvline(reference, color=PALETTE["grey"], linestyle="--", linewidth=1.0)
        names = labels or {}
        ax.set_yticks(range(len(terms)), [names.get(t, str(t)) for t in reversed(terms)])
        ax.set_ylim(-0.6, len(terms) - 0.4)
        if log_scale:
            ax.set_xscale("log")
            _ratio_ticks(ax, data[ci_low].min(), data[ci_high].max(), reference)
        ax.set_xlabel(xlabel)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
        if group:
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(groups))
        if title:
            ax.set_title(title, loc="left")
    return fig


def _ratio_ticks(ax, low: float, high: float, reference: float) -> None:
    """Plain-number ticks on a log ratio axis (0.5, 1, 2 rather than 10^0), at most about six."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    low = min(low, reference)
    high = max(high, reference)
    options = []
    for candidates in ((0.8, 0.9, 1.0, 1.1, 1.2, 1.3), (0.75, 1.0, 1.25, 1.5, 2.0), (0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
                       (0.25, 0.5, 1.0, 2.0, 4.0), (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0),
                       (0.01, 0.1, 1.0, 10.0, 100.0)):
        inside = np.array([c for c in candidates if low / 1.1 <= c <= high * 1.1])
        options.append(inside)
        # The finest set that has at least three ticks and reaches near both ends of the data.
        if inside.size >= 3 and inside.min() <= low * 1.5 and inside.max() >= high / 1.5:
            ticks = inside
            break
    else:  # none fits: the set spanning the widest range
        ticks = max(options, key=lambda t: (t.max() / t.min() if t.size else 0.0, t.size))
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
