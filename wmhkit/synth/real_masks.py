"""Real lesion geometry: expert lesion masks in MNI space, warped, flipped and scaled in load.

The masks are read at run time from a folder the user names (``$WMHKIT_REAL_MASK_DIR``, else
``../shared/data/real_lesion_masks`` beside a source checkout); none ships with wmhkit. Each
use draws a new variant of one mask (:func:`real_lesion_fraction`):

* a random subset of its lesions (each kept with a probability of 0.35-1), then a signed
  distance to the kept lesions' surface (mm);
* grown or shrunk by -0.7 to +1.5 mm, so the load spans a wide range for one mask;
* mirrored left-right with probability 0.5;
* warped by a smooth random displacement (2-5 mm, 25-45 mm wavelength);
* sampled at the subject's voxels through their MNI positions, with a 1 mm partial-volume ramp.

:data:`HELD_OUT_MASKS` and :data:`HELD_OUT_HEADS` never enter training: they make the
semi-real benchmark (``benchmarks/semi_real.py``).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from wmhkit.errors import OptionError
from wmhkit.io.arrays import grown_box
from wmhkit.synth.fields import fourier_noise

__all__ = ["HELD_OUT_MASKS", "HELD_OUT_HEADS", "default_real_mask_dir", "real_mask_paths", "real_lesion_fraction",
           "shared_data_dir"]

logger = logging.getLogger(__name__)

#: Masks kept out of every training run (loads 1.4, 6.1, 13.1, 23.0, 40.4 and 52.2 mL).
HELD_OUT_MASKS = ("ms_lesions_02", "ms_lesions_08", "ms_lesions_14", "ms_lesions_22", "ms_lesions_04",
                  "ms_lesions_12")
#: Real heads kept out of every training run (the 0.7 mm 3 T MPRAGE: another scanner and grid).
HELD_OUT_HEADS = ("head_t1_0p7mm_studyforrest",)
_EDGE_MM = 1.0


def shared_data_dir(name: str, env: str) -> Path | None:
    """``$<env>`` if set, else ``../shared/data/<name>`` beside the source checkout; None when neither is a folder."""
    value = os.environ.get(env)
    candidates = [Path(value)] if value else []
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data" / name)
    return next((c for c in candidates if c.is_dir()), None)


def default_real_mask_dir() -> Path | None:
    """``$WMHKIT_REAL_MASK_DIR``, else ``../shared/data/real_lesion_masks`` beside the checkout, if present."""
    return shared_data_dir("real_lesion_masks", "WMHKIT_REAL_MASK_DIR")


def stem(path) -> str:
    """File name without ``.nii``/``.nii.gz``."""
    return Path(str(path)).name.split(".")[0]


def real_mask_paths(folder=None, *, role: str = "train") -> list[Path]:
    """The real masks of a role: ``"train"`` (all but :data:`HELD_OUT_MASKS`), ``"held_out"`` or ``"all"``.

    Returns an empty list when the folder does not exist.
    """
    if role not in ("train", "held_out", "all"):
        raise OptionError(f"Real-mask role {role!r} is unknown; use 'train', 'held_out' or 'all'.")
    folder = Path(folder) if folder is not None else default_real_mask_dir()
    if folder is None or not folder.is_dir():
        return []
    paths = sorted(folder.glob("*.nii*"))
    if role == "train":
        return [p for p in paths if stem(p) not in HELD_OUT_MASKS]
    if role == "held_out":
        return [p for p in paths if stem(p) in HELD_OUT_MASKS]
    return paths


@functools.lru_cache(maxsize=4)
def _read_mask(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Mask (bool), voxel-to-MNI-mm affine, component labels and their count."""
    img = nib.load(path)
    mask = np.asarray(img.dataobj) > 0
    labels, count = ndimage.label(mask)
    return mask, np.asarray(img.affine, dtype=np.float64), labels, count


