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
