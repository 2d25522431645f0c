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
    for method, clipped in (("shash", False), ("quantreg", True)):
        result = fit_centiles(normal_sample, "y", df=3, method=method)
        out = result.centiles(normal_sample)
        assert out["subject"].tolist() == normal_sample["subject_id"].tolist()
        assert out["centile"].between(1, 99).all() == clipped and out["centile"].between(0, 100).all()
        for threshold in (10, 50, 90):
            assert abs((out["centile"] < threshold).mean() - threshold / 100) < 0.04
        assert abs(out["z_score"].mean()) < 0.1 and abs(out["z_score"].std() - 1) < 0.1
        assert not out["outside_age_range"].any()


def test_cohort_centiles_and_errors(cohort_table):
    result = fit_centiles(cohort_table, "log_wmh", quantiles=(0.25, 0.5, 0.75), df=3)
    out = result.centiles(cohort_table)
    assert abs((out["centile"] < 25).mean() - 0.25) < 0.05
    with pytest.raises(OptionError, match="quantiles"):
        fit_centiles(cohort_table, "log_wmh", quantiles=(0.5, 1.5))
    with pytest.raises(TableError, match="'log_wmh' is constant"):
        fit_centiles(cohort_table.assign(log_wmh=1.0), "log_wmh")


@pytest.fixture(scope="module")
def lifespan():
    """One synthetic population aged 45-95: 4,000 reference subjects and 10,000 held out."""
    from wmhkit.synth.cohort import make_cohort

    table = make_cohort(14000, seed=0, age_range=(45.0, 95.0)).table
    table["log_wmh"] = np.log(table["wmh_true_ml"])
    return table.iloc[:4000], table.iloc[4000:]


def test_held_out_coverage_overall_and_at_the_age_edges(lifespan):
    """5 % of new subjects below the 5th centile (and above the 95th), within 1.5 points; edges within 3.5."""
    reference, held_out = lifespan
    result = fit_centiles(reference, "log_wmh")
    out = result.centiles(held_out)
    for sex in ("F", "M"):
        rows = held_out["sex"] == sex
        centile, ages = out.loc[rows, "centile"], held_out.loc[rows, "age"]
        assert abs((centile < 5).mean() - 0.05) < 0.015 and abs((centile > 95).mean() - 0.05) < 0.015
        fitted_ages = reference.loc[reference["sex"] == sex, "age"]
        for edge in (ages < fitted_ages.quantile(0.1), ages > fitted_ages.quantile(0.9)):  # sparse ages
            assert abs((centile[edge] < 5).mean() - 0.05) < 0.035 and abs((centile[edge] > 95).mean() - 0.05) < 0.035
        low, high = result.age_ranges[sex]
        assert (out.loc[rows, "outside_age_range"] == ((ages < low) | (ages > high))).all()
    assert out["outside_age_range"].any()


def test_curves_cover_each_sexs_ages_and_extensions_are_flagged(lifespan):
    reference, _ = lifespan
    result = fit_centiles(reference, "log_wmh", quantiles=(0.05, 0.5, 0.95))
    curves = result.curves()
    assert not curves["extrapolated"].any()
    for sex, rows in curves.groupby("sex"):
        ages = reference.loc[reference["sex"] == sex, "age"]
        assert rows["age"].min() == pytest.approx(ages.min()) and rows["age"].max() == pytest.approx(ages.max())
    extended = result.curves(extend_to=(20, 110))
    assert extended["age"].min() == 20 and extended["age"].max() == 110
    inside = extended["age"].between(*result.age_ranges["F"]) & (extended["sex"] == "F")
    assert not extended.loc[inside, "extrapolated"].any() and extended.loc[extended["age"] > 100, "extrapolated"].all()
    # never crossing, even far beyond the data
    for _, group in extended.groupby(["sex", "age"]):
        assert (np.diff(group.sort_values("quantile")["value"]) > 0).all()


def test_shash_matches_the_generating_lognormal(lifespan):
    """On log(true mL) the generating model is normal given covariates: the fitted median follows it."""
    reference, _ = lifespan
    result = fit_centiles(reference, "log_wmh", quantiles=(0.5,), sex=None)
    curves = result.curves(ages=[55.0, 70.0, 85.0])
    big = lifespan[1]
    for age, value in zip(curves["age"], curves["value"]):
        near = big.loc[(big["age"] - age).abs() < 2.5, "log_wmh"]
        assert abs(value - near.median()) < 0.15


@pytest.mark.filterwarnings("ignore::UserWarning")  # the port warns when RS stops at its iteration cap
def test_same_z_scores_as_the_gamlss_port(lifespan):
    """The same SHASHo model (same spline columns) fitted by the Python port of R's gamlss."""
    gamlss = pytest.importorskip("gamlss")
    from wmhkit.stats._lss import ShashCurve

    rows = lifespan[0].iloc[:900]
    ages, y = rows["age"].to_numpy(), rows["log_wmh"].to_numpy()
    model = ShashCurve().fit(ages, y)
    frame, formulas = pd.DataFrame({"y": y}), {}
    for name, design in zip(("mu", "sigma", "nu", "tau"), model._designs(ages)):
        for j in range(1, design.shape[1]):
            frame[f"{name}{j}"] = design[:, j]
        formulas[name] = " + ".join(f"{name}{j}" for j in range(1, design.shape[1])) or "1"
    fit = gamlss.gamlss(f"y ~ {formulas['mu']}", sigma_formula=f"~{formulas['sigma']}", nu_formula=f"~{formulas['nu']}",
                        tau_formula=f"~{formulas['tau']}", family=gamlss.SHASHo(), data=frame,
                        control=gamlss.gamlss_control(c_crit=1e-8, n_cyc=500, trace=False))
    mu, sigma, nu, tau = (np.asarray(fit.fitted(p)) for p in ("mu", "sigma", "nu", "tau"))
    reference = np.sinh(tau * np.arcsinh((y - mu) / sigma) - nu)
    assert fit.G_deviance == pytest.approx(2 * model.negloglik_, abs=1e-3)
    assert np.abs(model.z_scores(ages, y) - reference).max() < 1e-3
