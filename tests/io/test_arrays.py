"""Small array helpers: Otsu's threshold (the one the alignment and the ventricle parcels share)."""

from __future__ import annotations

import numpy as np

from wmhkit.io.arrays import otsu_threshold


def test_otsu_splits_two_classes():
    values = np.r_[np.random.default_rng(0).normal(0.2, 0.02, 500), np.random.default_rng(1).normal(1.0, 0.05, 500)]
    assert 0.3 < otsu_threshold(values) < 0.9


def test_otsu_matches_the_exhaustive_search_on_a_continuous_histogram():
    """Without ties the answer is the bin centre whose cut maximises the between-class variance."""
    rng = np.random.default_rng(3)
    values = np.r_[rng.normal(20.0, 4.0, 3000), rng.normal(60.0, 9.0, 2000)].astype(np.float32)
    hist, edges = np.histogram(values, bins=128)
    centres = (edges[:-1] + edges[1:]) / 2
    scores = []
    for k in range(127):
        low, high = hist[: k + 1], hist[k + 1:]
        mean_low = (low * centres[: k + 1]).sum() / low.sum()
        mean_high = (high * centres[k + 1:]).sum() / high.sum()
        scores.append(low.sum() * high.sum() * (mean_low - mean_high) ** 2)
    assert otsu_threshold(values, bins=128) == centres[int(np.argmax(scores))]


def test_otsu_puts_tied_cuts_in_the_middle_of_the_gap():
    values = np.r_[np.full(60, 10.0), np.full(40, 30.0)]  # bins 1 and 2 are empty: three cuts tie
    assert otsu_threshold(values, bins=4) == 17.5
    assert otsu_threshold(values.astype(np.int16), bins=4) == 17.5
