"""Transforms of lesion volumes before modelling: log, head-size scaling, logit, per-SD.

WMH volumes are strongly right-skewed; ``log(1 + mL)`` is the usual scale for regression
and harmonisation. Head size is handled either by expressing WMH as a percentage of eTIV
or as the logit of the lesion fraction of white matter.

The array functions (:func:`log1p_ml`, :func:`percent_of_etiv`, :func:`logit_wm_fraction`,
:func:`per_sd`) take numbers; :func:`transform_column` takes a table and column names,
adds the transformed column and reports the rows it could not transform.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from wmhkit.errors import OptionError, TableError
from wmhkit.stats._validation import prepare

__all__ = [
    "TRANSFORMS",
    "TransformResult",
    "log1p_ml",
    "logit_wm_fraction",
    "per_sd",
    "percent_of_etiv",
    "transform_column",
]

logger = logging.getLogger(__name__)


def log1p_ml(volume_ml):
    """``log(1 + volume)`` of a volume in mL (0 mL maps to 0).

    >>> float(log1p_ml(0.0)), round(float(log1p_ml(np.e - 1)), 12)
    (0.0, 1.0)
    """
    volume_ml = np.asarray(volume_ml, dtype=float)
    if np.any(volume_ml < 0):
        raise TableError("Lesion volumes must be >= 0 mL for log(1 + mL); check for negative values.")
    return np.log1p(volume_ml)


def percent_of_etiv(volume_ml, etiv_ml):
    """Volume as a percentage of estimated total intracranial volume (both in mL).

    >>> float(percent_of_etiv(15.0, 1500.0))
    1.0
    """
    volume_ml = np.asarray(volume_ml, dtype=float)
    etiv_ml = np.asarray(etiv_ml, dtype=float)
    if np.any(etiv_ml <= 0):
        raise TableError("eTIV must be > 0 mL to express a volume as a percentage of it.")
    return 100.0 * volume_ml / etiv_ml


def logit_wm_fraction(volume_ml, wm_ml, *, epsilon_ml: float = 0.01):
    """Logit of the lesion fraction of white matter, ``log(f / (1 - f))``.

    Parameters
    ----------
    volume_ml : array-like
        Lesion volume (mL).
    wm_ml : array-like
        White-matter volume (mL), lesions included.
    epsilon_ml : float, default 0.01
        Added to the lesion volume (and twice to the white matter) so that 0 mL has a
        finite logit.

    Examples
    --------
    >>> float(logit_wm_fraction(249.99, 499.98))
    0.0
    """
    volume_ml = np.asarray(volume_ml, dtype=float)
    wm_ml = np.asarray(wm_ml, dtype=float)
    if np.any(volume_ml < 0) or np.any(volume_ml > wm_ml):
        raise TableError("Lesion volume must lie between 0 and the white-matter volume (mL) for the logit of their fraction.")
    fraction = (volume_ml + epsilon_ml) / (wm_ml + 2 * epsilon_ml)
    return np.log(fraction / (1.0 - fraction))


def per_sd(values):
    """Standardise to mean 0 and standard deviation 1 (sample SD, ``ddof=1``).

    >>> per_sd([1.0, 2.0, 3.0]).tolist()
    [-1.0, 0.0, 1.0]
    """
    values = np.asarray(values, dtype=float)
    sd = np.nanstd(values, ddof=1)
    if not np.isfinite(sd) or sd == 0:
        raise TableError("Cannot standardise a constant variable (SD = 0); check the column.")
    return (values - np.nanmean(values)) / sd


#: Transform names accepted by :func:`transform_column`.
TRANSFORMS = ("log1p", "percent_etiv", "logit_wm", "per_sd", "log1p_per_sd")


@dataclass
class TransformResult:
    """A table with one added transformed column.

    Attributes
    ----------
    table : pandas.DataFrame
        The input rows (all of them; rows that could not be transformed hold NaN in
        ``column``).
    column : str
        Name of the added column.
    dropped : pandas.DataFrame
        Rows left without a value (``row``, ``subject``, ``reason``).
    """

    table: pd.DataFrame
    column: str
    dropped: pd.DataFrame

    @property
    def summary(self) -> pd.DataFrame:
        """One row: the column, rows transformed, rows dropped, mean and SD of the result."""
        values = self.table[self.column]
        return pd.DataFrame(
            [{"column": self.column, "n": int(values.notna().sum()), "n_dropped": len(self.dropped),
              "mean": float(values.mean()), "sd": float(values.std())}]
        )


def transform_column(
    table: pd.DataFrame,
    column: str,
    kind: str = "log1p",
    *,
    etiv_column: str = "etiv_ml",
    wm_column: str = "wm_ml",
    out_column: str | None = None,
    subject_column: str | None = "subject_id",
) -> TransformResult:
    """Add a transformed copy of a volume column to a table.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject.
    column : str
        Volume column (mL), e.g. ``"wmh_ml"``.
    kind : {"log1p", "percent_etiv", "logit_wm", "per_sd", "log1p_per_sd"}, default "log1p"
        ``log1p``: log(1 + mL); ``percent_etiv``: 100 * mL / eTIV; ``logit_wm``: logit of
        the fraction of white matter; ``per_sd``: standardised; ``log1p_per_sd``: log(1 + mL)
        then standardised.
    etiv_column, wm_column : str
        Columns used by ``percent_etiv`` and ``logit_wm``.
    out_column : str, optional
        Name of the new column; default ``<column>_<kind>``.
    subject_column : str or None, default "subject_id"
        Names subjects in the report of dropped rows (when present).

    Returns
    -------
    TransformResult
        The table with the new column, and the rows that could not be transformed (missing
        values), also logged.
    """
    if kind not in TRANSFORMS:
        raise OptionError(f"Unknown transform kind={kind!r}; use one of {', '.join(TRANSFORMS)}.")
    needed = [column] + ([etiv_column] if kind == "percent_etiv" else []) + ([wm_column] if kind == "logit_wm" else [])
    kept, dropped = prepare(table, numeric=needed, subject_column=subject_column, what=f"transform {kind} of {column}")
    values = kept[column].to_numpy()
    if kind == "log1p":
        out = log1p_ml(values)
    elif kind == "percent_etiv":
        out = percent_of_etiv(values, kept[etiv_column].to_numpy())
    elif kind == "logit_wm":
        out = logit_wm_fraction(values, kept[wm_column].to_numpy())
    elif kind == "per_sd":
        out = per_sd(values)
    else:
        out = per_sd(log1p_ml(values))
    out_column = out_column or f"{column}_{kind}"
    result = table.copy()
    result[out_column] = pd.Series(out, index=kept.index).reindex(table.index)
    return TransformResult(table=result, column=out_column, dropped=dropped)
