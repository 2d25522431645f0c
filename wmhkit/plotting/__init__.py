"""Publication figures: every ``plot_*`` function returns a :class:`matplotlib.figure.Figure`.

All figures share one house style (Okabe-Ito colour-blind-safe palette, journal font sizes,
units on the axes) and are saved in one call with :func:`save_figure` (PNG, PDF or SVG,
written atomically). Inputs are plain: images or paths, and pandas DataFrames with column
names, so the figures work with tables from ``wmhkit.stats`` or from any other tool.
Figures are built without pyplot, so building hundreds in a loop does not leak memory.
"""

from wmhkit.plotting.agreement import bland_altman_limits, plot_agreement
from wmhkit.plotting.bullseye import plot_bullseye, split_bullseye_region
from wmhkit.plotting.centiles import plot_burden_vs_age
from wmhkit.plotting.forest import plot_forest
from wmhkit.plotting.harmonisation import plot_site_effect
from wmhkit.plotting.mni import lesion_frequency, plot_lesion_frequency
from wmhkit.plotting.mosaic import plot_lesion_mosaic, plot_overlay_comparison
from wmhkit.plotting.style import PALETTE, house_style, save_figure
from wmhkit.plotting.survival import plot_kaplan_meier

__all__ = [
    "PALETTE",
    "bland_altman_limits",
    "house_style",
    "lesion_frequency",
    "plot_agreement",
    "plot_bullseye",
    "plot_burden_vs_age",
    "plot_forest",
    "plot_kaplan_meier",
    "plot_lesion_frequency",
    "plot_lesion_mosaic",
    "plot_overlay_comparison",
    "plot_site_effect",
    "save_figure",
    "split_bullseye_region",
]
