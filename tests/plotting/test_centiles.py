"""WMH-versus-age scatter with sex-specific centile curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from .figure_fixtures import cohort_table  # noqa: F401 (fixtures)

from wmhkit.errors import OptionError, TableError
from wmhkit.plotting import plot_burden_vs_age
from wmhkit.plotting.centiles import centile_label


def _centiles(table):
    rows = []
    for sex, group in table.groupby("sex"):
        for age in (65.0, 75.0, 85.0):
            near = group[(group["age"] - age).abs() < 8]
            for q in (0.1, 0.5, 0.9):
                rows.append({"sex": sex, "age": age, "quantile": q, "centile": 100 * q,
                             "value": float(np.log1p(near["wmh_ml"].quantile(q)))})
    return pd.DataFrame(rows)


def test_one_panel_per_sex_with_three_curves_each(cohort_table):
    curves = _centiles(cohort_table)
    fig = plot_burden_vs_age(cohort_table, centiles=curves, centile_value="value", back_transform="log1p")
    axes = fig.axes
    assert len(axes) == 2
    assert [ax.get_title().split(" (")[0] for ax in axes] == ["Women", "Men"]
    for ax, sex in zip(axes, ("F", "M")):
        assert len(ax.lines) == 3
        median = [line for line in ax.lines if line.get_linewidth() == 2.0]
        assert len(median) == 1
        expected = np.expm1(curves[(curves["sex"] == sex) & (curves["centile"] == 50)]["value"])
        assert np.allclose(median[0].get_ydata(), expected)
        assert {t.get_text() for t in ax.texts} == {"10th", "50th", "90th"}
        assert ax.get_yscale() == "log"
    assert axes[0].get_ylabel() == "WMH volume (mL)" and axes[0].get_xlabel() == "Age (years)"


def test_points_are_split_by_sex_and_zeros_left_out_on_log_axis(cohort_table):
    table = cohort_table.copy()
    table.loc[:4, "wmh_ml"] = 0.0
    fig = plot_burden_vs_age(table)
    n_points = sum(len(ax.collections[0].get_offsets()) for ax in fig.axes)
    assert n_points == len(table) - 5
    linear = plot_burden_vs_age(table, log_scale=False, panels=False)
    assert len(linear.axes) == 1 and sum(len(c.get_offsets()) for c in linear.axes[0].collections) == len(table)


def test_trajectory_is_drawn_with_its_band(cohort_table):
    ages = np.linspace(60, 90, 5)
    trajectory = pd.DataFrame({"sex": np.repeat(["F", "M"], 5), "age": np.tile(ages, 2),
                               "estimate_ml": np.tile(np.exp(0.08 * (ages - 70)), 2)})
    trajectory["ci_low_ml"] = trajectory["estimate_ml"] * 0.8
    trajectory["ci_high_ml"] = trajectory["estimate_ml"] * 1.2
    fig = plot_burden_vs_age(cohort_table, trajectory=trajectory)
    assert all(any(line.get_linestyle() == ":" for line in ax.lines) for ax in fig.axes)


def test_missing_columns_and_bad_transform_raise(cohort_table):
    with pytest.raises(TableError, match="'years'"):
        plot_burden_vs_age(cohort_table, age="years")
    with pytest.raises(TableError, match="'value'"):
        plot_burden_vs_age(cohort_table, centiles=_centiles(cohort_table).drop(columns="value"), centile_value="value")
    with pytest.raises(OptionError, match="back_transform"):
        plot_burden_vs_age(cohort_table, centiles=_centiles(cohort_table), centile_value="value", back_transform="exp")


def test_centile_labels():
    assert [centile_label(c) for c in (1, 12, 22, 97.5)] == ["1st", "12th", "22nd", "97.5th"]


def test_extension_beyond_the_data_is_dashed_and_labelled():
    from wmhkit.stats import fit_centiles
    from wmhkit.synth.cohort import make_cohort

    table = make_cohort(600, seed=1).table
    table["log_wmh"] = np.log1p(table["wmh_ml"])
    result = fit_centiles(table, "log_wmh", quantiles=(0.1, 0.5, 0.9))
    fitted = plot_burden_vs_age(table, centiles=result.curves(), centile_value="value", back_transform="log1p")
    for ax in fitted.axes:
        assert all(line.get_linestyle() == "-" for line in ax.lines) and "extrapolated" not in {t.get_text() for t in ax.texts}
    extended = plot_burden_vs_age(table, centiles=result.curves(extend_to=(40, 100)), centile_value="value",
                                  back_transform="log1p")
    for ax, sex in zip(extended.axes, ("F", "M")):
        low, high = result.age_ranges[sex]
        solid = [line for line in ax.lines if line.get_linestyle() == "-"]
        dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert len(solid) == 3 and len(dashed) == 6  # each curve: fitted part, extension below and above
        assert all(low - 1e-6 <= x <= high + 1e-6 for line in solid for x in line.get_xdata())
        assert min(line.get_xdata().min() for line in dashed) == 40 and max(line.get_xdata().max() for line in dashed) == 100
        assert "extrapolated" in {t.get_text() for t in ax.texts}
