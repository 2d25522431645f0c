"""Synthetic cohort: published calibration, reproducibility and parameter recovery by plain regression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import OptionError
from wmhkit.synth.cohort import DEFAULT_COHORT_PARAMS, REGION_GROUPS, make_cohort


def _ols(y, columns):
    design = np.column_stack([np.ones_like(y)] + list(columns))
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    sigma2 = resid @ resid / (len(y) - design.shape[1])
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(design.T @ design)))
    return beta, se, np.sqrt(sigma2)


def test_same_seed_same_cohort_and_columns():
    a = make_cohort(300, seed=4)
    b = make_cohort(300, seed=4)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not a.table.equals(make_cohort(300, seed=5).table)
    t = a.table
    assert t["subject_id"].is_unique
    assert set(t["sex"]) == {"F", "M"}
    assert t["site"].nunique() == 8
    assert t["age"].between(65, 95).all()
    assert set(t["dementia"].unique()) <= {0, 1} and 0 < t["dementia"].sum() < len(t)
    assert (t["followup_years"] > 0).all()
    for group, regions in REGION_GROUPS.items():
        total = sum(t[f"wmh_{r}_true_ml"] for r in regions)
        np.testing.assert_allclose(total, t["wmh_true_ml"], rtol=1e-10, err_msg=group)


def test_every_parameter_returned_and_overridable():
    cohort = make_cohort(100, seed=0, log_hr_per_sd=0.2, n_sites=3)
    for key in DEFAULT_COHORT_PARAMS:
        assert key in cohort.params
    assert cohort.params["log_hr_per_sd"] == 0.2 and cohort.params["seed"] == 0
    assert cohort.table["site"].nunique() == 3
    assert set(cohort.params["site_scale"]) == set(cohort.table["site"])
    with pytest.raises(OptionError, match="unknown parameter"):
        make_cohort(10, seed=0, hazard=2)
    with pytest.raises(OptionError, match="age_range"):
        make_cohort(10, seed=0, age_range=(80, 70))


def test_published_calibration():
    t = make_cohort(10000, seed=0).table
    assert 1.5 < t["wmh_true_ml"].median() < 2.8
    old = t[t["age"] > 85].groupby("sex")["wmh_true_ml"].median()
    assert 5.0 < old["M"] < 9.5 and 10.0 < old["F"] < 16.0
    assert t.groupby("sex")["wmh_true_ml"].median().pipe(lambda s: s["F"] > s["M"])
    wide = make_cohort(6000, seed=1, age_range=(20, 95), age_beta_shape=(1.0, 1.0)).table
    assert 0.08 < wide.loc[wide["age"] < 45, "wmh_true_ml"].median() < 0.4


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_recovers_generating_parameters(seed):
    cohort = make_cohort(4000, seed=seed)
    t, p = cohort.table, cohort.params
    x = t["age"].to_numpy() - p["age_center"]
    female = (t["sex"] == "F").to_numpy(float)
    columns = [x, x**2, female, female * x, t["hypertension"].to_numpy(float), np.log(t["etiv_ml"] / p["etiv_reference_ml"])]
    beta, se, sigma = _ols(np.log(t["wmh_true_ml"].to_numpy()), columns)
    truth = [p["log_wmh_intercept"], p["age_slope_per_year"], p["age_quadratic_per_year2"], p["female_effect"],
             p["female_age_slope_per_year"], p["hypertension_effect"], p["etiv_exponent"]]
    z = (beta - np.array(truth)) / se
    assert np.all(np.abs(z) < 4.0), z
    assert abs(sigma - p["log_wmh_sd"]) < 0.05


def test_site_effects_visible_in_measured_volumes():
    cohort = make_cohort(5000, seed=2)
    t, p = cohort.table, cohort.params
    # the ratio measured/true per site follows the drawn multiplicative factor (offsets are small next to large loads)
    big = t[t["wmh_true_ml"] > 5]
    ratio = (big["wmh_ml"] / big["wmh_true_ml"]).groupby(big["site"]).median()
    expected = pd.Series(p["site_scale"])[ratio.index]
    np.testing.assert_allclose(ratio, expected, rtol=0.12)
    assert ratio.max() / ratio.min() > 1.2

