"""Kaplan-Meier curves from a tidy survival table, with an optional number-at-risk table."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from wmhkit.plotting.style import colour_cycle, house_style, new_figure, require_columns

__all__ = ["plot_kaplan_meier"]


def _step_curve(rows: pd.DataFrame, time: str, columns: list[str]) -> pd.DataFrame:
    """Sort by time and start the curve at time 0 with survival 1 when the table does not."""
    rows = rows.sort_values(time)
    if len(rows) == 0 or rows[time].iloc[0] > 0:
        start = {time: 0.0, **{c: 1.0 for c in columns}}
        rows = pd.concat([pd.DataFrame([start]), rows], ignore_index=True)
    return rows


def _at_risk_at(rows: pd.DataFrame, time: str, n_at_risk: str, when: float) -> int:
    """Number at risk at time ``when``: that of the first table row at or after it, else 0.

    >>> t = pd.DataFrame({"t": [0.0, 2.0, 5.0], "n": [100, 80, 30]})
    >>> [_at_risk_at(t, "t", "n", w) for w in (0, 1, 5, 6)]
    [100, 80, 30, 0]
    """
    later = rows[rows[time] >= when - 1e-12]
    return int(later[n_at_risk].iloc[0]) if len(later) else 0


def plot_kaplan_meier(
    table: pd.DataFrame,
    *,
    time: str = "time",
    survival: str = "survival",
    ci_low: str | None = "ci_low",
    ci_high: str | None = "ci_high",
    group: str | None = "group",
    n_at_risk: str | None = None,
    group_labels: dict | None = None,
    time_label: str = "Follow-up (years)",
    survival_label: str = "Dementia-free survival",
    as_percent: bool = False,
    title: str | None = None,
    width_in: float = 4.0,
) -> Figure:
    """Kaplan-Meier step curves with confidence bands, one per group.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy Kaplan-Meier estimate, one row per (group, event time), e.g. from
        ``wmhkit.stats``: survival probability at and after each time.
    time, survival : str, default "time", "survival"
        Columns with the time (in the unit of ``time_label``) and the survival probability (0-1).
    ci_low, ci_high : str or None, default "ci_low", "ci_high"
        Columns with the confidence band; None (or absent columns) draws no band.
    group : str or None, default "group"
        Column naming the curve of each row (e.g. WMH tertile); None or an absent column draws
        one curve.
    n_at_risk : str, optional
        Column with the number still at risk at each time; when given, a number-at-risk
        table is drawn under the curves at the axis ticks.
    group_labels : dict, optional
        Display names for groups.
    time_label, survival_label : str
        Axis labels with units.
    as_percent : bool, default False
        Show survival in % rather than as a probability.
    title : str, optional
        Figure title.
    width_in : float, default 4.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    wmhkit.errors.TableError
        When ``time``, ``survival`` or ``n_at_risk`` is missing.
    """
    require_columns(table, [time, survival, n_at_risk], "plot_kaplan_meier")
    band = ci_low is not None and ci_high is not None and {ci_low, ci_high} <= set(table.columns)
    grouped = group is not None and group in table.columns
    groups = list(dict.fromkeys(table[group])) if grouped else [None]
    names = group_labels or {}
    colours = colour_cycle(len(groups))
    scale = 100.0 if as_percent else 1.0
    value_columns = [survival] + ([ci_low, ci_high] if band else [])
    with house_style():
        risk_rows = len(groups) if n_at_risk else 0
        fig = new_figure(width_in, 2.8 + 0.16 * risk_rows)
        if n_at_risk:
            ax, risk_ax = fig.subplots(2, 1, sharex=True, height_ratios=[2.8, 0.25 + 0.16 * risk_rows])
        else:
            ax, risk_ax = fig.add_subplot(), None
        curves = {}
        for series, colour in zip(groups, colours):
            rows = table if series is None else table[table[group] == series]
            rows = _step_curve(rows, time, value_columns)
            curves[series] = rows
            label = None if series is None else str(names.get(series, series))
            ax.step(rows[time], rows[survival] * scale, where="post", color=colour, label=label)
            if band:
                ax.fill_between(rows[time], rows[ci_low] * scale, rows[ci_high] * scale, step="post",
                                color=colour, alpha=0.18, linewidth=0)
        ax.set_ylabel(survival_label + (" (%)" if as_percent else ""))
        low = min(float(np.nanmin(c[ci_low if band else survival])) for c in curves.values())
        ax.set_ylim(max(0.0, (low - 0.05)) * scale, 1.01 * scale)
        ax.set_xlim(left=0)
        if grouped:
            ax.legend(loc="lower left", title=None if group_labels or group == "group" else str(group))
        if risk_ax is None:
            ax.set_xlabel(time_label)
        else:
            _draw_risk_table(fig, ax, risk_ax, curves, groups, colours, names, time, n_at_risk, time_label)
        if title:
            ax.set_title(title, loc="left")
    return fig


def _draw_risk_table(fig, ax, risk_ax, curves, groups, colours, names, time, n_at_risk, time_label) -> None:
    fig.draw_without_rendering()  # fixes the tick positions the table is aligned with
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    for row_index, (series, colour) in enumerate(zip(groups, colours)):
        y = len(groups) - 1 - row_index
        rows = curves[series].dropna(subset=[n_at_risk])
        for tick in ticks:
            risk_ax.text(tick, y, str(_at_risk_at(rows, time, n_at_risk, tick)), ha="center", va="center",
                         fontsize=7, color=colour)
    risk_ax.set_ylim(-0.6, len(groups) - 0.4)
    risk_ax.set_yticks(range(len(groups)),
                       [str(names.get(g, g)) if g is not None else "All" for g in reversed(groups)], fontsize=7)
    # Pad the group names clear of the numbers centred on the first tick (time 0).
    risk_ax.tick_params(axis="y", length=0, pad=16)
    for side in ("left", "top", "right"):
        risk_ax.spines[side].set_visible(False)
    risk_ax.set_title("Number at risk", fontsize=7, loc="left")
    risk_ax.set_xlabel(time_label)
