"""The CSF-dark speck rule: drop small candidates as dark as fluid (perivascular spaces, lacunes).

White-matter hyperintensities are only mildly hypointense on T1: nearer to white matter than to
grey matter. Small foci with the intensity of CSF inside white matter are enlarged perivascular
spaces or lacunes, which the STRIVE criteria (Wardlaw et al., Lancet Neurol 2013) keep apart from
WMH. On high-resolution T1 scans of healthy heads they are the commonest false lesion of the
network: synthetic perivascular spaces (:mod:`wmhkit.synth.pvs`) drawn into real heads are marked
over about a third of their voxels.

The rule, on the grid the probability is computed on:

1. **Candidates** are the 26-connected components of ``probability >= threshold``.
2. A candidate is a **CSF-dark speck** when it is smaller than ``max_mm3`` (measured at
   :data:`SPECK_MAX_MM3`) and its darkest voxels (5th percentile) fall below ``dark_ratio``
   (default :data:`SPECK_DARK_RATIO`) of the median of the white matter around it (a ring 2-3
   voxels out); its probability is set to 0.

Larger lesions with dark cores (confluent WMH around a lacune, MS black holes) are kept.

Opt-in (``segment(max_speck_mm3=30)``, ``wmhkit segment --max-speck-mm3 30``): with the shipped
model it removes a fifth of the held-out healthy head's false lesions and a third to three
quarters of what it marks on synthetic perivascular spaces, at no cost on real lesion geometry at
real-WMH contrast, but it
drops small lesions darker than most WMH (lesion recall on the phantoms 0.39 -> 0.35), and the
model's recall on real patients is already its weakest point (its model card).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["SPECK_MAX_MM3", "SPECK_DARK_RATIO", "check_max_speck", "csf_dark_specks", "drop_csf_dark_specks"]

#: Candidates below this volume (mm^3) may be CSF-dark specks: the measured setting that turns the
#: rule on (``segment(max_speck_mm3=30)``). ``segment`` leaves it off unless asked.
SPECK_MAX_MM3 = 30.0
#: A speck's 5th-percentile intensity over the surrounding white matter's below which it is fluid.
SPECK_DARK_RATIO = 0.75


def check_max_speck(max_mm3) -> float:
    """``max_mm3`` as a float of 0 or more; 0 (the rule off) for None.

    Raises
    ------
    wmhkit.errors.OptionError
        When it is not a number of 0 or more.
    """
    from wmhkit.segmentation.postprocess import option_number

    return option_number(max_mm3, "--max-speck-mm3", 0.0, lambda v: v >= 0.0,
                         "a volume of 0 mm^3 or more (0 turns the rule off)")


def csf_dark_specks(probability: np.ndarray, t1: np.ndarray, threshold: float, voxel_mm3: float, *,
                    max_mm3: float = SPECK_MAX_MM3, dark_ratio: float = SPECK_DARK_RATIO) -> np.ndarray:
    """Voxels of the small candidates that are as dark as fluid.

    Parameters
    ----------
    probability : numpy.ndarray
        Lesion probability (0-1).
    t1 : numpy.ndarray
        T1 on the same grid (any scale: only ratios are read).
    threshold : float
        Candidates are ``probability >= threshold``.
    voxel_mm3 : float
        Volume of one voxel of the grid (mm^3).
    max_mm3 : float, default 30
        Only candidates smaller than this may be dropped; 0 turns the rule off.
    dark_ratio : float, default 0.75
        Dropped when the candidate's 5th-percentile intensity is below this share of the median
        intensity around it.

    Returns
    -------
    numpy.ndarray
        bool, the voxels of the dropped candidates.

    Examples
    --------
    A 3-voxel fluid-dark speck goes; a mildly dark focus of the same size stays.

    >>> t1 = np.full((20, 24, 18), 1.0, np.float32)
    >>> p = np.zeros(t1.shape, np.float32)
    >>> p[5:8, 5, 5] = 0.9; t1[5:8, 5, 5] = 0.3       # perivascular space
    >>> p[12:15, 15, 9] = 0.9; t1[12:15, 15, 9] = 0.9  # mild lesion
    >>> dropped = csf_dark_specks(p, t1, 0.5, 1.0)
    >>> bool(dropped[6, 5, 5]), bool(dropped[13, 15, 9])
    (True, False)
    """
    if max_mm3 <= 0:  # off: no whole-volume work at all
        return np.zeros(np.shape(probability), dtype=bool)
    candidates = np.asarray(probability) >= threshold
    if not candidates.any():
        return np.zeros(candidates.shape, dtype=bool)
    labels, count = ndimage.label(candidates, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1) * float(voxel_mm3)
    t1 = np.asarray(t1)
    dropped = np.zeros(count + 1, dtype=bool)
    for label, found in enumerate(ndimage.find_objects(labels), start=1):
        if sizes[label] >= max_mm3:
            continue
        box = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in found)
        own = labels[box] == label
        ring = ndimage.binary_dilation(own, iterations=3) & ~ndimage.binary_dilation(own) & ~candidates[box]
        if not ring.any():
            continue
        around = float(np.median(t1[box][ring]))
        dropped[label] = around > 0 and np.percentile(t1[box][own], 5) < dark_ratio * around
    return dropped[labels]


def drop_csf_dark_specks(probability: np.ndarray, *args, **kwargs) -> int:
    """Set the probability of CSF-dark specks to 0, in place; returns the voxels dropped.

    Takes the parameters of :func:`csf_dark_specks`.
    """
    dropped = csf_dark_specks(probability, *args, **kwargs)
    probability[dropped] = 0.0
    return int(np.count_nonzero(dropped))
