"""``wmhkit.segment``: one T1 image in, lesion probability, mask, volumes and regions out.

Stages (each timed; the times go to ``<stem>_wmh.json`` under ``timings_s``):

1. ``load_model`` -- the network, loaded once per process (:func:`wmhkit.segmentation.load_model`);
   it declares the grid it was trained on, which is where it runs unless ``space`` says otherwise.
2. ``preprocess`` -- :func:`wmhkit.preprocess.prepare_t1`: input check, MNI alignment, intensity
   normalisation (white matter 1.0), brain mask and eTIV, and for the MNI grid the normalised T1
   on the MNI 1 mm grid.
3. ``inference`` -- the network (:func:`wmhkit.segmentation.network.predict_volume`) on the
   brain box of the MNI grid (``space="mni"``, :mod:`wmhkit.segmentation.inference`), or on the
   subject's own voxels (``space="subject"``: reordered but not interpolated when they are about
   1 mm, else sampled once onto 1 mm along their own axes;
   :mod:`wmhkit.segmentation.subject_grid`). The classical baseline
   (:func:`wmhkit.segmentation.baseline.baseline_probability`) always runs on the MNI grid. The
   probability is set to 0 outside the cerebral white-matter envelope
   (:func:`wmhkit.segmentation.atlas.wm_envelope_mni`, placed through the MNI alignment).
   ``to_subject`` (MNI grid only) -- the probability is sampled back onto the input grid
   (trilinear, through the alignment's subject-to-MNI affine), only inside the part of the grid
   the brain box covers, so large inputs cost no more than their brain.
   For the network, candidate lesions against the cortex are then removed on the grid it ran
   on (:mod:`wmhkit.segmentation.cortex`).
4. ``postprocess`` -- threshold and minimum lesion size
   (:func:`wmhkit.segmentation.postprocess.threshold_and_clean`), volumes, lesion table.
5. ``regions`` -- :func:`wmhkit.regions.quantify_subject` when available.

torch is imported only when ``method="model"`` runs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import datetime, timezone

import nibabel as nib
import numpy as np

from wmhkit.errors import OptionError
from wmhkit.segmentation.cortex import check_max_contact
from wmhkit.segmentation.inference import mni_box_to_subject, probability_mni, t1_on_brain_box
from wmhkit.segmentation.models import DEFAULT_MODEL, LoadedModel, load_model
from wmhkit.segmentation.postprocess import (
    DEFAULT_MIN_LESION_MM3,
    DEFAULT_THRESHOLD,
    check_options,
    lesion_table,
    threshold_and_clean,
)
from wmhkit.segmentation.result import SegmentationResult

__all__ = ["METHODS", "BASELINE_VERSION", "segment", "segment_file", "probability_mni"]

logger = logging.getLogger(__name__)

#: Segmentation methods: the trained network, or the classical training-free baseline.
METHODS = ("model", "baseline")
#: Where the network runs (see ``segment(space=...)``); by default where the model was trained.
SPACES = ("mni", "subject")
#: Version of the classical baseline's rules (recorded as its model version).
BASELINE_VERSION = "1"


def _peak_rss_gb() -> float | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return round(peak / (1024**3 if sys.platform == "darwin" else 1024**2), 3)


class _Timer:
    """Collects wall times (s) of named stages and the process's peak memory after each."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.peak_rss_gb: dict[str, float | None] = {}
        self._start = time.perf_counter()
        self._last = self._start

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = round(self.times.get(name, 0.0) + now - self._last, 3)
        self.peak_rss_gb[name] = _peak_rss_gb()
        self._last = now

    def total(self) -> float:
        return round(time.perf_counter() - self._start, 3)


def _quantify_regions(mask_img, checked, alignment, subject, timer):
    try:
        from wmhkit.regions import quantify_subject
    except ImportError:
        logger.info("wmhkit.regions is not available; no regional table.")
        timer.lap("regions")
        return None, None
    try:
        result = quantify_subject(mask_img, checked, alignment=alignment, subject=subject)
    except Exception as exc:  # noqa: BLE001 - a regions failure must not lose the segmentation
        from wmhkit.errors import WmhkitError

        if isinstance(exc, WmhkitError):
            raise
        logger.warning("Regional quantification failed (%s: %s); the result has no regional table.", type(exc).__name__, exc)
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        timer.lap("regions")
    return result, None


