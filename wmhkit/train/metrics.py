"""Validation metrics at 1 mm: Dice, lesion-wise F1, absolute volume difference (numpy)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["dice", "lesion_f1", "avd_percent", "segmentation_scores"]


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice overlap of two binary arrays; 1.0 when both are empty.

    >>> a = np.zeros((4, 5, 3), bool); a[:2] = True
    >>> dice(a, a), dice(a, ~a)
    (1.0, 0.0)
    """
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    total = int(pred.sum()) + int(truth.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(pred, truth).sum()) / total


def lesion_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """Lesion-wise F1: a lesion (26-connected component) counts as found when it overlaps the other mask.

    >>> t = np.zeros((9, 8, 7), bool); t[1, 1, 1] = t[6, 6, 5] = True
    >>> p = np.zeros_like(t); p[1, 1, 1] = p[4, 1, 1] = True
    >>> lesion_f1(p, t)
    0.5
    """
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    structure = np.ones((3, 3, 3), bool)
    pred_lab, n_pred = ndimage.label(pred, structure)
    true_lab, n_true = ndimage.label(truth, structure)
    if n_pred == 0 and n_true == 0:
        return 1.0
    if n_pred == 0 or n_true == 0:
        return 0.0
    found = len(np.unique(true_lab[pred & (true_lab > 0)]))
    correct = len(np.unique(pred_lab[truth & (pred_lab > 0)]))
    recall, precision = found / n_true, correct / n_pred
    return 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)


def avd_percent(pred: np.ndarray, truth: np.ndarray) -> float:
    """Absolute volume difference in % of the true volume (nan when the truth is empty).

    >>> avd_percent(np.ones(11), np.ones(10).tolist() + [0])
    10.0
    """
    true_n = int(np.asarray(truth, bool).sum())
    if true_n == 0:
        return float("nan")
    return 100.0 * abs(int(np.asarray(pred, bool).sum()) - true_n) / true_n


def segmentation_scores(prob: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict:
    """Dice, lesion F1, AVD (%) and both volumes (voxels) of ``prob > threshold`` against ``truth``."""
    pred = np.asarray(prob) > threshold
    truth = np.asarray(truth) > 0.5
    return {"dice": dice(pred, truth), "lesion_f1": lesion_f1(pred, truth), "avd_pct": avd_percent(pred, truth),
            "pred_voxels": int(pred.sum()), "true_voxels": int(truth.sum())}
