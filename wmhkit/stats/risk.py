"""Dementia risk from lesion burden: logistic regression, Cox models, region-by-region scans.

Every function takes a table and column names and returns a :class:`RiskResult` whose
``summary`` is a tidy table (one row per model term: estimate as OR or HR with its 95 % CI
and p-value). The exposure is standardised (per SD) within the analysed rows unless
``per_sd=False``; categorical covariates are expanded to indicator columns (first sorted
level as reference). Kaplan-Meier curves live in :mod:`wmhkit.stats.survival`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from wmhkit.errors import OptionError, TableError
from wmhkit.stats._validation import as_list, prepare, require_not_constant

__all__ = ["RiskResult", "cox_risk", "fdr_bh", "logistic_risk", "region_analysis", "schoenfeld_test"]

logger = logging.getLogger(__name__)

SUMMARY_COLUMNS = ["term", "estimate", "ci_low", "ci_high", "p_value", "coef", "se"]


@dataclass
class RiskResult:
    """Result of a risk model.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per term: ``term``, ``estimate`` (odds or hazard ratio), ``ci_low``,
        ``ci_high`` (95 %), ``p_value``, ``coef`` (log scale) and ``se``.
    n : int
        Subjects analysed.
    n_events : int
        Events (cases) among them.
    dropped : pandas.DataFrame
        Rows left out for missing values.
    model : object
        The fitted statsmodels results (several, in a dict, for quartile models).
    ph_test : pandas.DataFrame or None
        Cox models only: proportional-hazards test per term (``term``, ``statistic``,
        ``p_value``), Grambsch-Therneau on scaled Schoenfeld residuals against event rank.
    exposure_sd : float or None
        SD of the exposure used for per-SD estimates (exposure units).
    """

    summary: pd.DataFrame
    n: int
    n_events: int
    dropped: pd.DataFrame
    model: object = None
    ph_test: pd.DataFrame | None = None
    exposure_sd: float | None = None
    extra: dict = field(default_factory=dict)

    def estimate(self, term: str) -> pd.Series:
        """The summary row of one term."""
        rows = self.summary[self.summary["term"] == term]
        if rows.empty:
            raise OptionError(f"No term {term!r} in this model; terms: {', '.join(self.summary['term'])}.")
        return rows.iloc[0]


def fdr_bh(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN.

    >>> fdr_bh([0.01, 0.04, 0.03, 0.5]).round(3).tolist()
    [0.04, 0.053, 0.053, 0.5]
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    order = np.argsort(p[ok])
    ranked = p[ok][order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(ranked, 1.0)
    q[ok] = adjusted
    return q


def _design(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Numeric design columns: numbers as they are, other columns as indicators (first level dropped)."""
    parts = []
    for column in columns:
        series = table[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            parts.append(series.astype(float).rename(column))
        else:
            levels = sorted(pd.unique(series), key=str)
            for level in levels[1:]:
                parts.append((series == level).astype(float).rename(f"{column}[{level}]"))
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=table.index)


def _summary(names, params, bse, pvalues) -> pd.DataFrame:
    params, bse = np.asarray(params, dtype=float), np.asarray(bse, dtype=float)
    z = sps.norm.ppf(0.975)
    return pd.DataFrame(
        {
            "term": list(names),
            "estimate": np.exp(params),
            "ci_low": np.exp(params - z * bse),
            "ci_high": np.exp(params + z * bse),
            "p_value": np.asarray(pvalues, dtype=float),
            "coef": params,
            "se": bse,
        }
    )


def _prepare_exposure(kept: pd.DataFrame, exposure: str, per_sd: bool) -> tuple[pd.Series, float | None]:
    values = kept[exposure].astype(float)
    if not per_sd:
        return values, None
    sd = float(values.std(ddof=1))
    return (values - values.mean()) / sd, sd


def _check_binary(kept: pd.DataFrame, column: str) -> np.ndarray:
    values = kept[column].to_numpy(dtype=float)
    if not np.isin(values, (0.0, 1.0)).all():
        raise TableError(f"Column {column!r} must hold 0/1 (1 = event); recode it.")
    if values.sum() == 0:
        raise TableError(f"Column {column!r} has no events (all 0); the model cannot be fitted.")
    return values


def _split_covariates(table: pd.DataFrame, covariates: list[str]) -> tuple[list[str], list[str]]:
    """Numeric and categorical covariates; text columns that are mostly numbers count as numeric
    (so a stray "seventy" among ages is reported, not turned into a category)."""
    numeric = []
    for c in covariates:
        if c not in table.columns:
            continue
        series = table[c]
        if pd.api.types.is_numeric_dtype(series):
            numeric.append(c)
        elif series.dtype == object and pd.to_numeric(series, errors="coerce").notna().mean() > 0.5:
            numeric.append(c)
    return numeric, [c for c in covariates if c not in numeric]


