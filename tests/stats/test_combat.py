"""ComBat: equality with neuroCombat, site effects removed with the age effect kept, fit/transform, errors."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import OptionError, TableError
from wmhkit.stats.combat import ComBat, combat_arrays, harmonize

neuroCombat = pytest.importorskip("neuroCombat").neuroCombat


def _toy(seed=1, n=240, n_features=12):
    rng = np.random.default_rng(seed)
    site = rng.choice(["a", "b", "c", "d"], n)
    age = np.round(rng.uniform(65, 95, n) * 4) / 4  # exact in float32 (neuroCombat casts ages to float32)
    sex = rng.choice(["F", "M"], n)
    x = (rng.normal(size=(n, n_features)) * (1 + 0.5 * (site == "b"))[:, None] + (site == "c")[:, None] * 0.7
         + age[:, None] * 0.03 + (sex == "F")[:, None] * 0.2)
    table = pd.DataFrame(x, columns=[f"f{i}" for i in range(n_features)])
    table["site"], table["age"], table["sex"] = site, age, sex
    table["subject_id"] = [f"s{i}" for i in range(n)]
    return table, [f"f{i}" for i in range(n_features)]


def _reference(table, features, **options):
    with contextlib.redirect_stdout(io.StringIO()):
        return neuroCombat(table[features].to_numpy().T.copy(), table[["site", "age", "sex"]], "site",
                           categorical_cols=["sex"], continuous_cols=["age"], **options)["data"].T


@pytest.mark.parametrize(
    "options",
    [{}, {"parametric": False}, {"eb": False}, {"mean_only": True}, {"mean_only": True, "parametric": False},
     {"ref_batch": "b"}, {"ref_batch": "c", "parametric": False}],
)
def test_equals_neurocombat(options, monkeypatch):
    monkeypatch.setattr(np, "int", int, raising=False)  # neuroCombat 0.2.12 calls np.int with ref_batch
    table, features = _toy()
    expected = _reference(table, features, **options)
    kw = {k: v for k, v in options.items() if k != "ref_batch"}
    model = ComBat(covariates=["age", "sex"], reference_site=options.get("ref_batch"), **kw)
    got = model.fit_transform(table, features)[features].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    design = np.column_stack([table["age"], table["sex"] == "M"]).astype(float)
    arrays = combat_arrays(table[features].to_numpy(), table["site"].to_numpy(), design,
                           reference_site=options.get("ref_batch"), **kw)
    np.testing.assert_allclose(arrays, expected, atol=1e-6, rtol=0)


def test_arrays_give_the_same_answer_in_any_memory_layout():
    table, features = _toy(seed=5, n=5000, n_features=7)  # more rows than one pass block (2048)
    design = np.column_stack([table["age"], table["sex"] == "M"]).astype(float)
    sites = table["site"].to_numpy()
    row_major = np.ascontiguousarray(table[features].to_numpy())
    expected = combat_arrays(row_major, sites, design)
    wide = np.asfortranarray(np.hstack([row_major, row_major]))
    for layout in (np.asfortranarray(row_major), wide[:, :7], row_major.tolist()):
        np.testing.assert_allclose(combat_arrays(layout, sites, design), expected, rtol=0, atol=1e-12)
    assert not np.shares_memory(expected, row_major)


def test_no_covariates_equals_neurocombat():
    table, features = _toy(seed=3, n=150, n_features=5)
    with contextlib.redirect_stdout(io.StringIO()):
        expected = neuroCombat(table[features].to_numpy().T.copy(), table[["site"]], "site")["data"].T
    got = ComBat().fit_transform(table, features)[features].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


def test_transform_new_subjects_matches_fit_transform_and_keeps_input():
    table, features = _toy(seed=2)
    before = table.copy()
    model = ComBat(covariates=["age", "sex"])
    together = model.fit_transform(table, features, suffix="_h")
    pd.testing.assert_frame_equal(table, before)  # input untouched
    assert [f + "_h" for f in features] == list(together.columns[-len(features):])
    part = model.transform(table.iloc[::3], suffix="_h")
    np.testing.assert_allclose(part[[f + "_h" for f in features]], together.iloc[::3][[f + "_h" for f in features]], atol=1e-12)
    effects = model.site_effects
    assert set(effects.columns) >= {"site", "feature", "gamma_star", "delta_star"} and len(effects) == 4 * len(features)


def test_site_effects_removed_age_effect_kept(cohort_table, cohort):
    table = cohort_table
    regions = [f"wmh_{r}_ml" for r in ("periventricular", "deep", "frontal", "parietal", "temporal", "occipital")]
    for column in regions:
        table[f"log_{column}"] = np.log1p(table[column])
    features = ["log_wmh"] + [f"log_{c}" for c in regions]
    result = harmonize(table, features, covariates=["age", "sex", "hypertension"], suffix="_combat")
    harmonised = result.table
    # site means of the residual after age/sex: spread shrinks by a large factor
    def site_spread(column):
        x = np.column_stack([np.ones(len(harmonised)), harmonised["age"], harmonised["sex"] == "F"]).astype(float)
        y = harmonised[column].to_numpy()
        resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
        return pd.Series(resid).groupby(harmonised["site"].to_numpy()).mean().std()
    assert site_spread("log_wmh_combat") < 0.25 * site_spread("log_wmh")
    # the age slope (per year, log scale) survives harmonisation
    slope = lambda c: np.polyfit(harmonised["age"], harmonised[c], 1)[0]  # noqa: E731
    truth = np.polyfit(harmonised["age"], np.log1p(harmonised["wmh_true_ml"]), 1)[0]
    assert abs(slope("log_wmh_combat") - truth) < 0.15 * truth
    assert result.summary["site"].nunique() == 8


def test_missing_rows_reported_not_silently_dropped(caplog):
    table, features = _toy(seed=4)
    table.loc[[3, 10], "f2"] = np.nan
    with caplog.at_level("WARNING"):
        result = harmonize(table, features, covariates=["age", "sex"])
    assert result.dropped["subject"].tolist() == ["s3", "s10"]
    assert result.dropped["reason"].tolist() == ["missing f2", "missing f2"]
    assert result.table.loc[[3, 10], features].isna().all().all()
    assert result.table.drop(index=[3, 10])[features].notna().all().all()
    assert "dropped 2" in caplog.text


def test_errors_name_the_problem():
    table, features = _toy(seed=5)
    with pytest.raises(TableError, match="single site"):
        ComBat().fit(table.assign(site="a"), features)
    confounded = table.assign(scanner_field=table["site"].map({"a": 1.5, "b": 3.0, "c": 1.5, "d": 3.0}))
    with pytest.raises(TableError, match="'scanner_field' is confounded"):
        ComBat(covariates=["age", "scanner_field"]).fit(confounded, features)
    with pytest.raises(TableError, match="'age' is constant"):
        ComBat(covariates=["age"]).fit(table.assign(age=70.0), features)
    with pytest.raises(TableError, match="no column 'nope'"):
        ComBat().fit(table, ["nope"])
    with pytest.raises(TableError, match="'f0' must be numeric"):
        ComBat().fit(table.assign(f0="x"), features)
    with pytest.raises(TableError, match="Subject 's1' appears more than once"):
        ComBat().fit(table.assign(subject_id=["s1"] * len(table)), features)
    with pytest.raises(TableError, match="'f1' has no variance"):
        ComBat().fit(table.assign(f1=2.0), features)
    with pytest.raises(TableError, match="fewer than 2 subjects"):
        ComBat().fit(pd.concat([table, table.iloc[[0]].assign(site="z", subject_id="new")], ignore_index=True), features)
    model = ComBat().fit(table, features)
    with pytest.raises(TableError, match="Site 'z'"):
        model.transform(table.assign(site="z"))
    with pytest.raises(OptionError, match="not fitted"):
        ComBat().transform(table)
    with pytest.raises(OptionError, match="at least 2 features"):
        ComBat().fit(table, ["f0"])
