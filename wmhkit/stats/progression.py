"""WMH progression over repeated scans: a linear mixed model of log volume on time.

:func:`fit_progression` fits (statsmodels ``MixedLM``, REML)::

    log(V_ij) = b0 + b1 * t_ij + b2 * (age0_i - mean age0) + covariates + [site of scan j]
                + u0_i + u1_i * t_ij + e_ij,      (u0_i, u1_i) ~ N(0, G),  e_ij ~ N(0, s^2)

with ``t`` the years since the subject's first scan. ``b1`` is the mean annual change of log
volume, reported as a percentage a year (``100 * (exp(b1) - 1)``) and as mL a year at the
median baseline volume (``V0 * (exp(b1) - 1)``), with 95 % confidence intervals. The site of
each scan may change between visits (scanner replacements); as a time-varying fixed effect
it keeps scanner changes out of the slope. Progression by baseline burden refits the model
with a ``t x group`` interaction, groups being quantiles of each subject's first measured
volume. Each subject's own slope is the fixed slope plus the subject's predicted random slope
(BLUP): it is shrunk towards the mean, the more so the fewer and the closer together the
scans; ``reliability`` (1 - posterior / prior variance of the random slope) says by how much.
The model assumes missing visits are missing at random given the observed scans and
covariates: dropout that depends on an earlier measured burden is handled, dropout that
depends on the unobserved future is not.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from wmhkit.errors import OptionError, TableError
from wmhkit.stats._validation import as_list, drop_missing, require_columns, require_numeric, require_table

__all__ = ["ProgressionResult", "fit_progression"]

logger = logging.getLogger(__name__)

TRANSFORMS = ("log", "log1p")


def _q(name: str) -> str:
    return f'Q("{name}")'


@dataclass
class ProgressionResult:
    """A fitted progression model.

    Attributes
    ----------
    model : statsmodels MixedLMResults
        The fit of the whole sample.
    formula : str
        Fixed-effect formula (patsy).
    summary : pandas.DataFrame
        Fixed effects: ``term``, ``coef``, ``se``, ``ci_low``, ``ci_high``, ``p_value``.
    annual_change : pandas.DataFrame
        One row: ``group`` ("all"), ``n_subjects``, ``n_scans``, ``baseline_ml`` (median first
        scan), ``log_change_per_year`` with ``se``, ``ci_low``, ``ci_high``,
        ``percent_per_year`` (+ CI) and ``ml_per_year`` (+ CI) at ``baseline_ml``.
    by_group : pandas.DataFrame or None
        The same columns per baseline-burden group (lowest first), from the model with a
        time x group interaction; None when ``n_groups=0``.
    subject_slopes : pandas.DataFrame
        One row per subject: ``subject``, ``n_scans``, ``years_followed``, ``baseline_ml``,
        ``group``, ``slope_ols`` (their own least-squares slope of the log volume, per year),
        ``slope`` (fixed slope + BLUP), ``reliability`` (0 = fully shrunk to the mean, 1 = own
        data only) and ``percent_per_year`` (from ``slope``).
    variance : pandas.DataFrame
        Random-effect SDs and their correlation, and the residual SD (log scale).
    dropped : pandas.DataFrame
        Scans left out for missing values.
    """

    model: object
    formula: str
    summary: pd.DataFrame
    annual_change: pd.DataFrame
    by_group: pd.DataFrame | None
    subject_slopes: pd.DataFrame
    variance: pd.DataFrame
    dropped: pd.DataFrame
    transform: str
    subject: str = "subject_id"
    time: str = "years_since_baseline"

    def subject_table(self, table: pd.DataFrame, columns=()) -> pd.DataFrame:
        """One row per subject: slopes, baseline burden and subject columns, e.g. for a Cox model.

        Parameters
        ----------
        table : pandas.DataFrame
            The scan table the model was fitted on (long format).
        columns : sequence of str, default ()
            Columns to take from each subject's first scan (e.g. ``["age_baseline", "sex",
            "dementia", "dementia_years"]``).

        Returns
        -------
        pandas.DataFrame
            :attr:`subject_slopes` with the subject column renamed back to its name in
            ``table``, ``log_baseline_ml`` (baseline volume on the model's scale) and ``columns``.
        """
        columns = as_list(columns)
        require_columns(table, [self.subject, self.time] + columns)
        first = table.sort_values(self.time, kind="stable").groupby(self.subject, sort=False)[columns].first()
        out = self.subject_slopes.rename(columns={"subject": self.subject})
        transform = np.log if self.transform == "log" else np.log1p
        out.insert(out.columns.get_loc("baseline_ml") + 1, "log_baseline_ml", transform(out["baseline_ml"]))
        return out.merge(first, left_on=self.subject, right_index=True, how="left")


def _change_row(coef, se, baseline_ml, transform, z) -> dict:
    """Annual change on the log scale and back-transformed, with CIs."""
    low, high = coef - z * se, coef + z * se
    base = baseline_ml + (1.0 if transform == "log1p" else 0.0)  # d(1 + V) = dV
    row = {"log_change_per_year": coef, "se": se, "ci_low": low, "ci_high": high}
    for name, value in (("", coef), ("_ci_low", low), ("_ci_high", high)):
        row[f"percent_per_year{name}"] = 100.0 * np.expm1(value)
        row[f"ml_per_year{name}"] = base * np.expm1(value)
    return row


def _fit_mixed(formula, data, subject):
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    model = smf.mixedlm(formula, data, groups=data[subject], re_formula="~_t")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fit = model.fit(reml=True, method=["lbfgs", "powell"])
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            logger.warning("progression model: %s", w.message)
    return fit


def _own_slopes(data, subject, time, outcome) -> pd.Series:
    """Each subject's least-squares slope of the outcome on time (NaN with < 2 distinct times)."""
    t = data[time].to_numpy(float)
    y = data[outcome].to_numpy(float)
    frame = pd.DataFrame({"s": data[subject].to_numpy(), "t": t, "y": y, "tt": t * t, "ty": t * y, "n": 1.0})
    sums = frame.groupby("s", sort=False).sum()
    sxx = sums["tt"] - sums["t"] ** 2 / sums["n"]
    sxy = sums["ty"] - sums["t"] * sums["y"] / sums["n"]
    return (sxy / sxx.where(sxx > 1e-12)).rename("slope_ols")


def fit_progression(
    table: pd.DataFrame,
    outcome: str = "wmh_ml",
    *,
    subject: str = "subject_id",
    time: str = "years_since_baseline",
    age_baseline: str | None = "age_baseline",
    covariates=None,
    site: str | None = "site",
    transform: str = "log",
    n_groups: int = 3,
    level: float = 0.95,
) -> ProgressionResult:
    """Annual WMH change from repeated scans with a linear mixed model (random intercepts and slopes).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per scan (long format), e.g. ``make_longitudinal_cohort().table``.
    outcome : str, default "wmh_ml"
        Lesion volume (mL) of each scan; modelled on the ``transform`` scale.
    subject : str, default "subject_id"
        Subject identifier (several rows each).
    time : str, default "years_since_baseline"
        Years since the subject's first scan (0 at baseline).
    age_baseline : str or None, default "age_baseline"
        Age at the first scan (years); centred at its mean. None leaves it out.
    covariates : list of str, optional
        Further subject-level adjustments (e.g. ``["sex", "hypertension"]``; text columns are
        categorical). They shift the level, not the slope.
    site : str or None, default "site"
        Scanner/site of each scan, a time-varying categorical fixed effect (handles scanner
        changes between visits). None: no site term.
    transform : {"log", "log1p"}, default "log"
        Scale of the model: ``log(mL)`` (slopes are relative growth; needs volumes > 0) or
        ``log(1 + mL)``.
    n_groups : int, default 3
        Baseline-burden groups (quantiles of each subject's first measured volume) for
        ``by_group``; 0 skips that second fit.
    level : float, default 0.95
        Confidence level of the intervals.

    Returns
    -------
    ProgressionResult

    Raises
    ------
    wmhkit.errors.TableError
        Missing columns, non-positive volumes on the log scale, times that do not start at 0,
        or fewer than 10 subjects with two or more scans.
    """
    if transform not in TRANSFORMS:
        raise OptionError(f"transform={transform!r} is unknown; use 'log' or 'log1p'.")
    if int(n_groups) < 0 or int(n_groups) == 1:
        raise OptionError(f"n_groups={n_groups} must be 0 (no groups) or at least 2.")
    table = require_table(table)
    covariates = as_list(covariates)
    numeric = [outcome, time] + ([age_baseline] if age_baseline else [])
    require_columns(table, [subject] + numeric + covariates + ([site] if site else []))
    require_numeric(table, numeric)
    needed = [subject] + numeric + covariates + ([site] if site else [])
    data = table.copy()
    for column in numeric:
        data[column] = pd.to_numeric(data[column], errors="coerce").astype(float)
    data, dropped = drop_missing(data, needed, subject_column=subject, what="progression model")
    values = data[outcome].to_numpy(float)
    if transform == "log" and np.any(values <= 0):
        raise TableError(f"Column {outcome!r} holds volumes <= 0, which have no log; pass transform='log1p'.")
    if np.any(values < 0):
        raise TableError(f"Column {outcome!r} holds negative volumes; check the column.")
    if np.any(data[time] < 0):
        raise TableError(f"Column {time!r} holds negative times; it must be years since each subject's first scan.")
    first_time = data.groupby(subject, sort=False)[time].transform("min")
    if np.any(first_time > 1e-9):
        bad = data.loc[first_time > 1e-9, subject].iloc[0]
        raise TableError(f"Column {time!r} does not start at 0 for subject {bad!r}; it must be years since each "
                         "subject's first scan.")
    if age_baseline:
        varies = data.groupby(subject, sort=False)[age_baseline].nunique() > 1
        if varies.any():
            raise TableError(f"Column {age_baseline!r} changes between the scans of subject {varies.idxmax()!r}; "
                             "it must hold the age at the first scan on every row.")
    n_scans = data.groupby(subject, sort=False).size()
    if int((n_scans >= 2).sum()) < 10:
        raise TableError(f"Column {subject!r}: fewer than 10 subjects have two or more scans; progression needs "
                         "repeated scans.")

    data = data.reset_index(drop=True)
    data["_y"] = np.log(values) if transform == "log" else np.log1p(values)
    # Time in units of the longest follow-up: in years, the slope variance is ~1/500 of the
    # intercept variance and the optimiser stalls on the boundary; rescaled, it converges at once.
    time_scale = float(data[time].max()) or 1.0
    data["_t"] = data[time] / time_scale
    terms = ["_t"]
    if age_baseline:
        data["_age0_c"] = data[age_baseline] - data.groupby(subject, sort=False)[age_baseline].first().mean()
        terms.append('Q("_age0_c")')
    for column in covariates:
        terms.append(_q(column) if pd.api.types.is_numeric_dtype(data[column])
                     and not pd.api.types.is_bool_dtype(data[column]) else f"C({_q(column)})")
    if site and data[site].nunique() > 1:
        terms.append(f"C({_q(site)})")
    formula = 'Q("_y") ~ ' + " + ".join(terms)
    fit = _fit_mixed(formula, data, subject)
    z = sps.norm.ppf(0.5 + level / 2)

    names = list(fit.model.exog_names)
    n_fe = len(names)
    time_index = names.index("_t")
    unscale = np.ones(n_fe)
    unscale[time_index] = 1.0 / time_scale
    params, bse = np.asarray(fit.fe_params) * unscale, np.asarray(fit.bse)[:n_fe] * unscale
    shown = [time if n == "_t" else f"{age_baseline} (centred)" if n == 'Q("_age0_c")' else n for n in names]
    summary = pd.DataFrame({"term": shown, "coef": params, "se": bse, "ci_low": params - z * bse,
                            "ci_high": params + z * bse, "p_value": np.asarray(fit.pvalues)[:n_fe]})

    first = data.sort_values(time, kind="stable").groupby(subject, sort=False).first()
    baseline = first[outcome]
    overall = {"group": "all", "n_subjects": int(data[subject].nunique()), "n_scans": len(data),
               "baseline_ml": float(baseline.median())}
    overall.update(_change_row(params[time_index], bse[time_index], overall["baseline_ml"], transform, z))
    annual = pd.DataFrame([overall])

    group = pd.Series("all", index=baseline.index)
    by_group = None
    if int(n_groups):
        labels = [f"Q{i + 1}" for i in range(int(n_groups))]
        try:
            group = pd.qcut(baseline.rank(method="first"), int(n_groups), labels=labels).astype(str)
        except ValueError as exc:
            raise TableError(f"Column {outcome!r}: too few subjects for {n_groups} baseline-burden groups.") from exc
        data["_group"] = data[subject].map(group)
        group_formula = formula.replace("_t", '_t * C(Q("_group"))', 1)
        group_fit = _fit_mixed(group_formula, data, subject)
        gnames = list(group_fit.model.exog_names)
        gparams = np.asarray(group_fit.fe_params) / time_scale  # only time terms are read below
        gcov = np.asarray(group_fit.cov_params())[: len(gnames), : len(gnames)] / time_scale**2
        rows = []
        for label in labels:
            contrast = np.zeros(len(gnames))
            contrast[gnames.index("_t")] = 1.0
            interaction = f'_t:C(Q("_group"))[T.{label}]'
            if interaction in gnames:
                contrast[gnames.index(interaction)] = 1.0
            members = group.index[group == label]
            row = {"group": label, "n_subjects": len(members), "n_scans": int(data["_group"].eq(label).sum()),
                   "baseline_ml": float(baseline[members].median()),
                   "baseline_ml_low": float(baseline[members].min()), "baseline_ml_high": float(baseline[members].max())}
            row.update(_change_row(float(contrast @ gparams), float(np.sqrt(contrast @ gcov @ contrast)),
                                   row["baseline_ml"], transform, z))
            rows.append(row)
        by_group = pd.DataFrame(rows)

    # each subject's slope: fixed slope + BLUP, and how much it was shrunk
    cov_re = np.asarray(fit.cov_re)
    scale = float(fit.scale)
    prior_inverse = np.linalg.inv(cov_re)
    random = fit.random_effects
    times = data.groupby(subject, sort=False)[time]
    subjects = list(first.index)
    blup = np.array([np.asarray(random[s])[1] for s in subjects]) / time_scale
    reliability = []
    for s, t in times:
        zz = np.column_stack([np.ones(len(t)), t.to_numpy(float) / time_scale])
        posterior = np.linalg.inv(prior_inverse + zz.T @ zz / scale)
        reliability.append(1.0 - posterior[1, 1] / cov_re[1, 1])
    reliability = pd.Series(reliability, index=[s for s, _ in times])
    slopes = pd.DataFrame({
        "subject": subjects, "n_scans": n_scans[subjects].to_numpy(),
        "years_followed": times.max()[subjects].to_numpy(), "baseline_ml": baseline[subjects].to_numpy(),
        "group": group[subjects].to_numpy(),
        "slope_ols": _own_slopes(data, subject, time, "_y")[subjects].to_numpy(),
        "slope": params[time_index] + blup, "reliability": reliability[subjects].to_numpy(),
    })
    slopes["percent_per_year"] = 100.0 * np.expm1(slopes["slope"])
    sd = np.sqrt(np.diag(cov_re)) / np.array([1.0, time_scale])
    variance = pd.DataFrame({
        "component": ["intercept_sd", "slope_sd_per_year", "intercept_slope_correlation", "residual_sd"],
        "value": [sd[0], sd[1], cov_re[0, 1] / np.sqrt(cov_re[0, 0] * cov_re[1, 1]), np.sqrt(scale)],
    })
    logger.info("progression: %d subjects, %d scans, %.2f %%/year", overall["n_subjects"], len(data),
                overall["percent_per_year"])
    return ProgressionResult(model=fit, formula=formula, summary=summary, annual_change=annual, by_group=by_group,
                             subject_slopes=slopes, variance=variance, dropped=dropped, transform=transform,
                             subject=subject, time=time)
