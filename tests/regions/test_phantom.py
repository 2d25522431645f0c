"""On a synthetic phantom (known anatomy, known alignment): distances and classes match the truth."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from wmhkit.io import mask_volume_ml, voxel_sizes_mm
from wmhkit.preprocess import MNIAlignment
from wmhkit.regions import quantify_subject
from wmhkit.regions.rules import CONTINUITY_MM


@pytest.mark.slow
def test_phantom_lesion_distances_and_classes():
    from wmhkit.synth import TISSUE_LABELS, make_phantom

    phantom = make_phantom(seed=3, voxel_size_mm=2.0)
    alignment = MNIAlignment(phantom.subject_to_mni, quality=1.0, method="known")
    result = quantify_subject(phantom.lesion_mask, phantom.t1, alignment=alignment)
    # truth from the phantom's own ventricles
    tissue = np.asarray(phantom.tissue.dataobj)
    distance = ndimage.distance_transform_edt(tissue != TISSUE_LABELS["ventricle"], sampling=voxel_sizes_mm(phantom.t1))
    labels, count = ndimage.label(np.asarray(phantom.lesion_mask.dataobj) > 0, structure=np.ones((3, 3, 3)))
    truth = np.asarray(ndimage.minimum(distance, labels, np.arange(1, count + 1)))
    lesions = result.lesions
    assert len(lesions) == count >= 5
    # within one voxel near the wall; within 25 % farther out (the atlas ventricles there are not refined)
    np.testing.assert_allclose(lesions["distance_to_ventricle_mm"], truth, atol=2.5, rtol=0.25)
    clear = (truth <= CONTINUITY_MM - 0.8) | (truth >= CONTINUITY_MM + 2.0)  # away from the rule boundary
    expected = np.where(truth <= CONTINUITY_MM, "periventricular", "deep")
    assert (lesions["pv_class"].to_numpy()[clear] == expected[clear]).all()
    assert {"periventricular", "deep"} <= set(expected[clear])
    sums = result.regions.groupby("scheme")["lesion_ml"].sum()
    np.testing.assert_allclose(sums, mask_volume_ml(phantom.lesion_mask), rtol=1e-9)
