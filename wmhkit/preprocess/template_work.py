"""The MNI template on the alignment's 2 mm working grid, and its smoothed copies, made once and kept on disk.

:func:`wmhkit.preprocess.align_to_mni` reads the template only at 2 mm: block means of the T1
and the brain mask, the registration pyramid's Gaussian-smoothed T1 and the quality score's.
They are the same for every image, so each is made once per installation
(:func:`wmhkit.io.cached_array`): reading the 1 mm template costs about 0.3 s and 45 MB per
process, and the smoothing about 0.15 s of each alignment.
"""

from __future__ import annotations

import functools

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from wmhkit.preprocess.resampling import block_affine, block_mean
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, template_data

__all__ = ["to_sitk", "template_work", "smoothed_template"]


def to_sitk(data: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """An axis-aligned array (x fastest in world order) as a SimpleITK image in world mm."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0), dtype=np.float32))
    image.SetSpacing([float(s) for s in np.diag(affine)[:3]])
    image.SetOrigin([float(o) for o in affine[:3, 3]])
    return image


@functools.lru_cache(maxsize=None)
def template_work(work_mm: float, dilation_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Template T1, brain mask and metric mask (the brain dilated by ``dilation_mm``) on the ``work_mm`` grid
    (block means), and that grid's affine; read-only."""
    from wmhkit.io import cached_array

    factors = (int(round(work_mm)),) * 3
    t1 = cached_array("templates", f"mni152_t1_block{factors[0]}",
                      lambda: block_mean(template_data("t1"), TEMPLATE_AFFINE, factors)[0])
    brain = cached_array("templates", f"mni152_brain_block{factors[0]}",
                         lambda: block_mean(template_data("brain_mask"), TEMPLATE_AFFINE, factors)[0] > 0.5)
    affine = block_affine(TEMPLATE_AFFINE, factors)
    radius = int(round(dilation_mm / work_mm))
    metric_mask = ndimage.binary_dilation(brain, iterations=radius) if radius > 0 else brain.copy()
    for array in (t1, brain, metric_mask):
        array.setflags(write=False)
    return t1, brain, metric_mask, affine


@functools.lru_cache(maxsize=None)
def smoothed_template(work_mm: float, sigma_mm: float, method: str) -> np.ndarray:
    """The template T1 on the ``work_mm`` grid smoothed by a Gaussian of ``sigma_mm``; read-only.

    ``method`` "sitk": SimpleITK's recursive Gaussian, as its voxel array (z, y, x: the
    registration pyramid); "scipy": ``scipy.ndimage.gaussian_filter`` (the quality score).
    """
    from wmhkit.io import cached_array

    def build() -> np.ndarray:
        t1, _, _, affine = template_work(work_mm, 0.0)
        if method == "sitk":
            return sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(to_sitk(t1, affine), sigma_mm))
        return ndimage.gaussian_filter(t1, sigma_mm / np.diag(affine)[:3])

    return cached_array("templates", f"mni152_t1_block{int(round(work_mm))}_{method}_gauss{sigma_mm:g}mm", build)
