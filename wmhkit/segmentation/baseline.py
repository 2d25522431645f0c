"""The classical, training-free baseline: white matter darker than normal white matter.

In the spirit of FreeSurfer's WM-hypointensity label, and the reference every trained model
must beat. It works on the normalised T1 on the MNI 1 mm grid (white matter about 1.0,
background 0), with the MNI152 tissue priors on the same grid:

1. **Bias-free white-matter reference.** The local white-matter intensity is the normalised
   convolution (Gaussian, :data:`LOCAL_SIGMA_MM`) of the T1 over confident white matter
   (prior above 0.8, intensity not far from 1), so slow residual bias does not look like
   lesion. The ratio ``r = T1 / local white matter`` is about 1 in normal white matter.
2. **Tissue levels.** Robust statistics of ``r``: the white-matter spread
   (1.4826 x MAD within confident white matter), the grey-matter median (GM prior > 0.7) and
   the CSF median (CSF prior > 0.8, the ventricles).
3. **Lesion evidence.** A voxel is lesion-like when ``r`` lies below normal white matter by
   the larger of :data:`MAD_MARGIN` robust SDs (from the bright half of white matter, which
   misaligned grey matter does not reach, around its histogram mode) and :data:`CONTRAST_MARGIN` of the WM-GM contrast,
   capped at :data:`MAX_CONTRAST_MARGIN` of it, and above the CSF/GM midpoint (darker voxels are CSF). Both edges are soft
   (logistic, width half a robust SD), which makes the output a probability.
4. **Location and cleaning.** The evidence is weighted by the white-matter prior, set to 0
   within one voxel of CSF-dark voxels and of cortex-like grey matter (partial-volume rims),
   then regrown by up to two voxels into lesion-like neighbours (hysteresis) so that
   periventricular caps that hug the ventricles are kept whole.

The result is a soft probability map on the same grid; the pipeline thresholds it and applies
the common post-processing (:mod:`wmhkit.segmentation.postprocess`).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from wmhkit.anatomy.ventricles import ventricles_near_zone
from wmhkit.io.arrays import dilated

__all__ = [
    "MAD_MARGIN",
    "CONTRAST_MARGIN",
    "LOCAL_SIGMA_MM",
    "baseline_probability",
    "tissue_levels",
]

logger = logging.getLogger(__name__)

#: Lesion voxels are darker than normal white matter by at least this many robust SDs.
MAD_MARGIN = 3.0
#: ... and by at least this fraction of the white-matter to grey-matter contrast.
CONTRAST_MARGIN = 0.3
#: ... but never more than this fraction (lesions are at least as bright as grey matter).
MAX_CONTRAST_MARGIN = 0.5
#: Fraction of a lesion's shell that must be white matter or ventricle.
ENCLOSED_FRACTION = 0.7
#: Thickness (mm) of the partial-volume rim around CSF that cannot start a lesion.
RIM_MM = 2
#: Grey-matter prior at and above which nothing is lesion (the weight ramps down over 0.3 below it).
GM_PRIOR_MAX = 0.7
#: Template white-matter prior at and above which ``surface_reach_mm`` spares dark voxels.
DEEP_WM_PRIOR = 0.9
#: Width (mm, Gaussian sigma) of the local white-matter reference.
LOCAL_SIGMA_MM = 10.0
#: White-matter prior at which the location weight reaches 0 and 1.
_PRIOR_RAMP = (0.3, 0.7)
_SIX = ndimage.generate_binary_structure(3, 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)


def _local_white_matter(t1: np.ndarray, confident: np.ndarray, sigma_vox: float) -> np.ndarray:
    """Normalised convolution of ``t1`` over ``confident`` voxels, computed on a 4x coarser grid."""
    factor = 4
    pad = [(0, (-n) % factor) for n in t1.shape]
    weight = np.pad(confident.astype(np.float32), pad)
    values = np.pad(t1, pad) * weight
    coarse = tuple(n // factor for n in weight.shape)

    def reduce(array: np.ndarray) -> np.ndarray:
        return array.reshape(coarse[0], factor, coarse[1], factor, coarse[2], factor).mean(axis=(1, 3, 5))

    numerator = ndimage.gaussian_filter(reduce(values), sigma_vox / factor, mode="constant")
    denominator = ndimage.gaussian_filter(reduce(weight), sigma_vox / factor, mode="constant")
    fallback = float(np.median(t1[confident])) if confident.any() else 1.0
    local = np.full(coarse, fallback, dtype=np.float32)
    np.divide(numerator, denominator, out=local, where=denominator > 0.02)
    # Back to the full grid by repetition: the reference varies over ~10 mm, blocks are 4 mm.
    full = local.repeat(factor, 0).repeat(factor, 1).repeat(factor, 2)
    return full[: t1.shape[0], : t1.shape[1], : t1.shape[2]]


def _mode(values: np.ndarray, bins: int = 200) -> float:
    """Peak of the smoothed histogram of ``values`` within 30 % of their median."""
    centre = float(np.median(values))
    hist, edges = np.histogram(values, bins=bins, range=(0.7 * centre, 1.3 * centre))
    hist = ndimage.gaussian_filter1d(hist.astype(float), 3.0)
    peak = int(np.argmax(hist))
    return float((edges[peak] + edges[peak + 1]) / 2)


def tissue_levels(ratio: np.ndarray, wm_prior: np.ndarray, gm_prior: np.ndarray, csf_prior: np.ndarray) -> dict:
    """Robust tissue levels of the bias-corrected intensity ratio (1 = normal white matter).

    Parameters
    ----------
    ratio : numpy.ndarray
        T1 divided by its local white-matter reference.
    wm_prior, gm_prior, csf_prior : numpy.ndarray
        MNI152 tissue probabilities on the same grid (0-1).

    Returns
    -------
    dict
        ``wm`` (histogram mode), ``wm_sd`` (1.4826 x median distance above the mode), ``gm``
        and ``csf`` medians.
    """
    inside = ratio > 0

    def median_where(mask: np.ndarray, default: float) -> float:
        values = ratio[mask & inside]
        return float(np.median(values)) if values.size > 100 else default

    wm_values = ratio[(wm_prior > 0.8) & inside]
    wm = _mode(wm_values) if wm_values.size > 100 else 1.0
    # Spread from the bright side only: grey matter mixed in by misalignment sits on the dark side.
    upper_side = wm_values[wm_values >= wm] - wm
    wm_sd = float(1.4826 * np.median(upper_side)) if upper_side.size else 0.05
    gm = median_where(gm_prior > 0.7, 0.7 * wm)
    csf = median_where(csf_prior > 0.8, 0.3 * wm)
    return {"wm": wm, "wm_sd": max(wm_sd, 0.01), "gm": min(gm, wm - 0.05), "csf": min(csf, gm)}


def baseline_probability(t1_norm: np.ndarray, wm_prior: np.ndarray, gm_prior: np.ndarray, csf_prior: np.ndarray, *,
                         ventricle_zone: np.ndarray | None = None, deep_gm: np.ndarray | None = None,
                         voxel_mm: float = 1.0, mad_margin: float = MAD_MARGIN, contrast_margin: float = CONTRAST_MARGIN,
                         surface_reach_mm: float | None = None) -> tuple[np.ndarray, dict]:
    """Lesion probability of every voxel from intensity and location alone (no training).

    Parameters
    ----------
    t1_norm : numpy.ndarray
        Normalised T1 (white matter about 1.0, background 0) on an MNI grid, e.g. the brain box
        of ``PreparedT1.t1_mni``.
    wm_prior, gm_prior, csf_prior : numpy.ndarray
        MNI152 tissue probabilities (0-1) on the same grid.
    ventricle_zone : numpy.ndarray, optional
        bool, where CSF-dark voxels are ventricles (lesions may touch them); default anywhere.
    deep_gm : numpy.ndarray, optional
        bool, deep grey matter (never lesion); default none.
    voxel_mm : float, default 1.0
        Voxel size of the grid (mm), for the smoothing widths.
    mad_margin : float, default 3.0
        Minimum darkness below normal white matter, in robust SDs (see :data:`MAD_MARGIN`).
    contrast_margin : float, default 0.3
        Minimum darkness as a fraction of the white-to-grey-matter contrast.
    surface_reach_mm : float, optional
        Remove dark tissue connected to the brain surface only within this distance (mm) of
        cortex-like template voxels or where the white-matter prior is below
        :data:`DEEP_WM_PRIOR`. Default (None): wherever it connects, which removes a heavy
        confluent load that reaches the cortex whole (measured: 0.9 of 32 mL found); 8 finds
        13 of those 32 mL but adds 1.5-9 mL of false lesions along the ventricles of healthy heads.

    Returns
    -------
    probability : numpy.ndarray
        float32 lesion probability (0-1), same shape as ``t1_norm``.
    levels : dict
        The tissue levels and cut-offs used (recorded in ``<stem>_wmh.json``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> wm = np.zeros((40, 44, 36), np.float32); wm[8:32, 8:36, 8:28] = 1.0
    >>> gm = np.clip(1 - wm, 0, 1) * 0.8; csf = np.zeros_like(wm)
    >>> t1 = (0.7 + 0.3 * wm + rng.normal(0, 0.02, wm.shape)).astype(np.float32)
    >>> t1[18:23, 18:24, 16:20] = 0.75       # a dark blob inside white matter
    >>> p, _ = baseline_probability(t1, wm, gm, csf)
    >>> bool(p[20, 21, 18] > 0.5), bool(p[12, 30, 12] < 0.05)
    (True, True)
    """
    t1 = np.asarray(t1_norm, dtype=np.float32)
    inside = t1 > 1e-3
    ratio = _bias_free_ratio(t1, inside, wm_prior, voxel_mm)
    levels = tissue_levels(ratio, wm_prior, gm_prior, csf_prior)
    upper, lower, width = _cut_offs(levels, mad_margin, contrast_margin)
    evidence = _lesion_evidence(ratio, inside, (upper, lower, width), wm_prior, gm_prior, deep_gm)
    candidates = evidence >= 0.5
    dark = (ratio < lower) | ~inside
    # The dark components that reach the template zone (ventricles enlarge with age); without a zone, all CSF.
    ventricles = dark if ventricle_zone is None else ventricles_near_zone(dark, ventricle_zone)
    # The partial-volume rim next to CSF (RIM_MM thick) is not lesion on its own; it is regrown
    # below where it borders a lesion core.
    cores = candidates & ~ndimage.binary_dilation(dark, structure=_SIX, iterations=RIM_MM)
    cores &= ~_surface_connected(ratio < upper, ventricles, deep_gm, (wm_prior, gm_prior, csf_prior), voxel_mm,
                                 surface_reach_mm)
    kept = _enclosed(cores, candidates, (ratio >= upper) | ventricles)
    # Hysteresis: regrow the kept cores by up to two voxels into lesion-like neighbours.
    grown = ndimage.binary_dilation(kept, structure=_SIX, iterations=2, mask=evidence >= 0.25)
    evidence[~grown] = 0.0
    levels = {key: round(float(value), 4) for key, value in levels.items()}
    levels.update(upper_ratio=round(float(upper), 4), lower_ratio=round(float(lower), 4))
    return evidence.astype(np.float32, copy=False), levels


def _bias_free_ratio(t1: np.ndarray, inside: np.ndarray, wm_prior: np.ndarray, voxel_mm: float) -> np.ndarray:
    """Step 1: ``T1 / local white matter``, about 1 in normal white matter (0 outside the head)."""
    confident = (wm_prior > 0.8) & inside
    if confident.sum() > 100:
        centre = float(np.median(t1[confident]))
        confident &= np.abs(t1 - centre) < 0.25 * centre
    local = _local_white_matter(t1, confident, LOCAL_SIGMA_MM / voxel_mm)
    ratio = np.zeros_like(t1)
    np.divide(t1, local, out=ratio, where=inside & (local > 1e-3))
    return ratio


def _cut_offs(levels: dict, mad_margin: float, contrast_margin: float) -> tuple[float, float, float]:
    """Step 3's edges: ``upper`` (lesions lie below), ``lower`` (CSF below) and the soft edges' width."""
    contrast = levels["wm"] - levels["gm"]
    margin = min(max(mad_margin * levels["wm_sd"], contrast_margin * contrast), MAX_CONTRAST_MARGIN * contrast)
    upper = levels["wm"] - margin
    lower = levels["csf"] + 0.5 * (levels["gm"] - levels["csf"])
    return upper, lower, 0.5 * levels["wm_sd"]


def _lesion_evidence(ratio, inside, cut_offs, wm_prior, gm_prior, deep_gm) -> np.ndarray:
    """Steps 3-4: lesion-like darkness (soft edges), weighted by the white-matter and grey-matter priors."""
    upper, lower, width = cut_offs
    evidence = _sigmoid((upper - ratio) / width) * _sigmoid((ratio - lower) / width)
    low, high = _PRIOR_RAMP
    evidence *= np.clip((wm_prior - low) / (high - low), 0.0, 1.0)
    evidence[~inside] = 0.0
    evidence *= np.clip((GM_PRIOR_MAX - gm_prior) / 0.3, 0.0, 1.0)
    if deep_gm is not None:
        evidence[ndimage.binary_dilation(deep_gm, iterations=2)] = 0.0
    return evidence


def _surface_connected(below_wm, ventricles, deep_gm, priors, voxel_mm: float, surface_reach_mm) -> np.ndarray:
    """Grey matter and CSF connected to the brain surface (cortex, sulci): never lesion.

    The not-white-matter region is grown from outside the template brain and from cortex,
    stepping over the ventricles and their 2 mm rim (periventricular lesions touch them; the
    partial-volume rim around all CSF spaces would bridge them to the surface) and over deep grey
    matter.
    """
    wm_prior, gm_prior, csf_prior = priors
    not_wm = below_wm & ~ndimage.binary_dilation(ventricles, structure=_SIX, iterations=2)
    if deep_gm is not None:
        not_wm &= ~deep_gm
    brain_prior = (wm_prior + gm_prior + csf_prior) > 0.5
    seeds = not_wm & (~brain_prior | ((gm_prior > 0.5) & (wm_prior < 0.2)))
    reach = not_wm
    if surface_reach_mm is not None:
        cortex_like = ~brain_prior | ((gm_prior > 0.5) & (wm_prior < 0.2))
        near = dilated(cortex_like, _SIX, max(1, int(round(surface_reach_mm / voxel_mm))))
        reach = not_wm & (near | (wm_prior < DEEP_WM_PRIOR))
    return ndimage.binary_propagation(seeds, structure=_SIX, mask=reach)


def _enclosed(cores: np.ndarray, candidates: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The cores enclosed by white matter (and ventricles): at least :data:`ENCLOSED_FRACTION` of their shell.

    Lesions are enclosed by white matter (and, for periventricular lesions, the ventricles);
    cortex and sulci touch grey matter and CSF. ``allowed``: white matter or ventricle voxels.
    """
    labels, count = ndimage.label(cores, structure=_SIX)
    if not count:
        return cores
    shell_owner = ndimage.maximum_filter(labels, size=3)
    shell = (shell_owner > 0) & ~cores & ~candidates
    owners = shell_owner[shell]
    total = np.bincount(owners, minlength=count + 1).astype(float)
    good = np.bincount(owners, weights=allowed[shell], minlength=count + 1)
    enclosed = np.zeros(count + 1, dtype=bool)
    enclosed[1:] = good[1:] >= ENCLOSED_FRACTION * np.maximum(total[1:], 1.0)
    return enclosed[labels]
