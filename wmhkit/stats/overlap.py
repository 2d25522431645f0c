"""Segmentation agreement metrics exactly as the MICCAI 2017 WMH segmentation challenge defines them.

The challenge's ``evaluation.py`` (wmh.isi.uu.nl) scores a result against a reference label
image in which 1 = WMH and 2 = other pathology; voxels labelled 2 are removed from the result
before scoring, and result voxels count when their value is >= 0.5. Its five metrics:

* **Dice** ``2 |R & P| / (|R| + |P|)``.
* **HD95** (mm): boundaries are each mask minus its erosion *in-plane* (3x3 square in the first
  two voxel axes, image border counted as foreground); the 95th percentile of the distances
  from every boundary voxel of one mask to the nearest boundary voxel of the other, in world
  mm, taken in both directions, and the larger of the two. NaN when either mask is empty.
* **AVD** (%): ``|V_P - V_R| / V_R * 100``.
* **Lesion recall**: lesions are 3D connected components (26-connectivity); the fraction of
  reference lesions touched by the result. 1 when the reference has none.
* **Lesion F1**: with precision = the fraction of result components touching the reference
  (1 when there are none); 0 when precision + recall is 0.

Everything is numpy/scipy; this module never imports torch (training and segmentation
benchmarks call it).
"""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from wmhkit.errors import InputImageError, OptionError
from wmhkit.io import check_img

__all__ = [
    "absolute_volume_difference",
    "dice",
    "evaluate_segmentation",
    "hausdorff95",
    "lesion_detection",
]

logger = logging.getLogger(__name__)

#: 26-connectivity: lesions touching at a corner are one lesion (SimpleITK FullyConnected).
_FULLY_CONNECTED = np.ones((3, 3, 3), dtype=bool)
#: In-plane 3x3 square, no extent along the third axis (SimpleITK BinaryErode radius (1, 1, 0)).
_INPLANE_SQUARE = np.ones((3, 3, 1), dtype=bool)


def _as_masks(reference, prediction, spacing_mm=None, ignore_label: int | None = 2):
    """Reference and prediction as boolean arrays on one grid, plus the voxel-to-mm affine."""
    arrays, affine = [], None
    for name, item in (("reference", reference), ("prediction", prediction)):
        if isinstance(item, (np.ndarray, list)):
            data = np.asarray(item)
            if data.ndim != 3:
                raise InputImageError(f"The {name} array must be 3D, not {data.ndim}D.")
            arrays.append(data.astype(float))
        else:
            img = check_img(item, min_extent_mm=0, check_voxels=False)
            arrays.append(np.asarray(img.dataobj, dtype=float))
            if affine is None:
                affine = img.affine
            elif not np.allclose(affine, img.affine, atol=1e-3):
                raise InputImageError("The prediction and reference images have different affines; resample one onto the other.")
    if arrays[0].shape != arrays[1].shape:
        raise InputImageError(f"The reference {arrays[0].shape} and prediction {arrays[1].shape} shapes differ; resample one onto the other.")
    if affine is None:
        spacing = np.ones(3) if spacing_mm is None else np.broadcast_to(np.asarray(spacing_mm, dtype=float), (3,))
        if np.any(spacing <= 0):
            raise OptionError(f"spacing_mm={spacing_mm} must be positive voxel sizes in mm.")
        affine = np.diag([*spacing, 1.0])
    elif spacing_mm is not None:
        raise OptionError("spacing_mm is only for arrays; images carry their voxel size in the affine.")
    ref_values, pred_values = arrays
    reference_mask = np.isclose(ref_values, 1.0) if ignore_label is not None else ref_values > 0.5
    prediction_mask = pred_values >= 0.5
    if ignore_label is not None:
        prediction_mask &= ~np.isclose(ref_values, float(ignore_label))
    return reference_mask, prediction_mask, affine


def dice(reference, prediction, *, ignore_label: int | None = 2) -> float:
    """Dice overlap ``2 |R & P| / (|R| + |P|)``; 1.0 when both masks are empty.

    Parameters
    ----------
    reference, prediction : nibabel image, path or 3D array
        Reference labels (1 = lesion, ``ignore_label`` = excluded) and prediction (>= 0.5 = lesion).
    ignore_label : int or None, default 2
        Reference label whose voxels are removed from the prediction (challenge: other pathology).

    Examples
    --------
    >>> r = np.zeros((4, 5, 6)); r[1:3, 1:3, 1:3] = 1
    >>> p = np.zeros((4, 5, 6)); p[1:3, 1:3, 1:2] = 1
    >>> round(dice(r, p), 4)
    0.6667
    """
    ref, pred, _ = _as_masks(reference, prediction, None, ignore_label)
    total = ref.sum() + pred.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(ref, pred).sum() / total)


def absolute_volume_difference(reference, prediction, *, ignore_label: int | None = 2) -> float:
    """Absolute volume difference ``|V_P - V_R| / V_R * 100`` (%); NaN for an empty reference.

    >>> r = np.zeros((4, 5, 6)); r[0:2, 0:2, 0:2] = 1
    >>> p = np.zeros((4, 5, 6)); p[0:2, 0:2, 0:3] = 1
    >>> absolute_volume_difference(r, p)
    50.0
    """
    ref, pred, _ = _as_masks(reference, prediction, None, ignore_label)
    n_ref = int(ref.sum())
    if n_ref == 0:
        return float("nan")
    return float(abs(int(pred.sum()) - n_ref) / n_ref * 100.0)


