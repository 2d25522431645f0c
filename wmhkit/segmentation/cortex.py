"""The cortex-contact rule: drop candidate lesions that sit against the cortex.

White-matter hyperintensities lie within white matter or against the ventricles. In a T1 the
partial-volume band where grey matter meets white matter is as dark as a lesion, and a network
trained on thick-slice labels marks specks of it, mostly in the folded superior cortex of real
heads. Those specks touch grey matter that is connected to the brain surface; lesions are
enclosed by white matter (and, near the ventricles, by ventricle).

The rule, on the grid the probability is computed on (normalised T1, white matter 1.0):

1. **Candidates** are the 26-connected components of ``probability >= threshold``.
2. **Surface-connected dark tissue**: voxels darker than :data:`DARK_BELOW` that are not
   candidates, not the candidates' fringe (probability at or above :data:`FRINGE_SHARE` of the
   threshold) and not within two voxels of the subject's ventricles, grown (6-connected) from
   those outside the cerebral white-matter envelope: cortex, sulci and everything outside the
   brain, but not deep dark voxels enclosed by white matter.
3. A candidate is **cortex-attached** when more than ``max_contact`` (default
   :data:`MAX_CORTEX_CONTACT`) of its one-voxel shell (26-neighbours) is surface-connected dark
   tissue; its probability is set to 0.

Chosen on validation phantoms (seeds 950000-950011) and the two healthy heads, never on the
test phantoms (``benchmarks/results/segment_postprocess_sweep_cortex_off.md``): for model
0.4.0 at threshold 0.5 and 5 mm^3, the rule with share 0.2 took the healthy heads from 0.71 /
2.41 mL to 0.19 / 0.35 mL while the phantoms' Dice went from 0.519 to 0.527 and lesion F1 from
0.515 to 0.581. That is what lets the shipped model run at a lower threshold (its model card).

The fringe exception: a heavy confluent load is dark over tens of millilitres, and its parts
just under the threshold used to connect its marked parts to the cortex, so whole periventricular
bands were dropped as cortex. Voxels the network gives at least half the threshold are taken as
lesion fringe, never as cortex. Measured on the semi-real benchmark (``benchmarks/semi_real.py``)
with a first mixture of the fine-tune behind model 0.7.0, at threshold 0.8: loads over 30 mL went
from Dice 0.145 to 0.159, all 18 cases from 0.218 to 0.221, for 0.01-0.04 mL more in the
unmodified heads.

The judging threshold: at a higher threshold a cortical speck splits into smaller candidates, and
those whose shell is mostly the speck's own fringe no longer count as touching the cortex, so a
higher threshold could mark more. With ``judge_at`` (``wmhkit segment`` passes the level the
model declares, ``cortex_judge_threshold``, else its own threshold, when the threshold in use is
higher) the rule judges the candidates at that level and drops the voxels of the attached ones
that reach the threshold: raising the threshold then only removes voxels. With model 0.8.0 at 0.9,
judging at its own 0.85 took the 1.75 mm healthy head from 1.30 to 0.45 mL, with the same
semi-real Dice at contrast 0.4 (0.271); model 0.9.0 runs at 0.9 and declares 0.5 (1.75 mm head
0.05 mL, against 1.47 mL judged at 0.9), as do 0.10.0, which runs at 0.95, and 0.11.0, at 0.97.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "DARK_BELOW",
    "CSF_BELOW",
    "MAX_CORTEX_CONTACT",
    "FRINGE_SHARE",
    "check_max_contact",
    "cortex_attached",
    "drop_cortex_attached",
]

#: Normalised intensity (white matter 1.0) below which tissue is not normal white matter: about
#: halfway between white and grey matter.
DARK_BELOW = 0.85
#: Normalised intensity below which a voxel is CSF-dark (ventricles are found among them).
CSF_BELOW = 0.45
#: Largest share of a lesion's shell that may touch surface-connected dark tissue.
MAX_CORTEX_CONTACT = 0.2
#: Voxels with a probability at or above this share of the threshold are a candidate's fringe,
#: never surface-connected dark tissue (module docstring).
FRINGE_SHARE = 0.5
_SIX = ndimage.generate_binary_structure(3, 1)


def check_max_contact(max_contact) -> float:
    """``max_contact`` as a float in [0, 1]; default :data:`MAX_CORTEX_CONTACT` for None.

    Raises
    ------
    wmhkit.errors.OptionError
        When it is not a number between 0 and 1.
    """
    from wmhkit.segmentation.postprocess import option_number

    return option_number(max_contact, "--max-cortex-contact", MAX_CORTEX_CONTACT, lambda v: 0.0 <= v <= 1.0,
                         "a share between 0 and 1 (1 turns the rule off)")


def _ventricle_rim(t1: np.ndarray, ventricle_zone: np.ndarray) -> np.ndarray:
    """The subject's ventricles (CSF-dark components reaching the template zone) and 2 voxels around."""
    from wmhkit.anatomy.ventricles import ventricles_near_zone
    from wmhkit.io.arrays import dilated

    csf = (t1 < CSF_BELOW) | (t1 <= 1e-3)
    return dilated(ventricles_near_zone(csf, ventricle_zone), _SIX, 2)


