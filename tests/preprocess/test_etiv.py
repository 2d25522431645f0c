"""eTIV: template intracranial volume over the alignment's volume scaling."""

from __future__ import annotations

import numpy as np
from .preprocess_testdata import random_subject_to_mni
from scipy import ndimage

from wmhkit.preprocess import TEMPLATE_ICV_ML, MNIAlignment, estimate_etiv_ml
from wmhkit.preprocess.templates import load_template


def test_template_icv_constant_matches_the_template_mask():
    mask = np.asanyarray(load_template("brain_mask").dataobj) > 0
    box = ndimage.find_objects(mask.astype(np.uint8))[0]  # the brain's bounding box: faster filling
    assert abs(ndimage.binary_fill_holes(mask[box]).sum() / 1000.0 - TEMPLATE_ICV_ML) < 1e-9


def test_template_itself_has_the_template_icv():
    assert estimate_etiv_ml(MNIAlignment(np.eye(4))) == TEMPLATE_ICV_ML


def test_etiv_scales_with_the_inverse_determinant_and_ignores_rotation_and_shift():
    subject_to_mni = random_subject_to_mni(3)
    determinant = np.linalg.det(subject_to_mni[:3, :3])
    assert np.isclose(estimate_etiv_ml(MNIAlignment(subject_to_mni)), TEMPLATE_ICV_ML / determinant)
    mirrored = subject_to_mni @ np.diag([-1.0, 1.0, 1.0, 1.0])
    assert np.isclose(estimate_etiv_ml(MNIAlignment(mirrored)), TEMPLATE_ICV_ML / determinant)
