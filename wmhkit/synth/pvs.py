"""Perivascular spaces: the commonest lesion mimic on a high-resolution T1 (:func:`add_perivascular_spaces`).

Enlarged perivascular spaces are fluid-filled sheaths around penetrating vessels. On T1 they
have the intensity of CSF, are round or linear depending on the cut, run along the vessels
(radially through the centrum semiovale, upward through the basal ganglia) and are mostly under
3 mm across; they become more numerous with age and small-vessel disease (Wardlaw et al.,
Lancet Neurol 2013, STRIVE; Potter et al., Int J Stroke 2015). STRIVE keeps them apart from
WMH, and so does a WMH segmentation: in training cases they are drawn **unlabelled**, so a
network learns that a small CSF-dark tube in white matter is not a lesion.

Geometry drawn here (per space): a straight tube whose axis mixes the radial direction from
the white matter's centre with the superior axis, length log-uniform in 3-15 mm, radius
uniform in 0.35-1.0 mm (diameters 0.7-2 mm), starting at least 2 mm inside the white matter;
partial volume from the distance to the axis, so tubes thinner than a voxel darken it only in
part. The count per case is the caller's (typical centrum-semiovale counts in older adults run
from a few to over a hundred per hemisphere).
"""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
from scipy import ndimage

from wmhkit.errors import OptionError
from wmhkit.io import check_img, check_mask, new_img_like, voxel_sizes_mm, voxel_volume_ml

__all__ = ["add_perivascular_spaces", "PVS_LENGTH_MM", "PVS_RADIUS_MM", "CSF_TO_WHITE_MATTER"]

logger = logging.getLogger(__name__)

#: Tube length range (mm, log-uniform) and radius range (mm, uniform).
PVS_LENGTH_MM = (3.0, 15.0)
PVS_RADIUS_MM = (0.35, 1.0)
#: CSF over white-matter intensity on a T1 (ventricles over white matter: about 0.2-0.3 on the
#: four real heads' MPRAGE-like scans and the phantoms): where the ventricles cannot be told
#: apart from deep grey matter, a share of the white matter is the steadier estimate.
CSF_TO_WHITE_MATTER = 0.3


def _tube_occupancy(points_mm: np.ndarray, start: np.ndarray, end: np.ndarray, radius: float,
                    voxel_mm: float) -> np.ndarray:
    """Share of each voxel (centre ``points_mm``, (n, 3)) inside the tube, linear over one voxel."""
    axis = end - start
    along = np.clip((points_mm - start) @ axis / float(axis @ axis), 0.0, 1.0)
    distance = np.linalg.norm(points_mm - (start + along[:, None] * axis), axis=1)
    return np.clip((radius - distance) / voxel_mm + 0.5, 0.0, 1.0)


