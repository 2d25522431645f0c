"""``wmhkit.segment``: one T1 image in, lesion probability, mask, volumes and regions out.

:func:`segment` is six stages, each a function below with explicit inputs and outputs, read top to
bottom. Each is timed (wall and CPU seconds, peak memory) into ``<stem>_wmh.json``:

1. :func:`load` -- options checked, the network loaded once per process
   (:func:`wmhkit.segmentation.load_model`), and the defaults the model declares (its space, its
   threshold, flip averaging) settled into :class:`Settings`. torch is imported only here, and
   only for ``method="model"``.
2. :func:`prepare` -- :func:`wmhkit.preprocess.prepare_t1` (input check, MNI alignment, intensity
   levels, brain mask, eTIV) and :func:`wmhkit.preprocess.check_brain_t1` (FLAIR, noise and boxes
   are refused before any output).
3. :func:`infer` -- the grid of the chosen space (:func:`wmhkit.segmentation.spaces.grid_for`: the
   subject's own voxels or the MNI brain box), the network or the classical baseline on it
   (:mod:`wmhkit.segmentation.inference`; 0 outside the white-matter envelope, the network's
   cortex-contact rule), back onto the part of the input grid that holds the envelope, 0 outside
   the brain mask.
4. :func:`postprocess` -- threshold and minimum lesion size, only inside the part of the grid that
   can hold lesions (:func:`wmhkit.segmentation.postprocess.threshold_and_clean`), lesion table.
5. :func:`quantify` -- the regional table (:func:`wmhkit.regions.quantify_subject`).
6. write -- :meth:`SegmentationResult.save` (:func:`segment_file`, ``wmhkit segment``).

An input with voxels finer than 0.85 mm is sampled once onto its working grid of about 1 mm in
stage 2 (:mod:`wmhkit.preprocess.working_grid`); stages 3 to 5 run there, and :func:`to_input`
(timed as ``to_input``) brings the probability, lesion mask and brain mask back onto the input
grid (:mod:`wmhkit.segmentation.input_grid`).

The JSON record is assembled by :mod:`wmhkit.segmentation.record`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from wmhkit.errors import OptionError
from wmhkit.segmentation.models import DEFAULT_MODEL, LoadedModel, load_model
from wmhkit.segmentation.postprocess import DEFAULT_MIN_LESION_MM3, DEFAULT_THRESHOLD, check_min_peak, check_options
from wmhkit.segmentation.record import BASELINE_VERSION, StageTimer, describe
from wmhkit.segmentation.result import SegmentationResult
from wmhkit.segmentation.spaces import SPACES, on_grid

__all__ = ["METHODS", "SPACES", "BASELINE_VERSION", "Settings", "segment", "segment_file", "load", "prepare", "infer",
           "postprocess", "quantify", "to_input"]

logger = logging.getLogger(__name__)

#: Segmentation methods: the trained network, or the classical training-free baseline.
METHODS = ("model", "baseline")


@dataclass(frozen=True)
class Settings:
    """The options of one :func:`segment` call, checked and with the model's defaults settled."""

    method: str
    space: str
    threshold: float
    min_lesion_mm3: float
    flip_average: bool
    max_cortex_contact: float
    device: str
    min_peak: float | None = None
    max_speck_mm3: float = 0.0
    #: Where the cortex-contact rule judges candidates: the model's ``cortex_judge_threshold``
    #: (else its own threshold) when that is below ``threshold``, else ``threshold``
    #: (:func:`wmhkit.segmentation.cortex.cortex_attached`).
    cortex_judge_at: float | None = None


@dataclass
class Inferred:
    """Stage 3's output: the probability on the part ``sub`` of the input grid outside which it is 0 (for a run
    on a working grid, ``on_input``: ``(sub, probability)`` sampled straight onto the input grid, when the grid
    the method ran on has a more direct way there than the working grid)."""

    sub: tuple
    probability: np.ndarray
    shape: tuple
    details: dict
    on_input: tuple | None = None


