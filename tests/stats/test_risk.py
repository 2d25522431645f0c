"""Risk models: hazard ratio recovered, Cox equal to lifelines, logistic quartiles, FDR, KM curves, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import OptionError, TableError
from wmhkit.stats.risk import cox_risk, fdr_bh, logistic_risk, region_analysis
from wmhkit.stats.survival import kaplan_meier, km_curve
from wmhkit.synth.cohort import make_cohort

ADJUST = ["age", "hypertension"]


def _with_z(table):
    log_true = np.log(table["wmh_true_ml"])
    return table.assign(log_wmh_true=log_true)


def test_hazard_ratio_recovered_over_seeds():
    inside = 0
    seeds = range(5)
    for seed in seeds:
        cohort = make_cohort(1000, seed=100 + seed)
        result = cox_risk(_with_z(cohort.table), "followup_years", "dementia", "log_wmh_true", ADJUST)
        row = result.estimate("log_wmh_true")
        inside += row["ci_low"] <= cohort.params["hr_per_sd"] <= row["ci_high"]
        assert result.n == 1000 and result.n_events == int(cohort.table["dementia"].sum())
        assert list(result.ph_test["term"]) == ["log_wmh_true"] + ADJUST
    assert inside >= 4


def test_cox_equals_lifelines(cohort_table):
    lifelines = pytest.importorskip("lifelines")
    from lifelines.statistics import proportional_hazard_test

    table = cohort_table.iloc[:800]
    result = cox_risk(table, "followup_years", "dementia", "log_wmh", ADJUST)
    frame = table[["followup_years", "dementia", "log_wmh"] + ADJUST].copy()
    frame["log_wmh"] = (frame["log_wmh"] - frame["log_wmh"].mean()) / frame["log_wmh"].std()
    cph = lifelines.CoxPHFitter().fit(frame, "followup_years", "dementia")
    np.testing.assert_allclose(result.summary["coef"], cph.params_[result.summary["term"]].to_numpy(), atol=1e-4)
    np.testing.assert_allclose(result.summary["se"], cph.standard_errors_[result.summary["term"]].to_numpy(), atol=1e-4)
    ph = proportional_hazard_test(cph, frame, time_transform="rank").summary
    np.testing.assert_allclose(result.ph_test["statistic"], ph.loc[result.ph_test["term"], "test_statistic"], rtol=1e-3)


def test_logistic_or_per_sd_and_quartiles(cohort_table):
    result = logistic_risk(cohort_table, "dementia", "log_wmh_true", ["age", "sex"])
    terms = result.summary["term"].tolist()
    assert terms[:3] == ["log_wmh_true", "age", "sex[M]"]
    assert terms[-3:] == ["log_wmh_true Q2", "log_wmh_true Q3", "log_wmh_true Q4"]
    assert result.estimate("log_wmh_true")["estimate"] > 1.2
    q4 = result.estimate("log_wmh_true Q4")
    assert q4["estimate"] > result.estimate("log_wmh_true Q2")["estimate"] and q4["ci_low"] > 1
    assert result.exposure_sd == pytest.approx(cohort_table["log_wmh_true"].std())


def test_region_analysis_with_fdr(cohort_table):
    regions = ["wmh_periventricular_ml", "wmh_deep_ml", "wmh_frontal_ml"]
    out = region_analysis(cohort_table.iloc[:1000], regions, covariates=["age"])
    assert out["region"].tolist() == regions
    assert (out["q_value"] >= out["p_value"]).all()
    np.testing.assert_allclose(out["q_value"], fdr_bh(out["p_value"]))
    assert (out["estimate"] > 1).all()
    logistic = region_analysis(cohort_table.iloc[:1000], regions[:2], model="logistic", covariates=["age"])
    assert list(logistic.columns) == list(out.columns)


def test_fdr_matches_definition():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=30)
    q = fdr_bh(p)
    order = np.argsort(p)
    raw = p[order] * len(p) / np.arange(1, len(p) + 1)
    expected = np.minimum(np.minimum.accumulate(raw[::-1])[::-1], 1)
    np.testing.assert_allclose(q[order], expected)
    assert np.isnan(fdr_bh([0.1, np.nan])[1])


def test_kaplan_meier_by_tertile(cohort_table):
    result = kaplan_meier(cohort_table, "followup_years", "dementia", exposure="log_wmh_true")
    assert result.groups["group"].tolist() == ["T1", "T2", "T3"]
    final = result.curves.groupby("group")["survival"].last()
    assert final["T1"] > final["T3"]  # more lesions, more dementia
    assert result.logrank_p < 0.01
    curve = result.curves[result.curves["group"] == "T2"]
    assert (np.diff(curve["survival"]) <= 1e-12).all()
    assert ((curve["ci_low"] <= curve["survival"] + 1e-12) & (curve["survival"] <= curve["ci_high"] + 1e-12)).all()


def test_km_matches_lifelines():
    lifelines = pytest.importorskip("lifelines")
    rng = np.random.default_rng(3)
    time = np.round(rng.exponential(5, 200), 1) + 0.1
    event = rng.integers(0, 2, 200)
    ours = km_curve(time, event)
    kmf = lifelines.KaplanMeierFitter().fit(time, event)
    theirs = kmf.survival_function_.iloc[:, 0]
    np.testing.assert_allclose(ours.set_index("time")["survival"], theirs.loc[ours["time"]].to_numpy(), atol=1e-12)
    ci = kmf.confidence_interval_.loc[ours["time"].iloc[1:]]
    np.testing.assert_allclose(ours["ci_low"].iloc[1:], ci.iloc[:, 0], atol=1e-6)


def test_errors(cohort_table):
    with pytest.raises(TableError, match="'dementia' has no events"):
        cox_risk(cohort_table.assign(dementia=0), "followup_years", "dementia", "log_wmh")
    with pytest.raises(TableError, match="'age' is constant"):
        cox_risk(cohort_table.assign(age=70), "followup_years", "dementia", "log_wmh", ["age"])
    bad_age = cohort_table["age"].astype(object)
    bad_age.iloc[5] = "seventy"
    with pytest.raises(TableError, match="'age' must be numeric but holds 'seventy'"):
        logistic_risk(cohort_table.assign(age=bad_age), "dementia", "log_wmh", ["age"])
    with pytest.raises(TableError, match="no column 'bmi'"):
        cox_risk(cohort_table, "followup_years", "dementia", "log_wmh", ["bmi"])
    with pytest.raises(TableError, match="appears more than once"):
        cox_risk(cohort_table.assign(subject_id="s"), "followup_years", "dementia", "log_wmh")
    with pytest.raises(TableError, match="0/1"):
        logistic_risk(cohort_table.assign(dementia=2), "dementia", "log_wmh")
    with pytest.raises(OptionError):
        kaplan_meier(cohort_table, "followup_years", "dementia")


def test_missing_values_reported(cohort_table, caplog):
    table = cohort_table.copy()
    table.loc[table.index[:7], "hypertension"] = np.nan
    with caplog.at_level("WARNING"):
        result = cox_risk(table, "followup_years", "dementia", "log_wmh", ADJUST)
    assert len(result.dropped) == 7 and result.n == len(table) - 7
    assert set(result.dropped["reason"]) == {"missing hypertension"}
    assert "dropped 7" in caplog.text
