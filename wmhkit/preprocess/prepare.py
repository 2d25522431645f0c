"""One call that prepares a T1 image for segmentation: align, normalise, mask, eTIV."""

from __future__ import annotations

import dataclasses
import logging
import time

import nibabel as nib
import numpy as np

from wmhkit.io import ImgLike, check_img, img_label, new_img_like
from wmhkit.preprocess.alignment import MNIAlignment, align_to_mni
from wmhkit.preprocess.brainmask import compute_brain_mask
from wmhkit.preprocess.etiv import estimate_etiv_ml
from wmhkit.preprocess.intensity import NORMALISED_MAX, intensity_levels, scale_intensity
from wmhkit.preprocess.resampling import resample_array
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, TEMPLATE_SHAPE, template_brain_bounds
from wmhkit.preprocess.working_grid import WorkingGrid, to_working_grid

__all__ = ["PreparedT1", "prepare_t1", "mni_t1_region", "normalised_t1_mni"]

logger = logging.getLogger(__name__)

#: Margin (mm) around the template brain's bounding box inside which ``t1_mni`` is sampled.
MNI_BOX_MARGIN_MM = 10.0


@dataclasses.dataclass
class PreparedT1:
    """A T1 image made ready for segmentation.

    Attributes
    ----------
    img : nibabel.Nifti1Image
        The checked input image (its grid is the output grid of every subject-space result).
    alignment : MNIAlignment
        Affine alignment to MNI152.
    brain_mask : nibabel.Nifti1Image
        uint8 brain mask on the input grid.
    etiv_ml : float
        Estimated total intracranial volume (mL).
    t1_mni : nibabel.Nifti1Image or None
        Intensity-normalised T1 (float32, white matter 1.0, background 0, clipped to 0-2) on the
        MNI 1 mm grid (197 x 233 x 189); sampled within 10 mm of the template brain's bounding
        box, 0 beyond it. None when ``prepare_t1(..., mni_t1=False)``.
    timings : dict
        Wall time of each stage in seconds: ``check``, ``working_grid`` (fine inputs only),
        ``align``, ``intensity``, ``brain_mask``, ``etiv``, ``resample_mni``, ``total``.
    intensity_levels : tuple of float
        ``(background, white_matter)`` intensities of the input, in its own units.
    etiv_source : str
        Who measured ``etiv_ml``: "wmhkit" (:mod:`wmhkit.preprocess.etiv`), or "freesurfer" when
        ``segment(aseg=...)`` found FreeSurfer's ``aseg.stats``.
    etiv_ml_wmhkit : float or None
        wmhkit's own eTIV (mL) when ``etiv_ml`` comes from elsewhere, else None.
    input_img : nibabel.Nifti1Image or None
        The checked input when ``img`` is its working-grid copy (``prepare_t1(...,
        working_grid=True)`` on voxels finer than 0.85 mm: :mod:`wmhkit.preprocess.working_grid`),
        else None (``img`` is the input).
    working : WorkingGrid or None
        How the working grid sits in the input grid (None when ``input_img`` is None).
    """

    img: nib.Nifti1Image
    alignment: MNIAlignment
    brain_mask: nib.Nifti1Image
    etiv_ml: float
    t1_mni: nib.Nifti1Image
    timings: dict
    intensity_levels: tuple = (0.0, 1.0)
    etiv_source: str = "wmhkit"
    etiv_ml_wmhkit: float | None = None
    input_img: nib.Nifti1Image | None = None
    working: WorkingGrid | None = None


def mni_t1_region() -> tuple[slice, slice, slice]:
    """Slices of the MNI 1 mm grid where the normalised T1 is sampled: the template brain's bounding
    box widened by :data:`MNI_BOX_MARGIN_MM`, clipped to the grid (about half of it)."""
    low, high = template_brain_bounds(MNI_BOX_MARGIN_MM)
    start = np.clip(np.floor(low).astype(int), 0, None)
    stop = np.minimum(np.ceil(high).astype(int) + 1, TEMPLATE_SHAPE)
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop))