def _model_description(method: str, loaded) -> dict:
    if method == "model":
        return loaded.describe()
    return {"name": "baseline", "version": BASELINE_VERSION, "file": None, "sha256": None, "architecture": "classical"}


def segment(
    img,
    *,
    method: str = "model",
    model=DEFAULT_MODEL,
    threshold: float | None = None,
    min_lesion_mm3: float = DEFAULT_MIN_LESION_MM3,
    device: str = "cpu",
    regions: bool = True,
    subject: str | None = None,
    space: str | None = None,
    flip_average: bool | None = None,
    max_cortex_contact: float | None = None,
    force: bool = False,
) -> SegmentationResult:
    """Segment white-matter hyperintensities in a 3D T1-weighted image.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        3D T1 (skull on or off, any orientation, 0.7-1.5 mm isotropic or up to 1 x 1 x 3 mm,
        any numeric dtype).
    method : {"model", "baseline"}, default "model"
        The trained network, or the classical training-free baseline.
    model : str, os.PathLike or LoadedModel, default "default"
        Registry name (:func:`wmhkit.segmentation.available_models`) or ``.pt`` path; ignored by
        the baseline.
    threshold : float, optional
        Probability at or above which a voxel is lesion; default the model's own (its card,
        ``LoadedModel.threshold``, or ``LoadedModel.flip_threshold`` with flip averaging; 0.5
        when it declares none, and for the baseline).
    min_lesion_mm3 : float, default 5.0
        Connected lesions smaller than this (mm^3) are removed.
    device : str, default "cpu"
        Torch device for the network (``"cuda"`` where present).
    regions : bool, default True
        Compute the regional table with :func:`wmhkit.regions.quantify_subject`.
    subject : str, optional
        Subject label for the tables; default the input's file stem.
    space : {"mni", "subject"}, optional
        Where the network runs: on the MNI 1 mm grid (T1 sampled in, probability sampled back),
        or on the input's own voxels (reordered, not interpolated, when they are about 1 mm:
        :mod:`wmhkit.segmentation.subject_grid`). Default: where the model was trained
        (``LoadedModel.space``; "mni" when it declares none). A model scores best in its own
        space. The baseline always runs on the MNI grid.
    flip_average : bool, optional
        Average the network's probability with its probability on the left-right mirrored T1
        (about twice the inference time, a little more accurate: see the model card). Default:
        the model's own setting (``LoadedModel.flip_average``; off for the shipped model).
    max_cortex_contact : float, optional
        The network's lesions whose one-voxel shell touches the cortex (grey matter connected to
        the brain surface) over more than this share are removed
        (:mod:`wmhkit.segmentation.cortex`); default
        :data:`~wmhkit.segmentation.cortex.MAX_CORTEX_CONTACT` (0.2), 1 turns the rule off.
        The baseline has its own location rules.
    force : bool, default False
        Segment an image that does not look like a brain T1 anyway (``--force``); the override
        is recorded under ``content_check`` in the JSON (:mod:`wmhkit.preprocess.content_check`).

    Returns
    -------
    SegmentationResult
        Probability, mask and brain mask on the input grid, volumes (mL), eTIV (mL), alignment,
        regional and lesion tables, and the metadata written to ``<stem>_wmh.json``.

    Raises
    ------
    wmhkit.errors.InputImageError
        The image cannot be used, or is not a brain T1 and ``force`` is False (one sentence
        says why).
    wmhkit.errors.ModelError
        ``method="model"`` and the model is missing or unreadable.
    wmhkit.errors.OptionError
        An option is out of range.
    """
    from wmhkit import __version__
    from wmhkit.io import (bids_stem, code_fingerprint, img_sha256, library_versions, new_img_like, source_path,
                           voxel_sizes_mm, voxel_volume_ml)
    from wmhkit.preprocess import check_brain_t1, prepare_t1

    timer = _Timer()
    if method not in METHODS:
        raise OptionError(f"Option --method {method!r} is unknown; use 'model' or 'baseline'.")
    if space is not None and space not in SPACES:
        raise OptionError(f"Option space={space!r} is unknown; use 'subject' or 'mni'.")
    threshold, min_lesion_mm3 = check_options(threshold, min_lesion_mm3)
    max_cortex_contact = check_max_contact(max_cortex_contact)
    loaded = model if method == "model" and isinstance(model, LoadedModel) else None
    if method == "model" and loaded is None:
        # First (a missing model fails before the preprocessing), and sequentially: importing
        # torch in a thread beside the preprocessing holds the GIL and slowed it down.
        loaded = load_model(model, device)
        timer.lap("load_model")
    space = "mni" if method != "model" else (space or loaded.space)
    prepared = prepare_t1(img, mni_t1=space == "mni")  # the subject-space network reads the input itself
    content = check_brain_t1(prepared, force=force)  # FLAIR, noise, boxes: refused before any output
    timer.lap("preprocess")
    checked, alignment = prepared.img, prepared.alignment
    if alignment.flagged:
        logger.warning(
            "MNI alignment of %s is poor (quality %.2f); check the result by eye.",
            source_path(checked) or "the image",
            alignment.quality,
        )

    if method == "model":
        flip_average = loaded.flip_average if flip_average is None else bool(flip_average)
    if threshold is None:
        if method != "model":
            threshold = DEFAULT_THRESHOLD
        else:  # flip-averaged maps are smoother: the model may declare its own threshold for them
            threshold = loaded.flip_threshold if flip_average else loaded.threshold
    brain = np.asanyarray(prepared.brain_mask.dataobj) > 0
    if method == "model" and space == "subject":
        from wmhkit.segmentation.subject_grid import probability_subject

        probability, sub, details = probability_subject(
            checked, alignment, prepared.intensity_levels, loaded.net, device, flip_average=flip_average,
            threshold=threshold, max_cortex_contact=max_cortex_contact)
        timer.lap("inference")
    else:
        t1_box, box_affine, box = t1_on_brain_box(prepared.t1_mni)
        probability_box, details = probability_mni(t1_box, box, method=method, model=loaded, device=device,
                                                   flip_average=flip_average, threshold=threshold,
                                                   max_cortex_contact=max_cortex_contact)
        del t1_box
        timer.lap("inference")
        probability, sub = mni_box_to_subject(probability_box, box_affine, alignment, checked)
        del probability_box
        timer.lap("to_subject")
    probability[~brain] = 0.0

    # Post-processing only inside the sub-grid that can hold lesions (memory for large inputs).
    voxel_ml = voxel_volume_ml(checked)
    sub_mask, labels, lesion_count = threshold_and_clean(probability[sub], voxel_ml * 1000.0, threshold, min_lesion_mm3)
    sub_affine = np.asarray(checked.affine, float).copy()
    sub_affine[:3, 3] += sub_affine[:3, :3] @ np.array([s.start for s in sub], float)
    lesions = lesion_table(labels, probability[sub], sub_affine, voxel_ml * 1000.0)
    del labels
    mask = np.zeros(probability.shape, dtype=np.uint8)
    mask[sub] = sub_mask
    lesion_ml = float(np.count_nonzero(sub_mask) * voxel_ml)
    del sub_mask
    mask_img = new_img_like(checked, mask)
    probseg_img = new_img_like(checked, probability)
    brain_img = new_img_like(checked, brain.astype(np.uint8))
    timer.lap("postprocess")

    source = source_path(checked)
    stem = bids_stem(source) if source else "image"
    subject = subject or stem
    regions_table, regions_summary, regions_error = None, None, None
    if regions:
        quantified, regions_error = _quantify_regions(mask_img, checked, alignment, subject, timer)
        if quantified is not None:
            regions_table = quantified.regions
            regions_summary = dict(quantified.summary)
            if getattr(quantified, "lesions", None) is not None:
                lesions = quantified.lesions

    timings = dict(timer.times)
    timings["preprocess_stages"] = {k: round(float(v), 3) for k, v in dict(prepared.timings or {}).items()}
    timings["total"] = timer.total()
    metadata = {
        "wmhkit_version": __version__,
        "code_fingerprint": code_fingerprint(),
        "libraries": library_versions(),
        "subject": subject,
        "stem": stem,
        "input": {
            "path": os.fspath(source) if source else None,
            "sha256": img_sha256(checked),
            "shape": [int(n) for n in checked.shape[:3]],
            "voxel_size_mm": [round(float(v), 4) for v in voxel_sizes_mm(checked)],
            "orientation": "".join(nib.aff2axcodes(checked.affine)),
            "dtype": str(checked.get_data_dtype()),
        },
        "method": method,
        "inference_space": space,
        "flip_average": bool(flip_average) if method == "model" else False,
        "model": _model_description(method, loaded),
        "lesion_ml": round(lesion_ml, 4),
        "lesion_count": int(lesion_count),
        "etiv_ml": round(float(prepared.etiv_ml), 2),
        "brain_ml": round(float(np.count_nonzero(brain) * voxel_ml), 2),
        "lesion_percent_of_etiv": round(100.0 * lesion_ml / float(prepared.etiv_ml), 5) if prepared.etiv_ml else None,
        "thresholds": _thresholds(threshold, min_lesion_mm3, details, max_cortex_contact if method == "model" else None),
        "alignment": {
            "method": alignment.method,
            "quality": round(float(alignment.quality), 4),
            "flagged": bool(alignment.flagged),
            "subject_to_mni": np.round(alignment.subject_to_mni, 6).tolist(),
        },
        "content_check": content,
        "regions_summary": regions_summary,
        "regions_error": regions_error,
        "timings_s": timings,
        "peak_rss_gb_after": dict(timer.peak_rss_gb),
        "device": device if method == "model" else "cpu",
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return SegmentationResult(
        probseg=probseg_img,
        mask=mask_img,
        brain_mask=brain_img,
        lesion_ml=lesion_ml,
        etiv_ml=float(prepared.etiv_ml),
        alignment=alignment,
        regions=regions_table,
        lesions=lesions,
        metadata=metadata,
    )


def _thresholds(threshold: float, min_lesion_mm3: float, details: dict, max_cortex_contact: float | None) -> dict:
    from wmhkit.preprocess import QUALITY_THRESHOLD
    from wmhkit.segmentation import atlas, cortex

    out = {
        "probability": threshold,
        "min_lesion_mm3": min_lesion_mm3,
        "envelope_wm_prior": atlas.ENVELOPE_WM_PRIOR,
        "envelope_dilation_mm": atlas.ENVELOPE_DILATION_MM,
        "alignment_quality_min": QUALITY_THRESHOLD,
    }
    if max_cortex_contact is not None:  # the network's cortex-contact rule
        out.update(max_cortex_contact=max_cortex_contact, cortex_dark_below=cortex.DARK_BELOW,
                   cortex_attached_ml=details.get("cortex_attached_ml"))
    elif details:
        out["baseline"] = details
    return out


def segment_file(path, out_dir, *, stem: str | None = None, **options) -> dict:
    """Segment one T1 file and write its outputs; returns the ``<stem>_wmh.json`` content.

    Parameters
    ----------
    path : str or os.PathLike
        The T1 image file.
    out_dir : str or os.PathLike
        Output folder (created if missing).
    stem : str, optional
        Output file stem; default the input's name without its ending.
    **options
        Passed to :func:`segment` (``method``, ``model``, ``threshold``, ``min_lesion_mm3``,
        ``device``, ``regions``, ``subject``, ``force``, ...).

    Returns
    -------
    dict
        The JSON summary, with the names of the written files under ``"outputs"``.
    """
    result = segment(path, **options)
    result.save(out_dir, stem=stem)
    return result.summary()
