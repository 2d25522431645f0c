"""Two-step label cleaning: score each training case's label against the step-1 model, flag outliers.

Agreement of a case: the Dice overlap between ``A(p) > 0.5`` -- the step-1 prediction mapped
onto the label's thick-slice grid by the forward model, thresholded as the phantoms' labels are
made -- and the label ``y > 0.5``, over the label voxels inside the MNI brain box (a perfect p
scores 1). Disagreement ``d = 1 - agreement``.

Rule (documented, used by :func:`flag_outliers`): with ``med`` the median of d over the training
cases and ``mad`` its median absolute deviation, the robust z-score is
``z = (d - med) / (1.4826 * max(mad, 0.02))``; a case is flagged when ``z > z_threshold``
(default 2.5). The floor on the MAD keeps a set of near-perfect labels from flagging cases over
tiny differences. The reason recorded compares the volumes of y and A(p): label volume below
2/3 of the predicted one is "label misses lesions the model finds", above 3/2 is "label has
lesions the model does not find", otherwise "label displaced from the prediction
(mis-registration or shifted label)".
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import ndimage

from wmhkit.train.cases import load_case

__all__ = ["case_agreement", "score_cases", "flag_outliers", "case_weights"]

logger = logging.getLogger(__name__)

_MAD_FLOOR = 0.02


def case_agreement(prob: np.ndarray, case) -> dict:
    """Dice of ``A(p) > 0.5`` against the label (and the soft Dice), with both volumes in label voxels."""
    from wmhkit.forward import thick_slice_average_where

    geometry = case.geometry
    label = np.asarray(case.label, dtype=np.float32)
    label_to_net = np.linalg.inv(geometry.net_to_label)
    # Only label voxels near lesions (labelled or predicted) can hold a non-zero A(p) or y.
    near = ndimage.binary_dilation(prob > 0.02, iterations=4)
    idx = np.indices(label.shape).reshape(3, -1).T.astype(np.float64)
    centres = np.rint(idx @ label_to_net[:3, :3].T + label_to_net[:3, 3]).astype(np.int64)
    inside = np.all((centres >= 0) & (centres < np.asarray(prob.shape)), axis=1)
    mask = np.zeros(label.size, dtype=bool)
    mask[inside] = near[tuple(centres[inside].T)]
    mask = mask.reshape(label.shape) | (label > 0.5)
    spacing = np.sqrt((label_to_net[:3, :3] ** 2).sum(axis=0))
    mapped = thick_slice_average_where(
        prob.astype(np.float32), np.eye(4), label.shape, label_to_net, mask, slice_axis=geometry.slice_axis,
        thickness_mm=float(geometry.thickness_fraction * spacing[geometry.slice_axis]), step_mm=0.5,
    )
    y = (label > 0.5) & inside.reshape(label.shape)
    predicted = mapped > 0.5
    total = float(predicted.sum() + y.sum())
    dice = 1.0 if total == 0 else 2.0 * float((predicted & y).sum()) / total
    soft_total = float(mapped.sum() + y.sum())
    soft = 1.0 if soft_total < 1e-6 else 2.0 * float((mapped * y).sum()) / soft_total
    return {"agreement": dice, "soft_agreement": soft, "label_voxels": float(y.sum()),
            "predicted_voxels": float(predicted.sum())}


def score_cases(net, case_dirs, *, device: str = "cpu") -> pd.DataFrame:
    """Agreement of every training case with the network (one row per case)."""
    from wmhkit.train.loop import predict_case

    rows = []
    for folder in case_dirs:
        case = load_case(folder, mmap=False)
        prob = predict_case(net, case, device=device)
        rows.append({"case_id": case.case_id, "case_dir": str(folder), **case_agreement(prob, case)})
    return pd.DataFrame(rows)


def flag_outliers(scores: pd.DataFrame, z_threshold: float = 2.5) -> pd.DataFrame:
    """Add ``disagreement``, ``robust_z``, ``flagged`` and ``reason`` columns (rule in the module docstring).

    Examples
    --------
    >>> t = pd.DataFrame({"agreement": [0.8, 0.82, 0.79, 0.81, 0.2], "label_voxels": [9, 9, 9, 9, 1],
    ...                   "predicted_voxels": [9, 9, 9, 9, 9]})
    >>> flag_outliers(t)["flagged"].tolist()
    [False, False, False, False, True]
    """
    out = scores.copy()
    d = 1.0 - out["agreement"].to_numpy(dtype=float)
    med = float(np.median(d))
    mad = float(np.median(np.abs(d - med)))
    out["disagreement"] = d
    out["robust_z"] = (d - med) / (1.4826 * max(mad, _MAD_FLOOR))
    out["flagged"] = out["robust_z"] > z_threshold
    ratio = (out["label_voxels"] + 1.0) / (out["predicted_voxels"] + 1.0)
    reason = np.where(ratio < 2 / 3, "label misses lesions the model finds",
                      np.where(ratio > 3 / 2, "label has lesions the model does not find",
                               "label displaced from the prediction (mis-registration or shifted label)"))
    out["reason"] = np.where(out["flagged"], reason, "")
    return out


def case_weights(flagged: pd.DataFrame, action: str = "exclude", downweight: float = 0.2) -> np.ndarray:
    """Step-2 sampling weights: 0 (exclude) or ``downweight`` for flagged cases, 1 otherwise."""
    low = 0.0 if action == "exclude" else float(downweight)
    return np.where(flagged["flagged"].to_numpy(bool), low, 1.0)
