"""Subject anatomy: the MNI tissue maps under a random affine and smooth warp, with atrophy.

The subject lives in its own scanner space. ``subject_to_mni`` (4x4) is the linear part of
the simulated warp; a smooth random displacement (a few mm) adds the non-linear part. The T1
grid is axis-aligned in scanner space with a random voxel order (RAS, LAS, LIA, ...), so the
head sits obliquely in it, like a real scan.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from wmhkit.synth.fields import sample, smooth_field, trilinear, upsample_linear
from wmhkit.synth.templates import MNITissue, load_tissue_maps

__all__ = ["Anatomy", "make_anatomy", "ORIENTATIONS", "orientation_matrix"]

logger = logging.getLogger(__name__)

#: Voxel orders drawn for the T1 grid (scanner axes, nibabel codes).
ORIENTATIONS = ("RAS", "LAS", "LPS", "LIA", "PIR", "ASL", "RPI")
_DIRECTIONS = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}
#: Extra-cerebral layers of a skull-on head, innermost first.
HEAD_LAYERS = ("csf_rim", "skull", "diploe", "fat", "skin")


def orientation_matrix(code: str) -> np.ndarray:
    """Signed permutation whose column ``a`` is the world direction of voxel axis ``a``.

    >>> orientation_matrix("LIA").astype(int).tolist()
    [[-1, 0, 0], [0, 0, 1], [0, -1, 0]]
    """
    matrix = np.zeros((3, 3))
    for axis, letter in enumerate(code):
        world, sign = _DIRECTIONS[letter]
        matrix[world, axis] = sign
    return matrix


@dataclass
class Anatomy:
    """Tissue fractions of one subject on its T1 grid.

    Attributes
    ----------
    affine : (4, 4) array
        T1 voxel-to-scanner affine (mm).
    subject_to_mni : (4, 4) array
        Scanner mm to MNI mm, linear part of the warp.
    fractions : dict of str to float32 array
        ``wm``, ``gm``, ``deep_gm``, ``csf``, ``ventricle`` and, for skull-on heads, the
        layers of :data:`HEAD_LAYERS`; they sum to at most 1 (the rest is background/air).
    mni_mm : (3, X, Y, Z) float32 array
        MNI position (mm) of every voxel through the full warp.
    ventricle_distance_mm : float32 array
        Distance (mm) to the enlarged ventricles' surface (0 inside, large far away).
    params : dict
        Every drawn parameter.
    """

    affine: np.ndarray
    subject_to_mni: np.ndarray
    fractions: dict = field(repr=False)
    mni_mm: np.ndarray = field(repr=False)
    ventricle_distance_mm: np.ndarray = field(repr=False)
    params: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.fractions["wm"].shape

    def brain_fraction(self) -> np.ndarray:
        f = self.fractions
        return f["wm"] + f["gm"] + f["deep_gm"] + f["csf"] + f["ventricle"]


def _random_subject_to_mni(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    angles = np.clip(rng.normal(0.0, 7.0, 3), -18, 18)
    head_scale = rng.uniform(0.9, 1.1)
    scales = head_scale * rng.uniform(0.96, 1.04, 3)
    translation = rng.uniform(-15, 15, 3)
    mni_to_subject = np.eye(4)
    mni_to_subject[:3, :3] = Rotation.from_euler("xyz", angles, degrees=True).as_matrix() @ np.diag(scales)
    mni_to_subject[:3, 3] = translation
    params = {"rotation_deg": angles, "scale": scales, "translation_mm": translation}
    return np.linalg.inv(mni_to_subject), params


def _t1_grid(rng, tissue: MNITissue, mni_to_subject, voxel_size_mm, skull) -> tuple[np.ndarray, tuple, dict]:
    # Every voxel centre of the (dilated) brain lookup, so that a rotation does not inflate the box.
    lookup = np.array(np.nonzero(tissue.brain_lookup), dtype=np.float64)
    mni = tissue.lookup_affine[:3, :3] @ lookup + tissue.lookup_affine[:3, 3:4]
    margin = (22.0 if skull else 2.0) + rng.uniform(0, 6, (3, 2))
    scanner = mni_to_subject[:3, :3] @ mni + mni_to_subject[:3, 3:4]
    box_lo = scanner.min(axis=1) - margin[:, 0]
    box_hi = scanner.max(axis=1) + margin[:, 1]
    if skull:  # the neck continues below the template's field of view
        box_lo[2] -= rng.uniform(10, 30)
    code = ORIENTATIONS[rng.integers(len(ORIENTATIONS))]
    direction = orientation_matrix(code)
    sizes = voxel_size_mm * rng.uniform(0.95, 1.1, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction @ np.diag(sizes)
    shape = []
    for axis in range(3):
        world, sign = _DIRECTIONS[code[axis]]
        shape.append(int(np.ceil((box_hi[world] - box_lo[world]) / sizes[axis])) + 1)
        affine[world, 3] = box_lo[world] if sign > 0 else box_hi[world]
    # NIfTI stores affines in float32: use exactly what the saved image will hold.
    affine = affine.astype(np.float32).astype(np.float64)
    return affine, tuple(shape), {"t1_orientation": code, "t1_voxel_mm": sizes, "t1_shape": shape}


def _mni_coordinates(rng, affine, shape, subject_to_mni, voxel_size_mm) -> tuple[np.ndarray, dict]:
    linear = subject_to_mni @ affine
    spacing_mm = rng.uniform(20, 35)
    amplitude_mm = rng.uniform(0.5, 3.0)
    axes = [np.arange(n, dtype=np.float32) for n in shape]
    out = np.empty((3,) + tuple(shape), dtype=np.float32)
    for c in range(3):
        displacement = smooth_field(rng, shape, spacing_mm / voxel_size_mm) * np.float32(amplitude_mm)
        out[c] = displacement
        out[c] += (linear[c, 0] * axes[0])[:, None, None].astype(np.float32)
        out[c] += (linear[c, 1] * axes[1])[None, :, None].astype(np.float32)
        out[c] += (linear[c, 2] * axes[2] + linear[c, 3])[None, None, :].astype(np.float32)
    return out, {"warp_spacing_mm": spacing_mm, "warp_amplitude_mm": amplitude_mm}


def _atrophy(rng, age_years: float) -> dict:
    level = float(np.clip((age_years - 40.0) / 50.0, 0.0, 1.2)) * rng.uniform(0.6, 1.3)
    return {
        "atrophy_level": level,
        "ventricle_growth_mm": level * rng.uniform(1.5, 4.0),
        "sulcal_atrophy": float(np.clip(level * rng.uniform(0.3, 0.8), 0.0, 0.9)),
    }


def _in_box(index: np.ndarray, box: tuple) -> np.ndarray:
    keep = np.ones(index.shape[1], dtype=bool)
    for axis, part in enumerate(box):
        keep &= (index[axis] >= part.start) & (index[axis] <= part.stop - 1)
    return keep


def _brain_fractions(tissue: MNITissue, index: np.ndarray, atrophy: dict, voxel_mm: float) -> dict:
    """Fractions at template indices ``index`` (3, N)."""
    wm, gm, csf, atrophy_gm = trilinear(tissue.brain_stack, index).T
    loss = np.float32(atrophy["sulcal_atrophy"])
    gm = gm - atrophy_gm * loss
    csf = csf + atrophy_gm * loss
    deep_gm = np.zeros_like(wm)
    distance = np.full_like(wm, 1e3)
    box = tissue.central_box
    inside = _in_box(index, box)
    origin = np.array([b.start for b in box], dtype=np.float32)[:, None]
    central = trilinear(tissue.central_stack, index[:, inside] - origin)
    deep_gm[inside] = central[:, 0]
    distance[inside] = central[:, 1]
    distance -= np.float32(atrophy["ventricle_growth_mm"])
    ventricle = np.clip(0.5 - distance / np.float32(voxel_mm), 0.0, 1.0)
    total = wm + gm + deep_gm + csf
    ventricle = np.minimum(ventricle, total)
    keep = np.where(total > 0, (total - ventricle) / np.maximum(total, 1e-6), 0.0).astype(np.float32)
    return {
        "wm": wm * keep,
        "gm": gm * keep,
        "deep_gm": deep_gm * keep,
        "csf": csf * keep,
        "ventricle": ventricle,
        "_distance": np.maximum(distance, 0.0),
    }


def _lower_head(rng, coarse_mni: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Face and neck below the brain: a soft ellipsoid of muscle with fat patches (coarse grid)."""
    centre = np.array([0.0, -15.0, -100.0]) + rng.normal(0, 4, 3)
    radii = np.array([48.0, 55.0, 60.0]) * rng.uniform(0.9, 1.1, 3)
    x, y, z = (coarse_mni[c] - np.float32(centre[c]) for c in range(3))
    inside = 1.0 - ((x / radii[0]) ** 2 + (y / radii[1]) ** 2 + (z / radii[2]) ** 2)
    below = np.clip((np.float32(-45.0) - coarse_mni[2]) / 8.0, 0.0, 1.0)
    soft = np.clip(inside * 8.0, 0.0, 1.0) * below
    patches = smooth_field(rng, soft.shape, 5.0)
    fat_share = np.clip(patches * 0.8 + 0.1, 0.0, 1.0) * np.float32(rng.uniform(0.3, 0.7))
    return (soft * (1 - fat_share)).astype(np.float32), (soft * fat_share).astype(np.float32), {
        "neck_centre_mm": centre, "neck_radii_mm": radii}


