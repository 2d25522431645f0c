"""Per-subject quality control run right after segmentation, inside the worker.

Three things per subject, all cheap next to the segmentation itself:

* a contrast check: the median T1 intensity in template white matter over that in template
  cortex, sampled through the subject's MNI alignment. A T1-weighted image has white matter
  brighter than grey matter (ratio well above 1); a FLAIR or T2 image put in by mistake has
  it darker (ratio at or below 1).
* an overlay thumbnail (PNG): axial slices of the T1 with the lesion mask in red
  (:func:`wmhkit.plotting.qc.write_thumbnail`).
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

from wmhkit.io import ImgLike, OutputPaths, check_img, save_img

__all__ = ["CONTRAST_RATIO_MIN", "alignment_from_summary", "wm_gm_ratio", "subject_qc"]

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


def alignment_from_summary(summary: dict):
    """The MNI alignment recorded in a subject's ``<stem>_wmh.json``, or None when it holds none.

    For a subject finished by an earlier run, or a processor that hands over only the JSON
    content; a subject segmented in this run hands over its alignment object instead.

    Parameters
    ----------
    summary : dict
        Flattened ``<stem>_wmh.json`` content (:func:`wmhkit.cohort.resume.flatten`).

    Returns
    -------
    wmhkit.preprocess.MNIAlignment or None

    Examples
    --------
    >>> alignment_from_summary({"alignment_subject_to_mni": np.eye(4).tolist(), "alignment_quality": 0.8}).quality
    0.8
    >>> alignment_from_summary({}) is None
    True
    """
    from wmhkit.preprocess import MNIAlignment

    # The last two keys are where earlier releases recorded it.
    for key in ("alignment_subject_to_mni", "subject_to_mni", "mni_alignment_subject_to_mni"):
        matrix = summary.get(key)
        if matrix is not None and np.asarray(matrix, dtype=float).shape == (4, 4):
            quality = summary.get("alignment_quality", summary.get("mni_alignment_quality", np.nan))
            return MNIAlignment(np.asarray(matrix, dtype=float), float(quality if quality is not None else np.nan))
    return None


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


def subject_qc(t1: ImgLike, paths: OutputPaths, alignment, thumbnail: Path, *, mask: ImgLike | None = None) -> dict:
    """Contrast ratio, thumbnail and MNI-space mask of one segmented subject.

    Everything comes in memory from the segmentation: nothing is aligned again and its JSON
    is not read back.

    Parameters
    ----------
    t1 : str, path or nibabel image
        The T1 (file, DICOM folder or image).
    paths : wmhkit.io.OutputPaths
        Its segmentation outputs (the MNI mask is written there when missing).
    alignment : wmhkit.preprocess.MNIAlignment
        The subject-to-MNI alignment the segmentation used.
    thumbnail : path
        Where the overlay PNG goes.
    mask : image-like, optional
        The lesion mask; default the ``paths.wmh_mask`` file.

    Returns
    -------
    dict
        ``wm_gm_ratio``, ``looks_t1`` (bool), ``alignment_quality``, ``thumbnail`` (file
        name) and ``mni_mask`` (file name).
    """
    from wmhkit.plotting.qc import write_thumbnail

    t1 = check_img(t1, check_voxels=False)  # segmentation has checked (and warned) already
    mask = check_img(paths.wmh_mask if mask is None else mask, check_voxels=False)
    ratio = wm_gm_ratio(t1, alignment.subject_to_mni)
    write_thumbnail(t1, mask, thumbnail)
    if not paths.mni_mask.is_file():
        mni = alignment.resample_to_mni(mask, order=0)
        mni_mask = nib.Nifti1Image(np.asarray(mni.dataobj, dtype=np.uint8), mni.affine)
        mni_mask.header.set_xyzt_units("mm")  # BIDS readers warn on unknown units
        save_img(mni_mask, paths.mni_mask)
    return {
        "wm_gm_ratio": ratio,
        "looks_t1": bool(ratio >= CONTRAST_RATIO_MIN) if np.isfinite(ratio) else None,
        "alignment_quality": float(alignment.quality),
        "thumbnail": Path(thumbnail).name,
        "mni_mask": paths.mni_mask.name,
    }
