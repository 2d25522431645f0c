"""White-matter lesions: periventricular caps and bands, deep punctate and confluent blobs.

A lesion *score* is built from distances: a voxel is lesion where it lies within a
periventricular band of random, spatially varying thickness, within a cap beyond a frontal or
occipital horn, or within one of the deep blobs. The score crosses 1 at a lesion's surface and
ramps over 1 mm, which gives partial volume; lesions replace white matter only (the lesion
fraction is at most the voxel's WM fraction), so a voxel in cortex, CSF or deep grey matter is
never a lesion. Every random draw is made before ``lesion_burden`` is used and every size grows
with it, so for one seed a higher burden gives a superset of lesions.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.spatial.transform import Rotation

from wmhkit.synth.fields import fourier_noise

__all__ = ["lesion_fraction", "MAX_DEEP_BLOBS"]

logger = logging.getLogger(__name__)

#: Deep blobs drawn per subject; ``lesion_burden`` decides how many are switched on.
MAX_DEEP_BLOBS = 40
#: Width (mm) of the partial-volume ramp at a lesion's surface.
EDGE_MM = 1.0


def _draw(rng: np.random.Generator, horn_tips_mm: np.ndarray, deep_wm_mm: np.ndarray) -> dict:
    """All random lesion parameters, independent of the burden."""
    caps = {
        "centre_mm": horn_tips_mm + rng.normal(0.0, 1.5, horn_tips_mm.shape),
        "radius_per_burden_mm": rng.uniform(2.0, 4.5, len(horn_tips_mm)),
        "onset_burden": rng.uniform(0.0, 0.6, len(horn_tips_mm)),
    }
    count = MAX_DEEP_BLOBS if len(deep_wm_mm) else 0
    chosen = rng.integers(0, max(len(deep_wm_mm), 1), count)
    blobs = {
        "centre_mm": deep_wm_mm[chosen] + rng.uniform(-1.0, 1.0, (count, 3)) if count else np.zeros((0, 3)),
        "radius_mm": rng.uniform(1.0, 3.5, count),
        "axes": rng.uniform(0.6, 1.5, (count, 3)),
        "rotation": Rotation.random(count, random_state=rng).as_matrix() if count else np.zeros((0, 3, 3)),
        "onset_burden": rng.uniform(0.0, 4.0, count),
    }
    band = {"thickness_per_burden_mm": rng.uniform(0.5, 1.5), "variation": rng.uniform(0.4, 0.8)}
    return {"caps": caps, "blobs": blobs, "band": band, "noise_seed": int(rng.integers(2**31))}


def lesion_fraction(
    rng: np.random.Generator,
    mni_mm: np.ndarray,
    wm: np.ndarray,
    ventricle_distance_mm: np.ndarray,
    horn_tips_mm: np.ndarray,
    deep_wm_mm: np.ndarray,
    *,
    lesion_burden: float = 1.0,
) -> tuple[np.ndarray, dict]:
    """Lesion fraction at a set of voxels.

    Parameters
    ----------
    rng : numpy.random.Generator
    mni_mm : (3, N) array
        Position of each voxel in MNI mm (through the subject's warp).
    wm : (N,) array
        White-matter fraction of each voxel; the lesion fraction never exceeds it.
    ventricle_distance_mm : (N,) array
        Distance to the ventricle surface (0 inside).
    horn_tips_mm, deep_wm_mm : arrays
        Cap centres (4, 3) and allowed deep-blob centres (M, 3), MNI mm.
    lesion_burden : float, default 1.0
        0 gives no lesions; 1 a moderate load (a few mL); 3 a severe, confluent load.

    Returns
    -------
    fraction : (N,) float32
    params : dict
    """
    drawn = _draw(rng, np.asarray(horn_tips_mm, float), np.asarray(deep_wm_mm, float))
    burden = max(float(lesion_burden), 0.0)
    points = np.asarray(mni_mm, dtype=np.float32)
    noise_rng = np.random.default_rng(drawn["noise_seed"])
    band_noise = fourier_noise(noise_rng, points, 18.0, count=10)
    edge_noise = fourier_noise(noise_rng, points, 7.0, count=10)
    score = np.full(points.shape[1], -np.inf, dtype=np.float32)
    if burden > 0:
        band = drawn["band"]
        thickness = np.float32(burden * band["thickness_per_burden_mm"]) * np.maximum(
            1.0 + np.float32(band["variation"]) * band_noise, 0.0
        )
        score = np.maximum(score, 1.0 + (thickness - ventricle_distance_mm) / EDGE_MM)
        caps = drawn["caps"]
        for centre, per_burden, onset in zip(caps["centre_mm"], caps["radius_per_burden_mm"], caps["onset_burden"]):
            radius = per_burden * max(burden - onset, 0.0)
            if radius <= 0:
                continue
            offset = points - centre.astype(np.float32)[:, None]
            offset[1] *= np.float32(0.8)  # caps are flattened along the horn's axis
            distance = np.sqrt((offset**2).sum(axis=0))
            score = np.maximum(score, 1.0 + (radius * (1.0 + 0.25 * edge_noise) - distance) / EDGE_MM)
        score = np.maximum(score, _blob_score(points, drawn["blobs"], burden, edge_noise))
    soft = np.clip(score - 0.5, 0.0, 1.0).astype(np.float32)
    fraction = soft * np.asarray(wm, dtype=np.float32)
    blobs = drawn["blobs"]
    active = blobs["onset_burden"] < burden
    params = {
        "lesion_burden": burden,
        "band_thickness_mm": burden * drawn["band"]["thickness_per_burden_mm"],
        "band_variation": drawn["band"]["variation"],
        "cap_centres_mm": drawn["caps"]["centre_mm"],
        "cap_radii_mm": drawn["caps"]["radius_per_burden_mm"] * np.maximum(burden - drawn["caps"]["onset_burden"], 0),
        "deep_blob_count": int(active.sum()),
        "deep_blob_centres_mm": blobs["centre_mm"][active],
        "deep_blob_radii_mm": _blob_radius(blobs, burden)[active],
    }
    return fraction, params


def _blob_radius(blobs: dict, burden: float) -> np.ndarray:
    grown = np.clip(burden - blobs["onset_burden"] + 0.3, 0.0, 1.0)
    confluent = 1.0 + 0.25 * max(burden - 1.0, 0.0)
    return blobs["radius_mm"] * grown * confluent


def _blob_score(points: np.ndarray, blobs: dict, burden: float, edge_noise: np.ndarray) -> np.ndarray:
    score = np.full(points.shape[1], -np.inf, dtype=np.float32)
    radii = _blob_radius(blobs, burden)
    for centre, radius, axes, rotation, onset in zip(
        blobs["centre_mm"], radii, blobs["axes"], blobs["rotation"], blobs["onset_burden"]
    ):
        if onset >= burden or radius <= 0:
            continue
        reach = radius * axes.max() * 1.4 + 2 * EDGE_MM
        near = np.flatnonzero(
            (np.abs(points[0] - centre[0]) < reach)
            & (np.abs(points[1] - centre[1]) < reach)
            & (np.abs(points[2] - centre[2]) < reach)
        )
        if near.size == 0:
            continue
        local = (rotation.T / axes[:, None]).astype(np.float32) @ (points[:, near] - centre.astype(np.float32)[:, None])
        distance = np.sqrt((local**2).sum(axis=0))
        value = 1.0 + (radius * (1.0 + 0.3 * edge_noise[near]) - distance) / EDGE_MM
        score[near] = np.maximum(score[near], value)
    return score
