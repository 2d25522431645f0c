"""How lesions look on a T1: contrast calibrated to real WMH, soft borders, heterogeneity, dark cores.

On T1, white-matter hyperintensities are iso- to mildly hypointense: darker than white matter,
"though not as hypointense as CSF" (STRIVE, Wardlaw et al., Lancet Neurol 2013;12:822-838), and
only a minority is clearly T1-hypointense (Melazzini et al., medRxiv 2020.07.10.20149575: the
T1-hypointense WMH are the most severe subclass in 684 older adults of Whitehall II). In MS, a
minority of lesions are "black holes" with a dark core near grey matter or CSF (Sahraian et al.,
Acta Neurol Scand 2010;122:1-8). Lesion intensity is therefore written as the **share of the
local white-to-grey-matter gap** by which a lesion darkens the T1 (0: invisible, 1: as dark as
grey matter), drawn as follows (:func:`draw_contrast_shares`):

* per subject, a typical share ``m ~ U(0.3, 0.7)`` (scanner contrast and lesion type differ);
* per lesion, ``Beta(10 m, 10 (1 - m))``: mean ``m``, most lesions within about +-0.15 of it,
  so the bulk lies between 0.2 and 0.6 (nearer white than grey matter) with a tail towards
  grey matter. Lesions fainter than about 0.2 of the gap are rare on purpose: a network
  trained on labels of lesions it cannot see learns where lesions usually are instead, and
  marks that white matter in healthy heads (measured: with ``m ~ U(0.15, 0.65)`` and
  ``Beta(6 m, ...)``, a fine-tuned model found 20-26 mL in a healthy held-out head);
* within a lesion, a smooth multiplicative texture of +-10-30 % (4 mm wavelength);
* in about 12 % of lesions of 30 voxels or more, a dark core (deeper than 1.5 mm inside the
  lesion) darkened by a further 0.3-0.7 of the gap (up to 1.3: below grey matter);
* soft borders: the darkening (lesion fraction x share) is blurred by 0.3-1.0 mm, so it fades
  over a millimetre or two instead of stepping at the mask's edge.

The exact lesion mask stays where the lesion fraction is above 0.5; only the image changes.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from wmhkit.io.arrays import grown_box
from wmhkit.synth.fields import fourier_noise

__all__ = ["CONTRAST_SHARE_RANGE", "draw_contrast_shares", "lesion_darkening"]

#: Range of the per-subject typical contrast share (fraction of the WM-GM gap).
CONTRAST_SHARE_RANGE = (0.3, 0.7)
#: Concentration of the per-lesion Beta distribution around the subject's typical share.
_CONCENTRATION = 10.0
#: Share of lesions (of at least _CORE_MIN_VOXELS) with a dark core, and its extra darkening.
_DARK_CORE_SHARE = 0.12
_DARK_CORE_EXTRA = (0.3, 0.7)
_CORE_MIN_VOXELS = 30
_MAX_SHARE = 1.3


def draw_contrast_shares(rng: np.random.Generator, count: int, typical: float | None = None) -> tuple[np.ndarray, float]:
    """Per-lesion contrast shares (fraction of the WM-GM gap) and the subject's typical share.

    Parameters
    ----------
    rng : numpy.random.Generator
    count : int
        Number of lesions.
    typical : float, optional
        The subject's typical share; drawn from :data:`CONTRAST_SHARE_RANGE` when not given.

    Returns
    -------
    shares : (count,) float32 array in (0, 1)
    typical : float

    Examples
    --------
    >>> shares, typical = draw_contrast_shares(np.random.default_rng(0), 2000, typical=0.3)
    >>> bool(abs(shares.mean() - 0.3) < 0.02), bool((shares < 0.6).mean() > 0.9)
    (True, True)
    """
    if typical is None:
        typical = float(rng.uniform(*CONTRAST_SHARE_RANGE))
    typical = float(np.clip(typical, 0.02, 0.98))
    shares = rng.beta(_CONCENTRATION * typical, _CONCENTRATION * (1.0 - typical), size=int(count))
    return shares.astype(np.float32), typical


def lesion_darkening(
    rng: np.random.Generator,
    lesion_fraction: np.ndarray,
    voxel_size_mm=1.0,
    *,
    typical_share: float | None = None,
    fixed_share: float | None = None,
    heterogeneity: bool = True,
    dark_cores: bool = True,
    soft_border: bool = True,
) -> tuple[np.ndarray, dict]:
    """Per-voxel darkening of the T1, as a share of the local white-to-grey-matter gap.

    A lesioned T1 is ``t1 - darkening * (white_matter_level - grey_matter_level)``.

    Parameters
    ----------
    rng : numpy.random.Generator
    lesion_fraction : 3D float array
        Lesion fraction per voxel (0-1; lesion where above 0.5).
    voxel_size_mm : float or sequence of 3 floats, default 1.0
    typical_share : float, optional
        The subject's typical contrast share (drawn when not given; module docstring).
    fixed_share : float, optional
        Every lesion darkens by exactly this share, without texture or dark cores (benchmarks
        at a set contrast); borders stay soft unless ``soft_border`` is False.
    heterogeneity, dark_cores, soft_border : bool, default True
        Switch the texture, the dark cores and the border blur.

    Returns
    -------
    darkening : float32 array, the shape of ``lesion_fraction`` (0 away from lesions, at most 1.3)
    params : dict
        ``typical_share``, ``lesion_count``, ``dark_core_count``, ``border_sigma_mm``.
    """
    fraction = np.asarray(lesion_fraction, dtype=np.float32)
    sizes = np.broadcast_to(np.asarray(voxel_size_mm, dtype=np.float64), (3,))
    darkening = np.zeros(fraction.shape, dtype=np.float32)
    if fixed_share is None and typical_share is None:  # drawn first, so every subject has one
        typical_share = float(rng.uniform(*CONTRAST_SHARE_RANGE))
    params = {"typical_share": fixed_share if fixed_share is not None else typical_share, "lesion_count": 0,
              "dark_core_count": 0, "border_sigma_mm": 0.0}
    if not (fraction > 0).any():
        return darkening, params
    margin = int(np.ceil(4.0 / sizes.min())) + 2
    box = grown_box(fraction > 0, margin)
    part = fraction[box]
    core = part > 0.5
    labels, count = ndimage.label(core)
    if fixed_share is not None:
        shares = np.full(count, float(fixed_share), dtype=np.float32)
        heterogeneity = dark_cores = False
    else:
        shares, typical = draw_contrast_shares(rng, count, typical_share)
        params["typical_share"] = typical
    share_map = np.zeros(part.shape, dtype=np.float32)
    if count:
        share_map = np.concatenate([[0.0], shares]).astype(np.float32)[labels]
        # Partial-volume voxels outside every lesion core take the nearest lesion's share.
        nearest = ndimage.distance_transform_edt(labels == 0, sampling=sizes, return_distances=False,
                                                 return_indices=True)
        share_map = share_map[tuple(nearest)]
    else:  # only partial-volume specks: one share for all
        share_map[:] = float(fixed_share if fixed_share is not None else draw_contrast_shares(rng, 1, typical_share)[0][0])
    if heterogeneity:
        points = (np.array(np.nonzero(part > 0), dtype=np.float32) * sizes[:, None].astype(np.float32))
        amplitude = float(rng.uniform(0.1, 0.3))
        texture = 1.0 + amplitude * np.clip(fourier_noise(rng, points, 4.0, count=12), -2.0, 2.0)
        share_map[part > 0] *= texture
    if dark_cores and count:
        volumes = np.bincount(labels.ravel(), minlength=count + 1)
        chosen = np.flatnonzero((rng.random(count + 1) < _DARK_CORE_SHARE) & (volumes >= _CORE_MIN_VOXELS))
        chosen = chosen[chosen > 0]
        if chosen.size:
            inner = ndimage.distance_transform_edt(core, sampling=sizes)
            extra = np.zeros(count + 1, dtype=np.float32)
            extra[chosen] = rng.uniform(*_DARK_CORE_EXTRA, size=chosen.size)
            # The core fades in over 1 mm past 1.5 mm depth.
            share_map += extra[labels] * np.clip(inner - 1.5, 0.0, 1.0).astype(np.float32)
            params["dark_core_count"] = int(chosen.size)
    local = np.clip(share_map, 0.0, _MAX_SHARE) * part
    if soft_border:
        sigma_mm = float(rng.uniform(0.3, 1.0))
        local = ndimage.gaussian_filter(local, sigma_mm / sizes, truncate=3.0)
        params["border_sigma_mm"] = sigma_mm
    darkening[box] = local
    params["lesion_count"] = int(count)
    return darkening, params
