"""Quality-control figures of a cohort run: the per-subject overlay thumbnail, the group's
lesion-frequency overview, and the per-subject review mosaic of the real-head benchmark.

These are quick-look pictures for checking results by eye, not publication figures: they keep
matplotlib's plain defaults rather than the house style (:mod:`wmhkit.plotting.style`).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from matplotlib.figure import Figure

from wmhkit.io import ImgLike, atomic_path, check_img, reorient_to_ras

__all__ = ["write_thumbnail", "write_frequency_overview", "plot_review_mosaic"]


def _upsample(image: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    return np.repeat(np.repeat(image, factors[0], axis=0), factors[1], axis=1)


def write_thumbnail(t1: ImgLike, mask: ImgLike, path: str | Path, *, n_slices: int = 4, height_px: int = 120) -> Path:
    """Axial slices of ``t1`` side by side with ``mask`` in red, written atomically as a PNG.

    Parameters
    ----------
    t1, mask : image-like
        The T1 and its lesion mask (any orientation; both on one grid).
    path : str or path
        The PNG file.
    n_slices : int, default 4
        Slices, spread from 35 % to 80 % of the head's height.
    height_px : int, default 120
        About how tall each slice is (pixels): voxels are repeated, so that square voxels look
        square and no interpolation blurs a small lesion.

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.image import imsave

    ras_t1 = reorient_to_ras(check_img(t1, check_voxels=False))
    t1_ras = np.asanyarray(ras_t1.dataobj, dtype=np.float32)
    mask_ras = np.asanyarray(reorient_to_ras(check_img(mask, check_voxels=False)).dataobj) > 0
    low, high = np.percentile(t1_ras[t1_ras > 0], [1, 99.5]) if np.any(t1_ras > 0) else (0.0, 1.0)
    filled = np.flatnonzero((t1_ras > low).mean(axis=(0, 1)) > 0.05)
    first, last = (filled[0], filled[-1]) if len(filled) else (0, t1_ras.shape[2] - 1)
    slices = np.linspace(first + 0.35 * (last - first), first + 0.8 * (last - first), n_slices).round().astype(int)
    zooms = np.sqrt((ras_t1.affine[:3, :3] ** 2).sum(axis=0))
    repeat_y = max(1, round(height_px / t1_ras.shape[1]))
    factors = (repeat_y, max(1, round(repeat_y * zooms[0] / zooms[1])))
    panels = []
    for z in slices:
        gray = np.clip((t1_ras[:, :, z].T[::-1] - low) / max(high - low, 1e-6), 0, 1)
        rgb = np.repeat(gray[..., None], 3, axis=2)
        lesion = mask_ras[:, :, z].T[::-1]
        rgb[lesion] = 0.3 * rgb[lesion] + 0.7 * np.array([1.0, 0.1, 0.0])
        panels.append(_upsample(rgb, (factors[0], factors[1])))
    with atomic_path(path) as tmp:
        imsave(tmp, np.concatenate(panels, axis=1), format="png")
    return Path(path)


