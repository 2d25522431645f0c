"""Kaplan-Meier curves from a tidy table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import TableError
from wmhkit.plotting import plot_kaplan_meier


def _km(time, event):
    """Product-limit estimate written out for the test (one row per distinct time)."""
    time, event = np.asarray(time, float), np.asarray(event, int)
    rows, survival = [], 1.0
    for t in np.unique(time):
        at_risk = int((time >= t).sum())
        deaths = int(event[time == t].sum())
        survival *= 1 - deaths / at_risk
        rows.append({"time": t, "survival": survival, "n_at_risk": at_risk,
                     "ci_low": max(survival - 0.1, 0), "ci_high": min(survival + 0.1, 1)})
    return pd.DataFrame(rows)


@pytest.fixture
def curves():
    rng = np.random.default_rng(5)
    parts = []
    for name, rate in (("low", 0.05), ("high", 0.2)):
        time = rng.exponential(1 / rate, 40).clip(0.1, 10)
        event = (time < 10).astype(int)
        parts.append(_km(time, event).assign(group=name))
    return pd.concat(parts, ignore_index=True)


def test_one_step_curve_and_band_per_group_starting_at_one(curves):
    fig = plot_kaplan_meier(curves)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and len(ax.collections) == 2
    for line, name in zip(ax.lines, ("low", "high")):
        assert line.get_drawstyle() == "steps-post"
        assert line.get_ydata()[0] == 1.0 and line.get_xdata()[0] == 0.0
        assert line.get_ydata()[-1] == pytest.approx(curves.loc[curves["group"] == name, "survival"].iloc[-1])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["low", "high"]


def test_number_at_risk_table_matches_the_counts(curves):
    fig = plot_kaplan_meier(curves, n_at_risk="n_at_risk", as_percent=True)
    ax, risk_ax = fig.axes
    assert ax.get_ylim()[1] > 99
    numbers = {(round(t.get_position()[0], 6), t.get_color()): int(t.get_text()) for t in risk_ax.texts}
    low = curves[curves["group"] == "low"]
    first_tick = min(x for x, _ in numbers)
    assert first_tick == 0.0
    assert max(v for (x, _), v in numbers.items() if x == 0.0) == low["n_at_risk"].max()
    assert [t.get_text() for t in risk_ax.get_yticklabels()] == ["high", "low"]


def test_single_curve_without_band_or_group(curves):
    one = curves[curves["group"] == "low"].drop(columns=["group", "ci_low", "ci_high"])
    fig = plot_kaplan_meier(one)
    assert len(fig.axes[0].lines) == 1 and len(fig.axes[0].collections) == 0


def test_missing_column_raises(curves):
    with pytest.raises(TableError, match="'surv'"):
        plot_kaplan_meier(curves, survival="surv")
