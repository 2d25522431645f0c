"""Centile curves: known quantiles recovered, no crossing, subject centiles calibrated, bootstrap bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from wmhkit.errors import OptionError, TableError
from wmhkit.stats.centiles import fit_centiles


@pytest.fixture(scope="module")
def normal_sample():
    rng = np.random.default_rng(7)
    n = 900
    age = rng.uniform(60, 90, n)
    sex = rng.choice(["F", "M"], n)
    sd = 0.5 + 0.02 * (age - 60)  # spread grows with age
    y = 0.06 * (age - 70) + 0.3 * (sex == "F") + rng.normal(0, 1, n) * sd
    return pd.DataFrame({"subject_id": [f"s{i}" for i in range(n)], "age": age, "sex": sex, "y": y})


def test_known_quantiles_and_no_crossing(normal_sample):
    result = fit_centiles(normal_sample, "y", df=3, n_boot=5)
    curves = result.curves(ages=[65.0, 75.0, 85.0])
    assert set(curves.columns) >= {"sex", "age", "quantile", "centile", "value", "ci_low", "ci_high"}
    for (sex, age), group in curves.groupby(["sex", "age"]):
        assert (np.diff(group["value"]) >= 0).all()
        truth = 0.06 * (age - 70) + 0.3 * (sex == "F") + sps.norm.ppf(group["quantile"]) * (0.5 + 0.02 * (age - 60))
        assert np.abs(group["value"] - truth).max() < 0.4
    assert (curves["ci_low"] < curves["ci_high"]).all()
    # percentile bands of a small bootstrap hold most (not necessarily all) point estimates
    assert curves["value"].between(curves["ci_low"], curves["ci_high"]).mean() > 0.7


def test_subject_centiles_calibrated(normal_sample):
    result = fit_centiles(normal_sample, "y", df=3)
    out = result.centiles(normal_sample)
    assert out["subject"].tolist() == normal_sample["subject_id"].tolist()
    assert out["centile"].between(1, 99).all()
    for threshold in (10, 50, 90):
        assert abs((out["centile"] < threshold).mean() - threshold / 100) < 0.04
    assert abs(out["z_score"].mean()) < 0.1 and abs(out["z_score"].std() - 1) < 0.1


def test_cohort_centiles_and_errors(cohort_table):
    result = fit_centiles(cohort_table, "log_wmh", quantiles=(0.25, 0.5, 0.75), df=3)
    out = result.centiles(cohort_table)
    assert abs((out["centile"] < 25).mean() - 0.25) < 0.05
    with pytest.raises(OptionError, match="quantiles"):
        fit_centiles(cohort_table, "log_wmh", quantiles=(0.5, 1.5))
    with pytest.raises(TableError, match="'log_wmh' is constant"):
        fit_centiles(cohort_table.assign(log_wmh=1.0), "log_wmh")
