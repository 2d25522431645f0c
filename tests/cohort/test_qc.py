"""Per-subject QC: the white/grey contrast check and the overlay thumbnail."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from .cohort_testdata import template_t1
from wmhkit.cohort.qc import CONTRAST_RATIO_MIN, wm_gm_ratio, write_thumbnail


def test_contrast_ratio_tells_t1_from_flair_like():
    t1 = template_t1(0)  # in MNI coordinates: the alignment is the identity
    ratio = wm_gm_ratio(t1, np.eye(4))
    assert ratio > CONTRAST_RATIO_MIN
    data = np.asanyarray(t1.dataobj)
    inverted = nib.Nifti1Image(np.where(data > 0.05, 1.2 - data, 0).astype(np.float32), t1.affine)
    assert wm_gm_ratio(inverted, np.eye(4)) < 1.0
    # A misaligned image (shifted by 150 mm) cannot be judged.
    assert np.isnan(wm_gm_ratio(t1, np.array([[1, 0, 0, 150.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])))


def test_thumbnail_marks_the_lesion_in_red(tmp_path):
    from matplotlib.image import imread

    rng = np.random.default_rng(1)
    data = rng.uniform(0.4, 0.6, (30, 36, 26)).astype(np.float32)
    mask = np.zeros(data.shape, np.uint8)
    mask[10:14, 12:16, 5:22] = 1
    affine = np.diag([-2.0, 2.0, 2.5, 1.0])  # LAS, anisotropic
    path = write_thumbnail(nib.Nifti1Image(data, affine), nib.Nifti1Image(mask, affine), tmp_path / "t.png", n_slices=3)
    image = imread(path)
    red = (image[..., 0] > 0.8) & (image[..., 1] < 0.4)
    assert image.shape[1] > image.shape[0] and 100 <= image.shape[0] <= 140
    assert red.sum() > 0 and red.mean() < 0.1
    assert not list(tmp_path.glob(".*"))
