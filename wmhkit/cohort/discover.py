"""Find the T1 images of a cohort: a BIDS dataset, a plain folder, a glob or a CSV manifest.

Every source becomes the same table, one row per input image, with the columns

``subject``, ``session`` (empty when none), ``stem`` (file name without its ending, BIDS
entities kept), ``input_path`` (absolute) and ``out_subdir`` (where the outputs go inside a
BIDS-derivatives folder: ``sub-<subject>/[ses-<session>/]anat``), followed by any
participant columns (BIDS ``participants.tsv`` or the manifest's own extra columns) and, for a
BIDS dataset with sessions, the session columns of each subject's ``sub-<label>_sessions.tsv``
(``acq_time``, an age at the session, ...), so that repeated scans keep their dates or ages
(what :func:`wmhkit.stats.fit_progression` needs). A session column named like a participant
column (``age``) holds the session's value; the participant value moves to
``participants_<name>``.
"""

from __future__ import annotations

import glob as globlib
import logging
import os
import re
from pathlib import Path

import pandas as pd

from wmhkit.errors import OptionError, TableError
from wmhkit.io import bids_stem, output_prefix
from wmhkit.io.images import IMAGE_SUFFIXES

__all__ = ["discover_inputs", "is_bids_dataset", "select_inputs", "subject_label", "KEY_COLUMNS"]

logger = logging.getLogger(__name__)

#: Columns every discovered table starts with, in this order.
KEY_COLUMNS = ("subject", "session", "stem", "input_path", "out_subdir")
#: Manifest column names accepted for the image path (first match wins).
PATH_COLUMNS = ("path", "t1", "t1_path", "input", "input_path", "file")
_T1_SUFFIXES = ("_T1w.nii.gz", "_T1w.nii")


def subject_label(text: str) -> str:
    """A BIDS-valid label (letters and digits only) from any name.

    >>> subject_label("sub-01")
    '01'
    >>> subject_label("case_003 (repeat)")
    'case003repeat'
    """
    text = str(text)
    if text.startswith("sub-"):
        text = text[4:]
    label = re.sub(r"[^A-Za-z0-9]", "", text)
    return label or "unknown"


def _entities(stem: str) -> dict[str, str]:
    """BIDS entities (``sub``, ``ses``, ...) of a file stem.

    >>> _entities("sub-01_ses-2_run-1_T1w")
    {'sub': '01', 'ses': '2', 'run': '1'}
    """
    found = {}
    for part in stem.split("_"):
        key, sep, value = part.partition("-")
        if sep and key and value:
            found[key] = value
    return found


def _row(path: Path, subject: str | None = None, session: str | None = None) -> dict:
    stem = bids_stem(path)
    entities = _entities(stem)
    subject = subject_label(subject if subject not in (None, "") else entities.get("sub", stem))
    session = "" if session is None or (isinstance(session, float) and pd.isna(session)) else str(session)
    session = subject_label(session[4:] if session.startswith("ses-") else session) if session else entities.get("ses", "")
    out_subdir = Path(f"sub-{subject}")
    if session:
        out_subdir = out_subdir / f"ses-{session}"
    return {
        "subject": subject,
        "session": session,
        "stem": stem,
        "input_path": str(path.resolve()),
        "out_subdir": str(out_subdir / "anat"),
    }


