"""Table 1 by site and by outcome, Markdown and LaTeX."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.errors import TableError
from wmhkit.stats.table1 import table_one


def test_by_site(cohort_table):
    result = table_one(cohort_table, ["age", "sex", "hypertension", "wmh_ml"], by="site", skewed=["wmh_ml"], p_values=True)
    t = result.table
    assert list(t.columns[:3]) == ["variable", "level", "Overall"] and t.columns[-1] == "p_value"
    assert t.loc[t["variable"] == "n", "Overall"].item() == str(len(cohort_table))
    age = t[t["variable"] == "age, mean (SD)"].iloc[0]
    assert age["Overall"] == f"{cohort_table['age'].mean():.1f} ({cohort_table['age'].std():.1f})"
    wmh = t[t["variable"] == "wmh_ml, median [IQR]"].iloc[0]
    assert wmh["Overall"].startswith(f"{cohort_table['wmh_ml'].median():.1f} [")
    assert t[t["variable"] == "sex, n (%)"]["level"].tolist() == ["F", "M"]
    assert t[t["variable"] == "hypertension, n (%)"]["level"].tolist() == ["0", "1"]
    md = result.to_markdown()
    assert md.count("\n") == len(t) + 2 and "| site01 |" in md.splitlines()[0] + " "
    tex = result.to_latex()
    assert r"\toprule" in tex and r"n (\%)" in tex and "wmh\\_ml" in tex


def test_by_outcome_counts_missing(cohort_table):
    table = cohort_table.copy()
    table.loc[table.index[:5], "age"] = np.nan
    t = table_one(table, ["age"], by="dementia").table
    assert t.loc[t["variable"] == "age, mean (SD)", "missing"].item() == "5"
    assert list(t.columns) == ["variable", "level", "Overall", "0", "1", "missing"]
    with pytest.raises(TableError, match="no column 'bmi'"):
        table_one(table, ["bmi"])
