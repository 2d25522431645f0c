"""Per-subject quality control run right after segmentation, inside the worker.

Three things per subject, all cheap next to the segmentation itself:

* a contrast check: the median T1 intensity in template white matter over that in template
  cortex, sampled through the subject's MNI alignment. A T1-weighted image has white matter
  brighter than grey matter (ratio well above 1); a FLAIR or T2 image put in by mistake has
  it darker (ratio at or below 1).
* an overlay thumbnail (PNG): axial slices of the T1 with the lesion mask in red.
* the lesion mask in MNI space (for the cohort's lesion-frequency map) when segmentation
  has not already written it.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from wmhkit.io import OutputPaths, atomic_path, check_img, reorient_to_ras, save_img

__all__ = ["CONTRAST_RATIO_MIN", "subject_alignment", "wm_gm_ratio", "write_thumbnail", "subject_qc"]

logger = logging.getLogger(__name__)

#: White/grey matter intensity ratio below which an image does not look T1-weighted.
CONTRAST_RATIO_MIN = 1.05
_N_SAMPLES = 4000


@lru_cache(maxsize=1)
def _tissue_points_mni() -> tuple[np.ndarray, np.ndarray]:
    """MNI mm coordinates of confident white-matter and cortex voxels (a seeded sample of each)."""
    from wmhkit.preprocess import load_template

    rng = np.random.default_rng(0)
    points = []
    for kind, threshold in (("wm", 0.95), ("gm", 0.7)):
        template = load_template(kind)
        # Every second voxel (2 mm) is enough, and eroding so that a small misalignment does
        # not mix the two tissues is 8 times cheaper there.
        probability = np.asanyarray(template.dataobj)[::2, ::2, ::2]
        voxels = 2 * np.argwhere(ndimage.binary_erosion(probability > threshold))
        voxels = voxels[rng.choice(len(voxels), size=min(_N_SAMPLES, len(voxels)), replace=False)]
        points.append(nib.affines.apply_affine(template.affine, voxels))
    return points[0], points[1]


def subject_alignment(summary: dict, t1):
    """The subject's MNI alignment: from ``<stem>_wmh.json`` when recorded, else computed.

    Parameters
    ----------
    summary : dict
        Flattened ``<stem>_wmh.json`` content.
    t1 : nibabel image
        The checked input T1.

    Returns
    -------
    wmhkit.preprocess.MNIAlignment
    """
    from wmhkit.preprocess import MNIAlignment, align_to_mni

    for key in ("alignment_subject_to_mni", "subject_to_mni", "mni_alignment_subject_to_mni"):
        matrix = summary.get(key)
        if matrix is not None and np.asarray(matrix, dtype=float).shape == (4, 4):
            quality = summary.get("alignment_quality", summary.get("mni_alignment_quality", np.nan))
            return MNIAlignment(np.asarray(matrix, dtype=float), float(quality if quality is not None else np.nan))
    logger.info("Summary JSON holds no MNI alignment; aligning %s again for QC.", summary.get("input", "the T1"))
    return align_to_mni(t1)


def wm_gm_ratio(t1, subject_to_mni: np.ndarray) -> float:
    """Median T1 intensity in template white matter over that in template cortex.

    Parameters
    ----------
    t1 : nibabel image
        The subject image.
    subject_to_mni : numpy.ndarray
        4x4 affine, subject world mm -> MNI mm.

    Returns
    -------
    float
        Above 1 for T1-weighted contrast; NaN when the samples fall outside the image.
    """
    data = np.asanyarray(t1.dataobj, dtype=np.float32)
    to_voxel = np.linalg.inv(t1.affine) @ np.linalg.inv(subject_to_mni)
    medians = []
    for points in _tissue_points_mni():
        voxels = nib.affines.apply_affine(to_voxel, points).T
        inside = np.all((voxels >= 0) & (voxels <= np.array(data.shape)[:, None] - 1), axis=0)
        if inside.mean() < 0.5:
            return float("nan")
        medians.append(np.median(ndimage.map_coordinates(data, voxels[:, inside], order=1)))
    return float(medians[0] / medians[1]) if medians[1] > 0 else float("nan")


def _upsample(image: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    return np.repeat(np.repeat(image, factors[0], axis=0), factors[1], axis=1)


def write_thumbnail(t1, mask, path: Path, *, n_slices: int = 4, height_px: int = 120) -> Path:
    """Axial slices of ``t1`` side by side with ``mask`` in red, written atomically as a PNG.

    Slices are spread from 35 % to 80 % of the head's height; voxels are repeated so that
    each slice is about ``height_px`` tall and square voxels look square.
    """
    from matplotlib.image import imsave

    ras_t1 = reorient_to_ras(t1)
    t1_ras = np.asanyarray(ras_t1.dataobj, dtype=np.float32)
    mask_ras = np.asanyarray(reorient_to_ras(mask).dataobj) > 0
    low, high = np.percentile(t1_ras[t1_ras > 0], [1, 99.5]) if np.any(t1_ras > 0) else (0.0, 1.0)
    filled = np.flatnonzero((t1_ras > low).mean(axis=(0, 1)) > 0.05)
    first, last = (filled[0], filled[-1]) if len(filled) else (0, t1_ras.shape[2] - 1)
    slices = np.linspace(first + 0.35 * (last - first), first + 0.8 * (last - first), n_slices).round().astype(int)
    zooms = np.sqrt((ras_t1.affine[:3, :3] ** 2).sum(axis=0))
    repeat_y = max(1, round(height_px / t1_ras.shape[1]))
    factors = (repeat_y, max(1, round(repeat_y * zooms[0] / zooms[1])))
    panels = []
    for z in slices:
        gray = np.clip((t1_ras[:, :, z].T[::-1] - low) / max(high - low, 1e-6), 0, 1)
        rgb = np.repeat(gray[..., None], 3, axis=2)
        lesion = mask_ras[:, :, z].T[::-1]
        rgb[lesion] = 0.3 * rgb[lesion] + 0.7 * np.array([1.0, 0.1, 0.0])
        panels.append(_upsample(rgb, (factors[0], factors[1])))
    with atomic_path(path) as tmp:
        imsave(tmp, np.concatenate(panels, axis=1), format="png")
    return Path(path)


def subject_qc(input_path: str | Path, paths: OutputPaths, summary: dict, thumbnail: Path) -> dict:
    """Contrast ratio, thumbnail and MNI-space mask of one segmented subject.

    Parameters
    ----------
    input_path : str or path
        The T1 file.
    paths : wmhkit.io.OutputPaths
        Its segmentation outputs (the mask must exist).
    summary : dict
        Flattened ``<stem>_wmh.json`` content.
    thumbnail : path
        Where the overlay PNG goes.

    Returns
    -------
    dict
        ``wm_gm_ratio``, ``looks_t1`` (bool), ``alignment_quality``, ``thumbnail`` (file
        name) and ``mni_mask`` (file name).
    """
    t1 = check_img(input_path, check_voxels=False)  # segmentation has checked (and warned) already
    mask = nib.load(str(paths.wmh_mask))
    alignment = subject_alignment(summary, t1)
    ratio = wm_gm_ratio(t1, alignment.subject_to_mni)
    write_thumbnail(t1, mask, thumbnail)
    if not paths.mni_mask.is_file():
        mni = alignment.resample_to_mni(mask, order=0)
        save_img(nib.Nifti1Image(np.asarray(mni.dataobj, dtype=np.uint8), mni.affine), paths.mni_mask)
    return {
        "wm_gm_ratio": ratio,
        "looks_t1": bool(ratio >= CONTRAST_RATIO_MIN) if np.isfinite(ratio) else None,
        "alignment_quality": float(alignment.quality),
        "thumbnail": Path(thumbnail).name,
        "mni_mask": paths.mni_mask.name,
    }
