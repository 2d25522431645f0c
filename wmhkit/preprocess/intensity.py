"""Intensity normalisation of T1 images: white matter -> 1.0, background -> 0.

The white-matter level is the median intensity where the MNI template is white matter with
probability above 0.9 (brought to the subject by its MNI alignment), refined to the mode of
the histogram around it (WM lesions and partial volume pull the median down a little). With
no alignment it is the brightest prominent mode of the histogram of the head's central
region, the classic T1 histogram estimate. The background level is the 1st percentile of the
image (0 for magnitude images; the offset of images stored with one). Any dtype and scale
works: uint8, float64 0-255, int16 up to 4000 give the same normalised image.
"""

from __future__ import annotations

import functools
import logging

import nibabel as nib
import numpy as np
from scipy import ndimage

from wmhkit.errors import InputImageError
from wmhkit.io import ImgLike, check_img, img_label, new_img_like
from wmhkit.preprocess.alignment import MNIAlignment
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, template_data

__all__ = ["normalize_intensity", "intensity_levels", "NORMALISED_MAX", "WM_PROBABILITY"]

logger = logging.getLogger(__name__)

#: Normalised intensities are clipped to ``[0, NORMALISED_MAX]`` (scalp fat reaches ~1.5).
NORMALISED_MAX = 2.0
#: Template white-matter probability above which a voxel samples the WM level.
WM_PROBABILITY = 0.9
_WM_STRIDE = 2  # every 2nd template voxel per axis: ~40,000 WM samples


@functools.lru_cache(maxsize=1)
def _template_wm_points() -> np.ndarray:
    """MNI mm coordinates (n, 4 homogeneous) of confidently white-matter template voxels (kept on disk)."""
    from wmhkit.io import cached_array

    def build() -> np.ndarray:
        wm = template_data("wm")[::_WM_STRIDE, ::_WM_STRIDE, ::_WM_STRIDE] > WM_PROBABILITY
        ijk = np.argwhere(wm) * _WM_STRIDE
        return np.c_[ijk, np.ones(len(ijk))] @ TEMPLATE_AFFINE.T

    return cached_array("templates", f"mni152_wm_points_p{WM_PROBABILITY:g}_stride{_WM_STRIDE}", build)


def _mode_near(values: np.ndarray, centre: float, width: float = 0.25, bins: int = 64) -> float:
    """Histogram mode of ``values`` within ``centre * (1 +- width)`` (smoothed)."""
    low, high = centre * (1 - width), centre * (1 + width)
    inside = values[(values >= low) & (values <= high)]
    if inside.size < 100 or high <= low:
        return centre
    hist, edges = np.histogram(inside, bins=bins, range=(low, high))
    hist = ndimage.gaussian_filter1d(hist.astype(float), 2.0)
    peak = int(np.argmax(hist))
    return _median_near(inside, float((edges[peak] + edges[peak + 1]) / 2))


def _median_near(values: np.ndarray, peak: float, width: float = 0.08) -> float:
    """Median of ``values`` within ``peak * (1 +- width)``: a histogram peak without bin rounding."""
    near = values[np.abs(values - peak) <= width * abs(peak)]
    return float(np.median(near)) if near.size else peak


def _wm_from_alignment(data: np.ndarray, affine: np.ndarray, alignment: MNIAlignment, background: float) -> float:
    points = _template_wm_points() @ (np.linalg.inv(affine) @ alignment.mni_to_subject).T
    samples = ndimage.map_coordinates(data, points[:, :3].T, order=1, mode="constant", cval=np.nan, prefilter=False)
    samples = samples[np.isfinite(samples) & (samples > background)]
    if samples.size < 1000:
        return float("nan")
    return _mode_near(samples, float(np.median(samples)))


