"""Synthetic lesions in real anatomy: :func:`insert_lesions`.

Lesions are drawn as in :func:`wmhkit.synth.make_phantom` (periventricular bands and caps,
deep blobs; white matter only) on the given T1's own grid, in its world coordinates, and/or
taken from a real lesion mask in MNI space (:mod:`wmhkit.synth.real_masks`, placed through the
T1's MNI alignment). The T1 is darkened like real WMH (:mod:`wmhkit.synth.appearance`): by a
share of the local gap between white- and grey-matter intensity, with partial volume, soft
borders, texture and a few dark cores.
"""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
from scipy import ndimage

from wmhkit.errors import InputImageError, OptionError
from wmhkit.io import check_img, check_mask, new_img_like, voxel_sizes_mm, voxel_volume_ml
from wmhkit.synth.appearance import lesion_darkening
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
    real_lesion_mask=None,
    mni_to_subject=None,
    grey_matter_ratio: float | None = None,
    lesion_contrast: float | None = None,
    real_mask_variation: dict | None = None,
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
        0 none, 1 moderate, 3 severe (as in :func:`wmhkit.synth.make_phantom`): the drawn
        (procedural) lesions; 0 with ``real_lesion_mask`` places the real mask alone.
    real_lesion_mask : path, optional
        A real lesion mask in MNI space, added (as a random variant, see
        :func:`wmhkit.synth.real_masks.real_lesion_fraction`) inside the white matter.
    mni_to_subject : (4, 4) array, optional
        MNI mm -> T1 mm (``MNIAlignment.mni_to_subject``); required with ``real_lesion_mask``.
    grey_matter_ratio : float, optional
        Grey-matter intensity as a share of the white matter's; default: the median of a 1-3 mm
        shell outside the white-matter mask over the median inside it.
    lesion_contrast : float, optional
        Every lesion darkens by this share of the white-to-grey-matter gap; default: drawn
        (:mod:`wmhkit.synth.appearance`).
    real_mask_variation : dict, optional
        Fixed ``keep_share``, ``grow_mm``, ``flip`` and/or ``warp_mm`` of the real mask (the
        rest drawn); ``{"keep_share": 1, "grow_mm": 0, "flip": False, "warp_mm": 0}`` places
        it as it is.

    Returns
    -------
    t1_with_lesions : nibabel.Nifti1Image
        float32 T1 on the input grid with darkened lesions.
    lesion_mask : nibabel.Nifti1Image
        uint8 exact lesion mask (lesion fraction above 0.5).
    params : dict
        Lesion parameters, ``lesion_ml``, ``grey_matter_ratio``, ``lesion_appearance``.
    """
    image = check_img(t1)
    wm = check_mask(white_matter_mask, reference=image).get_fdata(dtype=np.float32) > 0.5
    if real_lesion_mask is not None and mni_to_subject is None:
        raise OptionError("insert_lesions needs mni_to_subject (the T1's MNI alignment) to place a real lesion mask.")
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
    if real_lesion_mask is not None:
        from wmhkit.synth.real_masks import real_lesion_fraction

        to_mni = np.linalg.inv(np.asarray(mni_to_subject, dtype=np.float64))
        mni = _world(_world(index, affine).astype(np.float64), to_mni)
        real, params["real_mask"] = real_lesion_fraction(np.random.default_rng([int(seed), 2]), mni,
                                                         real_lesion_mask, **(real_mask_variation or {}))
        fraction = np.maximum(fraction, real)
    lesion = np.zeros(wm.shape, dtype=np.float32)
    lesion[tuple(index)] = fraction

    # Local WM intensity: normalised convolution of the T1 over the white matter (about 6 mm).
    sigma = 6.0 / sizes
    values = data[box]
    weight = ndimage.gaussian_filter(wm_box.astype(np.float32), sigma)
    local_wm = ndimage.gaussian_filter(np.where(wm_box, values, 0.0).astype(np.float32), sigma)
    local_wm = local_wm / np.maximum(weight, 1e-3)
    if grey_matter_ratio is None:
        shell = ndimage.binary_dilation(wm_box, iterations=max(1, int(round(3.0 / sizes.min())))) & ~ndimage.binary_dilation(wm_box)
        grey_matter_ratio = float(np.median(values[shell]) / max(np.median(values[wm_box]), 1e-6)) if shell.any() else 0.65
    grey_matter_ratio = float(np.clip(grey_matter_ratio, 0.3, 0.95))
    darkening, appearance = lesion_darkening(np.random.default_rng([int(seed), 3]), lesion[box], sizes,
                                             fixed_share=lesion_contrast)
    out = data.copy()
    out[box] = values - darkening * local_wm * np.float32(1.0 - grey_matter_ratio)
    mask = (lesion > 0.5).astype(np.uint8)
    params.update(
        {
            "seed": int(seed),
            "grey_matter_ratio": grey_matter_ratio,
            "lesion_appearance": appearance,
            "ventricles": ventricle_source,
            "lesion_ml": float(mask.sum() * voxel_volume_ml(image)),
            "lesion_partial_volume_ml": float(lesion.sum() * voxel_volume_ml(image)),
        }
    )
    logger.info("inserted %.2f mL of lesions (burden %.2f)", params["lesion_ml"], lesion_burden)
    return new_img_like(image, out.astype(np.float32)), new_img_like(image, mask), params
