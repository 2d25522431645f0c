"""Bullseye plots of regional burden."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib import colormaps
from matplotlib.colors import to_rgba

from wmhkit.errors import OptionError, TableError
from wmhkit.plotting import plot_bullseye, split_bullseye_region

LOBES = ["frontal_left", "parietal_left", "frontal_right", "parietal_right"]


@pytest.fixture
def regions():
    rng = np.random.default_rng(2)
    rows = []
    for subject in range(6):
        for lobe in LOBES:
            for shell in range(1, 5):
                rows.append({"subject": f"s{subject}", "scheme": "bullseye", "region": f"{lobe}_shell{shell}",
                             "lesion_ml": float(rng.random() / shell), "dementia": subject % 2})
        rows.append({"subject": f"s{subject}", "scheme": "bullseye", "region": "other", "lesion_ml": 0.1,
                     "dementia": subject % 2})
    return pd.DataFrame(rows)


def _cells(ax):
    return [p for p in ax.patches if p.get_width() > 0]


def test_one_cell_per_ring_and_wedge_coloured_by_the_mean(regions):
    fig = plot_bullseye(regions)
    polar = [ax for ax in fig.axes if ax.name == "polar"]
    assert len(polar) == 1
    cells = _cells(polar[0])
    assert len(cells) == 4 * 4  # four wedges x four shells; "other" left out
    # Exactly one cell, the one with the largest mean, takes the top colour of the scale.
    norm_top = colormaps["viridis"](1.0)
    assert sum(np.allclose(c.get_facecolor(), norm_top) for c in cells) == 1
    labels = {t.get_text() for t in polar[0].texts}
    assert labels == {"Frontal L", "Parietal L", "Frontal R", "Parietal R"}


def test_groups_are_drawn_side_by_side_on_one_scale(regions):
    fig = plot_bullseye(regions, group="dementia", statistic="median")
    polar = [ax for ax in fig.axes if ax.name == "polar"]
    assert [ax.get_title() for ax in polar] == ["dementia = 0 (n = 3)", "dementia = 1 (n = 3)"]
    assert all(len(_cells(ax)) == 16 for ax in polar)


def test_missing_cells_are_grey(regions):
    partial = regions[regions["region"] != "frontal_left_shell2"]
    polar = [ax for ax in plot_bullseye(partial).axes if ax.name == "polar"][0]
    assert sum(np.allclose(c.get_facecolor(), to_rgba("#DDDDDD")) for c in _cells(polar)) == 1


def test_explicit_columns_and_errors(regions):
    table = pd.DataFrame({"wedge": ["a", "a", "b", "b"], "ring": [1, 2, 1, 2], "value": [1.0, 2.0, 3.0, 4.0]})
    fig = plot_bullseye(table, value="value", value_label="OR per SD")
    assert any(ax.get_ylabel() == "OR per SD" for ax in fig.axes)
    with pytest.raises(OptionError, match="statistic"):
        plot_bullseye(regions, statistic="max")
    with pytest.raises(TableError, match="ring"):
        plot_bullseye(regions.drop(columns="region"))
    with pytest.raises(TableError, match="ring number"):
        split_bullseye_region("frontal")


def test_standard_bullseye_has_36_cells_matching_the_regional_table():
    """Both hemispheres and the basal ganglia/thalamus: one cell per region of the 36-region table, per group."""
    from wmhkit.synth.cohort import make_cohort
    from wmhkit.synth.regional import BULLSEYE_REGION_NAMES, bullseye_regions

    regions = bullseye_regions(make_cohort(60, seed=3).table, seed=1)
    subject = regions[regions["subject"] == regions["subject"].iloc[0]]
    fig = plot_bullseye(subject, vmin=0, vmax=float(subject["lesion_ml"].max()))
    polar = [ax for ax in fig.axes if ax.name == "polar"][0]
    cells = _cells(polar)
    assert len(cells) == 36 == len(BULLSEYE_REGION_NAMES)
    assert {t.get_text() for t in polar.texts} == {
        "Frontal L", "Parietal L", "Temporal L", "Occipital L", "Frontal R", "Parietal R", "Temporal R", "Occipital R",
        "Basal ganglia thalamus"}
    # one to one: each region's value has its own cell, in its colour
    norm_colour = colormaps["viridis"]
    top = float(subject["lesion_ml"].max())
    colours = [np.asarray(c.get_facecolor()) for c in cells]
    for value in subject["lesion_ml"]:
        assert sum(np.allclose(colour, norm_colour(value / top)) for colour in colours) >= 1
    # the basal ganglia/thalamus wedge sits at the bottom, hemispheres left and right of the midline
    labels = {t.get_text(): t.get_position()[0] % (2 * np.pi) for t in polar.texts}
    assert abs(labels["Basal ganglia thalamus"] - 1.5 * np.pi) < 1e-6
    assert all(np.cos(labels[f"{lobe} L"] ) < 0 < np.cos(labels[f"{lobe} R"]) for lobe in ("Parietal", "Temporal"))
    group = plot_bullseye(regions.assign(dementia=regions["dementia"].map({0: "no", 1: "yes"})), group="dementia")
    assert all(len(_cells(ax)) == 36 for ax in group.axes if ax.name == "polar")
