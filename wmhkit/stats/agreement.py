"""Agreement between two (or more) measurements of the same subjects: ICC, Bland-Altman, correlations.

Typical use: WMH volumes from wmhkit against another tool, a rater, or a rescan.
For voxel-wise segmentation agreement (Dice, HD95, lesion-wise F1) see :mod:`wmhkit.stats.overlap`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from wmhkit.errors import TableError
from wmhkit.stats._validation import as_list, prepare, require_not_constant

__all__ = ["AgreementResult", "compare_measurements", "bland_altman", "icc", "lins_ccc"]

_Z975 = float(sps.norm.ppf(0.975))


def icc(table: pd.DataFrame, columns, *, subject_column: str | None = "subject_id", alpha: float = 0.05) -> pd.DataFrame:
    """Two-way intraclass correlations (McGraw & Wong 1996; Shrout & Fleiss 1979), with CIs.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per target (subject), one column per rater/method.
    columns : list of str
        Two or more numeric columns (the raters).
    subject_column : str or None, default "subject_id"
    alpha : float, default 0.05
        1 - confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        Rows ``ICC(A,1)`` (two-way, absolute agreement, single rater; Shrout-Fleiss ICC(2,1)),
        ``ICC(C,1)`` (consistency; ICC(3,1)), ``ICC(A,k)`` and ``ICC(C,k)`` (mean of k raters),
        with columns ``type``, ``description``, ``icc``, ``ci_low``, ``ci_high``, ``F``,
        ``df1``, ``df2``, ``p_value``.

    Examples
    --------
    Shrout & Fleiss (1979), 6 targets rated by 4 judges:

    >>> t = pd.DataFrame([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    ...                  columns=["j1", "j2", "j3", "j4"])
    >>> icc(t, ["j1", "j2", "j3", "j4"]).set_index("type")["icc"].round(2).to_dict()
    {'ICC(A,1)': 0.29, 'ICC(C,1)': 0.71, 'ICC(A,k)': 0.62, 'ICC(C,k)': 0.91}
    """
    columns = as_list(columns)
    if len(columns) < 2:
        raise TableError("ICC needs at least two rater columns.")
    kept, _ = prepare(table, numeric=columns, subject_column=subject_column, what="ICC")
    y = kept[columns].to_numpy(dtype=float)
    n, k = y.shape
    if n < 2:
        raise TableError("ICC needs at least two subjects with complete ratings.")
    grand = y.mean()
    ss_rows = k * ((y.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((y.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((y - grand) ** 2).sum() - ss_rows - ss_cols
    ms_r, ms_c = ss_rows / (n - 1), ss_cols / (k - 1)
    ms_e = ss_err / ((n - 1) * (k - 1))
    df1, df2 = n - 1, (n - 1) * (k - 1)
    f_rows = ms_r / ms_e

    icc_a1 = (ms_r - ms_e) / (ms_r + (k - 1) * ms_e + k * (ms_c - ms_e) / n)
    icc_c1 = (ms_r - ms_e) / (ms_r + (k - 1) * ms_e)
    icc_ak = (ms_r - ms_e) / (ms_r + (ms_c - ms_e) / n)
    icc_ck = (ms_r - ms_e) / ms_r

    # consistency: exact F-based limits
    f_low = f_rows / sps.f.ppf(1 - alpha / 2, df1, df2)
    f_high = f_rows * sps.f.ppf(1 - alpha / 2, df2, df1)
    ci_c1 = ((f_low - 1) / (f_low + k - 1), (f_high - 1) / (f_high + k - 1))
    ci_ck = (1 - 1 / f_low, 1 - 1 / f_high)
    # absolute agreement: Satterthwaite degrees of freedom (McGraw & Wong 1996, case 2A)
    a = k * icc_a1 / (n * (1 - icc_a1))
    b = 1 + k * icc_a1 * (n - 1) / (n * (1 - icc_a1))
    v = (a * ms_c + b * ms_e) ** 2 / ((a * ms_c) ** 2 / (k - 1) + (b * ms_e) ** 2 / df2)
    fl = sps.f.ppf(1 - alpha / 2, df1, v)
    fu = sps.f.ppf(1 - alpha / 2, v, df1)
    low_a1 = n * (ms_r - fl * ms_e) / (fl * (k * ms_c + (k * n - k - n) * ms_e) + n * ms_r)
    high_a1 = n * (fu * ms_r - ms_e) / (k * ms_c + (k * n - k - n) * ms_e + n * fu * ms_r)
    ci_a1 = (low_a1, high_a1)
    ci_ak = (k * low_a1 / (1 + low_a1 * (k - 1)), k * high_a1 / (1 + high_a1 * (k - 1)))
    p_value = float(sps.f.sf(f_rows, df1, df2))
    rows = [
        ("ICC(A,1)", "two-way, absolute agreement, single rater", icc_a1, ci_a1),
        ("ICC(C,1)", "two-way, consistency, single rater", icc_c1, ci_c1),
        ("ICC(A,k)", "two-way, absolute agreement, mean of k raters", icc_ak, ci_ak),
        ("ICC(C,k)", "two-way, consistency, mean of k raters", icc_ck, ci_ck),
    ]
    return pd.DataFrame(
        [{"type": t, "description": d, "icc": float(v_), "ci_low": float(ci[0]), "ci_high": float(ci[1]),
          "F": float(f_rows), "df1": df1, "df2": df2, "p_value": p_value} for t, d, v_, ci in rows]
    )


def lins_ccc(x, y) -> float:
    """Lin's concordance correlation coefficient ``2 s_xy / (s_x^2 + s_y^2 + (mean_x - mean_y)^2)``.

    Uses population (1/n) moments, as Lin (1989).

    >>> lins_ccc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    1.0
    >>> round(lins_ccc([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]), 4)
    0.5714
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    sxy = ((x - x.mean()) * (y - y.mean())).mean()
    return float(2 * sxy / (x.var() + y.var() + (x.mean() - y.mean()) ** 2))


def _ccc_ci(x, y, ccc):
    """Lin (1989) asymptotic CI on Fisher's z scale."""
    n = len(x)
    r = np.corrcoef(x, y)[0, 1]
    u = (x.mean() - y.mean()) / np.sqrt(x.std() * y.std())
    if n < 4 or abs(ccc) >= 1 or r == 0:
        return ccc, ccc
    var_z = (
        (1 - r**2) * ccc**2 / ((1 - ccc**2) * r**2)
        + 2 * ccc**3 * (1 - ccc) * u**2 / (r * (1 - ccc**2) ** 2)
        - ccc**4 * u**4 / (2 * r**2 * (1 - ccc**2) ** 2)
    ) / (n - 2)
    z = np.arctanh(ccc)
    half = _Z975 * np.sqrt(max(var_z, 0.0))
    return float(np.tanh(z - half)), float(np.tanh(z + half))


def bland_altman(x, y) -> dict:
    """Bland-Altman bias (mean of ``y - x``) and 95 % limits of agreement, with the bias CI.

    >>> d = bland_altman([1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.0, 5.0])
    >>> d["bias"], round(d["loa_low"], 3), round(d["loa_high"], 3)
    (0.5, -0.3, 1.3)
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    diff = y - x
    n = len(diff)
    bias, sd = float(diff.mean()), float(diff.std(ddof=1))
    t = sps.t.ppf(0.975, n - 1)
    return {
        "bias": bias,
        "sd_difference": sd,
        "loa_low": bias - _Z975 * sd,
        "loa_high": bias + _Z975 * sd,
        "bias_ci_low": bias - t * sd / np.sqrt(n),
        "bias_ci_high": bias + t * sd / np.sqrt(n),
        "n": n,
    }


@dataclass
class AgreementResult:
    """Agreement of two measurements.

    Attributes
    ----------
    summary : pandas.DataFrame
        ``metric``, ``estimate``, ``ci_low``, ``ci_high``, ``p_value``: Pearson r, Spearman rho,
        Lin's CCC, ICC(A,1), ICC(C,1), Bland-Altman bias and limits of agreement.
    bland_altman : pandas.DataFrame
        Per subject ``mean`` and ``difference`` (second minus first) for the plot.
    dropped : pandas.DataFrame
        Rows left out for missing values.
    """

    summary: pd.DataFrame
    bland_altman: pd.DataFrame
    dropped: pd.DataFrame


def compare_measurements(table: pd.DataFrame, column_a: str, column_b: str, *, subject_column: str | None = "subject_id") -> AgreementResult:
    """Agreement between two numeric columns measured on the same subjects.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject.
    column_a, column_b : str
        The two measurements (e.g. ``"wmh_ml"`` by two methods); differences are b - a.
    subject_column : str or None, default "subject_id"

    Returns
    -------
    AgreementResult
    """
    kept, dropped = prepare(table, numeric=[column_a, column_b], subject_column=subject_column, what="agreement")
    if len(kept) < 3:
        raise TableError(f"Agreement of {column_a!r} and {column_b!r} needs at least 3 subjects with both values.")
    require_not_constant(kept, [column_a, column_b])
    x, y = kept[column_a].to_numpy(), kept[column_b].to_numpy()
    n = len(x)
    pearson = sps.pearsonr(x, y)
    fisher_half = _Z975 / np.sqrt(n - 3) if n > 3 else np.inf
    z = np.arctanh(np.clip(pearson.statistic, -0.999999999, 0.999999999))
    spearman = sps.spearmanr(x, y)
    ccc = lins_ccc(x, y)
    icc_table = icc(kept, [column_a, column_b], subject_column=None).set_index("type")
    ba = bland_altman(x, y)
    rows = [
        ("pearson_r", pearson.statistic, np.tanh(z - fisher_half), np.tanh(z + fisher_half), pearson.pvalue),
        ("spearman_rho", spearman.statistic, np.nan, np.nan, spearman.pvalue),
        ("lins_ccc", ccc, *_ccc_ci(x, y, ccc), np.nan),
        ("icc_absolute", *icc_table.loc["ICC(A,1)", ["icc", "ci_low", "ci_high", "p_value"]]),
        ("icc_consistency", *icc_table.loc["ICC(C,1)", ["icc", "ci_low", "ci_high", "p_value"]]),
        ("bias", ba["bias"], ba["bias_ci_low"], ba["bias_ci_high"], np.nan),
        ("loa_low", ba["loa_low"], np.nan, np.nan, np.nan),
        ("loa_high", ba["loa_high"], np.nan, np.nan, np.nan),
    ]
    summary = pd.DataFrame(rows, columns=["metric", "estimate", "ci_low", "ci_high", "p_value"])
    summary[["estimate", "ci_low", "ci_high", "p_value"]] = summary[["estimate", "ci_low", "ci_high", "p_value"]].astype(float)
    plot = pd.DataFrame({"mean": (x + y) / 2, "difference": y - x}, index=kept.index)
    if subject_column and subject_column in kept.columns:
        plot.insert(0, subject_column, kept[subject_column].to_numpy())
    return AgreementResult(summary=summary, bland_altman=plot.reset_index(drop=True), dropped=dropped)