def _is_image(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and not name.startswith(".") and any(name.endswith(s) for s in IMAGE_SUFFIXES)


def _discover_bids(root: Path) -> pd.DataFrame:
    rows = []
    for subject_dir in sorted(p for p in root.glob("sub-*") if p.is_dir()):
        anat_dirs = [subject_dir / "anat"] + sorted(subject_dir.glob("ses-*/anat"))
        found = []
        for anat in anat_dirs:
            if anat.is_dir():
                found += sorted(p for p in anat.iterdir() if p.is_file() and p.name.endswith(_T1_SUFFIXES))
        if not found:
            logger.warning("BIDS subject %s has no anat/*_T1w.nii[.gz]; it is left out.", subject_dir.name)
        for path in found:
            session = path.parent.parent.name if path.parent.parent.name.startswith("ses-") else None
            rows.append(_row(path, subject_dir.name, session))
    table = pd.DataFrame(rows, columns=list(KEY_COLUMNS))
    participants = root / "participants.tsv"
    if participants.is_file() and len(table):
        extra = pd.read_csv(participants, sep="\t", dtype=str, na_values=["n/a", ""])
        if "participant_id" not in extra.columns:
            raise TableError(f"{participants} has no participant_id column; add it (values like sub-01).")
        extra["subject"] = extra.pop("participant_id").map(subject_label)
        if extra["subject"].duplicated().any():
            dup = extra.loc[extra["subject"].duplicated(), "subject"].iloc[0]
            raise TableError(f"{participants} lists participant sub-{dup} twice; keep one row per participant.")
        extra = extra.drop(columns=[c for c in extra.columns if c in KEY_COLUMNS and c != "subject"])
        table = table.merge(_numeric(extra), on="subject", how="left")
    sessions = _sessions(root)
    if len(sessions) and len(table):
        clash = [c for c in sessions.columns if c in table.columns and c not in ("subject", "session")]
        table = table.rename(columns={c: f"participants_{c}" for c in clash})
        table = table.merge(_numeric(sessions), on=["subject", "session"], how="left")
    return table


def _sessions(root: Path) -> pd.DataFrame:
    """Every subject's ``sub-<label>_sessions.tsv``, stacked: subject, session, then its columns."""
    parts = []
    for path in sorted(root.glob("sub-*/sub-*_sessions.tsv")):
        frame = pd.read_csv(path, sep="\t", dtype=str, na_values=["n/a", ""])
        if "session_id" not in frame.columns:
            raise TableError(f"{path} has no session_id column; add it (values like ses-01).")
        frame["session"] = frame.pop("session_id").map(lambda s: subject_label(s[4:] if str(s).startswith("ses-") else s))
        if frame["session"].duplicated().any():
            dup = frame.loc[frame["session"].duplicated(), "session"].iloc[0]
            raise TableError(f"{path} lists session ses-{dup} twice; keep one row per session.")
        frame.insert(0, "subject", subject_label(path.parent.name))
        parts.append(frame.drop(columns=[c for c in frame.columns if c in KEY_COLUMNS and c not in ("subject", "session")]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["subject", "session"])


def _numeric(table: pd.DataFrame) -> pd.DataFrame:
    """Turn columns whose every value is a number into numbers (age), keep the rest as text."""
    for column in table.columns:
        if column in KEY_COLUMNS:
            continue
        converted = pd.to_numeric(table[column], errors="coerce")
        if converted.notna().sum() == table[column].notna().sum():
            table[column] = converted
    return table


def _discover_manifest(path: Path) -> pd.DataFrame:
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    manifest = pd.read_csv(path, sep=sep, dtype=str, na_values=["n/a", ""])
    column = next((c for c in PATH_COLUMNS if c in manifest.columns), None)
    if column is None:
        raise TableError(f"Manifest {path} has no image path column; name one of {', '.join(PATH_COLUMNS)}.")
    rows = []
    for index, record in manifest.iterrows():
        value = record[column]
        if not isinstance(value, str) or not value.strip():
            raise TableError(f"Manifest {path} row {index + 2} has an empty '{column}'; give the T1 image path "
                             "or DICOM series folder.")
        image = Path(value.strip()).expanduser()
        image = image if image.is_absolute() else path.parent / image
        subject = record.get("subject", record.get("participant_id"))
        row = _row(image, None if pd.isna(subject) else subject, record.get("session"))
        for key, item in record.items():
            if key not in (column, "subject", "participant_id", "session") and key not in KEY_COLUMNS:
                row[key] = item
        rows.append(row)
    return _numeric(pd.DataFrame(rows))


def _discover_paths(paths: list[Path], source: str) -> pd.DataFrame:
    if not paths:
        raise TableError(f"No NIfTI or MGZ images found at {source}; give a BIDS folder, a folder, a glob or a CSV.")
    return pd.DataFrame([_row(p) for p in sorted(paths)], columns=list(KEY_COLUMNS))


def _refuse_duplicates(table: pd.DataFrame, source: str) -> None:
    """Two inputs writing the same outputs would overwrite each other: refuse them."""
    key = table["out_subdir"] + "/" + table["stem"].map(output_prefix)
    if key.duplicated().any():
        first = key[key.duplicated()].iloc[0]
        inputs = table.loc[key == first, "input_path"].tolist()
        raise TableError(
            f"Inputs {inputs} in {source} map to the same subject and file name ({first}); "
            "rename one or give explicit subject/session columns in a manifest."
        )


def is_bids_dataset(source: str | os.PathLike) -> bool:
    """True when ``source`` is a folder laid out as BIDS (``sub-*/[ses-*/]anat`` or a ``dataset_description.json``)."""
    path = Path(source).expanduser()
    return path.is_dir() and (any(path.glob("sub-*/anat")) or any(path.glob("sub-*/ses-*/anat"))
                              or (path / "dataset_description.json").is_file())


def _labels(values, prefix: str) -> list[str]:
    """Labels as discovery writes them, given with or without their ``sub-``/``ses-`` prefix.

    >>> _labels(["sub-01", "02"], "sub-")
    ['01', '02']
    """
    return [subject_label(str(v).removeprefix(prefix)) for v in values]


def select_inputs(inputs: pd.DataFrame, participant_label=None, session_label=None, *,
                  source: str = "the input") -> pd.DataFrame:
    """The rows of a discovered table for some participants and sessions (BIDS-Apps options).

    Parameters
    ----------
    inputs : pandas.DataFrame
        The table :func:`discover_inputs` returned.
    participant_label, session_label : list of str, optional
        Labels with or without ``sub-``/``ses-`` (``["01", "sub-02"]``); None or empty keeps all.
    source : str, default "the input"
        The dataset, named in the error message.

    Returns
    -------
    pandas.DataFrame
        The selected rows, in their order.

    Raises
    ------
    wmhkit.errors.OptionError
        When a label matches no participant (or no session of the selected participants).

    Examples
    --------
    >>> table = pd.DataFrame({"subject": ["01", "02", "02"], "session": ["", "1", "2"]})
    >>> select_inputs(table, ["sub-02"], ["ses-2"]).index.tolist()
    [2]
    """
    selected = inputs
    for option, values, column, prefix in (("--participant-label", participant_label, "subject", "sub-"),
                                           ("--session-label", session_label, "session", "ses-")):
        if not values:
            continue
        wanted = _labels(values, prefix)
        present = set(selected[column].astype(str))
        missing = [label for label in wanted if label not in present]
        if missing:
            known = ", ".join(f"{prefix}{label}" for label in sorted(present) if label) or "none"
            raise OptionError(f"Option {option} {prefix}{missing[0]} matches no T1 in {source} (it has {known}); "
                              "check the label.")
        selected = selected[selected[column].astype(str).isin(wanted)]
    return selected


def discover_inputs(source: str | os.PathLike) -> pd.DataFrame:
    """One row per T1 image of a cohort.

    Parameters
    ----------
    source : str or path
        A BIDS dataset (``sub-*/[ses-*/]anat/*_T1w.nii[.gz]``; ``participants.tsv`` columns
        such as age, sex and site are joined in), a folder of images (searched recursively),
        a glob pattern (``"/data/*/t1.nii.gz"``) or a CSV/TSV manifest with a ``path`` column
        (relative paths are relative to the manifest; a DICOM series folder, or ``FOLDER@N``, is
        read as its series: :mod:`wmhkit.io.dicom`) and optional ``subject``, ``session`` and
        any other columns (kept).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`KEY_COLUMNS` then the participant columns, sorted by subject and session.
        In a BIDS dataset only ``*_T1w`` files count; subjects without one are logged and left out.

    Raises
    ------
    wmhkit.errors.TableError
        When nothing is found, a manifest lacks its path column, or two inputs would write the
        same outputs (duplicate subject IDs).
    """
    text = str(source)
    path = Path(text).expanduser()
    if path.is_file() and path.suffix.lower() in (".csv", ".tsv"):
        table = _discover_manifest(path)
    elif is_bids_dataset(path):
        table = _discover_bids(path)
        if table.empty:
            raise TableError(f"BIDS dataset {path} holds no sub-*/[ses-*/]anat/*_T1w.nii[.gz]; check the folder.")
    elif path.is_dir():
        table = _discover_paths([p for p in path.rglob("*") if _is_image(p)], text)
    elif path.is_file():
        table = _discover_paths([path], text)
    elif any(ch in text for ch in "*?["):
        table = _discover_paths([Path(p) for p in globlib.glob(os.path.expanduser(text), recursive=True)
                                 if _is_image(Path(p))], text)
    else:
        raise TableError(f"Cohort input {text} does not exist; give a BIDS folder, a folder, a glob or a CSV manifest.")
    _refuse_duplicates(table, text)
    return table.sort_values(["subject", "session", "stem"], kind="stable").reset_index(drop=True)
