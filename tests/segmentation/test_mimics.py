"""The CSF-dark speck rule: small fluid-dark candidates are dropped, mild or large lesions kept."""

from __future__ import annotations

import numpy as np

from wmhkit.segmentation.mimics import SPECK_DARK_RATIO, csf_dark_specks, drop_csf_dark_specks

SHAPE = (34, 41, 29)  # unequal axes


def _white_matter(seed=3):
    rng = np.random.default_rng(seed)
    return np.clip(1.0 + rng.normal(0, 0.03, SHAPE), 0.85, 1.15).astype(np.float32)


def test_fluid_dark_speck_dropped_mild_and_large_kept():
    t1, p = _white_matter(), np.zeros(SHAPE, np.float32)
    pvs, mild, large = np.s_[4:9, 5, 6], np.s_[20:23, 20:23, 10:13], np.s_[10:18, 25:33, 15:22]
    t1[pvs] = 0.3  # a perivascular space: CSF-dark, 5 voxels
    t1[mild] = 0.88  # a mild WMH focus of 27 voxels
    t1[large] = 0.8
    t1[12:15, 27:30, 17:20] = 0.25  # a dark core (6 %) inside a 448-voxel lesion
    for where in (pvs, mild, large):
        p[where] = 0.9
    dropped = csf_dark_specks(p, t1, 0.5, 1.0)
    assert dropped[pvs].all() and not dropped[mild].any() and not dropped[large].any()
    # The same large lesion at 0.05 mm^3 per voxel counts as small (22 mm^3) and, with its dark core, goes.
    assert csf_dark_specks(p, t1, 0.5, 0.05)[large].all()
    # Off, and below the threshold, nothing is dropped.
    assert not csf_dark_specks(p, t1, 0.5, 1.0, max_mm3=0).any()
    assert not csf_dark_specks(p, t1, 0.95, 1.0).any()


def test_ratio_is_relative_to_the_surrounding_tissue_and_drop_is_in_place():
    t1, p = 200.0 * _white_matter(5), np.zeros(SHAPE, np.float32)  # any intensity scale
    just_dark, just_bright = np.s_[5:8, 5:8, 5], np.s_[20:23, 20:23, 20]
    t1[just_dark] = 200.0 * (SPECK_DARK_RATIO - 0.08)
    t1[just_bright] = 200.0 * (SPECK_DARK_RATIO + 0.12)
    p[just_dark] = p[just_bright] = 0.8
    kept = p.copy()
    assert drop_csf_dark_specks(p, t1, 0.5, 1.0) == 9
    assert not p[just_dark].any() and np.array_equal(p[just_bright], kept[just_bright])
