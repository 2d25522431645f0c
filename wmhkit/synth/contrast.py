"""Tissue intensities per contrast, partial-volume rendering, and scanner corruption.

Intensities are drawn around realistic orderings, relative to white matter = 1:

* T1:    WM > lesion >= GM > CSF; deep grey matter between GM and WM; scalp fat bright,
  compact skull dark, diploe (marrow) intermediate.
* FLAIR: lesion > GM > WM > CSF; CSF is suppressed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from wmhkit.synth.fields import smooth_field

__all__ = ["CLASSES", "draw_contrasts", "render", "corrupt"]

#: Tissue classes an intensity is drawn for (fractions use the same names).
CLASSES = ("wm", "gm", "deep_gm", "csf", "ventricle", "lesion", "csf_rim", "skull", "diploe", "fat", "skin")


def draw_contrasts(rng: np.random.Generator) -> dict:
    """Relative intensities (WM = 1) for ``"t1"`` and ``"flair"``, plus a global scale each."""
    gm = rng.uniform(0.55, 0.72)
    csf = rng.uniform(0.12, 0.3)
    t1 = {
        "wm": 1.0,
        "gm": gm,
        "deep_gm": gm + rng.uniform(0.35, 0.65) * (1.0 - gm),
        "csf": csf,
        "ventricle": csf,
        "lesion": gm + rng.uniform(0.05, 0.5) * (1.0 - gm),
        "csf_rim": csf,
        "skull": rng.uniform(0.04, 0.18),
        "diploe": rng.uniform(0.45, 0.85),
        "fat": rng.uniform(0.95, 1.35),
        "skin": rng.uniform(0.45, 0.7),
    }
    gm_flair = rng.uniform(1.15, 1.45)
    csf_flair = rng.uniform(0.08, 0.3)
    flair = {
        "wm": 1.0,
        "gm": gm_flair,
        "deep_gm": 1.0 + rng.uniform(0.3, 0.8) * (gm_flair - 1.0),
        "csf": csf_flair,
        "ventricle": csf_flair,
        "lesion": gm_flair + rng.uniform(0.25, 0.8),
        "csf_rim": csf_flair,
        "skull": rng.uniform(0.04, 0.15),
        "diploe": rng.uniform(0.4, 0.8),
        "fat": rng.uniform(0.8, 1.3),
        "skin": rng.uniform(0.5, 0.9),
    }
    return {
        "t1": t1,
        "flair": flair,
        "t1_scale": float(np.exp(rng.uniform(np.log(80), np.log(2000)))),
        "flair_scale": float(np.exp(rng.uniform(np.log(80), np.log(2000)))),
    }


def render(fractions: dict, intensities: dict) -> np.ndarray:
    """Partial-volume image: the sum of fraction x intensity over the classes present."""
    image = None
    for name, fraction in fractions.items():
        if name not in intensities:
            continue
        term = fraction * np.float32(intensities[name])
        image = term if image is None else image + term
    return image.astype(np.float32, copy=False)


def _rician(rng: np.random.Generator, image: np.ndarray, sigma: float) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of standard deviation ``sigma``."""
    real = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
    imaginary = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(sigma)
    return np.sqrt(real * real + imaginary * imaginary)


def corrupt(
    rng: np.random.Generator,
    image: np.ndarray,
    *,
    voxel_size_mm: float,
    scale: float,
    foreground: np.ndarray | None = None,
    blur: bool = True,
) -> tuple[np.ndarray, dict]:
    """Blur, multiplicative bias field, Rician noise and global scale.

    Parameters
    ----------
    rng : numpy.random.Generator
    image : float32 array
        Noise-free image, white matter near 1.
    voxel_size_mm : float
        Mean voxel size (sets the bias field's smoothness).
    scale : float
        Global intensity scale applied last.
    foreground : bool array, optional
        When given, voxels outside it are set to 0 (a skull-stripped image).
    blur : bool, default True
        Apply a Gaussian blur of random width (0-0.8 voxel).

    Returns
    -------
    image : float32 array
    params : dict
    """
    sigma_vox = rng.uniform(0.0, 0.8) if blur else 0.0
    bias_amplitude = rng.uniform(0.05, 0.25)
    noise_sigma = rng.uniform(0.012, 0.045)
    if sigma_vox >= 0.25:
        image = ndimage.gaussian_filter(image, sigma_vox, truncate=3.0)
    bias = smooth_field(rng, image.shape, 70.0 / voxel_size_mm)
    np.exp(bias * np.float32(bias_amplitude), out=bias)
    image = image * bias
    if foreground is None:
        image = _rician(rng, image, noise_sigma)
    else:  # noise only where the image is kept
        kept = np.flatnonzero(foreground)
        values = _rician(rng, image.ravel()[kept], noise_sigma)
        image = np.zeros(image.size, dtype=np.float32)
        image[kept] = values
        image = image.reshape(foreground.shape)
    image *= np.float32(scale)
    return image.astype(np.float32, copy=False), {
        "blur_sigma_vox": sigma_vox,
        "bias_amplitude": bias_amplitude,
        "noise_sigma": noise_sigma,
        "snr_wm": 1.0 / noise_sigma,
        "scale": scale,
    }
