"""Which CSF-dark voxels of a subject are its lateral ventricles: the one estimator.

An affine alignment to MNI puts the template's lateral ventricles roughly where the subject's
are, but ventricles enlarge with age far beyond the template's. So the subject's ventricles are
taken from its own image: the dark components (6-connected) that reach the template ventricles,
kept within a reach around them so that a component leaking into the sulcal CSF cannot turn all
CSF into ventricle.

Each user decides what "dark" means on its own intensities and how far the reach goes:

* the classical baseline (:mod:`wmhkit.segmentation.baseline`): below the CSF/grey-matter midpoint
  of its bias-corrected ratio, within :data:`VENTRICLE_REACH_MM` of the 6 mm ventricle zone
  (:func:`ventricles_near_zone`);
* the cortex-contact rule (:mod:`wmhkit.segmentation.cortex`): normalised T1 below 0.45, the same reach;
* the regional parcels (:mod:`wmhkit.regions.ventricles`): below Otsu's threshold of the T1 within
  10 mm of the atlas ventricles, away from the cortex, with enclosed holes (choroid plexus) filled.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from wmhkit.io.arrays import lookup

__all__ = ["VENTRICLE_REACH_MM", "connected_ventricles", "ventricles_near_zone"]

#: How far (mm, voxels of a 1 mm grid) beyond the template's ventricle zone a subject's enlarged
#: ventricles may reach.
VENTRICLE_REACH_MM = 12
_SIX = ndimage.generate_binary_structure(3, 1)


def connected_ventricles(
    dark: np.ndarray, template: np.ndarray, reach: np.ndarray | None = None, *, fill_holes: bool = False
) -> np.ndarray:
    """The dark components (6-connected) that touch the template ventricles, within ``reach``.

    Parameters
    ----------
    dark : numpy.ndarray
        bool, CSF-dark voxels of the subject.
    template : numpy.ndarray
        bool, where the template puts the lateral ventricles (or a zone around them) on the same
        grid.
    reach : numpy.ndarray, optional
        bool, the only voxels that may be ventricle; default anywhere.
    fill_holes : bool, default False
        Fill the enclosed holes of the result (the brighter choroid plexus inside the ventricles).

    Returns
    -------
    numpy.ndarray
        bool, the subject's ventricles.

    Examples
    --------
    >>> dark = np.zeros((12, 10, 9), bool)
    >>> dark[2:5, 2:5, 2:5] = True               # a ventricle, partly inside the template
    >>> dark[8:10, 6:8, 5:7] = True              # sulcal CSF, apart from it
    >>> template = np.zeros_like(dark); template[3, 3, 3] = True
    >>> found = connected_ventricles(dark, template)
    >>> int(found.sum()), bool(found[9, 7, 6])
    (27, False)
    """
    labels, count = ndimage.label(dark, structure=_SIX)
    touching = np.zeros(count + 1, dtype=bool)
    touching[np.unique(labels[template & dark])] = True
    touching[0] = False
    found = lookup(touching, labels)
    if reach is not None:
        found &= reach
    if fill_holes:
        found = ndimage.binary_fill_holes(found)
    return found


def ventricles_near_zone(dark: np.ndarray, zone: np.ndarray, reach_voxels: int = VENTRICLE_REACH_MM) -> np.ndarray:
    """:func:`connected_ventricles` reaching the template's ventricle zone, kept within ``reach_voxels`` of it.

    Parameters
    ----------
    dark : numpy.ndarray
        bool, CSF-dark voxels on a ~1 mm grid.
    zone : numpy.ndarray
        bool, where the template's ventricles may lie (:func:`wmhkit.anatomy.atlas.ventricle_zone_mni`
        on the grid).
    reach_voxels : int, default 12
        Dilation of ``zone`` (6-connected steps) that bounds the result.
    """
    from wmhkit.io.arrays import dilated

    return connected_ventricles(dark, zone, dilated(zone, _SIX, reach_voxels))
