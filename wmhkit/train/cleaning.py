"""Two-step label cleaning: check each training label against the step-1 model, flag the wrong ones.

The step-1 prediction p is mapped onto the label's thick-slice grid by the forward model (A(p),
what the label should look like if p were right). Three checks compare A(p) with the label
y = label > 0.5; each catches one way FLAIR labels go wrong in practice, and each flags a case
with its own reason. Volumes are in mL on the label grid; "near" means within ``tolerance_mm``
(default 3 mm) in the slice plane and one slice across.

1. **Displaced label** (mis-registration, a label drawn on the wrong series): the in-plane shift
   of y, up to ``max_shift_mm`` (12 mm), that maximises its overlap with A(p) (sum of y * A(p),
   in mL). Flagged when that shift is at least 4 mm, it at least doubles the overlap
   (``(best + 0.02) / (at zero + 0.02) >= 2``) and the best overlap is at least 0.05 mL.
2. **Label lesions the model does not find** (spurious blobs, other pathology drawn as WMH): the
   volume of labelled lesions (connected components) of at least 0.1 mL each with A(p) below
   0.5 everywhere near them; smaller ones are left out because the step-1 model misses many
   small true lesions. Flagged when it is at least 0.5 mL and at least 5 % of the label volume.
3. **Lesions the label misses** (unfinished or dropped labels): v, the volume of confidently
   predicted lesions with no label near them (components of A(p) > 0.7 that reach 0.97 and hold
   at least 0.1 mL; the step-1 model's false positives are mostly fainter or smaller). Flagged
   when v is at least 0.4 mL, at least 25 % of the label volume plus v, and an outlier of the
   training set: robust z-score ``(v - median) / (1.4826 * max(MAD, 0.1 mL))`` above
   ``z_threshold`` (default 2.5), so that a model with many false positives flags nothing.

What the checks cannot see: a corruption that changes less of the label than the step-1
model's own errors (a few tenths of a mL, or dropped lesions on a case whose extra volume stays
within the false-positive floor of the training set). The Dice of A(p) > 0.5 against y is
kept in the table (``agreement``) for reference only: it is near 0 for small or empty labels
whatever their quality, which is why it is not the rule.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy import ndimage, signal

from wmhkit.train.cases import box_affine, load_case

__all__ = ["map_prediction", "label_voxel_mm", "label_checks", "score_cases", "flag_outliers", "case_weights"]

logger = logging.getLogger(__name__)

_MAD_FLOOR_ML = 0.1
_OVERLAP_EPS_ML = 0.02
#: Thresholds of the three checks (module docstring), chosen on synthetic phantoms
#: (benchmarks/results/train_two_step.md); change them here, not in the code below.
RULES = {
    "min_shift_mm": 4.0, "min_shift_gain": 2.0, "min_shifted_overlap_ml": 0.05,
    "min_unsupported_lesion_ml": 0.1, "min_unsupported_ml": 0.5, "min_unsupported_fraction": 0.05,
    "unlabelled_threshold": 0.7, "unlabelled_peak": 0.97, "min_unlabelled_lesion_ml": 0.1,
    "min_unlabelled_ml": 0.4, "min_unlabelled_fraction": 0.25,
}


def map_prediction(prob: np.ndarray, case) -> tuple[np.ndarray, np.ndarray]:
    """A(p) on the case's label grid, and the mask of label voxels whose centre lies in the brain box.

    Only label voxels near predicted or labelled lesions are computed (0 elsewhere), to save
    time on the whole label grid.
    """
    from wmhkit.forward import thick_slice_average_where

    geometry = case.geometry
    label = np.asarray(case.label, dtype=np.float32)
    label_to_net = np.linalg.inv(geometry.net_to_label)
    near = ndimage.binary_dilation(prob > 0.02, iterations=4)
    idx = np.indices(label.shape).reshape(3, -1).T.astype(np.float64)
    centres = np.rint(idx @ label_to_net[:3, :3].T + label_to_net[:3, 3]).astype(np.int64)
    inside = np.all((centres >= 0) & (centres < np.asarray(prob.shape)), axis=1)
    mask = np.zeros(label.size, dtype=bool)
    mask[inside] = near[tuple(centres[inside].T)]
    inside = inside.reshape(label.shape)
    # The displacement check shifts the label by up to 12 mm: A(p) must exist around it too.
    mask = mask.reshape(label.shape) | ndimage.binary_dilation(label > 0.5, iterations=4)
    spacing = np.sqrt((label_to_net[:3, :3] ** 2).sum(axis=0))
    mapped = thick_slice_average_where(
        prob.astype(np.float32), np.eye(4), label.shape, label_to_net, mask & inside,
        slice_axis=geometry.slice_axis, step_mm=0.5,
        thickness_mm=float(geometry.thickness_fraction * spacing[geometry.slice_axis]),
    )
    return mapped.astype(np.float32), inside


def label_voxel_mm(case) -> np.ndarray:
    """Label voxel size (mm) along each label axis of a training case, in the label image's own mm.

    Read from ``case.meta["label_voxel_mm"]`` (recorded by :func:`wmhkit.train.cases.make_case`).
    Cases cached before it was recorded fall back to the network grid's mm, taken as 1 mm
    voxels: off by the MNI alignment's scale, or by the subject grid's departure from 1 mm.
    """
    recorded = case.meta.get("label_voxel_mm")
    if recorded is not None:
        return np.asarray(recorded, dtype=np.float64)
    label_to_mm = box_affine()[:3, :3] @ np.linalg.inv(case.geometry.net_to_label)[:3, :3]
    return np.sqrt((label_to_mm ** 2).sum(axis=0))


def _best_inplane_shift(y: np.ndarray, mapped: np.ndarray, slice_axis: int, max_shift: list[int]):
    """In-plane shift (voxels) maximising sum(y[x + s] * mapped[x]), its overlap, and the overlap at 0."""
    axes = [a for a in range(3) if a != slice_axis]
    keep = np.argwhere(y | (mapped > 0.01))
    lo = np.maximum(keep.min(axis=0) - [max_shift[a] if a in axes else 0 for a in range(3)], 0)
    hi = np.minimum(keep.max(axis=0) + 1 + [max_shift[a] if a in axes else 0 for a in range(3)], y.shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    yc, mc = y[crop].astype(np.float32), mapped[crop]
    flipped = np.flip(yc, axis=axes)
    corr = signal.fftconvolve(mc, flipped, mode="full", axes=axes).sum(axis=slice_axis)
    # full-mode index k along an axis holds the shift s = n - 1 - k (n: crop length)
    n = [yc.shape[a] for a in axes]
    s0 = np.arange(corr.shape[0])[:, None]
    s1 = np.arange(corr.shape[1])[None, :]
    shift0, shift1 = n[0] - 1 - s0, n[1] - 1 - s1
    allowed = (np.abs(shift0) <= max_shift[axes[0]]) & (np.abs(shift1) <= max_shift[axes[1]])
    corr = np.where(allowed, corr, -np.inf)
    k = np.unravel_index(int(np.argmax(corr)), corr.shape)
    shift = [0, 0, 0]
    shift[axes[0]], shift[axes[1]] = int(n[0] - 1 - k[0]), int(n[1] - 1 - k[1])
    at_zero = float(corr[n[0] - 1, n[1] - 1])
    return shift, float(corr[k]), at_zero


def label_checks(prob: np.ndarray, case, *, tolerance_mm: float = 3.0, max_shift_mm: float = 12.0) -> dict:
    """The three label checks of the module docstring for one case (volumes in mL).

    Parameters
    ----------
    prob : numpy.ndarray
        Step-1 probabilities on the case's MNI brain box (:func:`wmhkit.train.loop.predict_case`).
    case : wmhkit.train.cases.Case
        The training case (its label and geometry).
    tolerance_mm : float, default 3.0
        In-plane distance within which a prediction explains a label voxel and vice versa.
    max_shift_mm : float, default 12.0
        Largest in-plane label displacement searched.
    """
    mapped, inside = map_prediction(prob, case)
    voxel_mm = label_voxel_mm(case)
    voxel_ml = float(np.prod(voxel_mm)) / 1000.0
    axis = case.geometry.slice_axis
    y = (np.asarray(case.label) > 0.5) & inside
    predicted = mapped > 0.5
    radius = [1 if a == axis else max(1, int(round(tolerance_mm / voxel_mm[a]))) for a in range(3)]
    box = np.ones([2 * r + 1 for r in radius], dtype=bool)

    near_prediction = ndimage.maximum_filter(mapped, footprint=box)
    components, n = ndimage.label(y)
    index = np.arange(1, n + 1)
    support = ndimage.maximum(near_prediction, components, index) if n else np.zeros(0)
    sizes_ml = np.asarray(ndimage.sum(y, components, index) if n else np.zeros(0)) * voxel_ml
    unsupported = (np.asarray(support) < 0.5) & (sizes_ml >= RULES["min_unsupported_lesion_ml"])
    unsupported_ml = float(sizes_ml[unsupported].sum())

    near_label = ndimage.binary_dilation(y, structure=box)
    confident = mapped > RULES["unlabelled_threshold"]
    p_components, p_n = ndimage.label(confident)
    p_index = np.arange(1, p_n + 1)
    if p_n:
        peak = np.asarray(ndimage.maximum(mapped, p_components, p_index))
        touches = np.asarray(ndimage.maximum(near_label, p_components, p_index)) > 0
        p_ml = np.asarray(ndimage.sum(confident, p_components, p_index)) * voxel_ml
        keep = (peak >= RULES["unlabelled_peak"]) & (p_ml >= RULES["min_unlabelled_lesion_ml"]) & ~touches
        unlabelled_ml = float(p_ml[keep].sum())
    else:
        unlabelled_ml = 0.0

    shift_mm, best, at_zero = 0.0, 0.0, 0.0
    if y.any():
        max_shift = [0 if a == axis else int(round(max_shift_mm / voxel_mm[a])) for a in range(3)]
        shift, best, at_zero = _best_inplane_shift(y, mapped, axis, max_shift)
        shift_mm = float(np.sqrt(sum((s * v) ** 2 for s, v in zip(shift, voxel_mm))))
        best, at_zero = best * voxel_ml, at_zero * voxel_ml
    total = float(predicted.sum() + y.sum())
    dice = 1.0 if total == 0 else 2.0 * float((predicted & y).sum()) / total
    return {
        "label_ml": float(y.sum()) * voxel_ml, "predicted_ml": float(predicted.sum()) * voxel_ml,
        "agreement": dice, "unsupported_label_ml": unsupported_ml, "unlabelled_prediction_ml": unlabelled_ml,
        "displacement_mm": shift_mm, "overlap_ml": at_zero, "shifted_overlap_ml": best,
    }


def score_cases(net, case_dirs, *, device: str = "cpu") -> pd.DataFrame:
    """Label checks of every training case against the network (one row per case)."""
    from wmhkit.train.loop import predict_case

    rows = []
    for folder in case_dirs:
        case = load_case(folder, mmap=False)
        prob = predict_case(net, case, device=device)
        rows.append({"case_id": case.case_id, "case_dir": str(folder), **label_checks(prob, case)})
    return pd.DataFrame(rows)


def flag_outliers(scores: pd.DataFrame, z_threshold: float = 2.5) -> pd.DataFrame:
    """Apply the three checks (module docstring); adds ``flagged``, ``reason`` and ``unlabelled_z``.

    Examples
    --------
    >>> t = pd.DataFrame({"label_ml": [2.0, 2.0, 3.0], "unsupported_label_ml": [0.1, 0.0, 1.5],
    ...                   "unlabelled_prediction_ml": [0.2, 0.3, 0.2], "displacement_mm": [0.0, 9.0, 0.0],
    ...                   "overlap_ml": [1.0, 0.1, 1.2], "shifted_overlap_ml": [1.0, 0.9, 1.2]})
    >>> flag_outliers(t)["reason"].tolist()
    ['', 'label displaced by 9 mm from the prediction', 'label has 1.5 mL of lesions the model does not find']
    """
    out = scores.copy()
    gain = (out["shifted_overlap_ml"] + _OVERLAP_EPS_ML) / (out["overlap_ml"] + _OVERLAP_EPS_ML)
    displaced = ((out["displacement_mm"] >= RULES["min_shift_mm"]) & (gain >= RULES["min_shift_gain"])
                 & (out["shifted_overlap_ml"] >= RULES["min_shifted_overlap_ml"]))
    unsupported = ((out["unsupported_label_ml"] >= RULES["min_unsupported_ml"])
                   & (out["unsupported_label_ml"] >= RULES["min_unsupported_fraction"] * out["label_ml"]))
    v = out["unlabelled_prediction_ml"].to_numpy(dtype=float)
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med)))
    out["unlabelled_z"] = (v - med) / (1.4826 * max(mad, _MAD_FLOOR_ML))
    unlabelled = ((out["unlabelled_z"] > z_threshold) & (v >= RULES["min_unlabelled_ml"])
                  & (v >= RULES["min_unlabelled_fraction"] * (out["label_ml"] + v)))
    reasons = []
    for i in range(len(out)):
        parts = []
        if displaced.iloc[i]:
            parts.append(f"label displaced by {out['displacement_mm'].iloc[i]:.0f} mm from the prediction")
        if unsupported.iloc[i]:
            parts.append(f"label has {out['unsupported_label_ml'].iloc[i]:.1f} mL of lesions the model does not find")
        if unlabelled.iloc[i]:
            parts.append(f"label misses {v[i]:.1f} mL of lesions the model finds")
        reasons.append("; ".join(parts))
    out["reason"] = reasons
    out["flagged"] = out["reason"] != ""
    return out


def case_weights(flagged: pd.DataFrame, action: str = "exclude", downweight: float = 0.2) -> np.ndarray:
    """Step-2 sampling weights: 0 (exclude) or ``downweight`` for flagged cases, 1 otherwise."""
    low = 0.0 if action == "exclude" else float(downweight)
    return np.where(flagged["flagged"].to_numpy(bool), low, 1.0)