def _wm_from_histogram(data: np.ndarray, background: float) -> float:
    """Brightest prominent mode of the central head region (no alignment needed)."""
    step = max(1, int(round((data.size / 2e6) ** (1 / 3))))  # ~2 million voxels are plenty
    sub = data[::step, ::step, ::step].astype(np.float32) - background
    positive = sub[sub > 0]
    if positive.size < 100:
        return float("nan")
    foreground = sub > 0.2 * np.percentile(positive, 99)
    ijk = np.argwhere(foreground)
    low, high = np.percentile(ijk, 20, axis=0).astype(int), np.percentile(ijk, 80, axis=0).astype(int) + 1
    centre = sub[low[0] : high[0], low[1] : high[1], low[2] : high[2]]
    values = centre[centre > 0.2 * np.percentile(positive, 99)]
    top = np.percentile(values, 99.5)
    hist, edges = np.histogram(values, bins=128, range=(0.0, top * 1.05))
    hist = ndimage.gaussian_filter1d(hist.astype(float), 2.0)
    # Local maxima holding at least a quarter of the highest peak; WM is the brightest of them.
    peaks = [i for i in range(1, len(hist) - 1) if hist[i] >= hist[i - 1] and hist[i] >= hist[i + 1]]
    strong = [i for i in peaks if hist[i] >= 0.25 * hist.max()] or [int(np.argmax(hist))]
    peak = max(strong)
    return _median_near(values, float((edges[peak] + edges[peak + 1]) / 2)) + background


def intensity_levels(data: np.ndarray, affine: np.ndarray, alignment: MNIAlignment | None = None) -> tuple[float, float]:
    """Background and white-matter intensities of a T1 volume, in its own units.

    Parameters
    ----------
    data : numpy.ndarray
        3D voxels (any numeric dtype).
    affine : (4, 4) array
        Voxel-to-world affine (mm).
    alignment : MNIAlignment, optional
        Alignment of ``data`` to MNI; without it the histogram estimate is used.

    Returns
    -------
    (float, float)
        ``(background, white_matter)``; white matter is above background.
    """
    background = float(np.percentile(data[:: 4, :: 4, :: 4], 1.0))
    wm = float("nan")
    if alignment is not None:
        wm = _wm_from_alignment(data, affine, alignment, background)
    if not np.isfinite(wm) or wm <= background:
        wm = _wm_from_histogram(data, background)
    return background, wm


def normalize_intensity(img: ImgLike, alignment: MNIAlignment | None = None, *, clip_max: float = NORMALISED_MAX) -> nib.Nifti1Image:
    """Scale a T1 image so that white matter is 1.0 and background 0.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        A 3D T1-weighted image of any dtype and scale.
    alignment : MNIAlignment, optional
        Its MNI alignment (from :func:`wmhkit.preprocess.align_to_mni`); the white-matter level
        is then read where the template is white matter. Without it a histogram estimate is used.
    clip_max : float, default 2.0
        Normalised values are clipped to ``[0, clip_max]``.

    Returns
    -------
    nibabel.Nifti1Image
        float32 on the input grid: ``(x - background) / (white_matter - background)``, clipped.

    Raises
    ------
    wmhkit.errors.InputImageError
        When the image is unusable or no white-matter level can be found in it.

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> data = np.zeros((90, 100, 85), np.int16); data[20:70, 20:80, 20:65] = 3000
    >>> out = normalize_intensity(nib.Nifti1Image(data, np.eye(4)))
    >>> float(out.get_fdata()[45, 50, 40]), float(out.get_fdata()[0, 0, 0]), out.get_data_dtype().name
    (1.0, 0.0, 'float32')
    """
    checked = check_img(img)
    data = np.asanyarray(checked.dataobj)
    background, wm = intensity_levels(data, checked.affine, alignment)
    return new_img_like(checked, scale_intensity(data, background, wm, label=img_label(img), clip_max=clip_max))


def scale_intensity(data: np.ndarray, background: float, wm: float, *, label: str = "the image", clip_max: float = NORMALISED_MAX) -> np.ndarray:
    """``(data - background) / (wm - background)`` as float32, clipped to ``[0, clip_max]``."""
    if not np.isfinite(wm) or wm <= background:
        raise InputImageError(f"Input image {label} has no detectable white-matter intensity; check that it is a T1-weighted head image.")
    out = data.astype(np.float32, copy=True)
    out -= np.float32(background)
    out *= np.float32(1.0 / (wm - background))
    np.clip(out, 0.0, clip_max, out=out)
    return out
