"""Small training cases built from the MNI template (no phantom generator needed).

A helper module rather than a conftest.py: sibling test folders already have a conftest.py, and
two of them without __init__.py collide under pytest's default import mode.
"""

from __future__ import annotations

import functools

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from wmhkit.preprocess import load_template
from wmhkit.train.cases import MNI_AFFINE, make_case, save_case


@functools.lru_cache(maxsize=1)
def _template_arrays():
    t1 = np.asarray(load_template("t1").dataobj, dtype=np.float32)
    wm = np.asarray(load_template("wm").dataobj, dtype=np.float32) > 0.8
    return t1 / np.percentile(t1[wm], 50), wm


def template_case(seed: int, *, slice_mm: int = 5, shift_label_mm: float = 0.0):
    """Template T1 (WM ~1) with dark lesion blobs in white matter and a thick-slice axial label."""
    rng = np.random.default_rng(seed)
    t1, wm = _template_arrays()
    t1 = t1.copy()
    lesion = np.zeros(t1.shape, dtype=bool)
    candidates = np.argwhere(wm)
    for centre in candidates[rng.choice(len(candidates), 6, replace=False)]:
        radius = rng.uniform(2.0, 4.0)
        box = tuple(slice(c - 5, c + 6) for c in centre)
        grid = np.stack(np.meshgrid(*[np.arange(s.start, s.stop) for s in box], indexing="ij"), -1)
        lesion[box] |= np.linalg.norm(grid - centre, axis=-1) <= radius
    lesion &= wm
    t1[lesion] = 0.6
    # Soften the lesion edges only around lesions (a full-volume filter costs seconds).
    near = ndimage.binary_dilation(lesion, iterations=2)
    t1[near] = ndimage.gaussian_filter(t1, 0.5)[near] if near.any() else t1[near]
    # Label slice k covers MNI voxel slices slice_mm*k .. slice_mm*k + slice_mm - 1: a block mean.
    n_slices = 189 // slice_mm
    lr_affine = np.diag([1.0, 1.0, float(slice_mm), 1.0])
    lr_affine[:3, 3] = MNI_AFFINE[:3, 3] + [shift_label_mm, 0.0, (slice_mm - 1) / 2.0]
    blocks = lesion[:, :, : n_slices * slice_mm].reshape(197, 233, n_slices, slice_mm)
    average = blocks.mean(axis=-1)
    label = nib.Nifti1Image((average > 0.5).astype(np.uint8), lr_affine)
    return make_case(f"template-{seed}", t1, label, np.eye(4), lesion_mni=lesion, seed=seed,
                     meta={"kind": "template"})


@functools.lru_cache(maxsize=1)
def _saved_cases(cache: str) -> tuple:
    return tuple(save_case(template_case(seed), cache) for seed in (1, 2, 3))


@pytest.fixture(scope="session")
def template_cases(tmp_path_factory):
    """Three cached template cases (two train, one validation), built once per session."""
    return list(_saved_cases(str(tmp_path_factory.getbasetemp() / "template-cases")))
