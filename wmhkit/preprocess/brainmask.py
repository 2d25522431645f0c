"""Brain mask on the subject grid: the template's brain brought over by the MNI alignment,
then refined on the subject's own intensities.

Refinement: inside the template brain eroded by :data:`CORE_MM` the mask is kept as is (an
affine alignment is reliable there). In the outer band, voxels darker than
:data:`DARK_FRACTION` of white matter (CSF, skull, dura) or brighter than
:data:`BRIGHT_FRACTION` (scalp fat, vessels) are removed; the largest connected component is
kept and enclosed holes are filled. All work happens inside the brain's bounding box, so the
cost depends on the brain's size in voxels, not on the field of view.
"""

from __future__ import annotations

import functools

import nibabel as nib
import numpy as np
from scipy import ndimage

from wmhkit.io import ImgLike, cached_array, check_img, new_img_like
from wmhkit.io.arrays import label_sizes, lookup
from wmhkit.preprocess.alignment import MNIAlignment
from wmhkit.preprocess.intensity import intensity_levels
from wmhkit.preprocess.resampling import box_on_grid, resample_array
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, template_brain_corners_mm, template_data

__all__ = ["brain_mask", "DARK_FRACTION", "BRIGHT_FRACTION", "CORE_MM"]

#: Outer-band voxels below this fraction of the white-matter intensity are not brain.
DARK_FRACTION = 0.45
#: Outer-band voxels above this multiple of the white-matter intensity are not brain.
BRIGHT_FRACTION = 1.5
#: Depth (mm) of the template brain's outer band refined on the subject's intensities.
CORE_MM = 5
_MARGIN_MM = 6.0


def _build_zones() -> np.ndarray:
    brain = template_data("brain_mask") > 0
    core = ndimage.binary_erosion(brain, ndimage.generate_binary_structure(3, 1), iterations=CORE_MM)
    return brain.astype(np.uint8) + core.astype(np.uint8)


@functools.lru_cache(maxsize=None)
def _template_zones() -> np.ndarray:
    """Template labels on the 1 mm grid: 0 outside the brain, 1 in its outer ``CORE_MM`` band,
    2 in the core (built once per machine, then read from the cache folder)."""
    return cached_array("templates", f"mni152_brain_zones_core{CORE_MM}mm", _build_zones)


def _brain_box(shape: tuple[int, ...], affine: np.ndarray, alignment: MNIAlignment) -> tuple[slice, slice, slice]:
    """Subject voxel bounding box of the template brain (plus a margin), clipped to the image."""
    corners = template_brain_corners_mm(_MARGIN_MM)
    return box_on_grid(corners, np.linalg.inv(affine) @ alignment.mni_to_subject, shape)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed holes: background components that do not touch the array's border.

    One labelling pass (``scipy.ndimage.binary_fill_holes`` iterates dilations, far slower on
    large images).
    """
    labels, count = ndimage.label(~mask)
    border = np.unique(np.concatenate([labels[0].ravel(), labels[-1].ravel(), labels[:, 0].ravel(), labels[:, -1].ravel(), labels[:, :, 0].ravel(), labels[:, :, -1].ravel()]))
    filled = np.ones(count + 1, dtype=bool)
    filled[border[border > 0]] = False
    return lookup(filled, labels)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = label_sizes(labels, count)
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def compute_brain_mask(
    data: np.ndarray, affine: np.ndarray, alignment: MNIAlignment, levels: tuple[float, float] | None = None
) -> np.ndarray:
    """Brain mask (uint8 0/1) of a T1 volume on its own grid; see :func:`brain_mask`.

    ``levels`` are ``(background, white_matter)`` intensities when already known.
    """
    background, wm = levels if levels is not None else intensity_levels(data, affine, alignment)
    box = _brain_box(data.shape, affine, alignment)
    out = np.zeros(data.shape[:3], dtype=np.uint8)
    sub_shape = tuple(s.stop - s.start for s in box)
    if min(sub_shape) <= 0:
        return out
    sub_affine = affine.copy()
    sub_affine[:3, 3] = affine[:3, :3] @ np.array([s.start for s in box]) + affine[:3, 3]
    zones = resample_array(_template_zones(), TEMPLATE_AFFINE, sub_shape, sub_affine, alignment.subject_to_mni, order=0)
    inside, kept = zones >= 1, zones == 2
    values = data[box]
    dark = background + DARK_FRACTION * (wm - background)
    bright = background + BRIGHT_FRACTION * (wm - background)
    kept |= inside & (values > dark) & (values < bright)
    kept = _fill_holes(_largest_component(kept))
    out[box] = kept
    return out


def brain_mask(img: ImgLike, alignment: MNIAlignment) -> nib.Nifti1Image:
    """Brain mask of a T1 image on its own grid.

    The MNI152 brain mask is brought onto the image by ``alignment`` and refined on the
    image's intensities (dark CSF/skull and bright scalp removed from its outer 5 mm, largest
    component, holes filled).

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        The 3D T1-weighted image (skull-on or skull-stripped).
    alignment : MNIAlignment
        Its MNI alignment (from :func:`wmhkit.preprocess.align_to_mni`).

    Returns
    -------
    nibabel.Nifti1Image
        uint8 0/1 mask on ``img``'s grid.
    """
    checked = check_img(img)
    return new_img_like(checked, compute_brain_mask(np.asanyarray(checked.dataobj), checked.affine, alignment))
