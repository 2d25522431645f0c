"""Fixtures of the widget tests: a small T1 with two separate lesions, as files (Agg backend).

A module imported by the tests rather than a conftest.py (see tests/plotting/figure_fixtures.py)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

#: Lesion boxes (RAS voxel ranges) of the fixture: one low and left, one high and right.
LESIONS = ((slice(6, 10), slice(8, 12), slice(4, 7)), (slice(20, 25), slice(24, 28), slice(15, 18)))


@pytest.fixture
def t1_and_probseg(tmp_path):
    """Paths of a 30x34x22 RAS T1 (2 mm) and a lesion probability map with two lesions."""
    rng = np.random.default_rng(1)
    shape = (30, 34, 22)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    t1 = rng.normal(100.0, 5.0, shape).astype(np.float32)
    probseg = np.zeros(shape, np.float32)
    for box, value in zip(LESIONS, (0.9, 0.7)):
        probseg[box] = value
        t1[box] = 60.0
    t1_path, probseg_path = tmp_path / "sub-01_T1w.nii.gz", tmp_path / "sub-01_desc-wmh_probseg.nii.gz"
    nib.save(nib.Nifti1Image(t1, affine), t1_path)
    nib.save(nib.Nifti1Image(probseg, affine), probseg_path)
    return t1_path, probseg_path


@pytest.fixture
def lesion_boxes():
    """The RAS voxel boxes of the two lesions of :func:`t1_and_probseg`."""
    return LESIONS
