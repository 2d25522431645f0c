"""Post-processing of a lesion probability map: location envelope, threshold, minimum size.

Four documented rules turn a probability map into the lesion mask:

1. **Location.** Lesions are kept only inside the cerebral white-matter envelope
   (:func:`wmhkit.anatomy.atlas.wm_envelope_mni`); the probability is set to 0 outside it
   before it is brought back to the subject, so cortex, skull and the posterior fossa never
   carry lesions.
2. **Threshold.** Voxels with probability at or above ``threshold`` (default
   :data:`DEFAULT_THRESHOLD`, 0.5) are candidates.
3. **Cortex contact** (the network only; the baseline has its own location rules). Candidate
   lesions whose one-voxel shell touches grey matter connected to the brain surface over more
   than 20 % are set to 0 on the grid the network ran on
   (:mod:`wmhkit.segmentation.cortex`).
4. **Size.** Connected candidate clusters (26-connectivity) smaller than ``min_lesion_mm3``
   (default :data:`DEFAULT_MIN_LESION_MM3`) are removed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from wmhkit.errors import OptionError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_THRESHOLD",
    "DEFAULT_MIN_LESION_MM3",
    "check_min_peak",
    "option_number",
    "threshold_and_clean",
    "lesion_table",
    "check_options",
]

logger = logging.getLogger(__name__)

#: Default probability threshold: voxels with p >= 0.5 are lesion.
DEFAULT_THRESHOLD = 0.5
#: Default minimum lesion size (mm^3): smaller clusters are dropped (about 5 voxels at 1 mm).
DEFAULT_MIN_LESION_MM3 = 5.0


def check_options(threshold: float | None, min_lesion_mm3: float) -> tuple[float | None, float]:
    """Validate the post-processing options; returns them as floats (``threshold`` None stays None:
    the model's own threshold is used).

    Raises
    ------
    wmhkit.errors.OptionError
        When ``threshold`` is outside (0, 1) or ``min_lesion_mm3`` is negative.
    """
    try:
        threshold = None if threshold is None else float(threshold)
        min_lesion_mm3 = float(min_lesion_mm3)
    except (TypeError, ValueError):
        raise OptionError("Options --threshold and --min-lesion-mm3 must be numbers.") from None
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise OptionError(f"Option --threshold {threshold:g} must lie strictly between 0 and 1.")
    if not np.isfinite(min_lesion_mm3) or min_lesion_mm3 < 0:
        raise OptionError(f"Option --min-lesion-mm3 {min_lesion_mm3:g} must be 0 or a positive volume in mm^3.")
    return threshold, min_lesion_mm3


def option_number(value, option: str, default: float, accept, requirement: str) -> float:
    """``value`` as a float that ``accept`` takes (``default`` for None), else one-sentence OptionError.

    >>> option_number("0.3", "--max-cortex-contact", 0.2, lambda v: 0 <= v <= 1, "a share between 0 and 1")
    0.3
    """
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not accept(number):
        raise OptionError(f"Option {option} {value!r} must be {requirement}.")
    return number


def check_min_peak(min_peak: float | None) -> float | None:
    """Validate the peak-probability option (None stays None: the model's own value is used).

    Raises
    ------
    wmhkit.errors.OptionError
        When ``min_peak`` is not a number in [0, 1).
    """
    if min_peak is None:
        return None
    try:
        min_peak = float(min_peak)
    except (TypeError, ValueError):
        raise OptionError("Option --min-peak-probability must be a number between 0 and 1.") from None
    if not 0.0 <= min_peak < 1.0:
        raise OptionError(f"Option --min-peak-probability {min_peak:g} must lie in [0, 1); 0 turns the rule off.")
    return min_peak


def threshold_and_clean(
    probability: np.ndarray, voxel_mm3: float, threshold: float, min_lesion_mm3: float,
    min_peak: float | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Binarise a probability map and drop clusters smaller than ``min_lesion_mm3`` or never confident.

    Parameters
    ----------
    probability : numpy.ndarray
        3D lesion probability (0-1).
    voxel_mm3 : float
        Volume of one voxel (mm^3).
    threshold : float
        Voxels with ``probability >= threshold`` are candidates.
    min_lesion_mm3 : float
        Smallest kept cluster (mm^3); 0 keeps every cluster.
    min_peak : float, optional
        A kept cluster must reach this probability somewhere (hysteresis: lesions grow from
        confident cores down to ``threshold``, faint specks without a core are dropped). Default
        None (or anything at or below ``threshold``): no such rule.

    Returns
    -------
    mask : numpy.ndarray
        uint8 0/1 lesion mask.
    labels : numpy.ndarray
        int32 lesion labels 1..n (0 background), numbered in scan order.
    n_lesions : int
        Number of kept lesions.

    Examples
    --------
    >>> p = np.zeros((6, 7, 8), np.float32); p[1:3, 1:3, 1:3] = 0.9; p[5, 6, 7] = 0.8
    >>> mask, labels, n = threshold_and_clean(p, 1.0, 0.5, 5.0)
    >>> int(mask.sum()), n
    (8, 1)
    >>> p[4, 4:6, 5:8] = 0.6                     # a 6-voxel cluster that never reaches 0.85
    >>> int(threshold_and_clean(p, 1.0, 0.5, 5.0)[2]), int(threshold_and_clean(p, 1.0, 0.5, 5.0, min_peak=0.85)[2])
    (2, 1)
    """
    from scipy import ndimage

    from wmhkit.io.arrays import label_sizes, lookup

    candidates = probability >= threshold
    labels, count = ndimage.label(candidates, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return np.zeros(probability.shape, np.uint8), labels.astype(np.int32), 0
    sizes_mm3 = label_sizes(labels, count)[1:] * float(voxel_mm3)
    keep = sizes_mm3 >= float(min_lesion_mm3)
    if min_peak is not None and min_peak > threshold:
        keep &= ndimage.maximum(probability, labels, index=np.arange(1, count + 1)) >= min_peak
    new_ids = np.zeros(count + 1, dtype=np.int32)
    new_ids[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    relabelled = lookup(new_ids, labels)
    return (relabelled > 0).astype(np.uint8), relabelled, int(keep.sum())


def lesion_table(labels: np.ndarray, probability: np.ndarray, affine: np.ndarray, voxel_mm3: float) -> pd.DataFrame:
    """One row per lesion: size, mean and peak probability, centroid in world mm.

    Parameters
    ----------
    labels : numpy.ndarray
        int lesion labels (0 background, 1..n lesions) on the image grid.
    probability : numpy.ndarray
        Lesion probability on the same grid.
    affine : (4, 4) array
        Voxel-to-world affine of the grid (mm).
    voxel_mm3 : float
        Volume of one voxel (mm^3).

    Returns
    -------
    pandas.DataFrame
        Columns ``lesion``, ``lesion_ml``, ``n_voxels``, ``mean_probability``,
        ``max_probability``, ``centroid_x_mm``, ``centroid_y_mm``, ``centroid_z_mm``.

    Examples
    --------
    >>> lab = np.zeros((5, 6, 7), np.int32); lab[1:3, 1:3, 1:3] = 1
    >>> lesion_table(lab, lab * 0.8, np.eye(4), 1.0)[["lesion", "n_voxels", "centroid_x_mm"]].values.tolist()
    [[1.0, 8.0, 1.5]]
    """
    import pandas as pd

    columns = [
        "lesion",
        "lesion_ml",
        "n_voxels",
        "mean_probability",
        "max_probability",
        "centroid_x_mm",
        "centroid_y_mm",
        "centroid_z_mm",
    ]
    count = int(labels.max()) if labels.size else 0
    if count == 0:
        return pd.DataFrame({name: pd.Series(dtype=float) for name in columns}).astype({"lesion": int, "n_voxels": int})
    ids = np.arange(1, count + 1)
    # Only the lesion voxels, in scan order: the sums are added in the order scipy.ndimage's
    # mean and center_of_mass add them (the same numbers), at a cost that follows the lesions,
    # not the grid.
    ijk = np.nonzero(labels)
    voxel_ids = labels[ijk]
    values = np.asarray(probability)[ijk]
    n_voxels = np.bincount(voxel_ids, minlength=count + 1)[1:].astype(float)
    mean_p = np.bincount(voxel_ids, weights=values, minlength=count + 1)[1:] / n_voxels
    max_p = np.full(count + 1, -np.inf)
    np.maximum.at(max_p, voxel_ids, values)
    max_p = max_p[1:]
    centroids = np.stack([np.bincount(voxel_ids, weights=axis, minlength=count + 1)[1:] for axis in ijk], axis=1)
    centroids /= n_voxels[:, None]
    world = centroids @ np.asarray(affine, float)[:3, :3].T + np.asarray(affine, float)[:3, 3]
    return pd.DataFrame(
        {
            "lesion": ids,
            "lesion_ml": n_voxels * float(voxel_mm3) / 1000.0,
            "n_voxels": n_voxels.astype(int),
            "mean_probability": mean_p,
            "max_probability": max_p,
            "centroid_x_mm": world[:, 0],
            "centroid_y_mm": world[:, 1],
            "centroid_z_mm": world[:, 2],
        }
    )
