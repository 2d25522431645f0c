"""ICC (Shrout & Fleiss example and a hand formula), Bland-Altman, correlations and Lin's CCC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from wmhkit.errors import TableError
from wmhkit.stats.agreement import bland_altman, compare_measurements, icc, lins_ccc

SHROUT_FLEISS = pd.DataFrame(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    columns=["j1", "j2", "j3", "j4"],
)


def test_icc_shrout_fleiss_published_values():
    out = icc(SHROUT_FLEISS, ["j1", "j2", "j3", "j4"]).set_index("type")
    # Shrout & Fleiss (1979) Table 4; confidence limits as pingouin/R psych report them
    assert out.loc["ICC(A,1)", "icc"] == pytest.approx(0.2898, abs=1e-4)
    assert out.loc["ICC(C,1)", "icc"] == pytest.approx(0.7148, abs=1e-4)
    assert out.loc["ICC(A,k)", "icc"] == pytest.approx(0.6201, abs=1e-4)
    assert out.loc["ICC(C,k)", "icc"] == pytest.approx(0.9093, abs=1e-4)
    assert np.round(out.loc["ICC(C,1)", ["ci_low", "ci_high"]].to_numpy(float), 2).tolist() == [0.34, 0.95]
    assert np.round(out.loc["ICC(A,1)", ["ci_low", "ci_high"]].to_numpy(float), 2).tolist() == [0.02, 0.76]
    assert out.loc["ICC(C,1)", "F"] == pytest.approx(11.027, abs=1e-3)


def test_icc_two_raters_hand_formula():
    rng = np.random.default_rng(0)
    truth = rng.normal(10, 3, 50)
    a, b = truth + rng.normal(0, 1, 50), truth + 1.0 + rng.normal(0, 1, 50)
    y = np.column_stack([a, b])
    n, k = y.shape
    msr = k * y.mean(1).var(ddof=1)
    msc = n * y.mean(0).var(ddof=1)
    mse = ((y - y.mean(1, keepdims=True) - y.mean(0) + y.mean()) ** 2).sum() / ((n - 1) * (k - 1))
    out = icc(pd.DataFrame({"a": a, "b": b}), ["a", "b"]).set_index("type")["icc"]
    assert out["ICC(A,1)"] == pytest.approx((msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n))
    assert out["ICC(C,1)"] == pytest.approx((msr - mse) / (msr + (k - 1) * mse))
    assert out["ICC(A,1)"] < out["ICC(C,1)"]  # a constant offset hurts agreement, not consistency


def test_compare_measurements_summary(cohort_table):
    result = compare_measurements(cohort_table, "wmh_true_ml", "wmh_ml")
    s = result.summary.set_index("metric")
    x, y = cohort_table["wmh_true_ml"], cohort_table["wmh_ml"]
    assert s.loc["pearson_r", "estimate"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert s.loc["spearman_rho", "estimate"] == pytest.approx(sps.spearmanr(x, y).statistic)
    assert s.loc["bias", "estimate"] == pytest.approx((y - x).mean())
    assert s.loc["loa_high", "estimate"] - s.loc["loa_low", "estimate"] == pytest.approx(2 * 1.959964 * (y - x).std(), rel=1e-5)
    assert s.loc["lins_ccc", "estimate"] <= s.loc["pearson_r", "estimate"]
    assert s.loc["lins_ccc", "ci_low"] < s.loc["lins_ccc", "estimate"] < s.loc["lins_ccc", "ci_high"]
    assert len(result.bland_altman) == len(cohort_table)


def test_lins_ccc_and_bland_altman_by_hand():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    y = np.array([1.5, 2.0, 5.0, 6.0])
    sxy = np.mean((x - x.mean()) * (y - y.mean()))
    assert lins_ccc(x, y) == pytest.approx(2 * sxy / (x.var() + y.var() + (x.mean() - y.mean()) ** 2))
    ba = bland_altman(x, y)
    assert ba["bias"] == pytest.approx(0.125) and ba["n"] == 4  # mean of y - x = (0.5 + 0 + 1 - 1) / 4


def test_errors_and_missing(cohort_table):
    with pytest.raises(TableError, match="at least two rater"):
        icc(SHROUT_FLEISS, ["j1"])
    with pytest.raises(TableError, match="'wmh_ml' is constant"):
        compare_measurements(cohort_table.assign(wmh_ml=1.0), "wmh_true_ml", "wmh_ml")
    table = cohort_table.copy()
    table.loc[table.index[:3], "wmh_ml"] = np.nan
    assert len(compare_measurements(table, "wmh_true_ml", "wmh_ml").dropped) == 3
