"""Agreement scatter and Bland-Altman plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import TableError
from wmhkit.plotting import bland_altman_limits, plot_agreement


@pytest.fixture
def pairs():
    rng = np.random.default_rng(11)
    reference = rng.gamma(2.0, 2.0, 50)
    return pd.DataFrame({"reference_ml": reference, "wmh_ml": reference * 1.1 + rng.normal(0, 0.3, 50)})


def test_limits_of_agreement_lines_are_where_they_should_be(pairs):
    fig = plot_agreement(pairs, "wmh_ml", "reference_ml", a_label="wmhkit", b_label="manual")
    scatter, bland = fig.axes
    difference = pairs["wmh_ml"] - pairs["reference_ml"]
    bias = difference.mean()
    spread = 1.96 * difference.std(ddof=1)
    levels = sorted(line.get_ydata()[0] for line in bland.lines if line.get_ydata()[0] != 0.0)
    assert levels == pytest.approx([bias - spread, bias, bias + spread])
    assert bland.get_ylabel() == "wmhkit - manual (mL)"
    assert scatter.get_xlabel() == "manual (mL)" and scatter.get_ylabel() == "wmhkit (mL)"
    r = np.corrcoef(pairs["reference_ml"], pairs["wmh_ml"])[0, 1]
    assert f"r = {r:.2f}" in scatter.texts[0].get_text()


def test_single_panels_and_bad_input(pairs):
    assert len(plot_agreement(pairs, "wmh_ml", "reference_ml", kind="scatter", log_scale=True).axes) == 1
    assert len(plot_agreement(pairs, "wmh_ml", "reference_ml", kind="bland-altman").axes) == 1
    with pytest.raises(TableError, match="kind"):
        plot_agreement(pairs, "wmh_ml", "reference_ml", kind="icc")
    with pytest.raises(TableError, match="fewer than two"):
        plot_agreement(pairs.iloc[:1], "wmh_ml", "reference_ml")


def test_limits_of_identical_measures_are_zero():
    assert bland_altman_limits(np.ones(5), np.ones(5)) == (0.0, 0.0, 0.0)


def test_two_pairs_say_the_correlation_is_not_available(pairs):
    scatter = plot_agreement(pairs.iloc[:2], "wmh_ml", "reference_ml", kind="scatter").axes[0]
    assert scatter.texts[0].get_text().startswith("r: n/a")
