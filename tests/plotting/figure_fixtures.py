"""Fixtures of the figure tests: tiny synthetic heads and tables (Agg backend, no display).

A module imported by the tests rather than a conftest.py: with --doctest-modules, two
conftest.py files in sibling test folders collide as modules named "conftest"."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402


def _ellipsoid_head(shape, rng):
    grid = np.indices(shape).astype(float)
    centre = (np.asarray(shape, dtype=float)[:, None, None, None] - 1) / 2
    radius = np.sqrt((((grid - centre) / (np.asarray(shape)[:, None, None, None] * 0.45)) ** 2).sum(0))
    return (np.where(radius < 1, 100.0 - 40.0 * (radius > 0.8), 0.0) + rng.normal(0, 2, shape)).astype(np.float32)


@pytest.fixture
def head_and_lesion():
    """A 2 mm LAS head (36x42x30) and a lesion probability map with one blob, on the same grid."""
    rng = np.random.default_rng(7)
    shape = (36, 42, 30)
    affine = np.diag([-2.0, 2.0, 2.5, 1.0])
    affine[:3, 3] = [36.0, -42.0, -37.0]
    grid = np.indices(shape).astype(float)
    blob = np.exp(-(((grid - np.array([22, 24, 18])[:, None, None, None]) / 3.0) ** 2).sum(0))
    return nib.Nifti1Image(_ellipsoid_head(shape, rng), affine), nib.Nifti1Image(blob.astype(np.float32), affine)


@pytest.fixture
def cohort_table():
    """A small two-sex, three-site table with volumes rising with age."""
    rng = np.random.default_rng(3)
    n = 120
    age = rng.uniform(60, 90, n)
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    site = rng.choice(["A", "B", "C"], n)
    wmh = np.exp(0.08 * (age - 70) + rng.normal(0, 0.6, n))
    return pd.DataFrame({"subject_id": [f"s{i:03d}" for i in range(n)], "age": age, "sex": sex, "site": site,
                         "wmh_ml": wmh * np.where(site == "B", 1.8, 1.0), "wmh_ml_harmonised": wmh})


def _canvas_rgb(fig) -> np.ndarray:
    """The figure rendered by Agg as an RGB array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


@pytest.fixture
def canvas_rgb():
    """Function rendering a Figure with Agg into an RGB array."""
    return _canvas_rgb
