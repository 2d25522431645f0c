"""Shared fixtures: tiny synthetic images with unequal axis lengths, and the real heads."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_T1_DIR = Path(os.environ.get("WMHKIT_REAL_T1_DIR", REPO_ROOT.parent / "shared" / "data" / "real_t1"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Derived atlases go to a per-session cache, never the user's home."""
    monkeypatch.setenv("WMHKIT_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "wmhkit-cache"))


@pytest.fixture
def rng():
    return np.random.default_rng(20221)


@pytest.fixture
def head_img(rng):
    """A small head-sized image (2 mm voxels, 50x60x45, 100x120x90 mm), LAS-oriented, float32."""
    data = rng.normal(100.0, 10.0, size=(50, 60, 45)).astype(np.float32)
    affine = np.diag([-2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [50.0, -60.0, -45.0]
    return nib.Nifti1Image(data, affine)


def _real_t1(name: str) -> Path:
    path = REAL_T1_DIR / name
    if not path.exists():
        pytest.skip(f"real T1 {path} is absent (../shared not beside the checkout)")
    return path


@pytest.fixture
def real_t1_1p75mm() -> Path:
    """The 137x137x93 1.75 mm LAS head; skips when ../shared is absent."""
    return _real_t1("head_t1_1p75mm.nii.gz")


@pytest.fixture
def real_t1_1mm() -> Path:
    """The 256^3 1 mm LIA conformed head; skips when ../shared is absent."""
    return _real_t1("head_t1_conformed_1mm.nii.gz")


@pytest.fixture(scope="module")
def benchmark_script(request):
    """Import the script of ``benchmarks/`` named by the test module's ``BENCHMARK`` (it imports its siblings
    by name, so the folder stays on ``sys.path`` for the module's tests)."""
    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module(request.module.BENCHMARK)
    finally:
        sys.path.remove(folder)
