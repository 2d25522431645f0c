"""Synthetic longitudinal cohort: sessions, scanner changes, burden- and dementia-dependent dropout, known rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import OptionError
from wmhkit.synth.longitudinal import DEFAULT_LONGITUDINAL_PARAMS, make_longitudinal_cohort


@pytest.fixture(scope="module")
def cohort():
    return make_longitudinal_cohort(700, seed=4)


def test_same_seed_same_cohort_and_sessions(cohort):
    again = make_longitudinal_cohort(700, seed=4)
    pd.testing.assert_frame_equal(cohort.table, again.table)
    t = cohort.table
    visits = t.groupby("subject_id").size()
    assert visits.between(2, 5).all() and visits.nunique() == 4
    assert (visits.to_numpy() == cohort.subjects.set_index("subject_id").loc[visits.index, "n_visits"]).all()
    first = t.groupby("subject_id").first()
    assert (first["session"] == "ses-01").all() and (first["years_since_baseline"] == 0).all()
    assert np.allclose(t["age"], t["age_baseline"] + t["years_since_baseline"])
    dates = pd.to_datetime(t["scan_date"])
    assert (dates.groupby(t["subject_id"]).diff().dropna().dt.days > 150).all()
    assert t.groupby("subject_id")["session"].apply(lambda s: list(s) == [f"ses-{k:02d}" for k in range(1, len(s) + 1)]).all()


def test_true_volumes_grow_at_each_subjects_rate(cohort):
    t = cohort.table.merge(cohort.subjects[["subject_id", "log_rate_true", "wmh_baseline_true_ml"]], on="subject_id")
    expected = np.log(t["wmh_baseline_true_ml"]) + t["log_rate_true"] * t["years_since_baseline"]
    np.testing.assert_allclose(np.log(t["wmh_true_ml"]), expected)
    rates = cohort.subjects["log_rate_true"]
    assert abs(rates.mean() - 0.07) < 0.01 and 0.03 < rates.std() < 0.06
    # faster relative growth with a larger baseline load, older age and hypertension, as generated
    s = cohort.subjects
    design = np.column_stack([np.ones(len(s)), np.log(s["wmh_baseline_true_ml"]), s["age_baseline"], s["hypertension"]])
    coef = np.linalg.lstsq(design, rates, rcond=None)[0]
    p = DEFAULT_LONGITUDINAL_PARAMS
    assert abs(coef[1] - p["log_rate_per_log_ml"]) < 0.005 and abs(coef[2] - p["log_rate_age_per_year"]) < 0.001


def test_scanners_change_between_visits(cohort):
    t = cohort.table
    upgraded = set(cohort.params["upgrade_year"])
    assert upgraded and {f"{s}b" for s in upgraded} <= set(t["site"])
    changed = t.groupby("subject_id")["site"].nunique() > 1
    assert changed.sum() > 20
    measured = np.log(t["wmh_ml"] / t["wmh_true_ml"]) - np.log(t["site"].map(cohort.params["scanner_scale"]))
    assert abs(measured.std() - DEFAULT_LONGITUDINAL_PARAMS["measurement_sd"]) < 0.01


def test_dropout_depends_on_burden_and_dementia():
    cohort = make_longitudinal_cohort(1500, seed=5, n_visits_range=(5, 5))
    s = cohort.subjects
    high = np.log(s["wmh_baseline_true_ml"]) > np.log(s["wmh_baseline_true_ml"]).median()
    assert s.loc[high, "n_visits"].mean() < s.loc[~high, "n_visits"].mean() - 0.1
    early = (s["dementia"] == 1) & (s["dementia_years"] < 4)
    assert s.loc[early, "n_visits"].mean() < s.loc[s["dementia"] == 0, "n_visits"].mean() - 0.5
    # dementia follows the generating hazard: higher with faster growth
    fast = s["log_rate_true"] > s["log_rate_true"].median()
    assert s.loc[fast, "dementia"].mean() > s.loc[~fast, "dementia"].mean()


def test_unknown_parameters_refused():
    with pytest.raises(OptionError, match="unknown parameter"):
        make_longitudinal_cohort(10, rate=0.1)
    with pytest.raises(OptionError, match="n_visits_range"):
        make_longitudinal_cohort(10, n_visits_range=(1, 3))
