"""Training patches: where to cut them, how to augment them, and their forward models.

A patch is a block of the cached T1 resampled through a random spatial transform G (rotation,
scaling, left-right flip, translation to the patch centre): patch voxel u reads the brain-box
voxel G u. The label's geometry is composed with the same G, so the super-resolution forward
model stays exact under augmentation. Centres are drawn at labelled lesions with probability
``lesion_fraction``, elsewhere inside the head. Intensity augmentation (gamma, contrast, bias
field, blur or lower resolution, noise) randomises the domain: the real T1 scans the model meets
differ from the phantoms in contrast and texture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from wmhkit.train.cases import Case
from wmhkit.train.geometry import ForwardPairs, forward_pairs, nearest_label

__all__ = ["AUGMENT_DEFAULTS", "Patch", "random_transform", "augment_intensity", "sample_patch"]

#: Augmentation settings; a config's "augment" dict overrides any of them (0 or False turns one off).
AUGMENT_DEFAULTS: dict = {
    # Mild on purpose: every phantom already draws its own contrasts, bias field, noise and blur,
    # and the first recipe with twice these ranges (10 deg, gamma 0.3, bias 0.3, blur 1 voxel,
    # probability 0.8) did not learn at all in 400 steps where this one did.
    "rotate_deg": 5.0,  # uniform in +-this, each axis
    "scale": 0.05,  # isotropic scale uniform in 1 +- this
    "flip": True,  # left-right flip with probability 0.5
    "gamma": 0.1,  # exp(normal(0, this)) power on the [0, 2] intensities
    "contrast": 0.05,  # multiply by 1 +- this, then add +- this / 2
    "bias": 0.1,  # amplitude of a smooth multiplicative field, exp(+-this)
    "blur_sigma": 0.5,  # Gaussian blur up to this many voxels, along a random subset of axes
    "noise": 0.02,  # Gaussian noise sd up to this
    "probability": 0.25,  # chance that each intensity augmentation is applied
    # Share of patches cut at whole-voxel positions with no rotation or scaling (the flip is
    # kept): read without interpolation, as sharp as the voxels a subject-space network meets.
    "exact_fraction": 0.0,
    # Amplitude (up to exp(+-this)) and wavelength (mm) of a lesion-scale multiplicative field:
    # faint unlabelled darkening and brightening anywhere, the ventricle walls included, so that
    # a network cannot call a head's own slightly darker periventricular white matter a lesion.
    "local_field": 0.0,
    "local_field_mm": 15.0,
}


@dataclass
class Patch:
    """One training patch.

    Attributes
    ----------
    image : numpy.ndarray
        float32 (H, W, D + in_slices - 1): the augmented T1 block with slice context.
    pairs : ForwardPairs
        The forward model from the (H, W, D) output block to the label.
    target : numpy.ndarray
        float32 label value of each forward-model row.
    naive_target, naive_valid : numpy.ndarray or None
        The label up-sampled (nearest) to the (H, W, D) block, and where it is defined.
    exact_target, exact_valid : numpy.ndarray or None
        The case's exact lesion mask (synthetic cases only) resampled (linear) to the (H, W, D)
        block, and 1 where the case has one (0 for a case without: a real cohort's scan).
    case_id : str
    to_box : numpy.ndarray
        4x4 affine from image-block voxels to brain-box voxels (the spatial augmentation).
    """

    image: np.ndarray
    pairs: ForwardPairs
    target: np.ndarray
    naive_target: np.ndarray | None
    naive_valid: np.ndarray | None
    case_id: str
    to_box: np.ndarray
    exact_target: np.ndarray | None = None
    exact_valid: np.ndarray | None = None


def _rotation(angles_rad: np.ndarray) -> np.ndarray:
    cx, cy, cz = np.cos(angles_rad)
    sx, sy, sz = np.sin(angles_rad)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_transform(rng: np.random.Generator, centre, patch_shape, options: dict) -> np.ndarray:
    """4x4 affine from patch voxel indices to brain-box voxel indices, centred on ``centre``."""
    linear = np.eye(3)
    # Short-circuit: configs without exact patches draw the same random numbers as before.
    exact = bool(options.get("exact_fraction")) and rng.random() < options["exact_fraction"]
    if options.get("rotate_deg") and not exact:
        linear = _rotation(np.deg2rad(rng.uniform(-1, 1, 3) * options["rotate_deg"])) @ linear
    if options.get("scale") and not exact:
        linear = linear * (1.0 + rng.uniform(-1, 1) * options["scale"])
    if options.get("flip") and rng.random() < 0.5:
        linear = linear @ np.diag([-1.0, 1.0, 1.0])
    half = (np.asarray(patch_shape, float) - 1.0) / 2.0
    out = np.eye(4)
    out[:3, :3] = linear
    out[:3, 3] = np.asarray(centre, float) - linear @ half
    if exact:
        out[:3, 3] = np.round(out[:3, 3])
    return out


def _smooth_field(rng: np.random.Generator, shape, amplitude: float) -> np.ndarray:
    """exp of a random quadratic polynomial per axis (separable; cheap and smooth)."""
    log_field = np.zeros(shape, dtype=np.float32)
    for axis, n in enumerate(shape):
        x = np.linspace(-1.0, 1.0, n, dtype=np.float32)
        a, b = rng.normal(0.0, amplitude / 2.0, 2)
        profile = (a * x + b * (x**2 - 1.0 / 3.0)).astype(np.float32)
        log_field = log_field + profile.reshape([-1 if k == axis else 1 for k in range(3)])
    return np.exp(log_field)


def _local_field(rng: np.random.Generator, shape, amplitude: float, wavelength_vox: float) -> np.ndarray:
    """exp of a smooth random field of sd ~``amplitude`` varying over ``wavelength_vox`` voxels.

    A cubic B-spline through Gaussian knots ``wavelength_vox / 2`` apart; the amplitude is drawn
    uniformly in (0, ``amplitude``) so that some patches get almost none.
    """
    step = max(wavelength_vox / 2.0, 2.0)
    knots = rng.standard_normal([int(np.ceil(n / step)) + 3 for n in shape]).astype(np.float32)
    coords = np.meshgrid(*[np.arange(n, dtype=np.float32) / np.float32(step) + 1.0 for n in shape], indexing="ij")
    field = ndimage.map_coordinates(knots, coords, order=3, mode="nearest", prefilter=False)
    field /= max(float(field.std()), 1e-3)
    return np.exp(np.float32(rng.uniform(0.0, amplitude)) * field).astype(np.float32)


def augment_intensity(image: np.ndarray, rng: np.random.Generator, options: dict) -> np.ndarray:
    """Randomise the contrast of a normalised T1 block (background stays near 0)."""
    out = np.clip(image, 0.0, None).astype(np.float32)
    chance = float(options.get("probability", 1.0))
    if options.get("gamma") and rng.random() < chance:
        gamma = float(np.exp(rng.normal(0.0, options["gamma"])))
        out = 2.0 * (np.clip(out, 0.0, 2.0) / 2.0) ** gamma
    if options.get("bias") and rng.random() < chance:
        out = out * _smooth_field(rng, out.shape, options["bias"]).astype(np.float32)
    if options.get("contrast") and rng.random() < chance:
        c = options["contrast"]
        out = out * (1.0 + rng.uniform(-c, c)) + (out > 0.05) * rng.uniform(-c, c) / 2.0
    if options.get("blur_sigma") and rng.random() < chance:
        sigma = rng.uniform(0.0, options["blur_sigma"], 3) * (rng.random(3) < 0.6)
        out = ndimage.gaussian_filter(out, sigma)
    if options.get("noise") and rng.random() < chance:
        out = out + rng.normal(0.0, rng.uniform(0.0, options["noise"]), out.shape)
    # Last and only when asked: configs without it draw the same random numbers as before.
    if options.get("local_field") and rng.random() < chance:
        out = out * _local_field(rng, out.shape, options["local_field"], options.get("local_field_mm", 15.0))
    return out.astype(np.float32)


def sample_patch(
    case: Case,
    rng: np.random.Generator,
    *,
    patch_size=(96, 96, 16),
    in_slices: int = 5,
    lesion_fraction: float = 0.7,
    augment: dict | None = None,
    naive: bool = False,
    exact: bool = False,
) -> Patch:
    """Cut one augmented training patch from a case.

    Parameters
    ----------
    case : Case
        The cached case.
    rng : numpy.random.Generator
        Source of every random choice (seed it for reproducible patches).
    patch_size : tuple of 3 int, default (96, 96, 16)
        Output block (H, W, D): D slices along the network's slice axis (axis 2).
    in_slices : int, default 5
        The network's slice context; the image block has ``D + in_slices - 1`` slices.
    lesion_fraction : float, default 0.7
        Chance that the centre is a labelled lesion voxel (when the case has any).
    augment : dict, optional
        Overrides of :data:`AUGMENT_DEFAULTS`; pass ``{}`` for the defaults, ``None`` for none.
    naive : bool, default False
        Also return the label up-sampled to the block (the naive loss).
    exact : bool, default False
        Also return the case's exact lesion mask on the block (the exact-label loss term).
    """
    options = {} if augment is None else {**AUGMENT_DEFAULTS, **augment}
    size = np.asarray(patch_size, dtype=int)
    context = in_slices // 2
    if len(case.lesion_points) and rng.random() < lesion_fraction:
        centre = case.lesion_points[rng.integers(len(case.lesion_points))] + rng.normal(0.0, 8.0, 3)
    elif len(case.brain_points):
        centre = case.brain_points[rng.integers(len(case.brain_points))].astype(float)
    else:
        centre = (np.asarray(case.t1.shape) - 1) / 2.0
    image_shape = (int(size[0]), int(size[1]), int(size[2]) + 2 * context)
    to_box = random_transform(rng, centre, image_shape, options)
    grid = np.indices(image_shape, dtype=np.float32).reshape(3, -1)
    coords = to_box[:3, :3].astype(np.float32) @ grid + to_box[:3, 3:].astype(np.float32)
    image = ndimage.map_coordinates(np.asarray(case.t1, dtype=np.float32), coords, order=1, mode="constant",
                                    cval=0.0).reshape(image_shape)
    if augment is not None:
        image = augment_intensity(image, rng, options)
    # Output voxel (i, j, k) is image voxel (i, j, k + context).
    shift = np.eye(4)
    shift[2, 3] = context
    geometry = case.geometry.with_net_transform(to_box @ shift)
    pairs = forward_pairs(geometry, tuple(size))
    label = np.asarray(case.label, dtype=np.float32)
    target = label.reshape(-1)[pairs.label_index]
    naive_target = naive_valid = None
    if naive:
        naive_target, naive_valid = nearest_label(geometry, label, tuple(size))
    exact_target = exact_valid = None
    if exact:
        exact_target, exact_valid = _exact_block(case, coords.reshape(3, *image_shape)[..., context:context + size[2]])
    return Patch(image.astype(np.float32), pairs, target.astype(np.float32), naive_target, naive_valid,
                 case.case_id, to_box, exact_target, exact_valid)


def _exact_block(case: Case, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The exact lesion mask at the output block's voxels (``coords``: 3 x H x W x D box positions)."""
    shape = coords.shape[1:]
    if case.lesion_mni is None:
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    # Read the uint8 mask as it is (memory-mapped): a float copy of the whole volume per patch costs more
    # than the interpolation itself.
    target = ndimage.map_coordinates(case.lesion_mni, coords.reshape(3, -1), order=1, mode="constant", cval=0.0,
                                     output=np.float32).reshape(shape)
    return target, np.ones(shape, np.float32)
