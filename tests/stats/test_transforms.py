"""Volume transforms and the report of rows that could not be transformed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import OptionError, TableError
from wmhkit.stats.transforms import log1p_ml, logit_wm_fraction, per_sd, percent_of_etiv, transform_column


def test_array_transforms():
    np.testing.assert_allclose(log1p_ml([0.0, 1.0]), [0.0, np.log(2.0)])
    np.testing.assert_allclose(percent_of_etiv([15.0], [1500.0]), [1.0])
    values = logit_wm_fraction(np.array([1.0, 10.0]), np.array([500.0, 500.0]))
    assert values[0] < values[1] and np.isfinite(logit_wm_fraction(0.0, 400.0))
    z = per_sd(np.array([3.0, 5.0, 10.0, 2.0]))
    assert z.mean() == pytest.approx(0) and z.std(ddof=1) == pytest.approx(1)
    with pytest.raises(TableError):
        log1p_ml([-1.0])
    with pytest.raises(TableError):
        per_sd([2.0, 2.0])


@pytest.mark.parametrize("kind", ["log1p", "percent_etiv", "logit_wm", "per_sd", "log1p_per_sd"])
def test_transform_column_reports_missing(kind, cohort_table, caplog):
    table = cohort_table.iloc[:200].copy()
    table.loc[table.index[[4, 9]], "wmh_ml"] = np.nan
    with caplog.at_level("WARNING"):
        result = transform_column(table, "wmh_ml", kind)
    assert result.column == f"wmh_ml_{kind}"
    assert result.table[result.column].isna().sum() == 2
    assert result.dropped["subject"].tolist() == table["subject_id"].iloc[[4, 9]].tolist()
    assert "dropped 2 of 200" in caplog.text
    assert result.summary["n_dropped"].item() == 2


def test_transform_errors(cohort_table):
    with pytest.raises(OptionError, match="Unknown transform"):
        transform_column(cohort_table, "wmh_ml", "sqrt")
    with pytest.raises(TableError, match="no column 'etiv'"):
        transform_column(cohort_table, "wmh_ml", "percent_etiv", etiv_column="etiv")
    with pytest.raises(TableError, match="must be numeric"):
        transform_column(pd.DataFrame({"subject_id": ["a", "b"], "v": ["1", "x"]}), "v")