def add_perivascular_spaces(t1, white_matter_mask, *, count: int, seed: int = 0, csf_intensity: float | None = None,
                            keep_out_mask=None) -> tuple[nib.Nifti1Image, nib.Nifti1Image, dict]:
    """Draw ``count`` perivascular spaces into the white matter of a T1 (unlabelled negatives).

    Parameters
    ----------
    t1 : str, os.PathLike or nibabel image
        A 3D T1 (any orientation and voxel size).
    white_matter_mask : str, os.PathLike or nibabel image
        White matter on the T1's grid (values above 0.5); spaces start 2 mm inside it and are
        cut at its border.
    count : int
        Number of spaces (0 returns the T1 unchanged).
    seed : int, default 0
        Random seed.
    csf_intensity : float, optional
        T1 intensity of CSF; default :data:`CSF_TO_WHITE_MATTER` times the white matter's
        median intensity.
    keep_out_mask : str, os.PathLike or nibabel image, optional
        Voxels that stay untouched (lesions, so that a labelled lesion is never overwritten).

    Returns
    -------
    t1_with_spaces : nibabel.Nifti1Image
        float32 T1 with the spaces drawn at CSF intensity (partial volume at their borders).
    pvs_mask : nibabel.Nifti1Image
        uint8 voxels more than half inside a space.
    params : dict
        ``count``, ``csf_intensity``, ``pvs_ml`` (partial-volume sum, mL).

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> affine = np.diag([2.0, 2.0, 2.0, 1.0])
    >>> t1 = nib.Nifti1Image(np.pad(np.full((38, 42, 37), 100.0, np.float32), 2), affine)
    >>> wm = nib.Nifti1Image(np.pad(np.ones((32, 36, 31), np.uint8), 5), affine)
    >>> out, mask, params = add_perivascular_spaces(t1, wm, count=5, seed=1, csf_intensity=20.0)
    >>> bool(out.get_fdata().min() < 60 and mask.get_fdata().sum() > 0)
    True
    """
    image = check_img(t1)
    wm = check_mask(white_matter_mask, reference=image).get_fdata(dtype=np.float32) > 0.5
    if count < 0:
        raise OptionError(f"Perivascular space count={count} must be 0 or more.")
    data = image.get_fdata(dtype=np.float32)
    if count == 0 or wm.sum() == 0:
        return new_img_like(image, data), new_img_like(image, np.zeros(wm.shape, np.uint8)), {
            "count": 0, "csf_intensity": csf_intensity, "pvs_ml": 0.0}
    sizes = voxel_sizes_mm(image)
    affine = np.asarray(image.affine, dtype=np.float64)
    if csf_intensity is None:
        csf_intensity = CSF_TO_WHITE_MATTER * float(np.median(data[wm]))
    rng = np.random.default_rng([int(seed), 4711])
    inner = ndimage.distance_transform_edt(wm, sampling=sizes) > 2.0
    candidates = np.flatnonzero(inner if inner.any() else wm)
    starts = np.array(np.unravel_index(rng.choice(candidates, size=int(count)), wm.shape), dtype=np.float64)
    starts_mm = (affine[:3, :3] @ starts + affine[:3, 3:]).T
    wm_centre = affine[:3, :3] @ np.array(np.nonzero(wm)).mean(axis=1) + affine[:3, 3]
    allowed = wm.copy()
    if keep_out_mask is not None:
        allowed &= ~(check_mask(keep_out_mask, reference=image).get_fdata(dtype=np.float32) > 0.5)
    occupancy = np.zeros(wm.shape, dtype=np.float32)
    to_voxel = np.linalg.inv(affine)
    for start_mm in starts_mm:
        radial = start_mm - wm_centre
        radial /= max(np.linalg.norm(radial), 1e-6)
        direction = 0.6 * radial + 0.4 * np.array([0.0, 0.0, 1.0]) + rng.normal(0.0, 0.3, 3)
        direction /= max(np.linalg.norm(direction), 1e-6)
        length = float(np.exp(rng.uniform(*np.log(PVS_LENGTH_MM))))
        radius = float(rng.uniform(*PVS_RADIUS_MM))
        start, end = start_mm - direction * length / 2, start_mm + direction * length / 2
        ends = to_voxel[:3, :3] @ np.stack([start, end], axis=1) + to_voxel[:3, 3:]
        reach = (radius + 1.0) / sizes
        low = np.maximum(np.floor(ends.min(axis=1) - reach), 0).astype(int)
        high = np.minimum(np.ceil(ends.max(axis=1) + reach) + 1, wm.shape).astype(int)
        if np.any(high <= low):
            continue
        box = tuple(slice(a, b) for a, b in zip(low, high))
        index = np.array(np.meshgrid(*[np.arange(a, b) for a, b in zip(low, high)], indexing="ij")).reshape(3, -1)
        points = (affine[:3, :3] @ index + affine[:3, 3:]).T
        share = _tube_occupancy(points, start, end, radius, float(sizes.min())).reshape(occupancy[box].shape)
        occupancy[box] = np.maximum(occupancy[box], share.astype(np.float32))
    occupancy *= allowed
    out = data * (1.0 - occupancy) + np.float32(csf_intensity) * occupancy
    params = {"count": int(count), "csf_intensity": float(csf_intensity),
              "pvs_ml": float(occupancy.sum() * voxel_volume_ml(image))}
    logger.info("drew %d perivascular spaces (%.2f mL)", count, params["pvs_ml"])
    return new_img_like(image, out.astype(np.float32)), new_img_like(image, (occupancy > 0.5).astype(np.uint8)), params