def _head_layers(rng, tissue, mni_mm, brain, voxel_size_mm) -> tuple[dict, dict]:
    """Extra-cerebral layers from the distance outside the brain (computed at half resolution).

    Inner to outer: a thin CSF rim, the skull (compact bone, diploe, compact bone), scalp fat
    and skin; below the brain, the face and neck (muscle with fat).
    """
    step = 2
    coarse_mni = np.ascontiguousarray(mni_mm[:, ::step, ::step, ::step])
    to_index = np.linalg.inv(tissue.affine)
    index = (to_index[:3, :3] @ coarse_mni.reshape(3, -1) + to_index[:3, 3:4]).astype(np.float32)
    # Beyond the template's field of view there is no brain to wrap: far outside.
    outside = sample(tissue.outside_mm, index, mode="constant", cval=200.0).reshape(coarse_mni.shape[1:])
    muscle_coarse, neck_fat_coarse, neck_params = _lower_head(rng, coarse_mni)
    outside = upsample_linear(outside, brain.shape)
    thickness = {
        "csf_rim": rng.uniform(0.5, 2.0),
        "skull": rng.uniform(4.0, 8.0),
        "fat": rng.uniform(2.0, 6.0),
        "skin": rng.uniform(1.0, 2.5),
    }
    variation = 1.0 + 0.3 * smooth_field(rng, brain.shape, 25.0 / voxel_size_mm)
    start = np.zeros_like(outside)
    edges = {}
    for name in ("csf_rim", "skull", "fat", "skin"):
        end = start + np.float32(thickness[name]) * variation
        edges[name] = (start, end)
        start = end
    not_brain = np.clip(1.0 - brain, 0.0, 1.0)

    def band(lo, hi):
        ramp = np.float32(1.0 / voxel_size_mm)
        return np.clip((outside - lo) * ramp + 0.5, 0, 1) - np.clip((outside - hi) * ramp + 0.5, 0, 1)

    layers = {"csf_rim": band(*edges["csf_rim"]) * not_brain}
    skull_lo, skull_hi = edges["skull"]
    diploe_share = np.float32(rng.uniform(0.2, 0.45))
    inner = skull_lo + (skull_hi - skull_lo) * (0.5 - diploe_share / 2)
    outer = skull_hi - (skull_hi - skull_lo) * (0.5 - diploe_share / 2)
    layers["skull"] = (band(skull_lo, inner) + band(outer, skull_hi)) * not_brain
    layers["diploe"] = band(inner, outer) * not_brain
    layers["fat"] = band(*edges["fat"]) * not_brain
    layers["skin"] = band(*edges["skin"]) * not_brain
    free = np.clip(not_brain - sum(layers.values()), 0.0, 1.0)
    layers["skin"] += upsample_linear(muscle_coarse, brain.shape) * free
    layers["fat"] += upsample_linear(neck_fat_coarse, brain.shape) * free
    params = {"head_layer_mm": thickness, "diploe_share": float(diploe_share), **neck_params}
    return {k: v.astype(np.float32, copy=False) for k, v in layers.items()}, params


