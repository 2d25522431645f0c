"""Age trajectories of lesion burden: spline regression by sex, site fixed or random.

The outcome (usually ``log(1 + WMH mL)``) is modelled with a B-spline (patsy ``bs``) or
natural cubic regression spline (``cr``) of age, separately shaped for each sex (spline x sex
interaction), with site as fixed-effect indicators (OLS) or a random intercept (MixedLM).
Predictions on an age grid average over the site mix of the data (fixed effects) or use the
fixed effects alone (random site); their 95 % confidence bands come from the coefficient
covariance. The annual change at chosen ages is the derivative of the curve (central
difference of the design, so its CI is exact for the linear model).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from wmhkit.errors import OptionError, TableError
from wmhkit.stats._validation import as_list, prepare, require_not_constant

__all__ = ["TrajectoryResult", "fit_trajectory"]

logger = logging.getLogger(__name__)

SPLINES = ("bs", "cr", "linear")
BACK_TRANSFORMS = (None, "log", "log1p")


def _q(name: str) -> str:
    return f'Q("{name}")'


def _age_term(age: str, spline: str, df: int) -> str:
    if spline == "linear":
        return _q(age)
    if spline == "cr":  # patsy's cr spans the constant; centring keeps it apart from the intercept
        return f"cr({_q(age)}, df={int(df)}, constraints='center')"
    return f"bs({_q(age)}, df={int(df)})"


@dataclass
class TrajectoryResult:
    """A fitted age trajectory.

    Attributes
    ----------
    model : statsmodels results
        OLS (site fixed or absent) or MixedLM (site random) fit.
    formula : str
        The patsy formula of the fixed effects.
    summary : pandas.DataFrame
        Fixed-effect coefficients: ``term``, ``coef``, ``se``, ``ci_low``, ``ci_high``, ``p_value``.
    dropped : pandas.DataFrame
        Rows left out for missing values.
    """

    model: object
    formula: str
    summary: pd.DataFrame
    dropped: pd.DataFrame
    age: str
    sex: str | None
    site: str | None
    site_effect: str | None
    back_transform: str | None
    _reference: pd.DataFrame
    age_range: tuple[float, float]
    _design_info: object = None
    _sex_levels: tuple = ()
    age_ranges: dict | None = None  # sex -> (youngest, oldest) age observed

    def _design(self, frame: pd.DataFrame) -> np.ndarray:
        import patsy

        return np.asarray(patsy.dmatrix(self._design_info, frame, return_type="matrix"))

    def _fe(self):
        n_fe = self._design(self._reference.head(1)).shape[1]
        params = np.asarray(self.model.params)[:n_fe]
        cov = np.asarray(self.model.cov_params())[:n_fe, :n_fe]
        return params, cov

    def _averaged_design(self, ages: np.ndarray, sex_value) -> np.ndarray:
        """Design rows at each age, averaged over the reference mix of the other covariates."""
        ref = self._reference
        weights = ref["_weight"].to_numpy()
        frame = ref.loc[ref.index.repeat(len(ages))].reset_index(drop=True)
        frame[self.age] = np.tile(ages, len(ref))
        if self.sex is not None:
            frame[self.sex] = sex_value
        x = self._design(frame).reshape(len(ref), len(ages), -1)
        return np.einsum("r,rak->ak", weights, x)

    def _sexes(self):
        if self.sex is None:
            return [None]
        return sorted(self._sex_levels)

    def predict(self, ages=None, *, n_points: int = 50, level: float = 0.95) -> pd.DataFrame:
        """Predicted mean outcome on an age grid with a confidence band.

        Parameters
        ----------
        ages : array-like, optional
            Ages (years); default ``n_points`` evenly spaced over the ages observed in each
            sex (so a curve is not drawn beyond its data).
        n_points : int, default 50
        level : float, default 0.95
            Confidence level of the band.

        Returns
        -------
        pandas.DataFrame
            ``sex`` (if modelled), ``age``, ``estimate``, ``se``, ``ci_low``, ``ci_high``; with
            ``back_transform`` also ``estimate_ml``, ``ci_low_ml``, ``ci_high_ml``.
        """
        given = None if ages is None else np.asarray(ages, dtype=float)
        params, cov = self._fe()
        z = sps.norm.ppf(0.5 + level / 2)
        parts = []
        for sex_value in self._sexes():
            ranges = self.age_ranges or {}
            ages = given if given is not None else np.linspace(*ranges.get(sex_value, self.age_range), n_points)
            x = self._averaged_design(ages, sex_value)
            estimate = x @ params
            se = np.sqrt(np.einsum("ak,kl,al->a", x, cov, x))
            part = pd.DataFrame({"age": ages, "estimate": estimate, "se": se,
                                 "ci_low": estimate - z * se, "ci_high": estimate + z * se})
            if self.sex is not None:
                part.insert(0, "sex", sex_value)
            parts.append(part)
        out = pd.concat(parts, ignore_index=True)
        if self.back_transform is not None:
            inverse = np.exp if self.back_transform == "log" else np.expm1
            for col in ("estimate", "ci_low", "ci_high"):
                out[f"{col}_ml"] = inverse(out[col])
        return out

    def annual_change(self, ages, *, step_years: float = 0.5, level: float = 0.95) -> pd.DataFrame:
        """Estimated change of the outcome per year of age at the given ages.

        Parameters
        ----------
        ages : array-like
            Ages (years).
        step_years : float, default 0.5
            Half-width of the central difference.
        level : float, default 0.95

        Returns
        -------
        pandas.DataFrame
            ``sex``, ``age``, ``change_per_year`` (outcome units per year), ``se``,
            ``ci_low``, ``ci_high``; with ``back_transform``: ``change_ml_per_year`` (at the
            predicted volume) and ``percent_per_year`` (log scale only).
        """
        ages = np.atleast_1d(np.asarray(ages, dtype=float))
        params, cov = self._fe()
        z = sps.norm.ppf(0.5 + level / 2)
        parts = []
        for sex_value in self._sexes():
            x_hi = self._averaged_design(ages + step_years, sex_value)
            x_lo = self._averaged_design(ages - step_years, sex_value)
            contrast = (x_hi - x_lo) / (2 * step_years)
            slope = contrast @ params
            se = np.sqrt(np.einsum("ak,kl,al->a", contrast, cov, contrast))
            part = pd.DataFrame({"age": ages, "change_per_year": slope, "se": se,
                                 "ci_low": slope - z * se, "ci_high": slope + z * se})
            if self.back_transform is not None:
                level_at_age = self._averaged_design(ages, sex_value) @ params
                # d/dage of exp(f) (log) or exp(f) - 1 (log1p) is exp(f) * f'
                part["change_ml_per_year"] = np.exp(level_at_age) * slope
                if self.back_transform == "log":
                    part["percent_per_year"] = 100.0 * np.expm1(slope)
            if self.sex is not None:
                part.insert(0, "sex", sex_value)
            parts.append(part)
        return pd.concat(parts, ignore_index=True)


def fit_trajectory(
    table: pd.DataFrame,
    outcome: str,
    *,
    age: str = "age",
    sex: str | None = "sex",
    site: str | None = "site",
    site_effect: str | None = "fixed",
    covariates=None,
    spline: str = "bs",
    df: int = 4,
    back_transform: str | None = None,
    subject_column: str | None = "subject_id",
) -> TrajectoryResult:
    """Fit an age trajectory of ``outcome`` with a spline of age, by sex, adjusting for site.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject.
    outcome : str
        Numeric outcome, e.g. ``log(1 + WMH mL)``.
    age : str, default "age"
        Age column (years, numeric).
    sex : str or None, default "sex"
        Sex column; the spline shape differs by sex (interaction). None: one curve.
    site : str or None, default "site"
        Site column. None: no site term.
    site_effect : {"fixed", "random", None}, default "fixed"
        Site as fixed-effect indicators (OLS) or a random intercept (MixedLM).
    covariates : list of str, optional
        Further adjustment columns (numeric or categorical); predictions average over them.
    spline : {"bs", "cr", "linear"}, default "bs"
        B-spline, natural cubic regression spline (patsy), or a straight line.
    df : int, default 4
        Spline degrees of freedom.
    back_transform : {None, "log", "log1p"}, default None
        Scale of the outcome; adds mL columns to predictions and annual changes.
    subject_column : str or None, default "subject_id"

    Returns
    -------
    TrajectoryResult
    """
    import patsy
    import statsmodels.formula.api as smf

    if spline not in SPLINES:
        raise OptionError(f"spline={spline!r}; use one of {', '.join(SPLINES)}.")
    if site_effect not in ("fixed", "random", None):
        raise OptionError(f"site_effect={site_effect!r}; use 'fixed', 'random' or None.")
    if back_transform not in BACK_TRANSFORMS:
        raise OptionError(f"back_transform={back_transform!r}; use None, 'log' or 'log1p'.")
    if site is None:
        site_effect = None
    covariates = as_list(covariates)
    numeric_cov = [c for c in covariates if c in table.columns and pd.api.types.is_numeric_dtype(table[c])]
    categorical = [c for c in [sex, site] + covariates if c is not None and c not in numeric_cov]
    kept, dropped = prepare(table, numeric=[outcome, age] + numeric_cov, other=categorical,
                            subject_column=subject_column, what="age trajectory")
    require_not_constant(kept, [outcome, age])
    if site_effect is not None and kept[site].nunique() < 2:
        raise TableError(f"Column {site!r} holds a single site; pass site=None.")
    age_term = _age_term(age, spline, df)
    terms = [f"{age_term} * C({_q(sex)})" if sex is not None else age_term]
    if site_effect == "fixed":
        terms.append(f"C({_q(site)})")
    terms += [_q(c) if c in numeric_cov else f"C({_q(c)})" for c in covariates]
    formula = f"{_q(outcome)} ~ " + " + ".join(terms)
    data = kept.reset_index(drop=True)
    if site_effect == "random":
        fit = smf.mixedlm(formula, data, groups=data[site]).fit(reml=True)
    else:
        fit = smf.ols(formula, data).fit()

    # reference mix of the non-age, non-sex covariates (site levels weighted by frequency; numbers at their mean)
    others = ([site] if site_effect == "fixed" else []) + covariates
    cat_others = [c for c in others if c not in numeric_cov]
    if cat_others:
        reference = data.groupby(cat_others, observed=True).size().rename("_weight").reset_index()
        reference["_weight"] /= reference["_weight"].sum()
    else:
        reference = pd.DataFrame({"_weight": [1.0]})
    for c in numeric_cov:
        reference[c] = float(data[c].mean())
    reference[outcome] = 0.0
    reference[age] = float(data[age].mean())
    if sex is not None:
        reference[sex] = data[sex].iloc[0]
    if site is not None and site not in reference.columns:
        reference[site] = data[site].iloc[0]

    n_fe = len(fit.model.exog_names)
    params = np.asarray(fit.params)[:n_fe]
    bse = np.asarray(fit.bse)[:n_fe]
    pvalues = np.asarray(fit.pvalues)[:n_fe]
    zq = sps.norm.ppf(0.975)
    summary = pd.DataFrame({"term": fit.model.exog_names, "coef": params, "se": bse,
                            "ci_low": params - zq * bse, "ci_high": params + zq * bse, "p_value": pvalues})
    return TrajectoryResult(
        model=fit, formula=formula, summary=summary, dropped=dropped, age=age, sex=sex, site=site,
        site_effect=site_effect, back_transform=back_transform, _reference=reference,
        age_range=(float(data[age].min()), float(data[age].max())),
        _design_info=patsy.dmatrix(formula.split("~", 1)[1], data).design_info,
        _sex_levels=tuple(pd.unique(data[sex])) if sex is not None else (),
        age_ranges=({k: (float(v.min()), float(v.max())) for k, v in data.groupby(sex)[age]} if sex is not None
                    else {None: (float(data[age].min()), float(data[age].max()))}),
    )