def cortex_attached(
    probability: np.ndarray,
    t1: np.ndarray,
    envelope: np.ndarray,
    ventricle_zone: np.ndarray,
    threshold: float,
    max_contact: float = MAX_CORTEX_CONTACT,
    judge_at: float | None = None,
) -> np.ndarray:
    """Voxels of the candidate lesions that touch surface-connected dark tissue.

    Parameters
    ----------
    probability : numpy.ndarray
        Lesion probability (0-1).
    t1 : numpy.ndarray
        Normalised T1 on the same grid (white matter about 1.0, background 0).
    envelope : numpy.ndarray
        bool, the cerebral white-matter envelope on the grid (dark tissue outside it seeds the
        surface).
    ventricle_zone : numpy.ndarray
        bool, where the lateral ventricles may lie on the grid.
    threshold : float
        Candidates are ``probability >= threshold``.
    max_contact : float, default 0.2
        A candidate whose shell touches surface-connected dark tissue over more than this share
        is cortex-attached; 1 keeps every candidate.
    judge_at : float, optional
        Judge the candidates (and their fringe) at this probability instead, when it is below
        ``threshold``, and return the voxels of the attached ones at or above ``threshold``; so a
        higher ``threshold`` never keeps a voxel that ``judge_at`` drops. Default: judge at
        ``threshold``.

    Returns
    -------
    numpy.ndarray
        bool, the voxels of the cortex-attached candidates.

    Examples
    --------
    A dark blob deep in white matter is kept; one against the grey matter of the surface is not.

    >>> t1 = np.full((30, 34, 28), 1.0, np.float32); t1[:, :, :4] = 0.7   # cortex along z = 0-3
    >>> envelope = np.zeros(t1.shape, bool); envelope[:, :, 4:] = True
    >>> p = np.zeros(t1.shape, np.float32)
    >>> p[10:14, 10:14, 14:18] = 0.9; t1[10:14, 10:14, 14:18] = 0.75      # deep lesion
    >>> p[20:24, 20:24, 4:7] = 0.9; t1[20:24, 20:24, 4:7] = 0.75          # on the cortex
    >>> dropped = cortex_attached(p, t1, envelope, np.zeros(t1.shape, bool), 0.5)
    >>> bool(dropped[12, 12, 15]), bool(dropped[21, 21, 5])
    (False, True)
    """
    if max_contact >= 1.0:  # the rule is off: no labelling, no surface
        return np.zeros(np.shape(probability), dtype=bool)
    if judge_at is not None and judge_at < threshold:
        judged = cortex_attached(probability, t1, envelope, ventricle_zone, judge_at, max_contact)
        return judged & (np.asarray(probability) >= threshold)
    candidates = np.asarray(probability) >= threshold
    labels, count = ndimage.label(candidates, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return np.zeros(candidates.shape, dtype=bool)
    t1 = np.asarray(t1)
    dark = (t1 < DARK_BELOW) & (np.asarray(probability) < FRINGE_SHARE * threshold)
    dark &= ~_ventricle_rim(t1, ventricle_zone)
    surface = ndimage.binary_propagation(dark & ~envelope, structure=_SIX, mask=dark)
    del dark
    attached = np.zeros(count + 1, dtype=bool)
    cube = np.ones((3, 3, 3), dtype=bool)
    for label, found in enumerate(ndimage.find_objects(labels), start=1):
        # The candidate's one-voxel shell (26-neighbours that are not candidates), in its own box.
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in found)
        own = labels[box] == label
        shell = ndimage.binary_dilation(own, structure=cube) & ~candidates[box]
        total = np.count_nonzero(shell)
        attached[label] = np.count_nonzero(surface[box] & shell) > max_contact * max(total, 1)
    return attached[labels]


def drop_cortex_attached(probability: np.ndarray, *args, **kwargs) -> int:
    """Set the probability of cortex-attached candidates to 0, in place; returns the voxels dropped.

    Takes the parameters of :func:`cortex_attached`. Only the candidate voxels (``probability >=
    threshold``) are zeroed, so the written probability map thresholded at ``threshold`` gives
    back the mask.
    """
    dropped = cortex_attached(probability, *args, **kwargs)
    probability[dropped] = 0.0
    return int(np.count_nonzero(dropped))
