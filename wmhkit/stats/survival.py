"""Kaplan-Meier curves by group (e.g. WMH tertile) as a tidy table for plotting, with a log-rank test."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from wmhkit.errors import OptionError, TableError
from wmhkit.stats._validation import prepare

__all__ = ["KaplanMeierResult", "kaplan_meier", "km_curve"]

logger = logging.getLogger(__name__)


def km_curve(time, event) -> pd.DataFrame:
    """Kaplan-Meier estimate with Greenwood log(-log) 95 % pointwise confidence limits.

    Parameters
    ----------
    time : array-like
        Follow-up times (> 0).
    event : array-like
        1 = event, 0 = censored.

    Returns
    -------
    pandas.DataFrame
        One row per distinct time (starting with time 0): ``time``, ``n_at_risk``,
        ``n_events``, ``n_censored``, ``survival``, ``ci_low``, ``ci_high``.

    Examples
    --------
    >>> km_curve([1, 2, 3, 4], [1, 0, 1, 0])["survival"].round(3).tolist()
    [1.0, 0.75, 0.75, 0.375, 0.375]
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    times, inverse = np.unique(time, return_inverse=True)
    d = np.bincount(inverse, weights=event, minlength=len(times))
    total = np.bincount(inverse, minlength=len(times)).astype(float)
    at_risk = total[::-1].cumsum()[::-1]
    hazard = d / at_risk
    survival = np.cumprod(1.0 - hazard)
    with np.errstate(divide="ignore", invalid="ignore"):
        greenwood = np.cumsum(d / (at_risk * (at_risk - d)))
        log_surv = np.log(survival)
        se_loglog = np.sqrt(greenwood) / np.abs(log_surv)
        z = sps.norm.ppf(0.975)
        loglog = np.log(-log_surv)
        lower = np.exp(-np.exp(loglog + z * se_loglog))
        upper = np.exp(-np.exp(loglog - z * se_loglog))
    # no variance before the first event and none once survival hits 0
    no_info = (greenwood == 0) | (survival <= 0) | ~np.isfinite(se_loglog)
    lower = np.where(no_info, survival, lower)
    upper = np.where(no_info, survival, upper)
    table = pd.DataFrame(
        {
            "time": times,
            "n_at_risk": at_risk.astype(int),
            "n_events": d.astype(int),
            "n_censored": (total - d).astype(int),
            "survival": survival,
            "ci_low": lower,
            "ci_high": upper,
        }
    )
    start = pd.DataFrame({"time": [0.0], "n_at_risk": [len(time)], "n_events": [0], "n_censored": [0],
                          "survival": [1.0], "ci_low": [1.0], "ci_high": [1.0]})
    return pd.concat([start, table], ignore_index=True)


def _logrank(time, event, group) -> tuple[float, float]:
    """Log-rank chi-square statistic and p-value across groups."""
    from statsmodels.duration.survfunc import survdiff

    statistic, p_value = survdiff(time, event, group)
    return float(statistic), float(p_value)


@dataclass
class KaplanMeierResult:
    """Kaplan-Meier curves by group.

    Attributes
    ----------
    curves : pandas.DataFrame
        Tidy: ``group`` plus the columns of :func:`km_curve`; plot ``survival`` (step, post)
        against ``time`` per group.
    groups : pandas.DataFrame
        Per group: ``group``, ``n``, ``n_events``, exposure ``low``/``high`` bounds.
    logrank_statistic, logrank_p : float
        Log-rank test across groups.
    dropped : pandas.DataFrame
        Rows left out for missing values.
    """

    curves: pd.DataFrame
    groups: pd.DataFrame
    logrank_statistic: float
    logrank_p: float
    dropped: pd.DataFrame

    @property
    def summary(self) -> pd.DataFrame:
        """Per-group counts with the log-rank p-value."""
        return self.groups.assign(logrank_p=self.logrank_p)


def kaplan_meier(
    table: pd.DataFrame,
    time: str,
    event: str,
    *,
    exposure: str | None = None,
    n_groups: int = 3,
    group: str | None = None,
    subject_column: str | None = "subject_id",
) -> KaplanMeierResult:
    """Kaplan-Meier curves by exposure quantile group (default tertiles) or by a group column.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject.
    time : str
        Follow-up time column (years).
    event : str
        0/1 event column.
    exposure : str, optional
        Numeric column split into ``n_groups`` quantile groups named ``T1``.. (tertiles) or
        ``Q1``.. (other counts), lowest first.
    n_groups : int, default 3
        Number of quantile groups of ``exposure``.
    group : str, optional
        Use an existing grouping column instead of ``exposure``.
    subject_column : str or None, default "subject_id"

    Returns
    -------
    KaplanMeierResult
    """
    if (exposure is None) == (group is None):
        raise OptionError("kaplan_meier needs exactly one of exposure= (split into quantiles) or group=.")
    numeric = [time, event] + ([exposure] if exposure else [])
    kept, dropped = prepare(table, numeric=numeric, other=[group] if group else [],
                            subject_column=subject_column, what="Kaplan-Meier")
    if (kept[time] <= 0).any():
        raise TableError(f"Column {time!r} holds follow-up times <= 0; every subject needs a positive time.")
    if not kept[event].isin([0, 1]).all():
        raise TableError(f"Column {event!r} must hold 0/1 (1 = event); recode it.")
    if exposure is not None:
        prefix = "T" if n_groups == 3 else "Q"
        labels = [f"{prefix}{i + 1}" for i in range(n_groups)]
        try:
            groups = pd.qcut(kept[exposure], n_groups, labels=labels).astype(str)
        except ValueError as exc:
            raise TableError(f"Column {exposure!r} has too many tied values for {n_groups} groups.") from exc
    else:
        groups = kept[group].astype(str)
    curves, rows = [], []
    for name in sorted(pd.unique(groups)):
        sel = groups == name
        curve = km_curve(kept.loc[sel, time], kept.loc[sel, event])
        curves.append(curve.assign(group=name))
        row = {"group": name, "n": int(sel.sum()), "n_events": int(kept.loc[sel, event].sum())}
        if exposure is not None:
            row.update(low=float(kept.loc[sel, exposure].min()), high=float(kept.loc[sel, exposure].max()))
        rows.append(row)
    statistic, p_value = _logrank(kept[time].to_numpy(float), kept[event].to_numpy(float), groups.to_numpy())
    curves = pd.concat(curves, ignore_index=True)
    curves = curves[["group"] + [c for c in curves.columns if c != "group"]]
    return KaplanMeierResult(curves=curves, groups=pd.DataFrame(rows), logrank_statistic=statistic,
                             logrank_p=p_value, dropped=dropped)
