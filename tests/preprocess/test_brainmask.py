"""Brain mask: the template brain brought to the subject and trimmed on its intensities."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from .preprocess_testdata import make_subject, random_subject_to_mni
from scipy import ndimage

from wmhkit.io import mask_volume_ml
from wmhkit.preprocess import TEMPLATE_ICV_ML, MNIAlignment, brain_mask, load_template
from wmhkit.preprocess.brainmask import _fill_holes


def _dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_mask_matches_the_true_brain_on_the_input_grid(skull_subject):
    img, truth = skull_subject
    alignment = MNIAlignment(truth)
    mask = brain_mask(img, alignment)
    assert mask.get_data_dtype() == np.uint8 and mask.shape == img.shape
    np.testing.assert_allclose(mask.affine, img.affine)
    true_brain = alignment.resample_to_subject(load_template("brain_mask"), img, order=0).get_fdata() > 0
    data = np.asanyarray(mask.dataobj) > 0
    assert _dice(data, true_brain) > 0.9
    # Skull and scalp of the synthetic head (4+ mm outside the brain) are never inside the mask.
    assert not np.any(data & ~ndimage.binary_dilation(true_brain, iterations=2))
    expected_ml = TEMPLATE_ICV_ML / abs(np.linalg.det(truth[:3, :3]))
    assert 0.8 * expected_ml < mask_volume_ml(mask) < 1.02 * expected_ml


def test_misplaced_bright_voxels_at_the_edge_are_trimmed():
    truth = random_subject_to_mni(21, rotation_deg=5.0)
    img = make_subject(truth, skull=False, voxel_mm=2.0, orientation="LIA", dtype=np.float32)
    shifted = np.eye(4)
    shifted[:3, 3] = [0.0, 0.0, 6.0]  # alignment 6 mm off: the template mask overhangs the brain
    mask = np.asanyarray(brain_mask(img, MNIAlignment(shifted @ truth)).dataobj) > 0
    outside = img.get_fdata() == 0
    assert (mask & outside).sum() < 0.01 * mask.sum()


def test_mask_is_empty_when_the_brain_is_out_of_view(skull_subject):
    img, truth = skull_subject
    far = np.eye(4)
    far[:3, 3] = [500.0, 0.0, 0.0]
    mask = brain_mask(nib.Nifti1Image(img.get_fdata(), img.affine), MNIAlignment(far @ truth))
    assert int(np.asanyarray(mask.dataobj).sum()) == 0


def test_fill_holes_matches_scipy(rng):
    for _ in range(3):
        mask = ndimage.binary_opening(rng.random((40, 50, 30)) > 0.4)
        np.testing.assert_array_equal(_fill_holes(mask), ndimage.binary_fill_holes(mask))
