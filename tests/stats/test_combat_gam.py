"""ComBat with a smooth age term: statsmodels' GAM fit reproduced, site effects kept apart from a curved age effect."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import OptionError, TableError
from wmhkit.stats.combat import ComBat


def _curved(seed=3, n=400, n_features=4):
    """Sites that recruit different ages, a WMH-like accelerating age curve, known site shifts."""
    rng = np.random.default_rng(seed)
    site = rng.choice(["a", "b", "c"], n)
    age = np.where(site == "a", rng.uniform(50, 72, n), np.where(site == "b", rng.uniform(60, 85, n),
                                                                  rng.uniform(70, 95, n)))
    shift = {"a": 0.0, "b": 0.4, "c": -0.3}
    curve = 0.0015 * (age - 50) ** 2  # accelerates with age
    x = curve[:, None] + np.array([shift[s] for s in site])[:, None] + rng.normal(0, 0.25, (n, n_features))
    table = pd.DataFrame(x, columns=[f"f{i}" for i in range(n_features)])
    table["site"], table["age"] = site, age
    table["sex"] = rng.choice(["F", "M"], n)
    table["subject_id"] = [f"s{i}" for i in range(n)]
    return table, [f"f{i}" for i in range(n_features)], shift


def test_same_fit_as_statsmodels_glmgam_with_the_same_penalty():
    from statsmodels.gam.api import BSplines, GLMGam

    table, features, _ = _curved()
    model = ComBat(covariates=["sex"], smooth=["age"], smooth_alpha=[0.5, 3.0, 30.0, 300.0]).fit(table, features)
    splines = BSplines(table["age"].to_numpy(), df=10, degree=3)
    frame = pd.DataFrame({"a": (table["site"] == "a") * 1.0, "b": (table["site"] == "b") * 1.0,
                          "c": (table["site"] == "c") * 1.0, "male": (table["sex"] == "M") * 1.0})
    for j, alpha in enumerate([0.5, 3.0, 30.0, 300.0]):
        frame["y"] = table[features[j]].to_numpy()
        gam = GLMGam.from_formula("y ~ a + b + c + male - 1", data=frame, smoother=splines, alpha=[alpha]).fit()
        np.testing.assert_allclose(model.beta_[:, j], gam.params.to_numpy()[3:], atol=1e-8)
        counts = frame[["a", "b", "c"]].mean().to_numpy()
        np.testing.assert_allclose(model.grand_mean_[j], counts @ gam.params.to_numpy()[:3], atol=1e-8)


def test_smooth_age_keeps_site_effects_apart_from_the_age_curve():
    table, features, shift = _curved()
    truth = np.array([shift[s] for s in table["site"]])
    errors = {}
    for name, options in {"linear": {"covariates": ["age"]}, "smooth": {"smooth": ["age"]}}.items():
        model = ComBat(**options)
        out = model.fit_transform(table, features)
        removed = (table[features].to_numpy() - out[features].to_numpy()).mean(axis=1)  # site effect taken out
        by_site = pd.Series(removed - truth).groupby(table["site"].to_numpy()).mean()
        errors[name] = float(np.ptp(by_site))
    # the straight line misfits the curve and moves part of it into the site effects
    assert errors["smooth"] < 0.05 < errors["linear"]
    assert errors["smooth"] < errors["linear"] / 3
    assert len(model.smooth_alpha_) == len(features) and np.all(model.smooth_alpha_ > 0)


def test_transform_of_new_subjects_holds_ages_at_the_fitted_range(caplog):
    table, features, _ = _curved()
    model = ComBat(smooth=["age"])
    fitted = model.fit_transform(table, features)
    again = model.transform(table)
    np.testing.assert_allclose(again[features].to_numpy(), fitted[features].to_numpy(), atol=1e-12)
    older = table.head(5).assign(age=table["age"].max() + 10)
    edge = table.head(5).assign(age=table["age"].max())
    with caplog.at_level("WARNING"):
        out = model.transform(older)
    assert "outside the fitted range" in caplog.text
    np.testing.assert_allclose(out[features].to_numpy(), model.transform(edge)[features].to_numpy())


def test_smooth_errors_name_the_column():
    table, features, _ = _curved()
    with pytest.raises(TableError, match="'sex' is categorical"):
        ComBat(smooth=["sex"]).fit(table, features)
    with pytest.raises(TableError, match="'age' has fewer distinct values"):
        ComBat(smooth=["age"]).fit(table.assign(age=np.round(table["age"] / 20)), features)
    with pytest.raises(OptionError, match="smooth_alpha"):
        ComBat(smooth=["age"], smooth_alpha=-1.0).fit(table, features)
    with pytest.raises(OptionError, match="smooth_df"):
        ComBat(smooth=["age"], smooth_df=3).fit(table, features)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # neuroHarmonize's np.matrix
def test_equals_neuroharmonize_with_its_penalty_weights():
    """neuroHarmonize (ComBat-GAM) picks each weight by random k-fold CV; replayed, the outputs agree."""
    neuro = pytest.importorskip("neuroHarmonize")
    from statsmodels.gam.api import GLMGam

    table, features, _ = _curved(n=240, n_features=3)
    covars = pd.DataFrame({"SITE": table["site"], "AGE": table["age"], "MALE": (table["sex"] == "M") * 1.0})
    with contextlib.redirect_stdout(io.StringIO()):
        model, reference = neuro.harmonizationLearn(table[features].to_numpy(), covars, smooth_terms=["AGE"], seed=2)
    smooth, rng, alphas = model["smooth_model"], np.random.default_rng(2), []
    for feature in features:
        frame = smooth["df_gam"].assign(y=table[feature].to_numpy())
        gam = GLMGam.from_formula(smooth["formula"], data=frame, smoother=smooth["bsplines_constructor"],
                                  alpha=np.array([1.0]))
        gam.fit()
        alphas.append(float(gam.select_penweight_kfold(rng=rng)[0][0]))
    table["male"] = (table["sex"] == "M") * 1.0
    out = ComBat(covariates=["male"], smooth=["age"], smooth_alpha=alphas).fit_transform(table, features)
    assert np.abs(out[features].to_numpy() - reference).max() < 1e-6
