"""Progression model: the generating growth rates recovered, by baseline burden and per subject; errors."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.errors import OptionError, TableError
from wmhkit.stats.progression import fit_progression
from wmhkit.synth.longitudinal import make_longitudinal_cohort


@pytest.fixture(scope="module")
def cohort():
    return make_longitudinal_cohort(600, seed=0)


@pytest.fixture(scope="module")
def result(cohort):
    return fit_progression(cohort.table, covariates=["sex", "hypertension"])


def test_mean_annual_change_recovers_the_generating_rate(cohort, result):
    row = result.annual_change.iloc[0]
    truth = cohort.subjects["log_rate_true"].mean()
    assert row["ci_low"] < truth < row["ci_high"]
    assert abs(row["log_change_per_year"] - truth) < 0.006
    assert row["percent_per_year"] == pytest.approx(100 * np.expm1(row["log_change_per_year"]))
    assert row["ml_per_year"] == pytest.approx(row["baseline_ml"] * np.expm1(row["log_change_per_year"]))
    assert row["ml_per_year_ci_low"] < row["ml_per_year"] < row["ml_per_year_ci_high"]
    assert row["n_subjects"] == 600 and row["n_scans"] == len(cohort.table)
    sd = result.variance.set_index("component")["value"]
    assert abs(sd["slope_sd_per_year"] - cohort.subjects["log_rate_true"].std()) < 0.01
    assert abs(sd["residual_sd"] - cohort.params["measurement_sd"]) < 0.015
    assert {"years_since_baseline", "age_baseline (centred)"} <= set(result.summary["term"])


def test_progression_by_baseline_burden_group(cohort, result):
    groups = result.by_group
    assert list(groups["group"]) == ["Q1", "Q2", "Q3"]
    assert groups["baseline_ml"].is_monotonic_increasing
    truth = cohort.subjects.set_index("subject_id")["log_rate_true"].groupby(
        result.subject_slopes.set_index("subject")["group"]).mean()
    for _, row in groups.iterrows():
        assert abs(row["log_change_per_year"] - truth[row["group"]]) < 0.01
    # larger loads grow faster (generated), in relative and even more in absolute terms
    assert groups["log_change_per_year"].iloc[2] > groups["log_change_per_year"].iloc[0] + 0.02
    assert groups["ml_per_year"].is_monotonic_increasing


def test_subject_slopes_are_shrunk_towards_the_mean_and_closer_to_the_truth(cohort, result):
    slopes = result.subject_slopes.merge(cohort.subjects, left_on="subject", right_on="subject_id")
    assert len(slopes) == 600 and slopes["reliability"].between(0, 1).all()
    rmse = {c: np.sqrt(((slopes[c] - slopes["log_rate_true"]) ** 2).mean()) for c in ("slope", "slope_ols")}
    assert rmse["slope"] < 0.75 * rmse["slope_ols"]
    assert slopes["slope"].std() < slopes["slope_ols"].std()
    # more scans over more years: less shrinkage
    by_scans = slopes.groupby("n_scans")["reliability"].mean()
    assert by_scans.is_monotonic_increasing


def test_site_changes_are_kept_out_of_the_slope(cohort):
    """One scanner replacement reads 40 % higher: ignoring it biases the slope, a site term does not."""
    table = cohort.table.copy()
    upgraded = table["site"].str.endswith("b")
    table.loc[upgraded, "wmh_ml"] *= 1.4
    adjusted = fit_progression(table, n_groups=0).annual_change.iloc[0]
    ignored = fit_progression(table, site=None, n_groups=0).annual_change.iloc[0]
    truth = cohort.subjects["log_rate_true"].mean()
    assert abs(adjusted["log_change_per_year"] - truth) < 0.006
    assert ignored["log_change_per_year"] - truth > 0.015


def test_errors_name_the_column(cohort):
    table = cohort.table
    with pytest.raises(TableError, match="'wmh_ml' holds volumes <= 0"):
        fit_progression(table.assign(wmh_ml=table["wmh_ml"].where(table.index > 0, 0.0)))
    with pytest.raises(TableError, match="'years_since_baseline' does not start at 0"):
        fit_progression(table.assign(years_since_baseline=table["years_since_baseline"] + 1))
    with pytest.raises(TableError, match="'age' changes"):
        fit_progression(table, age_baseline="age")
    with pytest.raises(TableError, match="fewer than 10 subjects"):
        fit_progression(table.groupby("subject_id").head(1))
    with pytest.raises(TableError, match="no column 'visit_age'"):
        fit_progression(table, age_baseline="visit_age")
    with pytest.raises(OptionError, match="transform"):
        fit_progression(table, transform="sqrt")


def test_subject_table_feeds_a_cox_model_of_incident_dementia(cohort, result):
    from wmhkit.stats import cox_risk

    subjects = result.subject_table(cohort.table, ["age_baseline", "dementia", "dementia_years"])
    assert len(subjects) == 600 and subjects["subject_id"].is_unique
    np.testing.assert_allclose(subjects["log_baseline_ml"], np.log(subjects["baseline_ml"]))
    cox = cox_risk(subjects, "dementia_years", "dementia", "slope", ["log_baseline_ml", "age_baseline"])
    hr = cox.summary.set_index("term")["estimate"]
    # generated: faster growth and a larger baseline load both raise the hazard
    assert hr["slope"] > 1 and hr["log_baseline_ml"] > 1