def make_anatomy(
    rng: np.random.Generator, *, voxel_size_mm: float = 1.0, skull: bool = False, age_years: float | None = None
) -> Anatomy:
    """Draw one subject's anatomy on its own random T1 grid.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random draw.
    voxel_size_mm : float, default 1.0
        Nominal T1 voxel size; each axis gets 0.95-1.1 times it. From 1.5 mm up the 2 mm
        template maps are used.
    skull : bool, default False
        Add scalp, skull and CSF-rim layers (a skull-on head).
    age_years : float, optional
        Drives atrophy (ventricles and sulci widen); drawn in 50-90 when not given.

    Returns
    -------
    Anatomy
    """
    tissue = load_tissue_maps(2 if voxel_size_mm >= 1.5 else 1)
    template_mm = float(abs(tissue.affine[0, 0]))
    age = float(rng.uniform(50, 90)) if age_years is None else float(age_years)
    subject_to_mni, warp_params = _random_subject_to_mni(rng)
    affine, shape, grid_params = _t1_grid(rng, tissue, np.linalg.inv(subject_to_mni), voxel_size_mm, skull)
    mni_mm, deform_params = _mni_coordinates(rng, affine, shape, subject_to_mni, voxel_size_mm)
    atrophy = _atrophy(rng, age)
    # Which voxels can hold brain: the 2 mm lookup grid, by nearest index.
    to_lookup = np.linalg.inv(tissue.lookup_affine)
    flat = mni_mm.reshape(3, -1)
    candidates = np.ones(flat.shape[1], dtype=bool)
    lookup_index = []
    for c in range(3):
        ix = np.rint(flat[c] * np.float32(to_lookup[c, c]) + np.float32(to_lookup[c, 3])).astype(np.int32)
        candidates &= (ix >= 0) & (ix < tissue.brain_lookup.shape[c])
        lookup_index.append(ix)
    where = np.flatnonzero(candidates)
    where = where[tissue.brain_lookup[tuple(ix[where] for ix in lookup_index)]]
    to_index = np.linalg.inv(tissue.affine)
    index = np.stack([flat[c, where] * np.float32(to_index[c, c]) + np.float32(to_index[c, 3]) for c in range(3)])
    values = _brain_fractions(tissue, index, atrophy, template_mm)
    fractions = {}
    for name, value in values.items():
        full = np.full(flat.shape[1], 1e3 if name == "_distance" else 0.0, dtype=np.float32)
        full[where] = value
        fractions[name] = full.reshape(shape)
    distance = fractions.pop("_distance")
    params = {"age_years": age, **warp_params, **grid_params, **deform_params, **atrophy}
    anatomy = Anatomy(affine, subject_to_mni, fractions, mni_mm, distance, params)
    if skull:
        layers, layer_params = _head_layers(rng, tissue, mni_mm, anatomy.brain_fraction(), voxel_size_mm)
        fractions.update(layers)
        params.update(layer_params)
    logger.debug("anatomy on a %s grid, %d brain voxels", shape, where.size)
    return anatomy
