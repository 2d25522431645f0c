"""subject_anatomy on fine grids: the parcels' box found on blocks, distances exact."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from wmhkit.regions import identity_alignment, load_parcels
from wmhkit.io.arrays import distance_to
from wmhkit.regions.anatomy import coarse_factor, subject_anatomy


def test_coarse_factor_keeps_grids_of_085_mm_and_up_exact():
    assert coarse_factor([1.0, 1.0, 1.0]) == 1 and coarse_factor([0.85, 0.9, 0.9]) == 1
    assert coarse_factor([0.7, 0.7, 0.7]) == 2 and coarse_factor([0.5, 0.5, 0.5]) == 3


def test_fine_grid_anatomy_holds_every_parcel_voxel():
    affine = np.diag([0.7, 0.7, 0.7, 1.0])
    affine[:3, 3] = (-40.0, -50.0, -20.0)
    reference = nib.Nifti1Image(np.zeros((100, 120, 75), np.uint8), affine)  # 70 x 84 x 52.5 mm around the centre
    anatomy = subject_anatomy(reference, identity_alignment())
    full = np.asarray(identity_alignment().resample_to_subject(load_parcels(), reference=reference, order=0).dataobj)
    inside = np.zeros(full.shape, bool)
    inside[anatomy.box] = True
    assert full.any() and not (full[~inside] > 0).any()
    assert (full[anatomy.box] == anatomy.parcels).all()
    ventricle = anatomy.distance_to_ventricle_mm
    assert np.isfinite(ventricle).all() and ventricle.min() == 0.0
    # Fine grids keep the exact voxel-wise distances (blocks would shift the regional bands).
    from wmhkit.regions.parcels import tissue_lookup

    exact = distance_to(tissue_lookup("ventricle")[anatomy.parcels], (0.7, 0.7, 0.7))
    np.testing.assert_array_equal(ventricle, exact)
