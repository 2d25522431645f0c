"""Checks shared by the statistics functions: columns, values, identifiers, missing rows.

Each check raises :class:`wmhkit.errors.TableError` with one sentence naming the column or
subject at fault. Rows with missing values are never dropped silently: :func:`drop_missing`
logs how many rows went and why, and returns them as a tidy table for the result object.
"""

from __future__ import annotations

import logging
import warnings
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from wmhkit.errors import TableError

logger = logging.getLogger(__name__)

#: Columns of the tables of dropped rows every result carries.
DROPPED_COLUMNS = ["row", "subject", "reason"]


def as_list(columns: str | Iterable[str] | None) -> list[str]:
    """A column name or several as a list (None gives an empty list)."""
    if columns is None:
        return []
    if isinstance(columns, str):
        return [columns]
    return list(columns)


def require_table(table, what: str = "table") -> pd.DataFrame:
    """Refuse anything that is not a non-empty DataFrame."""
    if not isinstance(table, pd.DataFrame):
        raise TableError(f"The {what} must be a pandas DataFrame, not {type(table).__name__}.")
    if table.empty:
        raise TableError(f"The {what} has no rows; pass a table with one row per subject.")
    return table


def require_columns(table: pd.DataFrame, columns: Iterable[str], what: str = "table") -> None:
    """Raise when any of ``columns`` is missing from ``table``."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise TableError(
            f"The {what} has no column {missing[0]!r} (columns present: {', '.join(map(str, table.columns[:12]))}); "
            "rename the column or pass its name."
        )


def is_number_dtype(dtype) -> bool:
    """True for integer and float dtypes (not booleans, not text)."""
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


def require_numeric(table: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise when a column holds values that are not numbers (NaN allowed)."""
    dtypes = table.dtypes
    for column in columns:
        if pd.api.types.is_numeric_dtype(dtypes[column]):
            continue
        series = table[column]
        converted = pd.to_numeric(series, errors="coerce")
        bad = series[converted.isna() & series.notna()]
        if len(bad):
            raise TableError(
                f"Column {column!r} must be numeric but holds {bad.iloc[0]!r} (row {bad.index[0]!r}); "
                "convert it to numbers."
            )


def require_not_constant(table: pd.DataFrame, columns: Iterable[str]) -> None:
    """Raise when a column has fewer than two distinct non-missing values."""
    columns = list(columns)
    dtypes = table.dtypes
    numbers = [c for c in columns if is_number_dtype(dtypes[c])]
    constant_numbers = set()
    if numbers:
        values = table[numbers].to_numpy(dtype=float)
        values = np.where(np.isfinite(values), values, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns count as constant
            low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        constant_numbers = {c for c, lo, hi in zip(numbers, low, high) if not lo < hi}
    for column in columns:
        constant = column in constant_numbers if column in numbers else table[column].nunique(dropna=True) < 2
        if constant:
            raise TableError(
                f"Column {column!r} is constant (one value only); drop it from the model or check the data."
            )


def require_unique_ids(table: pd.DataFrame, subject_column: str | None) -> None:
    """Raise when a subject identifier appears twice."""
    if subject_column is None or subject_column not in table.columns:
        return
    dup = table[subject_column][table[subject_column].duplicated()]
    if len(dup):
        raise TableError(
            f"Subject {dup.iloc[0]!r} appears more than once in column {subject_column!r}; "
            "keep one row per subject."
        )


def numeric_frame(table: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The named columns as float (after :func:`require_numeric`)."""
    return table[list(columns)].apply(pd.to_numeric, errors="coerce").astype(float)


def empty_dropped() -> pd.DataFrame:
    """A table of dropped rows with no rows."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in DROPPED_COLUMNS})


def drop_missing(
    table: pd.DataFrame,
    columns: Sequence[str],
    *,
    subject_column: str | None = None,
    what: str = "analysis",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove rows with a missing or non-finite value in ``columns`` and say so.

    Parameters
    ----------
    table : pandas.DataFrame
        Input table (not modified).
    columns : sequence of str
        Columns that must hold a value.
    subject_column : str, optional
        Column naming subjects in the report (else the row index is used).
    what : str, default "analysis"
        Name of the analysis in the log message.

    Returns
    -------
    kept : pandas.DataFrame
        The rows with every value present.
    dropped : pandas.DataFrame
        One row per dropped row: ``row`` (index label), ``subject``, ``reason``
        (``"missing <column>"`` naming the first missing column).

    Examples
    --------
    >>> t = pd.DataFrame({"id": ["a", "b", "c"], "x": [1.0, None, 3.0]})
    >>> kept, dropped = drop_missing(t, ["x"], subject_column="id")
    >>> len(kept), dropped["subject"].tolist(), dropped["reason"].tolist()
    (2, ['b'], ['missing x'])
    """
    columns = list(columns)
    if not columns:
        return table, empty_dropped()
    dtypes = table.dtypes
    numeric = [c for c in columns if is_number_dtype(dtypes[c])]
    other = [c for c in columns if c not in numeric]
    bad_numeric = ~np.isfinite(table[numeric].to_numpy(dtype=float)) if numeric else np.zeros((len(table), 0), bool)
    bad_other = table[other].isna().to_numpy() if other else np.zeros((len(table), 0), bool)
    bad_array = np.hstack([bad_numeric, bad_other])
    if not bad_array.any():
        return table, empty_dropped()
    bad = pd.DataFrame(bad_array, columns=numeric + other, index=table.index)[columns]
    row_bad = bad.any(axis=1)
    first_col = bad[row_bad].idxmax(axis=1)
    subjects = table.loc[row_bad, subject_column] if subject_column in table.columns else pd.Series(table.index[row_bad], index=table.index[row_bad])
    dropped = pd.DataFrame(
        {
            "row": list(table.index[row_bad]),
            "subject": list(subjects),
            "reason": ["missing " + str(c) for c in first_col],
        }
    )
    counts = dropped["reason"].value_counts()
    logger.warning(
        "%s: dropped %d of %d rows with missing values (%s)",
        what,
        len(dropped),
        len(table),
        ", ".join(f"{n} {r}" for r, n in counts.items()),
    )
    kept = table.loc[~row_bad]
    if kept.empty:
        raise TableError(
            f"Every row of the {what} has a missing value (first: {dropped['reason'].iloc[0]}); fill or choose other columns."
        )
    return kept, dropped


def prepare(
    table,
    *,
    numeric: Sequence[str] = (),
    other: Sequence[str] = (),
    subject_column: str | None = None,
    what: str = "analysis",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate a table for an analysis and drop (and report) incomplete rows.

    Checks that the table is a DataFrame, that ``numeric`` and ``other`` columns exist,
    that ``numeric`` columns hold numbers, and that subject IDs are unique. Returns the
    complete rows (numeric columns stored as text converted to float; the input table itself,
    not a copy, when nothing needed changing) and the table of dropped rows.
    """
    table = require_table(table)
    numeric, other = as_list(numeric), as_list(other)
    needed = list(dict.fromkeys(numeric + other))
    require_columns(table, needed + ([subject_column] if subject_column and subject_column in needed else []))
    require_numeric(table, numeric)
    require_unique_ids(table, subject_column)
    dtypes = table.dtypes
    to_convert = [c for c in numeric if not is_number_dtype(dtypes[c])]
    if to_convert:  # numbers stored as text or booleans: convert before checking for missing values
        table = table.copy()
        table[to_convert] = numeric_frame(table, to_convert)
    return drop_missing(table, needed, subject_column=subject_column, what=what)