def _prepare_model(table, outcome_columns, exposure, covariates, per_sd, subject_column, what):
    """Validated complete rows, the dropped-row report, the design (exposure first) and the exposure SD."""
    num_cov, cat_cov = _split_covariates(table, covariates)
    kept, dropped = prepare(table, numeric=list(outcome_columns) + [exposure] + num_cov, other=cat_cov,
                            subject_column=subject_column, what=what)
    require_not_constant(kept, [exposure] + covariates)
    x, sd = _prepare_exposure(kept, exposure, per_sd)
    design = pd.concat([x.rename(exposure), _design(kept, covariates)], axis=1)
    return kept, dropped, design, sd


def _quartile_labels(values: pd.Series, n_groups: int) -> pd.Series:
    labels = [f"Q{i + 1}" for i in range(n_groups)]
    try:
        return pd.qcut(values, n_groups, labels=labels)
    except ValueError as exc:  # too many tied values for distinct quantiles
        raise TableError(f"Exposure {values.name!r} has too many tied values to split into {n_groups} groups.") from exc


def logistic_risk(
    table: pd.DataFrame,
    outcome: str,
    exposure: str,
    covariates=None,
    *,
    per_sd: bool = True,
    quartiles: bool = True,
    subject_column: str | None = "subject_id",
) -> RiskResult:
    """Odds ratios of a binary outcome per SD of exposure and by exposure quartile.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject.
    outcome : str
        0/1 column (e.g. ``"dementia"``).
    exposure : str
        Numeric exposure (e.g. ``log(1 + WMH mL)``).
    covariates : list of str, optional
        Adjustment columns (numeric or categorical).
    per_sd : bool, default True
        Standardise the exposure so the OR is per SD.
    quartiles : bool, default True
        Also fit a model with exposure quartiles (Q1 reference); their rows are named
        ``"<exposure> Q2"`` .. ``"Q4"``.
    subject_column : str or None, default "subject_id"

    Returns
    -------
    RiskResult
        ``summary`` with OR per SD (term = exposure), covariates and quartile ORs.
    """
    import statsmodels.api as sm

    covariates = as_list(covariates)
    kept, dropped, design, sd = _prepare_model(table, [outcome], exposure, covariates, per_sd,
                                               subject_column, "logistic regression")
    y = _check_binary(kept, outcome)
    if y.sum() == len(y):
        raise TableError(f"Column {outcome!r} has only events (all 1); the model cannot be fitted.")
    fit = sm.Logit(y, sm.add_constant(design, has_constant="add")).fit(disp=0)
    summary = _summary(fit.params.index, fit.params, fit.bse, fit.pvalues)
    models = {"per_sd": fit}
    if quartiles:
        q = _quartile_labels(kept[exposure], 4)
        dummies = pd.get_dummies(q, prefix=exposure, prefix_sep=" ", dtype=float).iloc[:, 1:]
        qdesign = pd.concat([dummies, _design(kept, covariates)], axis=1)
        qfit = sm.Logit(y, sm.add_constant(qdesign, has_constant="add")).fit(disp=0)
        qsum = _summary(qfit.params.index, qfit.params, qfit.bse, qfit.pvalues)
        summary = pd.concat([summary, qsum[qsum["term"].isin(dummies.columns)]], ignore_index=True)
        models["quartiles"] = qfit
    summary = summary[summary["term"] != "const"].reset_index(drop=True)
    return RiskResult(summary=summary, n=len(kept), n_events=int(y.sum()), dropped=dropped, model=models, exposure_sd=sd)


def schoenfeld_test(fit, time: np.ndarray, event: np.ndarray, names) -> pd.DataFrame:
    """Grambsch-Therneau proportional-hazards test per term (time transform: event rank).

    Scaled Schoenfeld residuals ``n_events * r @ cov(beta)`` are correlated with the rank of
    the event times; the statistic is chi-square with 1 degree of freedom. A small p-value
    says the term's hazard ratio changes over follow-up.
    """
    resid = np.asarray(fit.schoenfeld_residuals)
    is_event = event.astype(bool)
    n_events = int(is_event.sum())
    cov = np.asarray(fit.cov_params())
    scaled = n_events * resid[is_event] @ cov
    g = sps.rankdata(time[is_event], method="ordinal").astype(float)
    g -= g.mean()
    statistic = (g @ scaled) ** 2 / (n_events * np.diag(cov) * (g @ g))
    return pd.DataFrame({"term": list(names), "statistic": statistic, "p_value": sps.chi2.sf(statistic, 1)})


