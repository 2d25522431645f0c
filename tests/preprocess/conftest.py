"""Fixtures for preprocessing tests: synthetic subjects with a known subject -> MNI affine."""

from __future__ import annotations

import numpy as np
import pytest
from .preprocess_testdata import make_subject, random_subject_to_mni


@pytest.fixture(scope="session")
def skull_subject():
    """A skull-on synthetic head (2 mm, LAS, int16) and its true subject -> MNI affine."""
    truth = random_subject_to_mni(11)
    return make_subject(truth, skull=True), truth


@pytest.fixture(scope="session")
def stripped_subject():
    """A skull-stripped template brain (2 mm, LIA, float64 0-255) and its true affine."""
    truth = random_subject_to_mni(12)
    return make_subject(truth, skull=False, orientation="LIA", scale=255.0 / 1.0, dtype=np.float64), truth
