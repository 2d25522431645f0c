"""Site effects on measured lesion volumes before and after harmonisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from wmhkit.errors import OptionError
from wmhkit.plotting.style import PALETTE, house_style, new_figure, require_columns

__all__ = ["plot_site_effect"]


def plot_site_effect(
    table: pd.DataFrame,
    *,
    site: str = "site",
    before: str = "wmh_ml",
    after: str = "wmh_ml_harmonised",
    log_scale: bool = True,
    value_label: str = "WMH volume (mL)",
    titles: tuple[str, str] = ("Before harmonisation", "After harmonisation"),
    title: str | None = None,
    width_in: float = 7.0,
) -> Figure:
    """Box plots of a measure per site, before and after harmonisation, on shared axes.

    A dashed line marks the median of all subjects in each panel, so that sites far from it
    stand out before harmonisation and line up after it.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject.
    site : str, default "site"
        Column naming each subject's site or scanner.
    before, after : str, default "wmh_ml", "wmh_ml_harmonised"
        Columns with the measure as measured and as harmonised (e.g. by ComBat).
    log_scale : bool, default True
        Logarithmic value axis; values <= 0 are left out of that axis.
    value_label : str, default "WMH volume (mL)"
        Value axis label, with units.
    titles : tuple of str
        Titles of the two panels.
    title : str, optional
        Figure title.
    width_in : float, default 7.0
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    wmhkit.errors.TableError
        When a column is missing.
    """
    require_columns(table, [site, before, after], "plot_site_effect")
    sites = sorted(table[site].dropna().unique(), key=str)
    if not sites:
        raise OptionError(f"plot_site_effect: column {site!r} holds no site names; fill it first.")
    with house_style():
        fig = new_figure(width_in, 2.9)
        axes = fig.subplots(1, 2, sharey=True)
        for ax, column, panel_title in zip(axes, (before, after), titles):
            values = [_values(table.loc[table[site] == s, column], log_scale) for s in sites]
            parts = ax.boxplot(values, tick_labels=[str(s) for s in sites], widths=0.6, patch_artist=True,
                               showfliers=True, flierprops={"markersize": 1.5, "alpha": 0.4,
                                                            "markerfacecolor": PALETTE["grey"],
                                                            "markeredgewidth": 0},
                               medianprops={"color": PALETTE["black"], "linewidth": 1.2})
            for box in parts["boxes"]:
                box.set(facecolor=PALETTE["sky"], alpha=0.7, edgecolor=PALETTE["blue"])
            everything = _values(table[column], log_scale)
            if everything.size:
                ax.axhline(np.median(everything), color=PALETTE["vermillion"], linestyle="--", linewidth=1.0,
                           label="Median, all sites")
            ax.set_title(panel_title)
            ax.set_xlabel("Site")
            ax.tick_params(axis="x", labelrotation=45 if len(sites) > 5 else 0)
            if log_scale:
                ax.set_yscale("log")
        axes[0].set_ylabel(value_label)
        axes[0].legend(loc="upper left")
        if title:
            fig.suptitle(title)
    return fig


def _values(series: pd.Series, log_scale: bool) -> np.ndarray:
    values = pd.to_numeric(series, errors="coerce").dropna().to_numpy(dtype=float)
    return values[values > 0] if log_scale else values