@dataclass
class Lesions:
    """Stage 4's output: the lesion mask on the input grid and its table (after :func:`to_input`,
    ``working_ml``: the working grid's lesion volume, which the tables sum to)."""

    mask: np.ndarray
    table: object
    lesion_ml: float
    count: int
    working_ml: float | None = None


@dataclass
class Regional:
    """Stage 5's output: the regional table and summary (None when not computed), or why it failed."""

    table: object = None
    summary: dict | None = None
    lesions: object = None
    error: str | None = None


def load(*, method: str, model, device: str, threshold, min_lesion_mm3, space, flip_average,
         max_cortex_contact, min_peak_probability=None, max_speck_mm3=None) -> tuple[Settings, LoadedModel | None]:
    """Stage 1: check the options, load the network (``method="model"``) and settle its defaults.

    Raises :class:`~wmhkit.errors.OptionError` for an option out of range (before anything is
    loaded) and :class:`~wmhkit.errors.ModelError` for a missing or unreadable model.
    """
    if method not in METHODS:
        raise OptionError(f"Option --method {method!r} is unknown; use 'model' or 'baseline'.")
    if space is not None and space not in SPACES:
        raise OptionError(f"Option space={space!r} is unknown; use 'subject' or 'mni'.")
    from wmhkit.segmentation.cortex import check_max_contact
    from wmhkit.segmentation.mimics import check_max_speck

    threshold, min_lesion_mm3 = check_options(threshold, min_lesion_mm3)
    max_cortex_contact = check_max_contact(max_cortex_contact)
    min_peak = check_min_peak(min_peak_probability)
    max_speck_mm3 = check_max_speck(max_speck_mm3)
    if method != "model":  # the baseline has no network to place: always the MNI grid
        return Settings(method, "mni", DEFAULT_THRESHOLD if threshold is None else threshold, min_lesion_mm3, False,
                        max_cortex_contact, "cpu", min_peak, max_speck_mm3), None
    # Loaded before the preprocessing (a missing model fails first), and not in a thread beside
    # it: importing torch there holds the GIL and slowed the preprocessing down.
    loaded = model if isinstance(model, LoadedModel) else load_model(model, device)
    flip = loaded.flip_average if flip_average is None else bool(flip_average)
    own = loaded.flip_threshold if flip else loaded.threshold  # flip-averaged maps may have their own
    if threshold is None:
        threshold = own
    if min_peak is None:
        min_peak = loaded.peak_threshold
    judge_at = min(threshold, own if flip else min(own, loaded.cortex_judge_threshold))
    return Settings(method, space or loaded.space, threshold, min_lesion_mm3, flip, max_cortex_contact, device,
                    min_peak, max_speck_mm3, judge_at), loaded


def prepare(img, *, force: bool = False, aseg=None):
    """Stage 2: the checked, aligned and measured T1 (:class:`~wmhkit.preprocess.PreparedT1`) and its content check.

    With ``aseg``, FreeSurfer's eTIV (:func:`wmhkit.regions.aseg.freesurfer_etiv`) replaces wmhkit's when found.

    Each space samples the T1 it needs itself (stage 3), so nothing is put on the MNI grid here.
    An input with voxels finer than 0.85 mm is sampled once onto its working grid of about 1 mm
    (:mod:`wmhkit.preprocess.working_grid`): ``prepared.img`` is that copy, and stages 3 to 5 run
    on it; :func:`to_input` brings the outputs back.
    """
    from wmhkit.io import img_label
    from wmhkit.preprocess import check_brain_t1, prepare_t1

    prepared = prepare_t1(img, mni_t1=False, working_grid=True)
    content = check_brain_t1(prepared, force=force)  # FLAIR, noise, boxes: refused before any output
    if prepared.alignment.flagged:
        logger.warning("MNI alignment of %s is poor (quality %.2f); check the result by eye.",
                       img_label(prepared.img), prepared.alignment.quality)
    if aseg is not None:
        prepared = _freesurfer_etiv(prepared, aseg)
    return prepared, content


