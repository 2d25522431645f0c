"""Lesion burden versus age: one point per subject, with sex-specific centile curves."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from wmhkit.errors import OptionError
from wmhkit.plotting.style import PALETTE, house_style, new_figure, require_columns, sex_colour

__all__ = ["plot_burden_vs_age", "centile_label"]

logger = logging.getLogger(__name__)


def centile_label(centile: float) -> str:
    """Ordinal label of a centile given as a percentage or a fraction.

    >>> [centile_label(c) for c in (0.05, 50, 0.9, 2, 3, 11)]
    ['5th', '50th', '90th', '2nd', '3rd', '11th']
    """
    value = float(centile)
    if 0 < value < 1:
        value *= 100.0
    number = int(round(value)) if abs(value - round(value)) < 1e-9 else value
    if isinstance(number, float):
        return f"{number:g}th"
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _groups(table: pd.DataFrame, sex: str | None) -> list:
    if sex is None:
        return [None]
    return sorted(table[sex].dropna().unique(), key=str)


def _sex_name(value) -> str:
    key = str(value).strip()[:1].upper()
    return {"F": "Women", "M": "Men"}.get(key, str(value))


def _draw_centiles(ax: Axes, centiles: pd.DataFrame, *, group, sex, colour, age, centile, value) -> list:
    """Draw one sex's centile curves; return their end labels (x, y, text, colour) for placement.

    Rows flagged ``extrapolated`` (ages beyond the reference data) are drawn dashed, joined
    to the fitted part, and the extension is labelled once.
    """
    rows = centiles if group is None else centiles[centiles[sex] == group]
    labels = []
    flagged = rows["extrapolated"].to_numpy(bool) if "extrapolated" in rows.columns else np.zeros(len(rows), bool)
    for level in sorted(rows[centile].unique()):
        pick = (rows[centile] == level).to_numpy()
        curve = rows[pick].assign(_extra=flagged[pick]).sort_values(age)
        middle = abs(float(level) - (0.5 if float(level) < 1 else 50.0)) < 1e-9
        inside = curve[~curve["_extra"]]
        ax.plot(inside[age], inside[value], color=colour, linewidth=2.0 if middle else 1.0, linestyle="-")
        if len(inside) and curve["_extra"].any():
            for part in (curve[curve[age] <= inside[age].iloc[0]], curve[curve[age] >= inside[age].iloc[-1]]):
                if len(part) > 1:
                    ax.plot(part[age], part[value], color=colour, linewidth=1.0, linestyle="--", alpha=0.7)
        if len(curve):
            labels.append((curve[age].iloc[-1], curve[value].iloc[-1], centile_label(level), colour))
    if flagged.any():
        extra = rows[flagged]
        ax.text(float(extra[age].max()), 0.02, "extrapolated", transform=ax.get_xaxis_transform(), ha="right",
                va="bottom", fontsize=6, color=PALETTE["black"], style="italic")
    return labels


def _place_end_labels(ax: Axes, labels: list, min_gap_pt: float = 8.0) -> None:
    """Write curve labels right of their curves' ends, pushed apart vertically so they never overlap."""
    if not labels:
        return
    fig = ax.figure
    to_points = 72.0 / fig.dpi
    box = ax.get_window_extent()
    ends = [ax.transData.transform((x, y)) for x, y, _, _ in labels]
    # Curves leaving the axes are labelled at the edge they leave by.
    ends = [(x, float(np.clip(y, box.y0, box.y1))) if np.isfinite(y) else (x, box.y0) for x, y in ends]
    order = np.argsort([end[1] for end in ends])
    placed: list[float] = []
    for index in order:
        y_pt = ends[index][1] * to_points
        if placed and y_pt < placed[-1] + min_gap_pt:
            y_pt = placed[-1] + min_gap_pt
        placed.append(y_pt)
    overflow = placed[-1] - box.y1 * to_points
    if overflow > 0:  # pushed above the axes: slide the whole stack down, keeping the gaps
        placed = [y - overflow for y in placed]
    for index, y_pt in zip(order, placed):
        _, _, text, colour = labels[index]
        # Anchored in axes fractions, not pixels: the figure may be saved at another dpi.
        anchor = (ends[index][1] - box.y0) / max(box.height, 1e-9)
        ax.annotate(text, (1.0, anchor), xycoords="axes fraction",
                    xytext=(3, y_pt - ends[index][1] * to_points), textcoords="offset points",
                    fontsize=7, color=colour, va="center", annotation_clip=False)


def _inverse(back_transform: str | None):
    if back_transform is None:
        return lambda values: values
    if back_transform == "log":
        return np.exp
    if back_transform == "log1p":
        return np.expm1
    raise OptionError(f"back_transform={back_transform!r} is unknown; use None, 'log' or 'log1p'.")


def _draw_trajectory(ax: Axes, trajectory: pd.DataFrame, *, group, sex, age, value) -> None:
    rows = (trajectory if group is None else trajectory[trajectory[sex] == group]).sort_values(age)
    low, high = value.replace("estimate", "ci_low"), value.replace("estimate", "ci_high")
    if low in rows.columns and high in rows.columns and low != value:
        ax.fill_between(rows[age], rows[low], rows[high], color=PALETTE["black"], alpha=0.12, linewidth=0)
    ax.plot(rows[age], rows[value], color=PALETTE["black"], linestyle=":", linewidth=1.5, label="Mean trajectory")


