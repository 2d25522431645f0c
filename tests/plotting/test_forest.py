"""Forest plots of odds and hazard ratios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import TableError
from wmhkit.plotting import plot_forest


@pytest.fixture
def ratios():
    return pd.DataFrame({
        "term": ["wmh", "age", "wmh", "age"],
        "estimate": [1.7, 1.1, 1.5, 1.05],
        "ci_low": [1.4, 1.05, 1.2, 0.98],
        "ci_high": [2.1, 1.16, 1.9, 1.12],
        "p_value": [1e-6, 0.01, 1e-4, 0.2],
        "model": ["OR", "OR", "HR", "HR"],
    })


def test_rows_errorbars_and_annotations(ratios):
    fig = plot_forest(ratios, group="model", p_value="p_value", labels={"wmh": "WMH (per SD)"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["age", "WMH (per SD)"]
    texts = [t.get_text() for t in ax.texts]
    assert "1.70 (1.40-2.10), p < 0.001" in texts and "1.05 (0.98-1.12), p = 0.20" in texts
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["OR", "HR"]
    reference = [line for line in ax.lines if line.get_linestyle() == "--"][0]
    assert reference.get_xdata()[0] == 1.0


def test_log_scale_estimates_are_exponentiated(ratios):
    logs = ratios.assign(**{c: np.log(ratios[c]) for c in ("estimate", "ci_low", "ci_high")})
    fig = plot_forest(logs, exponentiate=True)
    assert "1.70 (1.40-2.10)" in [t.get_text() for t in fig.axes[0].texts]


def test_inconsistent_intervals_and_log_of_negative_raise(ratios):
    with pytest.raises(TableError, match="excludes"):
        plot_forest(ratios.assign(ci_low=2.0))
    with pytest.raises(TableError, match="log axis"):
        plot_forest(ratios.assign(estimate=np.log(ratios["estimate"]), ci_low=-0.1, ci_high=0.9))
    with pytest.raises(TableError, match="'lower'"):
        plot_forest(ratios, ci_low="lower")