def _boundary_points_mm(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    eroded = ndimage.binary_erosion(mask, structure=_INPLANE_SQUARE, border_value=1)
    boundary = mask & ~eroded
    # a mask filling whole slices has no in-plane boundary (the border counts as foreground);
    # the challenge code fails there, wmhkit uses the mask's own voxels
    index = np.argwhere(boundary if boundary.any() else mask).astype(float)
    return index @ affine[:3, :3].T + affine[:3, 3]


def hausdorff95(reference, prediction, *, spacing_mm=None, ignore_label: int | None = 2) -> float:
    """95th-percentile Hausdorff distance between mask boundaries (mm), challenge definition.

    Parameters
    ----------
    reference, prediction : nibabel image, path or 3D array
        As for :func:`dice`.
    spacing_mm : float or 3 floats, optional
        Voxel size for array inputs (default 1 mm); images use their affine.
    ignore_label : int or None, default 2

    Returns
    -------
    float
        ``max(P95(d(R -> P)), P95(d(P -> R)))`` in mm; NaN when either mask is empty.

    Examples
    --------
    >>> r = np.zeros((6, 7, 5)); r[1:4, 1:4, 2] = 1
    >>> p = np.zeros((6, 7, 5)); p[2:5, 1:4, 2] = 1
    >>> hausdorff95(r, p, spacing_mm=(2.0, 1.0, 1.0))
    2.0
    """
    ref, pred, affine = _as_masks(reference, prediction, spacing_mm, ignore_label)
    if not ref.any() or not pred.any():
        return float("nan")
    ref_points = _boundary_points_mm(ref, affine)
    pred_points = _boundary_points_mm(pred, affine)
    d_ref_to_pred = cKDTree(ref_points).query(pred_points, k=1)[0]
    d_pred_to_ref = cKDTree(pred_points).query(ref_points, k=1)[0]
    return float(max(np.percentile(d_ref_to_pred, 95), np.percentile(d_pred_to_ref, 95)))


def lesion_detection(reference, prediction, *, ignore_label: int | None = 2) -> dict:
    """Lesion-wise recall, precision and F1 on 3D connected components (26-connectivity).

    Returns
    -------
    dict
        ``lesion_recall``, ``lesion_precision``, ``lesion_f1``, ``n_reference_lesions``,
        ``n_predicted_lesions``.

    Examples
    --------
    >>> r = np.zeros((8, 9, 5)); r[1, 1, 1] = 1; r[5, 5, 2] = 1
    >>> p = np.zeros((8, 9, 5)); p[1, 1, 1] = 1; p[2, 2, 2] = 1; p[6, 7, 3] = 1
    >>> d = lesion_detection(r, p)
    >>> d["lesion_recall"], d["lesion_precision"], d["n_predicted_lesions"]  # (1,1,1)-(2,2,2) touch at a corner
    (0.5, 0.5, 2)
    """
    ref, pred, _ = _as_masks(reference, prediction, None, ignore_label)
    ref_labels, n_ref = ndimage.label(ref, structure=_FULLY_CONNECTED)
    pred_labels, n_pred = ndimage.label(pred, structure=_FULLY_CONNECTED)
    detected = len(np.unique(ref_labels[pred & (ref_labels > 0)]))
    true_detections = len(np.unique(pred_labels[ref & (pred_labels > 0)]))
    recall = 1.0 if n_ref == 0 else detected / n_ref
    precision = 1.0 if n_pred == 0 else true_detections / n_pred
    f1 = 0.0 if precision + recall == 0 else 2.0 * precision * recall / (precision + recall)
    return {
        "lesion_recall": float(recall),
        "lesion_precision": float(precision),
        "lesion_f1": float(f1),
        "n_reference_lesions": int(n_ref),
        "n_predicted_lesions": int(n_pred),
    }


def evaluate_segmentation(reference, prediction, *, spacing_mm=None, ignore_label: int | None = 2) -> dict:
    """All challenge metrics at once, plus both volumes.

    Parameters
    ----------
    reference, prediction : nibabel image, path or 3D array
        Reference labels (1 = WMH, 2 = ignored) and prediction (mask or probability >= 0.5).
    spacing_mm : float or 3 floats, optional
        Voxel size for array inputs (default 1 mm).
    ignore_label : int or None, default 2

    Returns
    -------
    dict
        ``dice``, ``hd95_mm``, ``avd_percent``, ``lesion_recall``, ``lesion_precision``,
        ``lesion_f1``, ``n_reference_lesions``, ``n_predicted_lesions``, ``reference_ml``,
        ``prediction_ml``.
    """
    ref, pred, affine = _as_masks(reference, prediction, spacing_mm, ignore_label)
    # the masks are already binary; pass them on with the affine so each metric sees the same grid
    ref_img = nib.Nifti1Image(ref.astype(np.uint8), affine)
    pred_img = nib.Nifti1Image(pred.astype(np.uint8), affine)
    voxel_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
    out = {
        "dice": dice(ref_img, pred_img, ignore_label=None),
        "hd95_mm": hausdorff95(ref_img, pred_img, ignore_label=None),
        "avd_percent": absolute_volume_difference(ref_img, pred_img, ignore_label=None),
    }
    out.update(lesion_detection(ref_img, pred_img, ignore_label=None))
    out["reference_ml"] = float(ref.sum() * voxel_ml)
    out["prediction_ml"] = float(pred.sum() * voxel_ml)
    return out
