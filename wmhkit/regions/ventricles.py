"""Refine the atlas ventricles on the subject's own T1.

An affine alignment to MNI brings the template's lateral ventricles to roughly the right place,
but in older brains the ventricles are often much larger than the template's, and a lesion
lying against the real ventricle wall may then look several mm away from the (too small)
template ventricle. :func:`refine_ventricles` corrects this from the T1 itself:

1. Search region: every voxel within ``search_mm`` (default 10 mm) of the template ventricles,
   except lesion voxels, the cortex, infratentorial, third-ventricle/ventral-diencephalon
   parcels and anything within :data:`CORTEX_MARGIN_MM` (3 mm) of the cortex (so that the
   search cannot run into the cisterns and the sylvian fissure beside the temporal horns).
2. Dark threshold: Otsu's threshold (:func:`wmhkit.io.arrays.otsu_threshold`, 256 bins) of the
   T1 intensities in the search region (CSF against white matter and deep grey). The refinement is skipped (template kept) when the region
   has no CSF/tissue contrast: the dark class's median must be below 0.7 times the bright
   class's median.
3. Refined ventricles: the dark voxels of the search region that are 6-connected to dark
   voxels inside the template ventricles, with enclosed holes filled (choroid plexus): the
   estimator the segmentation uses too (:func:`wmhkit.anatomy.ventricles.connected_ventricles`). So the
   refined ventricles grow into enlarged ventricles and shrink where the template covers
   brighter tissue of a small-ventricle brain. Checked by eye on the real 1.75 mm head with
   the alignment shifted by 6 mm: the refined ventricles follow the dark ventricles and do not
   run into the cisterns (the cortex margin and excluded parcels block those paths).
4. Template ventricle voxels left out (tissue) take the parcel of the nearest non-ventricle
   parcel; tissue voxels taken in become ventricle (their side by the nearest template
   ventricle).

A refinement that would more than quadruple the ventricles (:data:`MAX_GROWTH`) is taken for a
leak through a misaligned atlas and discarded. Lesion voxels are never turned into ventricle: lesions are dark on T1 too and would otherwise
be swallowed by the ventricles they touch.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from wmhkit.anatomy.ventricles import connected_ventricles
from wmhkit.io.arrays import distance_to, otsu_threshold
from wmhkit.regions.parcels import tissue_lookup

__all__ = ["refine_ventricles", "SEARCH_MM", "MIN_CONTRAST", "CORTEX_MARGIN_MM"]

logger = logging.getLogger(__name__)

#: Distance from the template ventricles (mm) within which CSF may be added.
SEARCH_MM = 10.0
#: Voxels this close to the atlas cortex (mm) are never added to the ventricles.
CORTEX_MARGIN_MM = 3.0
#: A refinement that grows the ventricles beyond this factor is taken for a leak into
#: sulcal CSF (a failed alignment) and discarded.
MAX_GROWTH = 4.0
#: Dark-class median / bright-class median must be below this for a refinement to happen.
MIN_CONTRAST = 0.7


def refine_ventricles(
    parcels: np.ndarray,
    t1: np.ndarray,
    sampling_mm: np.ndarray,
    *,
    lesion: np.ndarray | None = None,
    search_mm: float = SEARCH_MM,
) -> tuple[np.ndarray, dict]:
    """Adjust the ventricle parcels to the dark CSF of the subject's T1.

    Parameters
    ----------
    parcels : numpy.ndarray
        uint8 parcel codes (``tables/parcels.tsv``) on the subject grid (or a box of it).
    t1 : numpy.ndarray
        T1 intensities on the same grid.
    sampling_mm : array of 3 float
        Voxel sizes (mm).
    lesion : numpy.ndarray of bool, optional
        Lesion voxels; never made ventricle.
    search_mm : float, default 10.0
        How far from the template ventricles CSF may be added (mm).

    Returns
    -------
    (numpy.ndarray, dict)
        Refined parcels (the input itself when nothing changed) and a record with
        ``refined`` (bool), ``template_voxels`` and ``refined_voxels`` (ventricle voxel
        counts before/after) and ``threshold`` (the T1 cut, when one was computed).
    """
    template_full = tissue_lookup("ventricle")[parcels]
    record = {"refined": False, "template_voxels": int(template_full.sum()), "refined_voxels": int(template_full.sum())}
    if not template_full.any():
        logger.warning("No template ventricle in the field of view; ventricle refinement skipped.")
        return parcels, record
    # Work in the box around the template ventricles: everything else stays as it is.
    pad = np.ceil(search_mm / np.asarray(sampling_mm, float)).astype(int) + 2
    found = ndimage.find_objects(template_full.astype(np.uint8))[0]
    box = tuple(slice(max(s.start - p, 0), min(s.stop + p, n)) for s, p, n in zip(found, pad, parcels.shape))
    refined_box, record = _refine_box(
        parcels[box], t1[box], template_full[box], sampling_mm, None if lesion is None else lesion[box], search_mm, record
    )
    if not record["refined"]:
        return parcels, record
    out = parcels.copy()
    out[box] = refined_box
    return out, record


def _refine_box(parcels, t1, template, sampling_mm, lesion, search_mm, record):
    # Float64 distances, as scipy's distance_transform_edt gives them (the cut-offs below are compared in
    # float64), computed with a fraction of its memory.
    distance, nearest = distance_to(template, sampling_mm, dtype=np.float64, return_indices=True)
    excluded = tissue_lookup("cortex", "infratentorial", "outside", "other_csf", "other")[parcels]
    cortex = tissue_lookup("cortex")[parcels]
    if cortex.any():
        excluded |= distance_to(cortex, sampling_mm, dtype=np.float64) < CORTEX_MARGIN_MM
    if lesion is not None:
        excluded |= lesion
    region = (distance <= search_mm) & ~excluded
    values = t1[region].astype(np.float64)
    if values.size < 100 or values.min() == values.max():
        return parcels, record
    threshold = otsu_threshold(values)
    dark_median = np.median(values[values < threshold])
    bright_median = np.median(values[values >= threshold])
    record["threshold"] = threshold
    if not (bright_median > 0 and dark_median < MIN_CONTRAST * bright_median):
        logger.warning("No CSF/tissue contrast around the ventricles; atlas ventricles kept unrefined.")
        return parcels, record
    refined = connected_ventricles(region & (t1 < threshold), template, fill_holes=True) & ~excluded
    if not refined.any():
        logger.warning("No dark voxels inside the atlas ventricles; atlas ventricles kept unrefined.")
        return parcels, record
    if refined.sum() > MAX_GROWTH * template.sum():
        logger.warning("Refined ventricles would be over %g times the atlas's (a leak?); atlas ventricles kept.", MAX_GROWTH)
        return parcels, record
    out = parcels.copy()
    # Voxels taken in: the side of the nearest template ventricle voxel.
    added = refined & ~template
    out[added] = parcels[tuple(ix[added] for ix in nearest)]
    # Voxels left out: the nearest parcel that is not ventricle.
    removed = template & ~refined
    if removed.any():
        tissue = np.where(template, 0, parcels)
        _, nearest_tissue = distance_to(tissue != 0, sampling_mm, dtype=np.float64, return_indices=True)
        out[removed] = tissue[tuple(ix[removed] for ix in nearest_tissue)]
    record.update(refined=True, refined_voxels=int(refined.sum()))
    logger.debug("Ventricles refined on T1: %d -> %d voxels", template.sum(), refined.sum())
    return out, record
