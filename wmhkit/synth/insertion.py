"""Synthetic lesions in real anatomy: :func:`insert_lesions`.

Lesions are drawn as in :func:`wmhkit.synth.make_phantom` (periventricular bands and caps,
deep blobs; white matter only) on the given T1's own grid, in its world coordinates, and the
T1 is darkened like real WMH: each voxel moves towards a lesion intensity (a fraction of the
local white-matter intensity) in proportion to its lesion fraction, which gives partial volume
at the edges.
"""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
from scipy import ndimage

from wmhkit.errors import InputImageError, OptionError
from wmhkit.io import check_img, check_mask, new_img_like, voxel_sizes_mm, voxel_volume_ml
from wmhkit.synth.fields import bounding_box
from wmhkit.synth.lesions import lesion_fraction
from wmhkit.synth.templates import _horn_tips

__all__ = ["insert_lesions"]

logger = logging.getLogger(__name__)


def _central_ventricles(wm: np.ndarray) -> np.ndarray:
    """Ventricles guessed as the largest holes enclosed by white matter (at most two)."""
    holes = ndimage.binary_fill_holes(ndimage.binary_closing(wm, iterations=2)) & ~wm
    holes = ndimage.binary_opening(holes)
    labels, count = ndimage.label(holes)
    if count == 0:
        return holes
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
    keep = np.argsort(sizes)[::-1][:2] + 1
    return np.isin(labels, keep)


def _world(index: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return (affine[:3, :3] @ index + affine[:3, 3:4]).astype(np.float32)


def insert_lesions(
    t1,
    white_matter_mask,
    ventricle_mask=None,
    *,
    seed: int = 0,
    lesion_burden: float = 1.0,
) -> tuple[nib.Nifti1Image, nib.Nifti1Image, dict]:
    """Insert synthetic white-matter lesions into a real T1.

    Parameters
    ----------
    t1 : str, os.PathLike or nibabel image
        A 3D T1 (any orientation, skull-on or not).
    white_matter_mask : str, os.PathLike or nibabel image
        White matter on the T1's grid (values above 0.5); lesions are placed inside it only.
    ventricle_mask : str, os.PathLike or nibabel image, optional
        Lateral ventricles on the T1's grid, for periventricular lesions. Default: the
        largest holes enclosed by the white-matter mask.
    seed : int, default 0
        Random seed; the same inputs and seed give the same lesions.
    lesion_burden : float, default 1.0
        0 none, 1 moderate, 3 severe (as in :func:`wmhkit.synth.make_phantom`).

    Returns
    -------
    t1_with_lesions : nibabel.Nifti1Image
        float32 T1 on the input grid with darkened lesions.
    lesion_mask : nibabel.Nifti1Image
        uint8 exact lesion mask (lesion fraction above 0.5).
    params : dict
        Lesion parameters, ``lesion_ml``, ``t1_lesion_ratio`` (lesion / local WM intensity).
    """
    image = check_img(t1)
    wm = check_mask(white_matter_mask, reference=image).get_fdata(dtype=np.float32) > 0.5
    if lesion_burden < 0:
        raise OptionError(f"lesion_burden={lesion_burden} must be 0 or more (1 is moderate, 3 severe).")
    if wm.sum() < 1000:
        raise InputImageError(
            f"White-matter mask has only {int(wm.sum())} voxels; give a white-matter mask of the whole brain."
        )
    if ventricle_mask is None:
        ventricles = _central_ventricles(wm)
        ventricle_source = "holes in the white-matter mask"
    else:
        ventricles = check_mask(ventricle_mask, reference=image).get_fdata(dtype=np.float32) > 0.5
        ventricle_source = "given"
    rng = np.random.default_rng(int(seed))
    affine = np.asarray(image.affine, dtype=np.float64)
    sizes = voxel_sizes_mm(image)
    data = image.get_fdata(dtype=np.float32)

    # Work inside the white matter's box (plus a margin) only.
    start, stop = bounding_box(wm | ventricles)
    margin = np.ceil(10.0 / sizes).astype(int)
    start = np.maximum(start - margin, 0)
    stop = np.minimum(stop + margin, wm.shape)
    box = tuple(slice(a, b) for a, b in zip(start, stop))
    wm_box, ventricles_box = wm[box], ventricles[box]
    if ventricles_box.any():
        distance = ndimage.distance_transform_edt(~ventricles_box, sampling=sizes).astype(np.float32)
        tips = _horn_tips(ventricles, affine)
    else:
        distance = np.full(wm_box.shape, 1e3, dtype=np.float32)
        tips = np.zeros((0, 3))
    inner = ndimage.distance_transform_edt(wm_box, sampling=sizes)
    deep = wm_box & (inner > 5.0) & (distance > 6.0)
    deep_mm = _world(np.array(np.nonzero(deep)) + start[:, None], affine).T.astype(np.float64)
    where = np.flatnonzero(wm_box)
    index = np.array(np.unravel_index(where, wm_box.shape)) + start[:, None]
    fraction, params = lesion_fraction(
        rng,
        _world(index, affine),
        np.ones(where.size, dtype=np.float32),
        distance.ravel()[where],
        tips,
        deep_mm,
        lesion_burden=lesion_burden,
    )
    lesion = np.zeros(wm.shape, dtype=np.float32)
    lesion[tuple(index)] = fraction

    # Local WM intensity: normalised convolution of the T1 over the white matter (about 6 mm).
    sigma = 6.0 / sizes
    weight = ndimage.gaussian_filter(wm_box.astype(np.float32), sigma)
    local_wm = ndimage.gaussian_filter(np.where(wm_box, data[box], 0.0).astype(np.float32), sigma)
    local_wm = local_wm / np.maximum(weight, 1e-3)
    ratio = float(rng.uniform(0.68, 0.88))
    texture = 1.0 + 0.04 * rng.standard_normal(wm_box.shape).astype(np.float32)
    target = local_wm * np.float32(ratio) * texture
    out = data.copy()
    out[box] = data[box] + lesion[box] * (target - data[box])
    mask = (lesion > 0.5).astype(np.uint8)
    params.update(
        {
            "seed": int(seed),
            "t1_lesion_ratio": ratio,
            "ventricles": ventricle_source,
            "lesion_ml": float(mask.sum() * voxel_volume_ml(image)),
            "lesion_partial_volume_ml": float(lesion.sum() * voxel_volume_ml(image)),
        }
    )
    logger.info("inserted %.2f mL of lesions (burden %.2f)", params["lesion_ml"], lesion_burden)
    return new_img_like(image, out.astype(np.float32)), new_img_like(image, mask), params