def write_frequency_overview(frequency: ImgLike, path: str | Path, *, n_slices: int = 8,
                             title: str | None = None) -> Path:
    """Axial row of a lesion-frequency map over the MNI template, written atomically as a PNG.

    The cohort report's overview (80 dpi, one row); :func:`wmhkit.plotting.plot_lesion_frequency`
    draws the publication version.

    Parameters
    ----------
    frequency : image-like
        Fraction of subjects (0-1) in MNI space; resampled onto the template when its grid differs.
    path : str or path
        The PNG file.
    n_slices : int, default 8
        Slices, spread from 25 % to 80 % of the template's height.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
    """
    from wmhkit.preprocess import MNIAlignment, load_template

    frequency = check_img(frequency, check_voxels=False)
    template = load_template("t1")
    freq = np.asanyarray(frequency.dataobj, dtype=np.float32)
    if freq.shape != template.shape or not np.allclose(frequency.affine, template.affine, atol=1e-3):
        freq = np.asanyarray(MNIAlignment(np.eye(4)).resample_to_subject(frequency, template).dataobj)
    background = np.asanyarray(template.dataobj, dtype=np.float32)
    filled = np.flatnonzero(background.max(axis=(0, 1)) > 0)
    slices = np.linspace(filled[0] + 0.25 * len(filled), filled[-1] - 0.2 * len(filled), n_slices).round().astype(int)
    vmax = max(float(freq.max()), 1e-3)
    figure = Figure(figsize=(2.0 * n_slices, 3.2), dpi=80)
    for index, z in enumerate(slices):
        axis = figure.add_axes([index / n_slices, 0.24, 1 / n_slices, 0.64])
        axis.imshow(background[:, :, z].T, cmap="gray", origin="lower")
        shown = axis.imshow(np.ma.masked_less_equal(freq[:, :, z].T, 0), cmap="hot", vmin=0, vmax=vmax, origin="lower")
        axis.set_title(f"z={nib.affines.apply_affine(template.affine, [0, 0, z])[2]:.0f} mm", fontsize=8)
        axis.set_axis_off()
    colorbar_axis = figure.add_axes([0.3, 0.16, 0.4, 0.04])
    figure.colorbar(shown, cax=colorbar_axis, orientation="horizontal", label="fraction of subjects")
    if title:
        figure.suptitle(title, fontsize=10, y=0.99)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return Path(path)


def plot_review_mosaic(t1: ImgLike, mask: ImgLike, probseg: ImgLike, brain_mask: ImgLike, *, title: str = "",
                       n_slices: int = 12, contour_at: float = 0.2) -> Figure:
    """Axial slices (RAS) on black: T1, lesion mask in red, probability ``>= contour_at`` outlined in cyan.

    Slices are spread through the white-matter envelope (where the probability can be
    non-zero; the brain when it is empty) and cropped to the brain mask with a 3-voxel margin.

    Parameters
    ----------
    t1, mask, probseg, brain_mask : image-like
        The T1 and its segmentation outputs, on one grid.
    title : str, default ""
        Figure title.
    n_slices : int, default 12
        Slices, in two rows.
    contour_at : float, default 0.2
        Probability outlined.

    Returns
    -------
    matplotlib.figure.Figure
        18 x 7.5 inches, black background (save with ``facecolor="black"``).
    """
    from matplotlib.colors import ListedColormap

    def ras(img, dtype=None):
        data = np.asanyarray(reorient_to_ras(check_img(img, check_voxels=False)).dataobj)
        return data if dtype is None else data.astype(dtype)

    t1, lesions, prob, brain = ras(t1, np.float32), ras(mask) > 0, ras(probseg), ras(brain_mask) > 0
    envelope_z = np.flatnonzero((prob > 0).any(axis=(0, 1)))
    zs = envelope_z if envelope_z.size else np.flatnonzero(brain.any(axis=(0, 1)))
    slices = np.linspace(zs[0], zs[-1], n_slices).round().astype(int)
    xs, ys = np.flatnonzero(brain.any(axis=(1, 2))), np.flatnonzero(brain.any(axis=(0, 2)))
    crop = (slice(max(xs[0] - 3, 0), xs[-1] + 4), slice(max(ys[0] - 3, 0), ys[-1] + 4))
    vmax = np.percentile(t1[brain], 99.5)
    red = ListedColormap(["red"])
    fig = Figure(figsize=(18, 7.5), facecolor="black")
    axes = fig.subplots(2, int(np.ceil(n_slices / 2)))
    for ax, z in zip(axes.ravel(), slices):
        ax.imshow(t1[crop + (z,)].T, cmap="gray", origin="lower", vmin=0, vmax=vmax)
        lesion = lesions[crop + (z,)].T
        ax.imshow(np.ma.masked_where(~lesion, lesion), cmap=red, origin="lower", alpha=0.85, interpolation="nearest")
        if (prob[crop + (z,)] >= contour_at).any():
            ax.contour((prob[crop + (z,)] >= contour_at).T, [0.5], colors="cyan", linewidths=0.6, origin="lower")
        ax.set_title(f"z={z} ({int(lesions[:, :, z].sum())} lesion voxels)", color="white", fontsize=9)
        ax.axis("off")
    fig.suptitle(title, color="white")
    fig.tight_layout()
    return fig
