"""Bullseye plots of regional lesion burden: depth rings x lobar wedges, for a subject or a group."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from wmhkit.errors import OptionError, TableError
from wmhkit.plotting.style import BURDEN_CMAP, house_style, new_figure, require_columns

__all__ = ["plot_bullseye", "split_bullseye_region"]

logger = logging.getLogger(__name__)

_STATISTICS = ("mean", "median", "sum")
_REGION_PATTERN = re.compile(r"^(?P<wedge>.+?)[_\-\s]+(?:depth|ring|layer|shell)?[_\-\s]*(?P<ring>\d+)$", re.IGNORECASE)


def split_bullseye_region(region: str) -> tuple[str, int]:
    """Split a bullseye region name into its wedge (lobe) and ring number.

    Accepts names such as ``frontal_left_depth1``, ``frontal-2`` or ``occipital_ring4``.

    >>> split_bullseye_region("frontal_left_depth1")
    ('frontal_left', 1)
    >>> split_bullseye_region("temporal-3")
    ('temporal', 3)
    """
    match = _REGION_PATTERN.match(str(region))
    if not match:
        raise TableError(
            f"Bullseye region {region!r} does not end with a ring number (e.g. 'frontal_depth1'); "
            "pass ring= and wedge= columns instead."
        )
    return match["wedge"], int(match["ring"])


def _long_table(table: pd.DataFrame, ring: str, wedge: str, region: str | None) -> pd.DataFrame:
    if ring in table.columns and wedge in table.columns:
        return table
    if region is not None and region in table.columns:
        if "scheme" in table.columns and (table["scheme"] == "bullseye").any():
            # A full wmhkit.regions table: keep the bullseye scheme's rows.
            table = table[table["scheme"] == "bullseye"]
        parsed = table[region].map(lambda name: _REGION_PATTERN.match(str(name)))
        skipped = sorted(set(table.loc[parsed.isna(), region].astype(str)))
        if skipped:
            logger.info("bullseye: left out region(s) without a ring number: %s", ", ".join(skipped))
        table = table[parsed.notna()]
        if table.empty:
            raise TableError(
                f"plot_bullseye: no value of column {region!r} ends with a ring number (e.g. 'frontal_shell1'); "
                "pass ring= and wedge= columns instead."
            )
        parts = table[region].map(split_bullseye_region)
        return table.assign(**{wedge: parts.map(lambda p: p[0]), ring: parts.map(lambda p: p[1])})
    raise TableError(
        f"plot_bullseye: the table needs ring and wedge columns ({ring!r}, {wedge!r}) or a region column "
        f"({region!r}); it has {list(table.columns)}."
    )


#: Lobes from the front of the head to the back, for a symmetric default layout.
_LOBE_ORDER = ("frontal", "temporal", "parietal", "occipital")


def _default_wedge_order(wedges: list) -> list:
    """Left-hemisphere wedges counter-clockwise from the top down the left side, right ones mirrored.

    >>> _default_wedge_order(["frontal_left", "parietal_left", "frontal_right", "parietal_right", "deep"])
    ['frontal_left', 'parietal_left', 'deep', 'parietal_right', 'frontal_right']
    """
    def lobe_rank(name: str) -> int:
        base = name.rsplit("_", 1)[0]
        return _LOBE_ORDER.index(base) if base in _LOBE_ORDER else len(_LOBE_ORDER)

    left = [w for w in wedges if str(w).endswith("_left")]
    right = [w for w in wedges if str(w).endswith("_right")]
    if not left or not right:
        return wedges
    others = [w for w in wedges if w not in left and w not in right]
    return sorted(left, key=lobe_rank) + others + sorted(right, key=lobe_rank, reverse=True)


def _pretty(name) -> str:
    """Wedge label: "frontal_left" -> "Frontal L".

    >>> _pretty("frontal_left"), _pretty("basal_ganglia_thalamus")
    ('Frontal L', 'Basal ganglia thalamus')
    """
    text, suffix = str(name), ""
    for side, short in (("_left", " L"), ("_right", " R")):
        if text.endswith(side):
            text, suffix = text[: -len(side)], short
    return text.replace("_", " ").capitalize() + suffix


def plot_bullseye(
    table: pd.DataFrame,
    *,
    value: str = "lesion_ml",
    ring: str = "ring",
    wedge: str = "wedge",
    region: str | None = "region",
    group: str | None = None,
    statistic: str = "mean",
    ring_order: list | None = None,
    wedge_order: list | None = None,
    ring_labels: tuple[str, str] = ("periventricular", "juxtacortical"),
    cmap: str = BURDEN_CMAP,
    vmin: float | None = None,
    vmax: float | None = None,
    value_label: str = "WMH volume (mL)",
    title: str | None = None,
    width_in: float | None = None,
) -> Figure:
    """Regional burden as a bullseye: concentric rings by depth, wedges by lobe.

    Rings run from the ventricles (centre) to the cortex (outside); each wedge is a lobe (or
    lobe and hemisphere). Each cell is coloured by ``value``; with several rows per cell
    (several subjects), by their ``statistic``.

    Parameters
    ----------
    table : pandas.DataFrame
        Tidy regional table, one row per (subject, region) or per region, e.g. the
        ``regions`` table of ``wmhkit.regions`` filtered to its bullseye scheme.
    value : str, default "lesion_ml"
        Column coloured (mL, fraction, odds ratio...).
    ring, wedge : str, default "ring", "wedge"
        Columns with the ring (depth; sortable, innermost first) and the wedge (lobe).
    region : str or None, default "region"
        Used when ``ring``/``wedge`` are absent: names such as ``frontal_depth1`` are split
        into wedge and ring with :func:`split_bullseye_region`.
    group : str, optional
        Column splitting subjects into groups (e.g. dementia yes/no), drawn side by side on
        a shared colour scale.
    statistic : {"mean", "median", "sum"}, default "mean"
        How rows of one cell (subjects) are combined.
    ring_order, wedge_order : list, optional
        Explicit order of rings (inside out) and wedges (counter-clockwise from the top).
    ring_labels : tuple of str
        Names of the innermost and outermost ring, written under the plot.
    cmap : str, default "viridis"
        Colour map.
    vmin, vmax : float, optional
        Colour scale limits (default 0 or the smallest value, and the largest value).
    value_label : str, default "WMH volume (mL)"
        Colour bar label, with units.
    title : str, optional
        Figure title.
    width_in : float, optional
        Figure width in inches (default 3.2 per group plus the colour bar).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    wmhkit.errors.TableError
        When columns are missing or region names cannot be split.
    wmhkit.errors.OptionError
        For an unknown ``statistic``.
    """
    if statistic not in _STATISTICS:
        raise OptionError(f"statistic={statistic!r} is unknown; use one of {', '.join(_STATISTICS)}.")
    require_columns(table, [value, group], "plot_bullseye")
    data = _long_table(table, ring, wedge, region)
    keys = ([group] if group else []) + [ring, wedge]
    cells = data.groupby(keys, sort=False)[value].agg(statistic).reset_index()
    rings = ring_order or sorted(cells[ring].unique())
    wedges = wedge_order or _default_wedge_order(list(dict.fromkeys(data[wedge])))
    groups = list(dict.fromkeys(cells[group])) if group else [None]
    values = cells[value].to_numpy(dtype=float)
    low = vmin if vmin is not None else min(0.0, float(np.nanmin(values)))
    high = vmax if vmax is not None else float(np.nanmax(values))
    norm = Normalize(vmin=low, vmax=high if high > low else low + 1.0)
    colour_map = colormaps[cmap]
    width_in = width_in or 3.6 * len(groups) + 0.9
    with house_style():
        fig = new_figure(width_in, 3.4)
        axes = [fig.add_subplot(1, len(groups), i + 1, projection="polar") for i in range(len(groups))]
        span = 2.0 * np.pi / len(wedges)
        # Wedges run counter-clockwise from the top. With hemispheres, the first wedge starts at
        # the top, so the left hemisphere fills the left half and the right one mirrors it;
        # otherwise the first wedge is centred on the top.
        hemispheric = any(str(w).endswith("_left") for w in wedges)
        start = np.pi / 2 + (span / 2 if hemispheric else 0.0)
        for ax, series in zip(axes, groups):
            rows = cells if series is None else cells[cells[group] == series]
            lookup = {(r[ring], r[wedge]): r[value] for _, r in rows.iterrows()}
            for r_index, ring_name in enumerate(rings):
                for w_index, wedge_name in enumerate(wedges):
                    cell = lookup.get((ring_name, wedge_name), np.nan)
                    face = "#DDDDDD" if not np.isfinite(cell) else colour_map(norm(cell))
                    ax.bar(start + w_index * span, 1.0, width=span, bottom=0.6 + r_index, color=face,
                           edgecolor="white", linewidth=0.8, align="center")
            outer = 0.6 + len(rings)
            for w_index, wedge_name in enumerate(wedges):
                angle = start + w_index * span
                horizontal = np.cos(angle)
                align = "center" if abs(horizontal) < 0.3 else ("left" if horizontal > 0 else "right")
                ax.text(angle, outer + 0.35, _pretty(wedge_name), ha=align, va="center", fontsize=7)
            # Room inside the axes for the wedge names, so the layout never clips them.
            ax.set_ylim(0, outer + (1.6 if len(wedges) > 4 else 0.8))
            ax.set_axis_off()
            if series is not None:
                n_subjects = data.loc[data[group] == series, "subject"].nunique() if "subject" in data else None
                suffix = f" (n = {n_subjects})" if n_subjects else ""
                ax.set_title(f"{group} = {series}{suffix}", pad=14)
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=colour_map), ax=axes, shrink=0.7, fraction=0.05)
        bar.set_label(value_label)
        # A figure-level x label, so the layout keeps it clear of the wedge names.
        fig.supxlabel(f"Rings: {ring_labels[0]} (centre) to {ring_labels[1]} (outside)", fontsize=7)
        if title:
            fig.suptitle(title)
    return fig
