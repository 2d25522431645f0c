"""Table 1: cohort characteristics overall and by group (site, sex or outcome).

Continuous variables are shown as mean (SD), or median [IQR] for those listed as skewed
(lesion volumes usually are); categorical variables as n (%) per level. Optional p-values
compare the groups (ANOVA or Kruskal-Wallis; chi-square). Missing values are counted per
variable, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from wmhkit.errors import TableError
from wmhkit.stats._validation import as_list, require_columns, require_table

__all__ = ["Table1", "table_one"]


def _fmt(value: float, digits: int) -> str:
    return "NA" if not np.isfinite(value) else f"{value:.{digits}f}"


def _continuous_cell(values: pd.Series, skewed: bool, digits: int) -> str:
    values = values.dropna()
    if values.empty:
        return "NA"
    if skewed:
        q1, med, q3 = np.percentile(values, [25, 50, 75])
        return f"{_fmt(med, digits)} [{_fmt(q1, digits)}, {_fmt(q3, digits)}]"
    sd = values.std(ddof=1) if len(values) > 1 else np.nan
    return f"{_fmt(values.mean(), digits)} ({_fmt(sd, digits)})"


def _p_continuous(groups: list[pd.Series], skewed: bool) -> float:
    groups = [g.dropna() for g in groups if g.notna().sum() > 0]
    if len(groups) < 2:
        return np.nan
    if skewed:
        return float(sps.kruskal(*groups).pvalue)
    return float(sps.f_oneway(*groups).pvalue)


def _p_categorical(column: pd.Series, by: pd.Series) -> float:
    counts = pd.crosstab(column, by)
    if counts.shape[0] < 2 or counts.shape[1] < 2:
        return np.nan
    return float(sps.chi2_contingency(counts.to_numpy())[1])


@dataclass
class Table1:
    """A characteristics table.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``variable``, ``level`` (categorical levels, else ""), ``Overall``, one column
        per group, ``missing`` (count) and ``p_value`` (when asked).
    """

    table: pd.DataFrame

    def to_markdown(self) -> str:
        """GitHub-flavoured Markdown table."""
        frame = self.table.fillna("").astype(str)
        if "p_value" in self.table.columns:
            frame["p_value"] = [_format_p(p) for p in self.table["p_value"]]
        header = "| " + " | ".join(frame.columns) + " |"
        rule = "|" + "|".join("---" for _ in frame.columns) + "|"
        body = ["| " + " | ".join(row) + " |" for row in frame.to_numpy()]
        return "\n".join([header, rule, *body]) + "\n"

    def to_latex(self) -> str:
        """LaTeX ``tabular`` (booktabs rules), special characters escaped."""
        frame = self.table.fillna("").astype(str)
        if "p_value" in self.table.columns:
            frame["p_value"] = [_format_p(p) for p in self.table["p_value"]]

        special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#",
                   "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}

        def esc(text: str) -> str:
            return "".join(special.get(char, char) for char in text)

        lines = [r"\begin{tabular}{ll" + "r" * (frame.shape[1] - 2) + "}", r"\toprule",
                 " & ".join(esc(c) for c in frame.columns) + r" \\", r"\midrule"]
        lines += [" & ".join(esc(v) for v in row) + r" \\" for row in frame.to_numpy()]
        lines += [r"\bottomrule", r"\end{tabular}"]
        return "\n".join(lines) + "\n"


def _format_p(p) -> str:
    if p == "" or p is None or (isinstance(p, float) and not np.isfinite(p)):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def table_one(
    table: pd.DataFrame,
    columns,
    *,
    by: str | None = None,
    categorical=None,
    skewed=None,
    digits: int = 1,
    p_values: bool = False,
) -> Table1:
    """Characteristics of a cohort, overall and by group.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject.
    columns : list of str
        Variables to describe, in order.
    by : str, optional
        Grouping column (e.g. ``"site"`` or ``"dementia"``); one column per level.
    categorical : list of str, optional
        Variables shown as n (%); default: non-numeric columns and numeric columns with at
        most 2 distinct values.
    skewed : list of str, optional
        Continuous variables shown as median [IQR] (e.g. ``["wmh_ml"]``).
    digits : int, default 1
        Decimals of continuous summaries.
    p_values : bool, default False
        Add group-comparison p-values (ANOVA / Kruskal-Wallis / chi-square).

    Returns
    -------
    Table1

    Examples
    --------
    >>> t = pd.DataFrame({"age": [70, 72, 80, 84], "sex": ["F", "M", "F", "F"], "site": ["a", "a", "b", "b"]})
    >>> print(table_one(t, ["age", "sex"], by="site").to_markdown(), end="")
    | variable | level | Overall | a | b | missing |
    |---|---|---|---|---|---|
    | n |  | 4 | 2 | 2 |  |
    | age, mean (SD) |  | 76.5 (6.6) | 71.0 (1.4) | 82.0 (2.8) | 0 |
    | sex, n (%) | F | 3 (75.0) | 1 (50.0) | 2 (100.0) | 0 |
    | sex, n (%) | M | 1 (25.0) | 1 (50.0) | 0 (0.0) | 0 |
    """
    table = require_table(table)
    columns = as_list(columns)
    require_columns(table, columns + ([by] if by else []))
    skewed = set(as_list(skewed))
    if categorical is None:
        categorical = [c for c in columns if not pd.api.types.is_numeric_dtype(table[c]) or table[c].nunique() <= 2]
    categorical = set(as_list(categorical))
    if by is not None and table[by].isna().any():
        raise TableError(f"Grouping column {by!r} has missing values; fill them or drop those rows first.")
    groups = [] if by is None else sorted(pd.unique(table[by]), key=str)
    frames = [("Overall", table)] + [(str(g), table[table[by] == g]) for g in groups]

    rows = [{"variable": "n", "level": "", **{name: str(len(f)) for name, f in frames}, "missing": ""}]
    for column in columns:
        missing = int(table[column].isna().sum())
        if column in categorical:
            levels = sorted(pd.unique(table[column].dropna()), key=str)
            p = _p_categorical(table[column], table[by]) if (p_values and by) else np.nan
            for level in levels:
                row = {"variable": f"{column}, n (%)", "level": str(level), "missing": str(missing)}
                for name, frame in frames:
                    n_level = int((frame[column] == level).sum())
                    n_known = int(frame[column].notna().sum())
                    row[name] = f"{n_level} ({_fmt(100 * n_level / n_known if n_known else np.nan, digits)})"
                row["p_value"] = p
                rows.append(row)
        else:
            if not pd.api.types.is_numeric_dtype(table[column]):
                raise TableError(f"Column {column!r} is not numeric; list it in categorical=.")
            is_skewed = column in skewed
            label = f"{column}, median [IQR]" if is_skewed else f"{column}, mean (SD)"
            row = {"variable": label, "level": "", "missing": str(missing)}
            for name, frame in frames:
                row[name] = _continuous_cell(frame[column], is_skewed, digits)
            row["p_value"] = _p_continuous([f[column] for _, f in frames[1:]], is_skewed) if (p_values and by) else np.nan
            rows.append(row)
    out = pd.DataFrame(rows)
    ordered = ["variable", "level"] + [name for name, _ in frames] + ["missing"] + (["p_value"] if p_values and by else [])
    return Table1(table=out[ordered].reset_index(drop=True))
