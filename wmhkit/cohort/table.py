"""The combined cohort table, rebuilt from the per-subject files alone.

One row per discovered input: the participant columns, ``status`` (ok / failed / not run)
and ``error``, every scalar of ``<stem>_wmh.json`` (volumes in mL, eTIV, model and software
versions, input sha256), regional lesion volumes in wide form (``lesion_ml_<scheme>_<region>``),
the QC measures, the lesion-volume centile against the cohort and the QC flags.
Run measurements (timings, memory, dates) are left out so that the table depends on the
results only.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from wmhkit.cohort.discover import KEY_COLUMNS
from wmhkit.cohort.resume import cohort_paths, flatten, read_json
from wmhkit.io import OutputPaths, write_tsv

__all__ = [
    "TABLE_NAME",
    "ERRORS_NAME",
    "ETIV_RANGE_ML",
    "EXTREME_LESION_ML",
    "build_table",
    "add_flags",
    "write_tables",
    "lesion_column",
]

logger = logging.getLogger(__name__)

TABLE_NAME = "wmhkit_cohort.tsv"
ERRORS_NAME = "wmhkit_errors.tsv"
#: eTIV outside this range (mL) is implausible for an adult head.
ETIV_RANGE_ML = (900.0, 2300.0)
#: Lesion volume (mL) above which a subject is flagged whatever the cohort looks like.
EXTREME_LESION_ML = 100.0
#: Robust z-score of log(1 + lesion mL) above which a subject is an outlier in its cohort.
EXTREME_LESION_Z = 3.5
# Run measurements (time, memory, dates) differ between identical runs: kept in the JSON only.
_TIMING = re.compile(r"(^|_)(timings?|seconds|elapsed|duration|date|datetime|timestamp|created|peak|rss|memory|cpu)"
                     r"(_|$)|_s$")
_LESION_KEYS = ("lesion_ml", "wmh_ml", "volumes_lesion_ml", "volumes_wmh_ml")


def lesion_column(table: pd.DataFrame) -> str | None:
    """The column holding the total lesion volume (mL), if any."""
    return next((key for key in _LESION_KEYS if key in table.columns), None)


def _scalars(record: dict) -> dict:
    return {
        key: value
        for key, value in record.items()
        if (value is None or isinstance(value, (str, int, float, bool, np.generic))) and not _TIMING.search(key)
    }


def _regions_wide(path: Path) -> dict:
    if not path.is_file():
        return {}
    regions = pd.read_csv(path, sep="\t", na_values=["n/a"])
    if not {"region", "lesion_ml"} <= set(regions.columns):
        return {}
    scheme = regions["scheme"].astype(str) + "_" if "scheme" in regions.columns else ""
    names = ("lesion_ml_" + scheme + regions["region"].astype(str)).str.replace(r"[^A-Za-z0-9_]+", "_", regex=True)
    return dict(zip(names, regions["lesion_ml"].astype(float)))


def _subject_row(row, out_dir: Path, failure: str | None = None) -> dict:
    paths = OutputPaths(out_dir / row["out_subdir"], row["stem"])
    extra = cohort_paths(paths)
    record = {"status": "not run", "error": ""}
    error = read_json(extra["error_json"])
    summary = read_json(paths.summary_json)
    qc = read_json(extra["qc_json"])
    if failure is not None:  # failed in this run, even where its error file could not be written
        record.update(status="failed", error=str(failure))
    elif error is not None:
        record.update(status="failed", error=str(error.get("error", "unknown error")))
    elif summary is not None and qc is not None:
        record["status"] = "ok"
        record.update(_scalars(flatten(summary)))
        record.update(_regions_wide(paths.regions_tsv))
        record.update({f"qc_{key}": value for key, value in _scalars(qc).items()})
        record["qc_thumbnail"] = str(Path(row["out_subdir"]) / qc.get("thumbnail", extra["thumbnail"].name))
        record["mni_mask"] = str(Path(row["out_subdir"]) / qc.get("mni_mask", paths.mni_mask.name))
    return record


def _robust_z(values: pd.Series) -> pd.Series:
    if values.notna().sum() < 10:  # too few to call one an outlier (and no median of nothing)
        return pd.Series(0.0, index=values.index)
    logged = np.log1p(values.clip(lower=0))
    spread = 1.4826 * (logged - logged.median()).abs().median()
    if not np.isfinite(spread) or spread <= 0:
        return pd.Series(0.0, index=values.index)
    return (logged - logged.median()) / spread


def add_flags(table: pd.DataFrame, *, alignment_threshold: float | None = None) -> pd.DataFrame:
    """Add the lesion centile and the QC flags to a combined table (in place; also returned).

    Columns added: ``lesion_centile`` (0-100, percentile rank among successful subjects),
    ``flag_alignment`` (MNI alignment quality below the threshold), ``flag_etiv`` (eTIV outside
    :data:`ETIV_RANGE_ML`), ``flag_lesion_extreme`` (above :data:`EXTREME_LESION_ML` or a robust
    z above :data:`EXTREME_LESION_Z` in its cohort), ``flag_contrast`` (white matter not brighter
    than grey matter: probably not a T1), ``flag_forced`` (segmented with ``--force`` although it
    did not look like a brain T1) and ``qc_flags`` (their names, comma-separated).
    """
    if alignment_threshold is None:
        from wmhkit.preprocess import QUALITY_THRESHOLD as alignment_threshold
    ok = table["status"] == "ok"
    column = lesion_column(table)
    lesion = pd.to_numeric(table[column], errors="coerce").where(ok) if column else pd.Series(np.nan, index=table.index)
    table["lesion_centile"] = (lesion.rank(pct=True, method="average") * 100).round(1)
    quality_column = next((c for c in ("alignment_quality", "qc_alignment_quality") if c in table.columns), None)
    quality = pd.to_numeric(table[quality_column], errors="coerce") if quality_column else pd.Series(np.nan, index=table.index)
    etiv = pd.to_numeric(table["etiv_ml"], errors="coerce") if "etiv_ml" in table.columns else pd.Series(np.nan, index=table.index)
    looks_t1 = table["qc_looks_t1"] if "qc_looks_t1" in table.columns else pd.Series(None, index=table.index, dtype=object)
    forced = table["content_check_forced"] if "content_check_forced" in table.columns else pd.Series(False, index=table.index)
    flags = {
        "flag_alignment": ok & (quality < alignment_threshold),
        "flag_etiv": ok & etiv.notna() & ((etiv < ETIV_RANGE_ML[0]) | (etiv > ETIV_RANGE_ML[1])),
        "flag_lesion_extreme": ok & ((lesion > EXTREME_LESION_ML) | (_robust_z(lesion) > EXTREME_LESION_Z)),
        "flag_contrast": ok & looks_t1.map(lambda value: value is False or value in ("False", "false")).astype(bool),
        "flag_forced": ok & forced.map(lambda value: value is True or value in ("True", "true")).astype(bool),
    }
    for name, values in flags.items():
        table[name] = values.fillna(False).astype(bool)
    table["qc_flags"] = [
        ",".join(name.removeprefix("flag_") for name in flags if table.at[index, name]) for index in table.index
    ]
    return table


def build_table(inputs: pd.DataFrame, out_dir: str | Path, *, failures: dict[str, str] | None = None) -> pd.DataFrame:
    """The combined table of a cohort from its per-subject files.

    Parameters
    ----------
    inputs : pandas.DataFrame
        The table :func:`wmhkit.cohort.discover_inputs` returned.
    out_dir : str or path
        The derivatives folder of the run.
    failures : dict, optional
        ``{stem: error}`` of subjects that failed in the run just made: they are ``failed`` even
        when their ``<stem>_error.json`` could not be written (a full disk, a folder that cannot
        be written), whatever older files say.

    Returns
    -------
    pandas.DataFrame
        One row per input, in the order of ``inputs``, with the columns described in the
        module docstring.
    """
    out_dir = Path(out_dir)
    failures = failures or {}
    records = [_subject_row(row, out_dir, failures.get(row["stem"])) for _, row in inputs.iterrows()]
    results = pd.DataFrame(records, index=inputs.index)
    results = results.drop(columns=[c for c in results.columns if c in inputs.columns])
    table = pd.concat([inputs, results], axis=1)
    leading = list(KEY_COLUMNS) + [c for c in inputs.columns if c not in KEY_COLUMNS] + ["status", "error"]
    table = table[leading + [c for c in table.columns if c not in leading]]
    return add_flags(table)


def write_tables(table: pd.DataFrame, out_dir: str | Path) -> tuple[Path, Path | None]:
    """Write ``wmhkit_cohort.tsv`` and, when any subject failed, ``wmhkit_errors.tsv``.

    Returns
    -------
    (pathlib.Path, pathlib.Path or None)
        The combined table and the errors file (None, and any old one removed, when nothing failed).
    """
    out_dir = Path(out_dir)
    table_path = write_tsv(table, out_dir / TABLE_NAME)
    errors_path = out_dir / ERRORS_NAME
    failed = table[table["status"] == "failed"]
    if len(failed):
        write_tsv(failed[["subject", "session", "stem", "input_path", "error"]], errors_path)
        return table_path, errors_path
    errors_path.unlink(missing_ok=True)
    return table_path, None
