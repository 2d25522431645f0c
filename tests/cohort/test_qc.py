"""Per-subject QC: the white/grey contrast check, and QC from what the segmentation handed over."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from .cohort_testdata import template_t1
from wmhkit.cohort.qc import CONTRAST_RATIO_MIN, alignment_from_summary, wm_gm_ratio


def test_contrast_ratio_tells_t1_from_flair_like():
    t1 = template_t1(0)  # in MNI coordinates: the alignment is the identity
    ratio = wm_gm_ratio(t1, np.eye(4))
    assert ratio > CONTRAST_RATIO_MIN
    data = np.asanyarray(t1.dataobj)
    inverted = nib.Nifti1Image(np.where(data > 0.05, 1.2 - data, 0).astype(np.float32), t1.affine)
    assert wm_gm_ratio(inverted, np.eye(4)) < 1.0
    # A misaligned image (shifted by 150 mm) cannot be judged.
    assert np.isnan(wm_gm_ratio(t1, np.array([[1, 0, 0, 150.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])))


def test_alignment_from_summary_reads_the_recorded_matrix_only():
    matrix = np.eye(4)
    matrix[:3, 3] = [1.5, -2.0, 3.0]
    alignment = alignment_from_summary({"alignment_subject_to_mni": matrix.tolist(), "alignment_quality": 0.7})
    np.testing.assert_array_equal(alignment.subject_to_mni, matrix)
    assert alignment.quality == 0.7
    # Nothing recorded: None, never an alignment computed here.
    assert alignment_from_summary({"alignment_subject_to_mni": [[1, 0], [0, 1]]}) is None
