"""Lesion-level table and a rule-based Fazekas-like grade.

Lesions are the 26-connected components of the lesion mask. For each one the table gives its
volume, centroid (voxel indices of the input grid, subject world mm, MNI mm), nearest and
farthest distance to the ventricles, nearest distance to the cortex, length (``extent_mm``:
range of the voxel centres along the lesion's principal axis plus one voxel), majority lobe
and bullseye region, the continuity-rule class (periventricular/deep/other) and whether it is
confluent.

Fazekas-like grade (an ESTIMATE from the mask and atlas, not a radiologist's score): the
thresholds follow the modified Fazekas scheme of Kim et al. (2008), applied to lesions split by
the continuity rule (:data:`wmhkit.regions.rules.CONTINUITY_MM`):

* periventricular grade: 0 no periventricular lesion; 1 caps or thin lining (every
  periventricular lesion reaches < 5 mm from the ventricle wall); 2 halo (< 10 mm); 3 extends
  into the deep white matter (>= 10 mm). Reach = largest distance to the ventricles of a
  periventricular lesion's voxels.
* deep grade: 0 no deep lesion; 1 punctate foci (longest deep lesion < 10 mm); 2 beginning
  confluence (10-25 mm); 3 large confluent areas (>= 25 mm).
* ``fazekas_estimate`` is the larger of the two (0-3).

A lesion is ``confluent`` when its length is at least :data:`CONFLUENT_MM` (10 mm), i.e.
larger than a punctate focus.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from wmhkit.regions.anatomy import SubjectAnatomy
from wmhkit.regions.rules import SchemeRegions, per_lesion_reduce

__all__ = ["CONFLUENT_MM", "LESION_COLUMNS", "label_lesions", "lesion_table", "fazekas_estimate"]

#: Length (mm) from which a lesion counts as confluent.
CONFLUENT_MM = 10.0
#: Periventricular reach (mm) cut-offs between grades 1/2 and 2/3.
PV_GRADE_MM = (5.0, 10.0)
#: Deep lesion length (mm) cut-offs between grades 1/2 and 2/3.
DEEP_GRADE_MM = (10.0, 25.0)

LESION_COLUMNS = [
    "subject", "lesion_id", "n_voxels", "lesion_ml",
    "centroid_i", "centroid_j", "centroid_k",
    "centroid_x_mm", "centroid_y_mm", "centroid_z_mm",
    "centroid_x_mni_mm", "centroid_y_mni_mm", "centroid_z_mni_mm",
    "distance_to_ventricle_mm", "max_distance_to_ventricle_mm", "distance_to_cortex_mm",
    "extent_mm", "lobe", "bullseye", "pv_class", "confluent",
]


def label_lesions(lesion: np.ndarray) -> tuple[np.ndarray, int]:
    """26-connected components of a boolean lesion array: (labels, count)."""
    labels, count = ndimage.label(lesion, structure=np.ones((3, 3, 3), dtype=bool))
    return labels, int(count)


def _majority(lesion_ids: np.ndarray, region: np.ndarray, n_lesions: int, n_regions: int) -> np.ndarray:
    counts = np.bincount(lesion_ids * (n_regions + 1) + region, minlength=(n_lesions + 1) * (n_regions + 1))
    return counts.reshape(n_lesions + 1, n_regions + 1)[1:].argmax(axis=1)


def _extents_mm(world: np.ndarray, lesion_ids: np.ndarray, n_lesions: int, voxel_mm: float) -> np.ndarray:
    order = np.argsort(lesion_ids, kind="stable")
    bounds = np.searchsorted(lesion_ids[order], np.arange(1, n_lesions + 2))
    extents = np.full(n_lesions, voxel_mm)
    for index in range(n_lesions):
        points = world[order[bounds[index] : bounds[index + 1]]]
        if len(points) < 2:
            continue
        centred = points - points.mean(axis=0)
        _, vectors = np.linalg.eigh(centred.T @ centred)
        along = centred @ vectors[:, -1]
        extents[index] = along.max() - along.min() + voxel_mm
    return extents


def lesion_table(
    anatomy: SubjectAnatomy,
    lesion: np.ndarray,
    components: tuple[np.ndarray, int],
    box_affine: np.ndarray,
    *,
    subject: str,
    subject_to_mni: np.ndarray | None,
    lobes: SchemeRegions,
    bullseye: SchemeRegions,
    pv_class: np.ndarray,
) -> pd.DataFrame:
    """One row per connected lesion (columns :data:`LESION_COLUMNS`; units in the names).

    Parameters
    ----------
    anatomy : SubjectAnatomy
        Parcels and distances on a box of the subject grid.
    lesion : numpy.ndarray of bool
        Lesion voxels on the box.
    components : (numpy.ndarray, int)
        :func:`label_lesions` of ``lesion``.
    box_affine : (4, 4) array
        Voxel-to-world affine of the box.
    subject : str
        Subject identifier (first column).
    subject_to_mni : (4, 4) array or None
        Subject world mm -> MNI mm; MNI centroids are NaN without it.
    lobes, bullseye : SchemeRegions
        Those schemes' regions of the lesion voxels.
    pv_class : numpy.ndarray
        Continuity-rule class per lesion voxel (0 periventricular, 1 deep, 2 other).
    """
    labels, n_lesions = components
    if n_lesions == 0:
        return pd.DataFrame(columns=LESION_COLUMNS)
    index = np.arange(1, n_lesions + 1)
    ids = labels[lesion]
    ijk = np.stack(np.nonzero(lesion), axis=1).astype(np.float64)
    n_voxels = np.bincount(ids, minlength=n_lesions + 1)[1:]
    centroid_box = np.stack([np.bincount(ids, weights=ijk[:, a], minlength=n_lesions + 1)[1:] for a in range(3)], 1)
    centroid_box /= n_voxels[:, None]
    centroid_ijk = centroid_box + [s.start for s in anatomy.box]
    world = ijk @ box_affine[:3, :3].T + box_affine[:3, 3]
    centroid_world = centroid_box @ box_affine[:3, :3].T + box_affine[:3, 3]
    if subject_to_mni is None:
        centroid_mni = np.full_like(centroid_world, np.nan)
    else:
        centroid_mni = centroid_world @ subject_to_mni[:3, :3].T + subject_to_mni[:3, 3]
    d_vent = anatomy.distance_to_ventricle_mm[lesion]
    voxel_mm = float(np.abs(np.linalg.det(box_affine[:3, :3])) ** (1 / 3))
    lobe_names = np.array(lobes.names + ["other"])
    bullseye_names = np.array(bullseye.names + ["other"])
    table = pd.DataFrame(
        {
            "subject": subject,
            "lesion_id": index,
            "n_voxels": n_voxels,
            "lesion_ml": n_voxels * anatomy.voxel_ml,
            **{f"centroid_{a}": centroid_ijk[:, k] for k, a in enumerate("ijk")},
            **{f"centroid_{a}_mm": centroid_world[:, k] for k, a in enumerate("xyz")},
            **{f"centroid_{a}_mni_mm": centroid_mni[:, k] for k, a in enumerate("xyz")},
            "distance_to_ventricle_mm": per_lesion_reduce(d_vent, ids, n_lesions, np.minimum),
            "max_distance_to_ventricle_mm": per_lesion_reduce(d_vent, ids, n_lesions, np.maximum),
            "distance_to_cortex_mm": per_lesion_reduce(anatomy.distance_to_cortex_mm[lesion], ids, n_lesions, np.minimum),
            "extent_mm": _extents_mm(world, ids, n_lesions, voxel_mm),
            "lobe": lobe_names[_majority(ids, lobes.lesion, n_lesions, len(lobes.names))],
            "bullseye": bullseye_names[_majority(ids, bullseye.lesion, n_lesions, len(bullseye.names))],
            "pv_class": np.array(["periventricular", "deep", "other"])[_majority(ids, pv_class, n_lesions, 2)],
        }
    )
    table["confluent"] = table["extent_mm"] >= CONFLUENT_MM
    return table[LESION_COLUMNS]


def _grade(value: float, cuts: tuple[float, float]) -> int:
    return 1 + int(value >= cuts[0]) + int(value >= cuts[1])


def fazekas_estimate(lesions: pd.DataFrame) -> dict:
    """Rule-based Fazekas-like grades from a lesion table (an estimate, not a rating).

    Returns
    -------
    dict
        ``fazekas_pv_estimate``, ``fazekas_deep_estimate`` and ``fazekas_estimate`` (their
        maximum), each 0-3.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"pv_class": ["periventricular", "deep", "deep"],
    ...                       "max_distance_to_ventricle_mm": [7.0, 20.0, 30.0],
    ...                       "extent_mm": [15.0, 4.0, 12.0]})
    >>> fazekas_estimate(table)
    {'fazekas_pv_estimate': 2, 'fazekas_deep_estimate': 2, 'fazekas_estimate': 2}
    """
    pv = lesions[lesions["pv_class"] == "periventricular"]
    deep = lesions[lesions["pv_class"] == "deep"]
    pv_grade = _grade(float(pv["max_distance_to_ventricle_mm"].max()), PV_GRADE_MM) if len(pv) else 0
    deep_grade = _grade(float(deep["extent_mm"].max()), DEEP_GRADE_MM) if len(deep) else 0
    return {
        "fazekas_pv_estimate": pv_grade,
        "fazekas_deep_estimate": deep_grade,
        "fazekas_estimate": max(pv_grade, deep_grade),
    }