def normalised_t1_mni(data: np.ndarray, affine: np.ndarray, alignment: MNIAlignment, levels: tuple,
                      *, label: str = "the image") -> np.ndarray:
    """The normalised T1 (white matter 1.0, clipped to 0-2) on :func:`mni_t1_region` of the MNI grid.

    Parameters
    ----------
    data, affine : numpy.ndarray
        The input's voxels and voxel-to-world affine.
    alignment : MNIAlignment
        Its alignment to MNI152.
    levels : tuple of float
        ``(background, white_matter)`` intensities of ``data`` (``PreparedT1.intensity_levels``).
    label : str, default "the image"
        Names the image in errors.

    Returns
    -------
    numpy.ndarray
        float32, the shape of the region; trilinear, 0 outside the input's field of view.
    """
    region = mni_t1_region()
    region_affine = TEMPLATE_AFFINE.copy()
    region_affine[:3, 3] += [s.start for s in region]
    raw = resample_array(data, affine, tuple(s.stop - s.start for s in region), region_affine, alignment.mni_to_subject,
                         cval=levels[0])
    return scale_intensity(raw, *levels, label=label, clip_max=NORMALISED_MAX)


def prepare_t1(img: ImgLike, *, alignment: MNIAlignment | None = None, mni_t1: bool = True,
               working_grid: bool = False) -> PreparedT1:
    """Check, align to MNI, normalise, mask and measure a T1 image in one call.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        A 3D T1-weighted image (skull-on or skull-stripped, any orientation and dtype).
    alignment : MNIAlignment, optional
        A known alignment to reuse (e.g. from an earlier run); computed when omitted.
    mni_t1 : bool, default True
        Also sample the normalised T1 onto the MNI grid; False leaves ``t1_mni`` None (the
        network on the subject's own voxels does not need it).
    working_grid : bool, default False
        Sample an input with voxels finer than 0.85 mm once onto its working grid of about 1 mm
        along its own axes (:func:`wmhkit.preprocess.working_grid.to_working_grid`) and prepare
        that (``PreparedT1.img``; the input is kept as ``input_img``). Other inputs are used as
        they are.

    Returns
    -------
    PreparedT1
        The checked image (or its working-grid copy), its alignment, brain mask, eTIV, the
        normalised T1 on the MNI 1 mm grid and per-stage timings (seconds).

    Raises
    ------
    wmhkit.errors.InputImageError
        When ``img`` is not a usable 3D image or has no detectable white matter.
    """
    timings: dict[str, float] = {}
    start = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    checked = check_img(img)
    lap("check")
    source = working = None
    if working_grid:
        sampled = to_working_grid(checked)
        if sampled is not None:  # the input is kept for the outputs; every step below reads the working copy
            source, (checked, working) = checked, sampled
            lap("working_grid")
    data = np.asanyarray(checked.dataobj)
    if alignment is None:
        alignment = align_to_mni(checked)
    lap("align")
    levels = intensity_levels(data, checked.affine, alignment)
    lap("intensity")
    mask = new_img_like(checked, compute_brain_mask(data, checked.affine, alignment, levels))
    lap("brain_mask")
    etiv_ml = estimate_etiv_ml(alignment)
    lap("etiv")
    t1_mni = None
    if mni_t1:
        full = np.zeros(TEMPLATE_SHAPE, dtype=np.float32)  # background normalises to 0
        full[mni_t1_region()] = normalised_t1_mni(data, checked.affine, alignment, levels, label=img_label(img))
        t1_mni = nib.Nifti1Image(full, TEMPLATE_AFFINE.copy())
        t1_mni.set_sform(TEMPLATE_AFFINE, 4)
        t1_mni.set_qform(TEMPLATE_AFFINE, 4)
        lap("resample_mni")
    timings["total"] = time.perf_counter() - start
    logger.info("prepared %s in %.2f s (%s)", img_label(img), timings["total"], {k: round(v, 2) for k, v in timings.items()})
    return PreparedT1(checked, alignment, mask, etiv_ml, t1_mni, timings, levels, input_img=source, working=working)