def infer(prepared, settings: Settings, loaded: LoadedModel | None) -> Inferred:
    """Stage 3: the lesion probability on the input grid (float32, 0 outside the envelope and the brain mask)."""
    from wmhkit.segmentation.inference import baseline_probability_on_grid, network_probability
    from wmhkit.segmentation.spaces import grid_for

    grid = grid_for(prepared, settings.space)
    if settings.method == "model":
        probability, details = network_probability(
            grid, loaded.net, settings.device, flip_average=settings.flip_average, threshold=settings.threshold,
            max_cortex_contact=settings.max_cortex_contact, speck_max_mm3=settings.max_speck_mm3,
            cortex_judge_at=settings.cortex_judge_at)
    else:
        probability, details = baseline_probability_on_grid(grid)
    sub, part = grid.to_input(probability)
    on_input = None if prepared.input_img is None else grid.to_image(probability, prepared.input_img)
    shape = grid.input_shape
    del grid, probability
    part[np.asanyarray(prepared.brain_mask.dataobj)[sub] == 0] = 0.0
    return Inferred(sub, part, shape, details, on_input)


def postprocess(inferred: Inferred, img, settings: Settings) -> Lesions:
    """Stage 4: threshold and minimum size inside the part of the grid that can hold lesions; the lesion table."""
    from wmhkit.io import voxel_volume_ml
    from wmhkit.segmentation.postprocess import lesion_table, threshold_and_clean

    sub, part, voxel_ml = inferred.sub, inferred.probability, voxel_volume_ml(img)
    sub_mask, labels, count = threshold_and_clean(part, voxel_ml * 1000.0, settings.threshold, settings.min_lesion_mm3,
                                                  settings.min_peak)
    sub_affine = np.asarray(img.affine, float).copy()
    sub_affine[:3, 3] += sub_affine[:3, :3] @ np.array([s.start for s in sub], float)
    table = lesion_table(labels, part, sub_affine, voxel_ml * 1000.0)
    del labels
    return Lesions(on_grid(sub, sub_mask, inferred.shape), table, float(np.count_nonzero(sub_mask) * voxel_ml), int(count))


def _freesurfer_etiv(prepared, aseg):
    """``prepared`` with FreeSurfer's eTIV (``etiv_source="freesurfer"``, wmhkit's kept) when its stats are found."""
    import dataclasses

    from wmhkit.regions.aseg import freesurfer_etiv

    etiv_ml = freesurfer_etiv(aseg)
    if etiv_ml is None:
        return prepared
    return dataclasses.replace(prepared, etiv_ml=etiv_ml, etiv_source="freesurfer", etiv_ml_wmhkit=float(prepared.etiv_ml))


def quantify(mask_img, prepared, subject: str, aseg=None) -> Regional:
    """Stage 5: the regional table (:func:`wmhkit.regions.quantify_subject`); a failure there keeps the segmentation."""
    from wmhkit.errors import WmhkitError

    try:
        from wmhkit.regions import quantify_subject
    except ImportError:
        logger.info("wmhkit.regions is not available; no regional table.")
        return Regional()
    try:
        result = quantify_subject(mask_img, prepared.img, alignment=prepared.alignment, subject=subject, aseg=aseg)
    except WmhkitError:
        raise
    except Exception as exc:  # noqa: BLE001 - a regions failure must not lose the segmentation
        logger.warning("Regional quantification failed (%s: %s); the result has no regional table.",
                       type(exc).__name__, exc)
        return Regional(error=f"{type(exc).__name__}: {exc}")
    return Regional(result.regions, dict(result.summary), getattr(result, "lesions", None))


