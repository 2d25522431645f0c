"""Decide whether a subject's outputs are complete and current, so that a rerun can skip it.

Every output is written atomically (temporary file + rename), so a file that exists is
whole. A subject is complete when all of its outputs (with the JSON sidecar of each image)
exist, its ``<stem>_wmh.json`` records
the sha256 of the input file as it is now, and the method, model name and model version
the run asks for. An interrupted run (even ``kill -9``) therefore leaves subjects that are
either complete or redone on the next run.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from wmhkit.io import OutputPaths, file_sha256, sidecar_path

__all__ = ["cohort_paths", "flatten", "incomplete_reason", "read_json", "sidecar_paths", "REQUIRED_OUTPUTS",
           "SIDECAR_IMAGES"]

logger = logging.getLogger(__name__)

#: Outputs of :func:`wmhkit.segmentation.segment_file` a complete subject must have.
REQUIRED_OUTPUTS = ("wmh_mask", "wmh_probseg", "brain_mask", "summary_json")
#: Images of a complete cohort subject, each with a JSON sidecar (BIDS derivatives).
SIDECAR_IMAGES = ("wmh_mask", "wmh_probseg", "brain_mask", "mni_mask")


def cohort_paths(paths: OutputPaths) -> dict[str, Path]:
    """The cohort's own per-subject files beside the segmentation outputs.

    >>> from pathlib import Path
    >>> sorted(p.name for p in cohort_paths(OutputPaths(Path("d"), "sub-1_T1w")).values())
    ['sub-1_desc-overlay_qc.png', 'sub-1_error.json', 'sub-1_qc.json']
    """
    return {
        "qc_json": paths.out_dir / f"{paths.prefix}_qc.json",
        "thumbnail": paths.out_dir / f"{paths.prefix}_desc-overlay_qc.png",
        "error_json": paths.out_dir / f"{paths.prefix}_error.json",
    }


def sidecar_paths(paths: OutputPaths) -> dict[str, Path]:
    """The JSON sidecars of a cohort subject's images (:data:`SIDECAR_IMAGES`), by image name.

    >>> sidecar_paths(OutputPaths(Path("d"), "sub-1_T1w"))["mni_mask"].name
    'sub-1_space-MNI152NLin2009aSym_desc-wmh_mask.json'
    """
    return {name: sidecar_path(getattr(paths, name)) for name in SIDECAR_IMAGES}


def read_json(path: Path) -> dict | None:
    """A JSON file's content, or None when it is absent or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def flatten(record: dict, prefix: str = "") -> dict:
    """Nested dictionaries as one level with ``_``-joined keys (lists are kept as values).

    >>> flatten({"lesion_ml": 1.5, "model": {"name": "default", "version": "1"}})
    {'lesion_ml': 1.5, 'model_name': 'default', 'model_version': '1'}
    """
    flat = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


def _matches(summary: dict, key: str, wanted) -> bool:
    if wanted is None:
        return True
    return str(summary.get(key)) == str(wanted)


def incomplete_reason(
    input_path: str | Path,
    paths: OutputPaths,
    *,
    method: str | None = None,
    model_name: str | None = None,
    model_version: str | None = None,
    input_sha256: str | None = None,
) -> str | None:
    """Why a subject must be (re)computed, or None when its outputs are complete and current.

    Parameters
    ----------
    input_path : str or path
        The subject's T1 file.
    paths : wmhkit.io.OutputPaths
        Where its outputs live.
    method, model_name, model_version : str, optional
        What this run asks for (the classical baseline records ``model_name="baseline"``
        and its version); None skips that comparison.
    input_sha256 : str, optional
        The input's hash when already computed (saves reading the file twice).

    Returns
    -------
    str or None
        A short reason (``"no summary JSON"``, ``"input changed"``, ...) or None.
    """
    for name in REQUIRED_OUTPUTS:
        if not getattr(paths, name).is_file():
            return f"missing {getattr(paths, name).name}"
    for path in [cohort_paths(paths)["qc_json"], cohort_paths(paths)["thumbnail"], paths.mni_mask,
                 *sidecar_paths(paths).values()]:
        if not path.is_file():
            return f"missing {path.name}"
    summary = read_json(paths.summary_json)
    if summary is None:
        return "unreadable summary JSON"
    summary = flatten(summary)
    if not _matches(summary, "method", method):
        return f"method {summary.get('method')} differs from {method}"
    if not _matches(summary, "model_name", model_name):
        return f"model {summary.get('model_name')} differs from {model_name}"
    if not _matches(summary, "model_version", model_version):
        return f"model version {summary.get('model_version')} differs from {model_version}"
    recorded = summary.get("input_sha256")
    current = input_sha256 or file_sha256(input_path)
    if recorded != current:
        return "input changed since the outputs were written"
    return None
