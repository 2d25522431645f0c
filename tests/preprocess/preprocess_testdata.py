"""Synthetic subjects made from the MNI template with a known affine (helpers for tests/preprocess)."""

from __future__ import annotations

import functools

import nibabel as nib
import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from wmhkit.preprocess.alignment import MNIAlignment, alignment_distance_mm
from wmhkit.preprocess.resampling import resample_array
from wmhkit.preprocess.templates import TEMPLATE_AFFINE, template_data

#: Axis directions (columns) of voxel orders used in the tests.
ORIENTATIONS = {
    "RAS": np.eye(3),
    "LAS": np.diag([-1.0, 1.0, 1.0]),
    "LIA": np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
}


@functools.lru_cache(maxsize=None)
def mni_head() -> np.ndarray:
    """Template brain wrapped in CSF (dark), skull (darker), scalp (bright) and a neck, MNI 1 mm."""
    brain = ndimage.binary_fill_holes(template_data("brain_mask") > 0)
    csf = ndimage.binary_dilation(brain, iterations=3)
    skull = ndimage.binary_dilation(csf, iterations=5)
    scalp = ndimage.binary_dilation(skull, iterations=4)
    head = template_data("t1").copy()
    head[csf & ~brain] = 0.12
    head[skull & ~csf] = 0.04
    head[scalp & ~skull] = 0.95
    # A neck: a bright cylinder under the brain.
    i, j, k = np.ogrid[: head.shape[0], : head.shape[1], : head.shape[2]]
    neck = ((i - 98) ** 2 / 45.0**2 + (j - 105) ** 2 / 40.0**2 <= 1) & (k < 40)
    head[neck & (head == 0)] = 0.6
    head.setflags(write=False)
    return head


def random_subject_to_mni(seed: int, *, rotation_deg: float = 12.0, scale: float = 0.12, shift_mm: float = 15.0) -> np.ndarray:
    """A random 12-parameter subject -> MNI affine (rotation, anisotropic scale, shift)."""
    rng = np.random.default_rng(seed)
    matrix = np.eye(4)
    rotation = Rotation.from_euler("xyz", rng.uniform(-rotation_deg, rotation_deg, 3), degrees=True).as_matrix()
    matrix[:3, :3] = rotation @ np.diag(rng.uniform(1 - scale, 1 + scale, 3))
    matrix[:3, 3] = rng.uniform(-shift_mm, shift_mm, 3)
    return matrix


def subject_grid(voxel_mm: float, orientation: str = "LAS", oblique_deg: float = 0.0, extent_mm=(190.0, 230.0, 220.0)):
    """Shape and affine of a subject grid centred on the world origin."""
    axes = ORIENTATIONS[orientation]
    if oblique_deg:
        axes = Rotation.from_euler("x", oblique_deg, degrees=True).as_matrix() @ axes
    shape = tuple(int(round(abs(e) / voxel_mm)) for e in np.abs(ORIENTATIONS[orientation].T) @ np.asarray(extent_mm))
    affine = np.eye(4)
    affine[:3, :3] = axes * voxel_mm
    affine[:3, 3] = -(affine[:3, :3] @ (np.asarray(shape) - 1) / 2)
    return shape, affine


def make_subject(
    subject_to_mni: np.ndarray,
    *,
    voxel_mm: float = 2.0,
    orientation: str = "LAS",
    oblique_deg: float = 0.0,
    skull: bool = True,
    scale: float = 1000.0,
    dtype=np.int16,
    noise: float = 0.02,
    seed: int = 0,
) -> nib.Nifti1Image:
    """The template (or template head) seen through ``subject_to_mni`` on a subject grid."""
    shape, affine = subject_grid(voxel_mm, orientation, oblique_deg)
    source = mni_head() if skull else template_data("t1")
    data = resample_array(source, TEMPLATE_AFFINE, shape, affine, subject_to_mni)
    data += np.random.default_rng(seed).normal(0.0, noise, shape).astype(np.float32) * (data > 0)
    data = np.clip(data, 0, None) * scale
    if np.dtype(dtype).kind in "iu":
        data = np.round(data)
    return nib.Nifti1Image(data.astype(dtype), affine)


def mean_distance_mm(mni_to_subject_a: np.ndarray, mni_to_subject_b: np.ndarray) -> float:
    """Mean distance (mm) between where two MNI -> subject maps send the template brain."""
    return alignment_distance_mm(MNIAlignment(np.linalg.inv(mni_to_subject_a)), MNIAlignment(np.linalg.inv(mni_to_subject_b)))