def to_input(prepared, inferred: Inferred, lesions: Lesions, settings: Settings):
    """After stage 5, for a run on a working grid: the probability, lesion mask and brain mask on the input grid.

    Returns ``prepared`` with the input image and its brain mask (its alignment, eTIV and
    working grid kept), the probability there, and the lesions with the input-grid mask and
    volume (the tables stay those of the working grid: :mod:`wmhkit.segmentation.input_grid`).
    """
    import dataclasses

    from wmhkit.io import new_img_like, voxel_volume_ml
    from wmhkit.segmentation.input_grid import outputs_on_input

    sub, probability, mask, brain = outputs_on_input(prepared, inferred, lesions, settings.threshold)
    source = prepared.input_img
    lesion_ml = float(np.count_nonzero(mask[sub]) * voxel_volume_ml(source))
    return (dataclasses.replace(prepared, img=source, brain_mask=new_img_like(source, brain)),
            Inferred(sub, probability, tuple(source.shape[:3]), inferred.details),
            dataclasses.replace(lesions, mask=mask, lesion_ml=lesion_ml, working_ml=lesions.lesion_ml))


def segment(img, *, method: str = "model", model=DEFAULT_MODEL, threshold: float | None = None,
            min_lesion_mm3: float = DEFAULT_MIN_LESION_MM3, device: str = "cpu", regions: bool = True,
            subject: str | None = None, space: str | None = None, flip_average: bool | None = None,
            max_cortex_contact: float | None = None, force: bool = False, aseg=None,
            min_peak_probability: float | None = None, max_speck_mm3: float | None = None) -> SegmentationResult:
    """Segment white-matter hyperintensities in a 3D T1-weighted image.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        3D T1 (skull on or off, any orientation, 0.7-1.5 mm isotropic or up to 1 x 1 x 3 mm, any numeric dtype):
        a NIfTI/MGZ file, a folder holding one DICOM series or ``FOLDER@N`` (:mod:`wmhkit.io.dicom`), or an
        image. Voxels finer than 0.85 mm are sampled once onto a working grid of about 1 mm along the input's
        axes, where the stages run; the outputs go back onto the input grid (:mod:`wmhkit.segmentation.input_grid`).
    method : {"model", "baseline"}, default "model"
        The trained network, or the classical training-free baseline.
    model : str, os.PathLike or LoadedModel, default "default"
        Registry name (:func:`wmhkit.segmentation.available_models`) or ``.pt`` path.
    threshold : float, optional
        Probability at or above which a voxel is lesion; default the model's own (``LoadedModel.threshold``,
        or ``.flip_threshold`` with flip averaging; 0.5 when it declares none, and for the baseline).
    min_lesion_mm3 : float, default 5.0
        Connected lesions smaller than this (mm^3) are removed.
    device : str, default "cpu"
        Torch device for the network (``"cuda"`` where present).
    regions : bool, default True
        Compute the regional table (:func:`wmhkit.regions.quantify_subject`).
    subject : str, optional
        Label for the tables; default the input's file stem.
    space : {"mni", "subject"}, optional
        Where the network runs (:mod:`wmhkit.segmentation.spaces`): the MNI 1 mm grid or the input's own voxels;
        default the model's (``LoadedModel.space``). The baseline always runs on the MNI grid.
    flip_average : bool, optional
        Average with the network's map of the mirrored T1 (slower); default ``LoadedModel.flip_average``.
    max_cortex_contact : float, optional
        The network's lesions whose one-voxel shell touches the cortex (grey matter connected to the brain
        surface) over more than this share are removed (:mod:`wmhkit.segmentation.cortex`); default 0.2, 1 is off.
    force : bool, default False
        Segment an image that does not look like a brain T1 anyway; recorded in the JSON (``content_check``).
    aseg : str or os.PathLike, optional
        The subject's FreeSurfer aseg/aparc+aseg or SynthSeg labels: they drive the regions (:mod:`wmhkit.regions.aseg`),
        and FreeSurfer's eTIV replaces wmhkit's when ``../stats/aseg.stats`` is found (JSON ``etiv_source``).
    min_peak_probability : float, optional
        Keep a lesion only where its probability reaches this somewhere (0: off); default the model's own, if any.
    max_speck_mm3 : float, optional
        The network's lesions under this volume (mm^3) whose darkest voxels are as dark as fluid (perivascular
        spaces, lacunes) are removed (:mod:`wmhkit.segmentation.mimics`); default 0 (off), measured at 30.

    Returns
    -------
    SegmentationResult
        Probability, mask and brain mask on the input grid, volumes and eTIV (mL), alignment, tables, metadata.

    Raises
    ------
    wmhkit.errors.InputImageError, wmhkit.errors.ModelError, wmhkit.errors.OptionError
        Unusable image (or no brain T1 and ``force`` False); missing or unreadable model; option out of range.
    """
    from wmhkit.io import bids_stem, new_img_like, source_path
    timer = StageTimer()
    settings, loaded = load(method=method, model=model, device=device, threshold=threshold, min_lesion_mm3=min_lesion_mm3,
                            space=space, flip_average=flip_average, max_cortex_contact=max_cortex_contact,
                            min_peak_probability=min_peak_probability, max_speck_mm3=max_speck_mm3)
    timer.lap("load")
    prepared, content = prepare(img, force=force, aseg=aseg)
    timer.lap("prepare")
    inferred = infer(prepared, settings, loaded)
    timer.lap("infer")
    lesions = postprocess(inferred, prepared.img, settings)
    timer.lap("postprocess")
    stem = bids_stem(source_path(prepared.img) or "image")
    regional = quantify(new_img_like(prepared.img, lesions.mask), prepared, subject or stem, aseg) if regions else Regional()
    timer.lap("quantify")
    if prepared.working is not None:  # run on the working grid: the outputs go back onto the input grid
        prepared, inferred, lesions = to_input(prepared, inferred, lesions, settings)
        timer.lap("to_input")
    metadata = describe(prepared, content, settings, loaded, lesions, regional, inferred.details, timer, stem=stem,
                        subject=subject or stem)
    return _result(prepared, inferred, lesions, regional, metadata)


