"""Slices of a T1 and its lesion overlay in display orientation, shared by figures and widgets.

Images are put in RAS voxel order (no resampling) so that every view is shown the same
way whatever the file's orientation: neurological convention (the subject's right on the
right of the picture), anterior up in axial views, superior up in coronal and sagittal views.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
from matplotlib import colormaps

from wmhkit.errors import OptionError
from wmhkit.io import ImgLike, check_img, reorient_to_ras, voxel_sizes_mm

__all__ = ["AXES", "OverlayVolume", "load_overlay_volume", "choose_slices", "compose_rgb"]

#: View name -> RAS axis that is held fixed.
AXES = {"sagittal": 0, "coronal": 1, "axial": 2}


def axis_index(axis: str | int) -> int:
    """RAS axis number of a view name ("axial", "coronal", "sagittal") or of 0/1/2."""
    if isinstance(axis, (int, np.integer)) and int(axis) in (0, 1, 2):
        return int(axis)
    if isinstance(axis, str) and axis.lower() in AXES:
        return AXES[axis.lower()]
    raise OptionError(f"axis={axis!r} is unknown; use 'axial', 'coronal' or 'sagittal'.")


@dataclass
class OverlayVolume:
    """A background image and an overlay on one grid, in RAS voxel order.

    Attributes
    ----------
    background : numpy.ndarray
        float32 background intensities (the T1 or a template).
    overlay : numpy.ndarray or None
        float32 overlay (lesion probability 0-1, a 0/1 mask, or a frequency), same shape.
    voxel_mm : numpy.ndarray
        Voxel edge lengths in mm along the RAS axes.
    window : tuple of float
        Display range of the background (1st and 99.5th percentile of non-zero voxels).
    is_mask : bool
        True when the overlay holds only 0 and 1.
    """

    background: np.ndarray
    overlay: np.ndarray | None
    voxel_mm: np.ndarray
    window: tuple[float, float]
    is_mask: bool
    affine: np.ndarray

    def position_mm(self, axis: int, index: int) -> float:
        """World coordinate (mm) of slice ``index`` along RAS ``axis`` (x, y or z)."""
        # Centre of the slice: exact for the oblique affines of real scans too.
        voxel = np.append((np.asarray(self.background.shape, dtype=float) - 1.0) / 2.0, 1.0)
        voxel[axis] = index
        return float((self.affine @ voxel)[axis])

    def slice(self, axis: int, index: int, which: str = "background") -> np.ndarray:
        """One 2D slice oriented for ``imshow(..., origin="lower")`` (rows = up, columns = right)."""
        volume = self.background if which == "background" else self.overlay
        return np.take(volume, int(index), axis=axis).T

    def extent_mm(self, axis: int) -> list[float]:
        """``imshow`` extent of a slice in mm, so that anisotropic voxels keep their aspect."""
        kept = [a for a in range(3) if a != axis]
        width = self.background.shape[kept[0]] * self.voxel_mm[kept[0]]
        height = self.background.shape[kept[1]] * self.voxel_mm[kept[1]]
        return [0.0, float(width), 0.0, float(height)]


def _onto_grid(overlay: nib.Nifti1Image, reference: nib.Nifti1Image, is_mask: bool) -> nib.Nifti1Image:
    if overlay.shape[:3] == reference.shape[:3] and np.allclose(overlay.affine, reference.affine, atol=1e-3):
        return overlay
    from nilearn.image import resample_to_img

    interpolation = "nearest" if is_mask else "linear"
    return resample_to_img(overlay, reference, interpolation=interpolation, force_resample=True, copy_header=True)


def _window(data: np.ndarray) -> tuple[float, float]:
    values = data[data != 0]
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, [1.0, 99.5])
    if high <= low:
        high = low + 1.0
    return float(low), float(high)


def load_overlay_volume(background: ImgLike, overlay: ImgLike | None = None) -> OverlayVolume:
    """Read a background image and an optional overlay and put both in RAS order on one grid.

    Parameters
    ----------
    background : str, os.PathLike or nibabel image
        The T1 (or template) shown in grey.
    overlay : str, os.PathLike or nibabel image, optional
        Lesion probability, mask or frequency map; resampled onto the background's grid when
        its grid differs (nearest neighbour for 0/1 masks, linear otherwise).

    Returns
    -------
    OverlayVolume
    """
    bg_img = check_img(background, check_voxels=False)
    bg_ras = reorient_to_ras(bg_img)
    bg_data = np.asanyarray(bg_ras.dataobj).astype(np.float32)
    ov_data = None
    is_mask = False
    if overlay is not None:
        ov_img = check_img(overlay, check_voxels=False)
        raw = np.asanyarray(ov_img.dataobj)
        if raw.dtype.kind == "f" and not np.isfinite(raw).all():
            raw = np.nan_to_num(raw)
            ov_img = nib.Nifti1Image(raw, ov_img.affine)
        is_mask = bool(np.isin(np.unique(raw), (0, 1)).all())
        ov_img = _onto_grid(ov_img, bg_img, is_mask)
        ov_data = np.asanyarray(reorient_to_ras(ov_img).dataobj).astype(np.float32)
    return OverlayVolume(bg_data, ov_data, voxel_sizes_mm(bg_ras), _window(bg_data), is_mask, np.asarray(bg_ras.affine))


def choose_slices(volume: OverlayVolume, axis: int, n_slices: int, threshold: float = 0.5) -> list[int]:
    """``n_slices`` evenly spaced slice numbers covering the lesions, or the head when there are none.

    Slices are spread over the range of slices holding overlay values above ``threshold``
    (widened to at least ``n_slices`` slices); with an empty overlay, over the middle 80 %
    of the slices holding non-zero background.
    """
    if n_slices < 1:
        raise OptionError(f"n_slices={n_slices} must be at least 1.")
    size = volume.background.shape[axis]
    others = tuple(a for a in range(3) if a != axis)
    lesion_slices = np.array([], dtype=int)
    if volume.overlay is not None:
        lesion_slices = np.flatnonzero((volume.overlay > threshold).any(axis=others))
    if lesion_slices.size:
        first, last = int(lesion_slices[0]), int(lesion_slices[-1])
    else:
        head = np.flatnonzero((volume.background != 0).any(axis=others))
        first, last = (int(head[0]), int(head[-1])) if head.size else (0, size - 1)
        margin = int(round(0.1 * (last - first)))
        first, last = first + margin, last - margin
    if last - first + 1 < n_slices:
        centre = (first + last) / 2.0
        first = int(max(0, np.floor(centre - n_slices / 2.0)))
        last = int(min(size - 1, first + n_slices - 1))
    picks = np.unique(np.round(np.linspace(first, last, n_slices)).astype(int))
    return picks.tolist()


def compose_rgb(
    background: np.ndarray,
    overlay: np.ndarray | None,
    *,
    window: tuple[float, float],
    threshold: float = 0.5,
    alpha: float = 0.6,
    cmap: str = "magma",
    colour: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """Blend a grey background slice and an overlay slice into one RGB array (float 0-1).

    Overlay voxels at or below ``threshold`` stay grey. Above it they take ``colour`` when
    given (masks), else the colour of their value in ``cmap`` scaled from ``threshold`` to 1.

    Examples
    --------
    >>> bg = np.zeros((2, 3)); ov = np.array([[0.0, 0.9, 0.2], [1.0, 0.0, 0.0]])
    >>> rgb = compose_rgb(bg, ov, window=(0.0, 1.0), threshold=0.5, alpha=1.0, colour=(1.0, 0.0, 0.0))
    >>> rgb.shape, rgb[0, 1].tolist(), rgb[0, 2].tolist()
    ((2, 3, 3), [1.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    """
    low, high = window
    grey = np.clip((np.asarray(background, dtype=np.float32) - low) / max(high - low, 1e-12), 0.0, 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    if overlay is None or alpha <= 0:
        return rgb
    shown = overlay > threshold
    if not shown.any():
        return rgb
    if colour is not None:
        tint = np.broadcast_to(np.asarray(colour, dtype=np.float32), rgb.shape)
    else:
        scaled = np.clip((overlay - threshold) / max(1.0 - threshold, 1e-6), 0.0, 1.0)
        # Start the colour map a third of the way in: its darkest colours vanish on a dark T1.
        tint = colormaps[cmap](0.35 + 0.65 * scaled)[..., :3].astype(np.float32)
    alpha = float(np.clip(alpha, 0.0, 1.0))
    rgb[shown] = (1.0 - alpha) * rgb[shown] + alpha * tint[shown]
    return rgb