def plot_burden_vs_age(
    table: pd.DataFrame,
    *,
    age: str = "age",
    value: str = "wmh_ml",
    sex: str | None = "sex",
    centiles: pd.DataFrame | None = None,
    centile: str = "centile",
    centile_value: str | None = None,
    back_transform: str | None = None,
    trajectory: pd.DataFrame | None = None,
    trajectory_value: str = "estimate_ml",
    log_scale: bool = True,
    value_label: str = "WMH volume (mL)",
    age_label: str = "Age (years)",
    panels: bool = True,
    title: str | None = None,
    width_in: float | None = None,
    point_size: float | None = None,
) -> Figure:
    """Scatter of lesion volume against age, coloured by sex, with centile curves on top.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject.
    age, value, sex : str, default "age", "wmh_ml", "sex"
        Columns of ``table``: age (years), lesion volume (mL) and sex. ``sex=None`` draws one
        group. Values of sex starting with F/M are shown as women/men.
    centiles : pandas.DataFrame, optional
        Tidy centile curves, one row per (sex, centile, age): columns ``age`` (same name as
        in ``table``), ``sex`` (ditto, unless ``sex`` is None), ``centile`` (a fraction such
        as 0.5 or a percentage such as 50) and ``centile_value``. The median is drawn thick,
        other centiles thin, each labelled at its oldest age; rows with ``extrapolated`` True
        (``CentileResult.curves(extend_to=...)``: ages beyond the reference data) are drawn
        dashed and labelled "extrapolated". Curves are drawn only where the table has rows, so
        by default over the ages the centiles were fitted on.
    centile : str, default "centile"
        Column of ``centiles`` holding the centile level.
    centile_value : str, optional
        Column of ``centiles`` holding the curve's volume; defaults to ``value``.
    back_transform : {None, "log", "log1p"}, default None
        Scale of the centile values when they were fitted on a transformed outcome (e.g.
        ``log(1 + mL)``); they are turned back into mL before drawing.
    trajectory : pandas.DataFrame, optional
        Mean age trajectory to draw as a dotted line with its confidence band: columns
        ``age``, ``sex`` (unless ``sex`` is None), ``trajectory_value`` and, if present,
        ``<trajectory_value>`` with ``estimate`` replaced by ``ci_low``/``ci_high``
        (e.g. ``wmhkit.stats.fit_trajectory(...).predict()`` with ``back_transform``).
    trajectory_value : str, default "estimate_ml"
        Column of ``trajectory`` with the mean volume (mL).
    log_scale : bool, default True
        Logarithmic volume axis (lesion volumes are right-skewed; zeros are then left out).
    value_label, age_label : str
        Axis labels, with units.
    panels : bool, default True
        One panel per sex side by side (shared axes); False overlays the groups.
    title : str, optional
        Figure title.
    width_in : float, optional
        Figure width in inches (default 3.5 per panel).
    point_size : float, optional
        Marker area; by default smaller for bigger cohorts.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    wmhkit.errors.TableError
        When a named column is missing from ``table`` or ``centiles``.
    """
    require_columns(table, [age, value, sex], "plot_burden_vs_age")
    centile_value = centile_value or value
    if centiles is not None:
        require_columns(centiles, [age, sex, centile, centile_value], "plot_burden_vs_age centiles")
        centiles = centiles.assign(**{centile_value: _inverse(back_transform)(centiles[centile_value])})
    if trajectory is not None:
        require_columns(trajectory, [age, sex, trajectory_value], "plot_burden_vs_age trajectory")
    data = table[[c for c in (age, value, sex) if c is not None]].dropna(subset=[age, value])
    if log_scale:
        dropped = int((data[value] <= 0).sum())
        if dropped:
            logger.info("left out %d subjects with %s <= 0 on the log axis", dropped, value)
        data = data[data[value] > 0]
    groups = _groups(data, sex)
    n_panels = len(groups) if (panels and sex is not None) else 1
    if point_size is None:
        point_size = float(np.clip(3000.0 / max(len(data), 1), 2.0, 18.0))
    with house_style():
        fig = new_figure(width_in or 3.3 * n_panels + 0.2, 2.9)
        axes = np.atleast_1d(fig.subplots(1, n_panels, sharex=True, sharey=True, squeeze=False)[0])
        end_labels: dict = {}
        for index, group in enumerate(groups):
            ax = axes[index if n_panels > 1 else 0]
            colour = sex_colour(group, index) if group is not None else sex_colour(None, 0)
            rows = data if group is None else data[data[sex] == group]
            label = f"{_sex_name(group)} (n = {len(rows)})" if group is not None else f"n = {len(rows)}"
            ax.scatter(rows[age], rows[value], s=point_size, color=colour, alpha=0.35, linewidths=0,
                       label=label, rasterized=len(rows) > 2000)
            if centiles is not None:
                end_labels.setdefault(id(ax), (ax, []))[1].extend(
                    _draw_centiles(ax, centiles, group=group, sex=sex, colour=colour, age=age, centile=centile,
                                   value=centile_value))
            if trajectory is not None:
                _draw_trajectory(ax, trajectory, group=group, sex=sex, age=age, value=trajectory_value)
            if n_panels > 1:
                ax.set_title(label)
        values = data[value].to_numpy(dtype=float)
        for ax in axes:
            if log_scale:
                ax.set_yscale("log")
                if values.size:
                    # Limits from the subjects, not the curves: extrapolated extreme centiles
                    # (and lower curves nearing 0 mL) would otherwise squash the scatter.
                    ax.set_ylim(values.min() / 2.0, values.max() * 2.0)
            ax.set_xlabel(age_label)
            ax.margins(x=0.08)
        axes[0].set_ylabel(value_label)
        if n_panels == 1 and groups != [None]:
            axes[0].legend(loc="upper left", markerscale=2.0)
        if title:
            fig.suptitle(title)
        if end_labels:
            fig.draw_without_rendering()  # final scales and layout, so labels are spaced in points
            for ax, labels in end_labels.values():
                _place_end_labels(ax, labels)
    return fig