def _result(prepared, inferred: Inferred, lesions: Lesions, regional: Regional, metadata: dict):
    from wmhkit.io import new_img_like

    # The whole-grid probability map only now: the stages held just the part that can hold lesions. In Fortran
    # order, as NIfTI stores voxels: nibabel writes such arrays straight, others through a strided copy slice by
    # slice (0.1 s of a 1 mm head's write). The masks stay in C order: the stages read them, faster so.
    probseg = new_img_like(prepared.img, on_grid(inferred.sub, inferred.probability, inferred.shape, order="F"))
    mask_img = new_img_like(prepared.img, lesions.mask)
    return SegmentationResult(probseg=probseg, mask=mask_img, brain_mask=prepared.brain_mask,
                              lesion_ml=lesions.lesion_ml, etiv_ml=float(prepared.etiv_ml), alignment=prepared.alignment,
                              regions=regional.table, metadata=metadata,
                              lesions=lesions.table if regional.lesions is None else regional.lesions)


def segment_file(path, out_dir, *, stem: str | None = None, **options) -> dict:
    """Segment one T1 file and write its outputs; returns the ``<stem>_wmh.json`` content.

    Parameters
    ----------
    path : str or os.PathLike
        The T1 image file, or a DICOM series folder (:mod:`wmhkit.io.dicom`), whose converted
        T1 is written beside the outputs as ``<prefix>_T1w.nii.gz``.
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
    from wmhkit.io import save_converted_t1

    result = segment(path, **options)
    save_converted_t1(path, out_dir, stem)  # a DICOM input's T1, written first: masks never lack their image
    result.save(out_dir, stem=stem)
    return result.summary()