def _signed_distance(mask: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """mm from the surface: negative inside, positive outside (inside the mask's box plus 8 mm)."""
    out = np.full(mask.shape, 50.0, dtype=np.float32)
    if not mask.any():
        return out
    box = grown_box(mask, int(np.ceil(8.0 / sizes.min())))
    part = mask[box]
    outside = ndimage.distance_transform_edt(~part, sampling=sizes)
    inside = ndimage.distance_transform_edt(part, sampling=sizes)
    out[box] = (outside - inside + np.where(part, 0.5, -0.5) * sizes.min()).astype(np.float32)
    return out


def real_lesion_fraction(
    rng: np.random.Generator,
    mni_mm: np.ndarray,
    mask_path,
    *,
    keep_share: float | None = None,
    grow_mm: float | None = None,
    flip: bool | None = None,
    warp_mm: float | None = None,
    rotate_deg: float = 0.0,
    shift_mm: float = 0.0,
) -> tuple[np.ndarray, dict]:
    """Lesion fraction of a randomly varied real mask at given MNI positions.

    Parameters
    ----------
    rng : numpy.random.Generator
    mni_mm : (3, N) array
        MNI mm position of each voxel (through the subject's alignment or warp).
    mask_path : path
        A binary lesion mask in MNI space (any grid; its affine maps voxels to MNI mm).
    keep_share, grow_mm, flip, warp_mm : optional
        Fix the variation instead of drawing it (see the module docstring for the ranges);
        ``keep_share=1, grow_mm=0, flip=False, warp_mm=0`` reproduces the mask.
    rotate_deg, shift_mm : float, default 0
        Move the mask by a random rigid motion about the MNI origin: a rotation of up to this
        many degrees about each axis and a shift of up to this many mm along each. Real masks
        carry their disease's favourite places (MS: the corpus callosum and the ventricle
        walls); moving them keeps the geometry but weakens that location prior.

    Returns
    -------
    fraction : (N,) float32 in 0-1
    params : dict
        The variation used and the mask's name.
    """
    mask, affine, labels, count = _read_mask(str(mask_path))
    draws = {
        "keep_share": float(rng.uniform(0.35, 1.0)) if keep_share is None else float(keep_share),
        "grow_mm": float(rng.uniform(-0.7, 1.5)) if grow_mm is None else float(grow_mm),
        "flip": bool(rng.random() < 0.5) if flip is None else bool(flip),
        "warp_mm": float(rng.uniform(2.0, 5.0)) if warp_mm is None else float(warp_mm),
    }
    kept = rng.random(count + 1) < draws["keep_share"]
    kept[0] = False
    if count and not kept[1:].any():
        kept[1 + int(rng.integers(count))] = True
    sizes = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    distance = _signed_distance(kept[labels], sizes)
    points = np.asarray(mni_mm, dtype=np.float32).copy()
    if draws["warp_mm"] > 0:
        wavelength = float(rng.uniform(25.0, 45.0))
        for axis in range(3):
            points[axis] += np.float32(draws["warp_mm"] / 1.4) * fourier_noise(rng, np.asarray(mni_mm, np.float32),
                                                                               wavelength, count=8)
    if rotate_deg or shift_mm:
        from scipy.spatial.transform import Rotation

        angles = rng.uniform(-rotate_deg, rotate_deg, 3)
        rotation = Rotation.from_euler("xyz", angles, degrees=True).as_matrix().astype(np.float32)
        shift = rng.uniform(-shift_mm, shift_mm, 3)
        points = (rotation @ points + shift.astype(np.float32)[:, None]).astype(np.float32)
        draws.update(rotate_deg=[float(v) for v in angles], shift_mm=[float(v) for v in shift])
    if draws["flip"]:
        points[0] *= -1.0
    index = np.linalg.inv(affine)[:3, :3].astype(np.float32) @ points + np.linalg.inv(affine)[:3, 3:4].astype(np.float32)
    sampled = ndimage.map_coordinates(distance, index, order=1, mode="constant", cval=50.0, output=np.float32)
    fraction = np.clip(0.5 + (draws["grow_mm"] - sampled) / _EDGE_MM, 0.0, 1.0).astype(np.float32)
    draws.update({"mask": stem(mask_path), "lesions_kept": int(kept.sum()), "lesions_in_mask": int(count)})
    return fraction, draws
