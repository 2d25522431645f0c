"""What one segmentation records about itself: ``<stem>_wmh.json`` (keys listed in :mod:`wmhkit.segmentation.result`).

:class:`StageTimer` measures each stage of :func:`wmhkit.segment` (wall and CPU seconds, the
process's peak memory after it); :func:`describe` assembles the record from the stages' outputs.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone

import numpy as np

__all__ = ["BASELINE_VERSION", "StageTimer", "describe"]

#: Version of the classical baseline's rules (recorded as its model version).
BASELINE_VERSION = "1"


def peak_rss_gb() -> float | None:
    """The process's peak resident memory so far (GB), or None where it cannot be read."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return round(peak / (1024**3 if sys.platform == "darwin" else 1024**2), 3)


class StageTimer:
    """Wall seconds, CPU seconds (all threads of the process) and peak memory (GB) after each named stage.

    CPU time barely changes when other jobs share the machine, wall time does; on an idle machine
    a stage's wall time lies between its CPU time divided by the cores it uses and its CPU time.
    """

    def __init__(self) -> None:
        self.wall_s: dict[str, float] = {}
        self.cpu_s: dict[str, float] = {}
        self.peak_rss_gb: dict[str, float | None] = {}
        self._start = self._last = time.perf_counter()
        self._cpu_start = self._cpu_last = time.process_time()

    def lap(self, name: str) -> None:
        """Close the stage ``name`` (times add up when a name comes back)."""
        now, cpu = time.perf_counter(), time.process_time()
        self.wall_s[name] = round(self.wall_s.get(name, 0.0) + now - self._last, 3)
        self.cpu_s[name] = round(self.cpu_s.get(name, 0.0) + cpu - self._cpu_last, 3)
        self.peak_rss_gb[name] = peak_rss_gb()
        self._last, self._cpu_last = now, cpu

    def totals(self) -> tuple[float, float]:
        """Wall and CPU seconds since the timer started."""
        return round(time.perf_counter() - self._start, 3), round(time.process_time() - self._cpu_start, 3)


def _model_description(settings, loaded) -> dict:
    if settings.method == "model":
        return loaded.describe()
    return {"name": "baseline", "version": BASELINE_VERSION, "file": None, "sha256": None, "architecture": "classical"}


def _thresholds(settings, details: dict) -> dict:
    from wmhkit.anatomy import atlas
    from wmhkit.preprocess import QUALITY_THRESHOLD
    from wmhkit.segmentation import cortex, mimics

    out = {
        "probability": settings.threshold,
        "min_peak_probability": settings.min_peak,
        "min_lesion_mm3": settings.min_lesion_mm3,
        "envelope_wm_prior": atlas.ENVELOPE_WM_PRIOR,
        "envelope_dilation_mm": atlas.ENVELOPE_DILATION_MM,
        "alignment_quality_min": QUALITY_THRESHOLD,
    }
    if settings.method == "model":  # the network's cortex-contact rule
        out.update(max_cortex_contact=settings.max_cortex_contact, cortex_judged_at=settings.cortex_judge_at,
                   cortex_dark_below=cortex.DARK_BELOW,
                   cortex_attached_ml=details.get("cortex_attached_ml"), max_speck_mm3=settings.max_speck_mm3,
                   speck_dark_ratio=mimics.SPECK_DARK_RATIO, csf_dark_specks_ml=details.get("csf_dark_specks_ml"))
    elif details:
        out["baseline"] = details
    return out


def _input_record(img) -> dict:
    import nibabel as nib

    from wmhkit.io import img_sha256, source_path, voxel_sizes_mm

    source = source_path(img)
    return {
        "path": os.fspath(source) if source else None,
        "sha256": img_sha256(img),
        "shape": [int(n) for n in img.shape[:3]],
        "voxel_size_mm": [round(float(v), 4) for v in voxel_sizes_mm(img)],
        "orientation": "".join(nib.aff2axcodes(img.affine)),
        "dtype": str(img.get_data_dtype()),
    }


def describe(prepared, content: dict, settings, loaded, lesions, regional, details: dict, timer: StageTimer, *,
             subject: str, stem: str) -> dict:
    """The ``<stem>_wmh.json`` record of one segmentation, from the outputs of its stages.

    Parameters
    ----------
    prepared : wmhkit.preprocess.PreparedT1
        Stage 2's prepared T1 (``content``: its content check), on the input grid (after
        :func:`wmhkit.segmentation.pipeline.to_input` for a run on a working grid).
    settings, loaded
        Stage 1's settled options and model (None for the baseline).
    lesions, regional
        Stages 4 and 5's outputs; ``details`` the method's numbers from stage 3.
    timer : StageTimer
        The stages' times.
    subject, stem : str
        Subject label and output file stem.
    """
    from wmhkit._version import __version__
    from wmhkit.io import code_fingerprint, library_versions, voxel_volume_ml

    alignment, etiv_ml = prepared.alignment, float(prepared.etiv_ml)
    working = getattr(prepared, "working", None)
    brain_voxels = int(np.count_nonzero(np.asanyarray(prepared.brain_mask.dataobj)))
    wall, cpu = timer.totals()
    timings = {**timer.wall_s, "prepare_stages": {k: round(float(v), 3) for k, v in dict(prepared.timings or {}).items()},
               "total": wall}
    return {
        "wmhkit_version": __version__,
        "code_fingerprint": code_fingerprint(),
        "libraries": library_versions(),
        "subject": subject,
        "stem": stem,
        "input": _input_record(prepared.img),
        "method": settings.method,
        "inference_space": settings.space,
        "flip_average": bool(settings.flip_average),
        "model": _model_description(settings, loaded),
        "lesion_ml": round(lesions.lesion_ml, 4),
        "lesion_count": int(lesions.count),
        "working_voxel_mm": None if working is None else [round(v, 4) for v in working.voxel_mm],
        "working_lesion_ml": None if getattr(lesions, "working_ml", None) is None else round(lesions.working_ml, 4),
        "etiv_ml": round(etiv_ml, 2),
        "etiv_source": getattr(prepared, "etiv_source", "wmhkit"),
        "etiv_ml_wmhkit": None if getattr(prepared, "etiv_ml_wmhkit", None) is None else round(prepared.etiv_ml_wmhkit, 2),
        "brain_ml": round(float(brain_voxels * voxel_volume_ml(prepared.img)), 2),
        "lesion_percent_of_etiv": round(100.0 * lesions.lesion_ml / etiv_ml, 5) if etiv_ml else None,
        "thresholds": _thresholds(settings, details),
        "alignment": {
            "method": alignment.method,
            "quality": round(float(alignment.quality), 4),
            "flagged": bool(alignment.flagged),
            "subject_to_mni": np.round(alignment.subject_to_mni, 6).tolist(),
        },
        "content_check": content,
        "regions_summary": regional.summary,
        "regions_anatomy": (regional.summary or {}).get("regions_anatomy"),
        "regions_error": regional.error,
        "timings_s": timings,
        "cpu_s": {**timer.cpu_s, "total": cpu},
        "peak_rss_gb_after": dict(timer.peak_rss_gb),
        "device": settings.device,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
