"""Is this a brain T1? A check run right after the MNI alignment, before any segmentation.

A file can be a perfectly valid image and still be the wrong thing: a FLAIR, T2 or proton-
density image given as the T1, a volume of noise, a box. Segmenting it gives numbers that look
like results. This module measures, through the subject's MNI alignment, the median intensity
where the template is confidently white matter, cortical grey matter and ventricular CSF, and
refuses the image when

* its contrast is not T1-like: white matter not brighter than grey matter by at least
  :data:`WM_GM_CONTRAST_MIN`, or CSF not darker than grey matter by at least
  :data:`GM_CSF_CONTRAST_MIN` (both as shares of the brightest of the three tissues above the
  background: FLAIR, T2 and PD have grey matter at or above white matter);
* it does not hold a brain: MNI alignment quality under :data:`QUALITY_FLOOR`, eTIV outside
  :data:`ETIV_RANGE_ML`, or most tissue samples outside the field of view.

The thresholds were calibrated on the four real heads of ``../shared/data/real_t1``, T1 and
FLAIR phantoms of :mod:`wmhkit.synth` and images made wrong on purpose (noise, constant boxes,
T2- and PD-like renderings, shuffled voxels): ``benchmarks/content_check.py`` and its table
``benchmarks/results/content_check.md``. ``force=True`` (``--force``) processes a refused image
anyway; the override is recorded.

Limitation: tissues are read through the affine MNI alignment, so the check is only as good as
that alignment. On 2 of 12 calibration skull-on 2 mm phantoms the alignment itself fails (12-16 mm
from the true map, quality 0.62-0.63): there one T1 was refused (eTIV 3519 mL) and one FLAIR read
T1-like (contrast +0.26) and passed. Every phantom the tests, demo and benchmarks segment passes.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from scipy import ndimage

from wmhkit.errors import InputImageError
from wmhkit.io import img_label
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, template_data

__all__ = [
    "WM_GM_CONTRAST_MIN",
    "GM_CSF_CONTRAST_MIN",
    "QUALITY_FLOOR",
    "ETIV_RANGE_ML",
    "INSIDE_MIN",
    "tissue_statistics",
    "content_reasons",
    "check_brain_t1",
]

logger = logging.getLogger(__name__)

#: Smallest ``(WM - GM) / (brightest tissue - background)`` of a T1 (medians of the samples).
#: Measured (benchmarks/results/content_check.md): real heads 0.22-0.45, T1 phantoms 0.31-0.48
#: (56, 2 and 1 mm); FLAIR phantoms -0.16 to 0.01 when aligned, T2/PD-like renderings and
#: inverted real heads -0.28 to -0.02, noise, boxes and shuffled voxels -0.01 to 0.02.
WM_GM_CONTRAST_MIN = 0.08
#: Smallest ``(GM - CSF) / (brightest tissue - background)`` of a T1: CSF darkest. Real heads
#: 0.38-0.44, aligned T1 phantoms 0.21-0.50; T2-like renderings -0.47 to -0.35, noise and
#: boxes -0.01 to 0.01.
GM_CSF_CONTRAST_MIN = 0.1
#: MNI alignment quality (:func:`wmhkit.preprocess.alignment.alignment_quality`, 0-1) below
#: which an image is taken not to hold a brain. Real heads 0.74-0.90, aligned T1 phantoms
#: 0.80-0.98; noise 0.12-0.22, shuffled voxels 0.22 (boxes and ellipsoids reach 0.40-0.55 and
#: are refused for their contrast). :data:`wmhkit.preprocess.QUALITY_THRESHOLD` (0.5) only warns.
QUALITY_FLOOR = 0.4
#: eTIV (mL) outside which a head is implausible: real heads 1429-1863 mL, aligned T1 phantoms
#: 1373-2620 mL (their heads are drawn up to 2819 mL); noise 3305-4239 mL, a small box 247 mL.
#: (The cohort table flags eTIV outside 900-2300 mL for a look; this only refuses what cannot
#: be an adult head.)
ETIV_RANGE_ML = (600.0, 3000.0)
#: Smallest share of the tissue samples that must fall inside the field of view.
INSIDE_MIN = 0.5
_N_SAMPLES = 4000
#: Templates maps and thresholds of the three tissue samples (probability on the 2 mm grid).
_TISSUES = (("wm", "wm", 0.95), ("gm", "gm", 0.7), ("csf", "csf", 0.8))
#: MNI box (mm) holding the lateral ventricles: the CSF sample comes from inside it only (sulcal
#: CSF is thin and shares voxels with cortex and dura).
_VENTRICLE_BOX_MM = ((-35.0, 35.0), (-50.0, 35.0), (-5.0, 35.0))


@functools.lru_cache(maxsize=1)
def _tissue_points_mni() -> dict[str, np.ndarray]:
    """MNI mm coordinates of confident white-matter, cortex and ventricle voxels (seeded samples, kept on disk)."""
    from wmhkit.io import cached_array

    # One array on disk: the x, y, z columns and the tissue's index in _TISSUES.
    table = cached_array("templates", f"content_check_points_{_N_SAMPLES}", _draw_tissue_points)
    return {name: table[table[:, 3] == index, :3] for index, (name, _, _) in enumerate(_TISSUES)}


def _draw_tissue_points() -> np.ndarray:
    rng = np.random.default_rng(0)
    points = {}
    for name, kind, threshold in _TISSUES:
        # Every second voxel (2 mm); eroded so that a small misalignment does not mix tissues.
        probability = template_data(kind)[::2, ::2, ::2]
        confident = probability > threshold
        if name != "csf":
            confident = ndimage.binary_erosion(confident)
        voxels = 2 * np.argwhere(confident)
        mm = voxels @ TEMPLATE_AFFINE[:3, :3].T + TEMPLATE_AFFINE[:3, 3]
        low, high = np.array(_VENTRICLE_BOX_MM).T
        central = np.all((mm >= low) & (mm <= high), axis=1)
        if name == "csf":
            mm = mm[central]
        elif name == "gm":  # cortex only: deep grey matter is brighter on a T1
            mm = mm[~central]
        points[name] = mm[rng.choice(len(mm), size=min(_N_SAMPLES, len(mm)), replace=False)]
    return np.concatenate([np.c_[points[name], np.full(len(points[name]), float(index))]
                           for index, (name, _, _) in enumerate(_TISSUES)])


def tissue_statistics(data: np.ndarray, affine: np.ndarray, mni_to_subject: np.ndarray, background: float) -> dict:
    """Tissue intensities of a subject read through its MNI alignment, and their contrasts.

    Parameters
    ----------
    data : numpy.ndarray
        3D voxels (any numeric dtype).
    affine : (4, 4) array
        Voxel-to-world affine of ``data`` (mm).
    mni_to_subject : (4, 4) array
        MNI mm -> subject world mm (``MNIAlignment.mni_to_subject``).
    background : float
        Background intensity (e.g. the 1st percentile, ``PreparedT1.intensity_levels[0]``).

    Returns
    -------
    dict
        ``wm``, ``gm``, ``csf`` (medians, input units), ``inside`` (smallest share of a
        tissue's samples inside the field of view), ``wm_gm_contrast`` and ``gm_csf_contrast``
        (differences over the brightest tissue's height above ``background``; NaN when
        nothing rises above it).

    Examples
    --------
    A T1-like image on the template grid (identity alignment): white 1.0, grey 0.6, CSF 0.2.

    >>> from wmhkit.preprocess.templates import template_data
    >>> t1 = 1.0 * template_data("wm") + 0.6 * template_data("gm") + 0.2 * template_data("csf")
    >>> stats = tissue_statistics(t1, TEMPLATE_AFFINE, np.eye(4), 0.0)
    >>> bool(stats["wm_gm_contrast"] > 0.3), bool(stats["gm_csf_contrast"] > 0.3), stats["inside"]
    (True, True, 1.0)
    """
    to_voxel = np.linalg.inv(np.asarray(affine, float)) @ np.asarray(mni_to_subject, float)
    shape = np.asarray(data.shape[:3])
    medians, inside_shares = {}, []
    for name, points in _tissue_points_mni().items():
        voxels = (points @ to_voxel[:3, :3].T + to_voxel[:3, 3]).T
        inside = np.all((voxels >= 0) & (voxels <= shape[:, None] - 1), axis=0)
        inside_shares.append(float(inside.mean()))
        values = ndimage.map_coordinates(data, voxels[:, inside], order=1, output=np.float64, prefilter=False)
        medians[name] = float(np.median(values)) if values.size else float("nan")
    height = max(medians.values()) - float(background) if all(np.isfinite(list(medians.values()))) else float("nan")
    usable = np.isfinite(height) and height > 0
    return {
        **{name: round(value, 6) for name, value in medians.items()},
        "background": float(background),
        "inside": round(min(inside_shares), 4),
        "wm_gm_contrast": round((medians["wm"] - medians["gm"]) / height, 4) if usable else float("nan"),
        "gm_csf_contrast": round((medians["gm"] - medians["csf"]) / height, 4) if usable else float("nan"),
    }


def content_reasons(stats: dict, quality: float, etiv_ml: float) -> list[str]:
    """Why an image is not a brain T1 (empty when it passes), as short phrases.

    Parameters
    ----------
    stats : dict
        From :func:`tissue_statistics`.
    quality : float
        MNI alignment quality (0-1).
    etiv_ml : float
        Estimated total intracranial volume (mL).

    Examples
    --------
    >>> good = {"inside": 1.0, "wm_gm_contrast": 0.3, "gm_csf_contrast": 0.4}
    >>> content_reasons(good, 0.8, 1500.0)
    []
    >>> content_reasons({**good, "wm_gm_contrast": -0.2}, 0.8, 1500.0)
    ['white matter is not brighter than grey matter (contrast -0.20, a T1 has at least 0.08)']
    """
    reasons = []
    low_ml, high_ml = ETIV_RANGE_ML
    wm_gm, gm_csf = stats["wm_gm_contrast"], stats["gm_csf_contrast"]
    # "not x >= floor" so that NaN (nothing measurable) never passes.
    if not stats["inside"] >= INSIDE_MIN:
        reasons.append(f"the brain the alignment found lies mostly outside the field of view "
                       f"({stats['inside']:.0%} inside)")
    if not quality >= QUALITY_FLOOR:
        reasons.append(f"it does not match a brain (MNI alignment quality {quality:.2f}, below {QUALITY_FLOOR:g})")
    if not low_ml <= etiv_ml <= high_ml:
        reasons.append(f"its intracranial volume would be {etiv_ml:.0f} mL (plausible: {low_ml:.0f}-{high_ml:.0f} mL)")
    if not wm_gm >= WM_GM_CONTRAST_MIN:
        reasons.append(f"white matter is not brighter than grey matter (contrast {wm_gm:.2f}, a T1 has at least "
                       f"{WM_GM_CONTRAST_MIN:g})")
    if not gm_csf >= GM_CSF_CONTRAST_MIN:
        reasons.append(f"CSF is not the darkest tissue (grey-CSF contrast {gm_csf:.2f}, a T1 has at least "
                       f"{GM_CSF_CONTRAST_MIN:g})")
    return reasons


def check_brain_t1(prepared, *, force: bool = False) -> dict:
    """Refuse an image that is not a brain T1, or record why it was processed anyway.

    Parameters
    ----------
    prepared : wmhkit.preprocess.PreparedT1
        The checked image, its alignment, eTIV and intensity levels (:func:`prepare_t1`).
    force : bool, default False
        Process a refused image anyway (``--force``): a warning is logged and the override is
        recorded in the returned dictionary (``forced: true``).

    Returns
    -------
    dict
        For ``<stem>_wmh.json``: ``passed``, ``forced``, ``reasons``, the tissue statistics of
        :func:`tissue_statistics`, ``alignment_quality``, ``etiv_ml`` and the ``rules`` applied.

    Raises
    ------
    wmhkit.errors.InputImageError
        When the image is not a brain T1 and ``force`` is False; one sentence names the file,
        says why and what to do.
    """
    img, alignment = prepared.img, prepared.alignment
    data = np.asanyarray(img.dataobj)
    stats = tissue_statistics(data, img.affine, alignment.mni_to_subject, prepared.intensity_levels[0])
    quality, etiv_ml = float(alignment.quality), float(prepared.etiv_ml)
    reasons = content_reasons(stats, quality, etiv_ml)
    label = img_label(img)
    logger.info("content check of %s: %s; alignment quality %.3f, eTIV %.0f mL", label,
                {k: stats[k] for k in ("wm_gm_contrast", "gm_csf_contrast", "inside")}, quality, etiv_ml)
    if reasons and not force:
        raise InputImageError(
            f"Input image {label} does not look like a brain T1 (or its alignment to MNI failed): "
            f"{'; '.join(reasons)}; give the T1-weighted image of a head, or use --force (force=True) to "
            "process it anyway."
        )
    if reasons:
        logger.warning("Input image %s does not look like a brain T1 (%s); processed anyway because of --force.",
                       label, "; ".join(reasons))
    return {
        "passed": not reasons,
        "forced": bool(reasons and force),
        "reasons": reasons,
        **stats,
        "alignment_quality": round(quality, 4),
        "etiv_ml": round(etiv_ml, 2),
        "rules": {
            "wm_gm_contrast_min": WM_GM_CONTRAST_MIN,
            "gm_csf_contrast_min": GM_CSF_CONTRAST_MIN,
            "alignment_quality_floor": QUALITY_FLOOR,
            "etiv_range_ml": list(ETIV_RANGE_ML),
            "inside_min": INSIDE_MIN,
        },
    }
