"""Age trajectories: the generating age slope recovered, site fixed or random, bands and errors."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.errors import OptionError, TableError
from wmhkit.stats.trajectories import fit_trajectory


def _true_slope(params, age, female):
    x = age - params["age_center"]
    return params["age_slope_per_year"] + 2 * params["age_quadratic_per_year2"] * x + female * params["female_age_slope_per_year"]


def test_annual_change_recovers_generating_slope(cohort_table, cohort):
    p = cohort.params
    result = fit_trajectory(cohort_table, "log_wmh_true", site=None, covariates=["hypertension"], back_transform="log")
    change = result.annual_change([72.0, 80.0]).set_index(["sex", "age"])
    for sex, female in (("F", 1), ("M", 0)):
        for age in (72.0, 80.0):
            row = change.loc[(sex, age)]
            truth = _true_slope(p, age, female)
            assert row["ci_low"] - 0.01 < truth < row["ci_high"] + 0.01, (sex, age, row["change_per_year"], truth)
            assert row["percent_per_year"] == pytest.approx(100 * np.expm1(row["change_per_year"]))
    pred = result.predict(n_points=7)
    assert set(pred["sex"]) == {"F", "M"} and len(pred) == 14
    assert (pred["ci_low"] < pred["estimate"]).all() and (pred["estimate"] < pred["ci_high"]).all()
    women, men = pred[pred["sex"] == "F"], pred[pred["sex"] == "M"]
    assert (women["estimate"].to_numpy() > men["estimate"].to_numpy()).mean() > 0.5
    assert (np.diff(men["estimate"]) > 0).all()  # exponential growth with age


@pytest.mark.parametrize("site_effect", ["fixed", "random"])
def test_site_fixed_or_random(site_effect, cohort_table):
    table = cohort_table.iloc[:1000]
    result = fit_trajectory(table, "log_wmh", site_effect=site_effect, spline="cr", df=4, back_transform="log1p")
    pred = result.predict([70.0, 85.0])
    assert np.isfinite(pred["se"]).all() and (pred["estimate_ml"] > 0).all()
    assert pred.loc[pred["age"] == 85.0, "estimate"].to_numpy().min() > pred.loc[pred["age"] == 70.0, "estimate"].to_numpy().max()
    assert "term" in result.summary.columns and len(result.dropped) == 0


def test_errors(cohort_table):
    with pytest.raises(OptionError, match="spline"):
        fit_trajectory(cohort_table, "log_wmh", spline="loess")
    with pytest.raises(TableError, match="'age' must be numeric"):
        bad = cohort_table["age"].astype(object)
        bad.iloc[3] = "unknown"
        fit_trajectory(cohort_table.assign(age=bad), "log_wmh")
    with pytest.raises(TableError, match="single site"):
        fit_trajectory(cohort_table.assign(site="one"), "log_wmh")


def test_predictions_stay_within_each_sexs_ages(cohort_table):
    table = cohort_table[(cohort_table["sex"] == "M") | (cohort_table["age"] < 80)]
    curve = fit_trajectory(table, "log_wmh", site=None, df=3).predict(n_points=20)
    for sex, rows in curve.groupby("sex"):
        ages = table.loc[table["sex"] == sex, "age"]
        assert rows["age"].min() == pytest.approx(ages.min()) and rows["age"].max() == pytest.approx(ages.max())
    assert curve.loc[curve["sex"] == "F", "age"].max() < 80 < curve.loc[curve["sex"] == "M", "age"].max()