def cox_risk(
    table: pd.DataFrame,
    time: str,
    event: str,
    exposure: str,
    covariates=None,
    *,
    per_sd: bool = True,
    ties: str = "efron",
    subject_column: str | None = "subject_id",
) -> RiskResult:
    """Hazard ratio of an event per SD of exposure from a Cox model (statsmodels PHReg).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject.
    time : str
        Follow-up time (years) to event or censoring; must be > 0.
    event : str
        0/1 column (1 = event observed).
    exposure : str
        Numeric exposure (e.g. ``log(1 + WMH mL)``).
    covariates : list of str, optional
        Adjustment columns (numeric or categorical).
    per_sd : bool, default True
        Standardise the exposure so the HR is per SD.
    ties : {"efron", "breslow"}, default "efron"
    subject_column : str or None, default "subject_id"

    Returns
    -------
    RiskResult
        ``summary`` (HR per term), ``ph_test`` (proportional-hazards test per term).
    """
    from statsmodels.duration.hazard_regression import PHReg

    kept, dropped, design, sd = _prepare_model(table, [time, event], exposure, as_list(covariates), per_sd,
                                               subject_column, "Cox model")
    status = _check_binary(kept, event)
    durations = kept[time].to_numpy(dtype=float)
    if np.any(durations <= 0):
        raise TableError(f"Column {time!r} holds follow-up times <= 0; every subject needs a positive time.")
    fit = PHReg(durations, design.to_numpy(), status=status, ties=ties).fit()
    summary = _summary(design.columns, fit.params, fit.bse, fit.pvalues)
    ph = schoenfeld_test(fit, durations, status, design.columns)
    flagged = ph.loc[ph["p_value"] < 0.05, "term"].tolist()
    if flagged:
        logger.warning("Cox model: proportional-hazards test p < 0.05 for %s", ", ".join(flagged))
    return RiskResult(summary=summary, n=len(kept), n_events=int(status.sum()), dropped=dropped,
                      model=fit, ph_test=ph, exposure_sd=sd)


def region_analysis(
    table: pd.DataFrame,
    regions,
    *,
    model: str = "cox",
    time: str = "followup_years",
    event: str = "dementia",
    covariates=None,
    transform: str | None = "log1p",
    alpha: float = 0.05,
    subject_column: str | None = "subject_id",
) -> pd.DataFrame:
    """Fit one risk model per region and control the false discovery rate (Benjamini-Hochberg).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject.
    regions : list of str
        Regional volume columns (mL).
    model : {"cox", "logistic"}, default "cox"
        Cox model of ``time``/``event`` or logistic model of ``event``.
    time, event : str
        Follow-up (years) and 0/1 event columns.
    covariates : list of str, optional
        Adjustment columns.
    transform : {"log1p", None}, default "log1p"
        Apply ``log(1 + mL)`` to each region before standardising.
    alpha : float, default 0.05
        FDR level for the ``significant`` column.

    Returns
    -------
    pandas.DataFrame
        One row per region: ``region``, ``estimate`` (HR or OR per SD), ``ci_low``,
        ``ci_high``, ``p_value``, ``q_value`` (BH), ``significant``, ``n``, ``n_events``.
    """
    if model not in ("cox", "logistic"):
        raise OptionError(f"region_analysis model={model!r}; use 'cox' or 'logistic'.")
    if transform not in ("log1p", None):
        raise OptionError(f"region_analysis transform={transform!r}; use 'log1p' or None.")
    regions = as_list(regions)
    rows = []
    for region in regions:
        work = table
        exposure = region
        if transform == "log1p":
            prepare(table, numeric=[region], subject_column=None, what=f"region {region}")
            exposure = f"{region}__log1p"
            work = table.assign(**{exposure: np.log1p(pd.to_numeric(table[region], errors="coerce").clip(lower=0))})
        if model == "cox":
            res = cox_risk(work, time, event, exposure, covariates, subject_column=subject_column)
        else:
            res = logistic_risk(work, event, exposure, covariates, quartiles=False, subject_column=subject_column)
        row = res.estimate(exposure)
        rows.append({"region": region, **{k: row[k] for k in ("estimate", "ci_low", "ci_high", "p_value")},
                     "n": res.n, "n_events": res.n_events})
    out = pd.DataFrame(rows)
    out["q_value"] = fdr_bh(out["p_value"])
    out["significant"] = out["q_value"] < alpha
    return out[["region", "estimate", "ci_low", "ci_high", "p_value", "q_value", "significant", "n", "n_events"]]
