"""The 2D thick-slice FLAIR acquisition: its grid, the low-resolution image and label.

The FLAIR grid is stacked along its third array axis (``slice_axis=2``). Its label is, by
construction, ``thick_slice_average(lesion_mask, t1_affine, flair_shape, flair_affine,
slice_axis=2, thickness_mm=slice_mm, gap_mm=gap_mm, step_mm=step_mm) > 0.5`` before any label
noise, with ``step_mm`` 0.5 mm (1 mm on the fast 2 mm path); ``params["flair_label_rule"]``
records the arguments.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from wmhkit.errors import OptionError
from wmhkit.forward import thick_slice_average_where
from wmhkit.synth.fields import bounding_box

__all__ = ["flair_grid", "acquire", "flair_label", "apply_label_noise", "nearest_on_lr", "LABEL_THRESHOLD"]

logger = logging.getLogger(__name__)

#: A thick voxel is lesion when more than this fraction of its footprint is.
LABEL_THRESHOLD = 0.5
#: Footprint sampling of the FLAIR image (the label uses the default, 0.5 mm).
IMAGE_STEP_MM = 1.0
# In-plane axes and slice normal (scanner axes) of each slice orientation.
_FRAMES = {"axial": (0, 1, 2), "coronal": (0, 2, 1), "sagittal": (1, 2, 0)}


def flair_grid(
    rng: np.random.Generator,
    head_points_mm: np.ndarray,
    *,
    inplane_mm: float = 0.9,
    slice_mm: float = 5.0,
    gap_mm: float = 0.0,
    orientation: str = "axial",
) -> tuple[np.ndarray, tuple[int, int, int], dict]:
    """A thick-slice grid covering ``head_points_mm`` (3, N scanner mm), slightly tilted.

    Returns
    -------
    affine : (4, 4) array
    shape : tuple of int
    params : dict
    """
    if orientation not in _FRAMES:
        raise OptionError(f"flair_orientation={orientation!r} is unknown; use 'axial', 'coronal' or 'sagittal'.")
    if not (inplane_mm > 0 and slice_mm > 0 and gap_mm >= 0):
        raise OptionError(
            f"FLAIR voxel sizes must be positive (in-plane {inplane_mm}, slice {slice_mm}, gap {gap_mm} mm)."
        )
    frame = np.zeros((3, 3))
    for column, axis in enumerate(_FRAMES[orientation]):
        frame[axis, column] = 1.0
    tilt_deg = np.array([rng.uniform(-12, 12), rng.uniform(-4, 4), rng.uniform(-4, 4)])
    rotation = Rotation.from_euler("xyz", tilt_deg, degrees=True).as_matrix() @ frame
    if rng.random() < 0.5:  # radiological or neurological in-plane order
        rotation[:, 0] *= -1
    spacing = np.array([inplane_mm, inplane_mm, slice_mm + gap_mm])
    local = rotation.T @ head_points_mm
    lo = local.min(axis=1) - 3.0
    hi = local.max(axis=1) + 3.0
    shape = tuple(int(np.ceil((h - l) / s)) + 1 for l, h, s in zip(lo, hi, spacing))
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    affine[:3, 3] = rotation @ lo
    affine = affine.astype(np.float32).astype(np.float64)  # what NIfTI stores
    params = {
        "flair_orientation": orientation,
        "flair_tilt_deg": tilt_deg,
        "flair_voxel_mm": spacing,
        "flair_slice_mm": slice_mm,
        "flair_gap_mm": gap_mm,
        "flair_shape": list(shape),
    }
    return affine, shape, params


def lr_region_near(hr_mask: np.ndarray, hr_affine, lr_shape, lr_affine, reach_mm: float) -> np.ndarray:
    """LR voxels whose centre may lie within ``reach_mm`` of a voxel of ``hr_mask`` (a superset).

    The mask is max-pooled into blocks at least ``reach_mm`` wide, dilated by one block and
    looked up at every LR centre, so every LR voxel within reach is included.
    """
    box = bounding_box(hr_mask)
    if box is None:
        return np.zeros(lr_shape, dtype=bool)
    start, stop = box
    sizes = np.sqrt((np.asarray(hr_affine)[:3, :3] ** 2).sum(axis=0))
    block = max(1, int(np.ceil(reach_mm / sizes.min())))
    cropped = hr_mask[tuple(slice(a, b) for a, b in zip(start, stop))]
    blocks = -(-(stop - start) // block)
    padded = np.zeros(tuple(blocks * block), dtype=bool)
    padded[tuple(slice(0, n) for n in cropped.shape)] = cropped
    pooled = padded.reshape(blocks[0], block, blocks[1], block, blocks[2], block).any(axis=(1, 3, 5))
    pooled = ndimage.binary_dilation(np.pad(pooled, 1), structure=np.ones((3, 3, 3)))
    # Voxel (i) of the pooled grid covers HR indices start + (i - 1) * block ... + block - 1.
    pooled_affine = np.asarray(hr_affine, dtype=np.float64) @ np.array(
        [[block, 0, 0, start[0] - block + (block - 1) / 2],
         [0, block, 0, start[1] - block + (block - 1) / 2],
         [0, 0, block, start[2] - block + (block - 1) / 2],
         [0, 0, 0, 1.0]]
    )
    return nearest_on_lr(pooled, pooled_affine, lr_shape, lr_affine)


def _footprint_reach_mm(lr_affine, hr_affine, slice_mm: float) -> float:
    """Farthest a footprint sample reaches from its LR centre, plus the HR interpolation support."""
    lr_sizes = np.sqrt((np.asarray(lr_affine)[:3, :3] ** 2).sum(axis=0))
    hr_sizes = np.sqrt((np.asarray(hr_affine)[:3, :3] ** 2).sum(axis=0))
    half = np.array([lr_sizes[0] / 2, lr_sizes[1] / 2, slice_mm / 2])
    return float(np.linalg.norm(half) + np.linalg.norm(hr_sizes)) + 0.5


def flair_label(
    lesion_mask: np.ndarray, t1_affine, lr_shape, lr_affine, *, slice_mm, gap_mm, step_mm=0.5
) -> tuple[np.ndarray, dict]:
    """The exact thick-slice label of a lesion mask (see the module docstring)."""
    rule = {"slice_axis": 2, "thickness_mm": float(slice_mm), "gap_mm": float(gap_mm), "step_mm": float(step_mm)}
    reach = _footprint_reach_mm(lr_affine, t1_affine, slice_mm)
    near = lr_region_near(lesion_mask > 0, t1_affine, lr_shape, lr_affine, reach)
    average = thick_slice_average_where(lesion_mask.astype(np.float32), t1_affine, lr_shape, lr_affine, near, **rule)
    return (average > LABEL_THRESHOLD).astype(np.uint8), {**rule, "threshold": LABEL_THRESHOLD}


def nearest_on_lr(hr_mask: np.ndarray, hr_affine, lr_shape, lr_affine) -> np.ndarray:
    """``hr_mask`` at each LR voxel centre (nearest HR voxel; False outside the HR array)."""
    to_hr = (np.linalg.inv(hr_affine) @ lr_affine).astype(np.float32)
    axes = [np.arange(n, dtype=np.float32) for n in lr_shape]
    inside = np.ones(tuple(lr_shape), dtype=bool)
    rounded = []
    for c in range(3):
        # Separable sum of three 1D terms: no full index grid, no matrix product.
        position = (
            (to_hr[c, 0] * axes[0])[:, None, None]
            + (to_hr[c, 1] * axes[1])[None, :, None]
            + (to_hr[c, 2] * axes[2] + to_hr[c, 3])[None, None, :]
        )
        ix = np.rint(position).astype(np.int32)
        inside &= (ix >= 0) & (ix < hr_mask.shape[c])
        np.clip(ix, 0, hr_mask.shape[c] - 1, out=ix)
        rounded.append(ix)
    return inside & hr_mask[tuple(rounded)]


def acquire(
    hr_image: np.ndarray, head: np.ndarray, t1_affine, lr_shape, lr_affine, *, slice_mm, gap_mm, step_mm=IMAGE_STEP_MM
) -> tuple:
    """Thick-slice image of ``hr_image`` (computed only near the head) and its head mask."""
    lr_head = nearest_on_lr(head, t1_affine, lr_shape, lr_affine)
    # One voxel of margin so that partial-volume edges are computed too.
    lr_head = ndimage.binary_dilation(lr_head, iterations=1)
    image = thick_slice_average_where(
        hr_image,
        t1_affine,
        lr_shape,
        lr_affine,
        lr_head,
        slice_axis=2,
        thickness_mm=slice_mm,
        gap_mm=gap_mm,
        step_mm=step_mm,
    )
    return image.astype(np.float32), lr_head


def _normalise_noise(label_noise) -> dict:
    if label_noise is None or label_noise is False:
        return {}
    if isinstance(label_noise, (int, float)):
        level = float(label_noise)
        if not 0 <= level <= 1:
            raise OptionError(f"label_noise={label_noise} must lie in 0-1 (or be a dict); 0 means clean labels.")
        return {"missed": 0.5 * level, "spurious": int(round(4 * level)), "shift_mm": 3.0 * level}
    if isinstance(label_noise, dict):
        unknown = set(label_noise) - {"missed", "spurious", "shift_mm"}
        if unknown:
            raise OptionError(
                f"label_noise has unknown keys {sorted(unknown)}; use 'missed', 'spurious' and 'shift_mm'."
            )
        return {"missed": 0.0, "spurious": 0, "shift_mm": 0.0, **label_noise}
    raise OptionError(f"label_noise={label_noise!r} must be None, a level in 0-1 or a dict.")


def apply_label_noise(
    rng: np.random.Generator, label: np.ndarray, wm_lr: np.ndarray, voxel_mm: np.ndarray, label_noise
) -> tuple[np.ndarray, dict]:
    """Missed lesions, spurious blobs and a mis-registration shift, applied to a thick-slice label.

    Parameters
    ----------
    rng : numpy.random.Generator
    label : uint8 array
        Clean label on the FLAIR grid.
    wm_lr : bool array
        White matter on the FLAIR grid (where spurious blobs may appear).
    voxel_mm : (3,) array
        FLAIR voxel sizes.
    label_noise : None, float in 0-1 or dict
        ``{"missed": p, "spurious": n, "shift_mm": d}``: each connected lesion is dropped
        with probability p, n blobs are added, and the label is shifted by d mm in a random
        direction. A float ``s`` means ``{"missed": s/2, "spurious": round(4 s), "shift_mm": 3 s}``.
    """
    noise = _normalise_noise(label_noise)
    if not noise:
        return label, {"label_noise": None}
    components, count = ndimage.label(label, structure=np.ones((3, 3, 3)))
    dropped = np.flatnonzero(rng.random(count) < float(noise["missed"])) + 1
    noisy = label.copy()
    noisy[np.isin(components, dropped)] = 0
    candidates = np.array(np.nonzero(wm_lr)).T
    centres = []
    for _ in range(int(noise["spurious"])):
        if len(candidates) == 0:
            break
        centre = candidates[rng.integers(len(candidates))]
        radius_mm = rng.uniform(2.0, 5.0)
        reach = np.ceil(radius_mm / voxel_mm).astype(int)
        box = tuple(slice(max(c - r, 0), c + r + 1) for c, r in zip(centre, reach))
        grid = np.meshgrid(*[np.arange(b.start, min(b.stop, n)) for b, n in zip(box, label.shape)], indexing="ij")
        distance = np.sqrt(sum(((g - c) * v) ** 2 for g, c, v in zip(grid, centre, voxel_mm)))
        noisy[box][distance <= radius_mm] = 1
        centres.append(centre)
    direction = rng.standard_normal(3)
    shift_mm = direction / np.linalg.norm(direction) * float(noise["shift_mm"])
    if float(noise["shift_mm"]) > 0:
        noisy = ndimage.shift(noisy, shift_mm / voxel_mm, order=0, mode="constant", cval=0)
    return noisy.astype(np.uint8), {
        "label_noise": noise,
        "label_noise_dropped_lesions": int(len(dropped)),
        "label_noise_lesions_before": int(count),
        "label_noise_spurious_centres_vox": np.array(centres).reshape(-1, 3),
        "label_noise_shift_mm": shift_mm if float(noise["shift_mm"]) > 0 else np.zeros(3),
    }
