"""Lesion appearance on the T1: contrast shares, soft borders, texture and dark cores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from wmhkit.synth.appearance import CONTRAST_SHARE_RANGE, draw_contrast_shares, lesion_darkening


def _two_lesions(shape=(30, 34, 26)) -> np.ndarray:
    fraction = np.zeros(shape, np.float32)
    grid = np.indices(shape)
    big = sum((g - c) ** 2 for g, c in zip(grid, (10, 12, 12))) <= 5**2
    small = sum((g - c) ** 2 for g, c in zip(grid, (22, 24, 12))) <= 2**2
    fraction[big | small] = 1.0
    return fraction


def test_shares_are_mostly_mild():
    shares, typical = draw_contrast_shares(np.random.default_rng(1), 5000)
    assert CONTRAST_SHARE_RANGE[0] <= typical <= CONTRAST_SHARE_RANGE[1]
    assert 0 < shares.min() and shares.max() < 1
    # Across subjects the bulk is mild (nearer white than grey matter), with few invisible lesions.
    pooled = np.concatenate([draw_contrast_shares(np.random.default_rng(s), 200)[0] for s in range(200)])
    assert 0.4 < np.median(pooled) < 0.55 and (pooled < 0.6).mean() > 0.6 and (pooled > 0.8).mean() > 0.01
    assert (pooled < 0.15).mean() < 0.03


def test_fixed_share_without_soft_border_is_exact():
    fraction = _two_lesions()
    darkening, params = lesion_darkening(np.random.default_rng(0), fraction, (1.0, 1.2, 0.9), fixed_share=0.4,
                                         soft_border=False)
    np.testing.assert_allclose(darkening[fraction > 0.5], 0.4, rtol=1e-6)
    assert (darkening[fraction == 0] == 0).all()
    assert params["lesion_count"] == 2 and params["dark_core_count"] == 0


def test_soft_border_fades_beyond_the_mask():
    fraction = _two_lesions()
    darkening, params = lesion_darkening(np.random.default_rng(0), fraction, 1.0, fixed_share=0.4)
    inside = ndimage.binary_erosion(fraction > 0.5, iterations=2)
    rim = ndimage.binary_dilation(fraction > 0.5) & (fraction == 0)
    assert params["border_sigma_mm"] > 0
    assert darkening[inside].mean() == pytest.approx(0.4, abs=0.02)
    assert 0 < darkening[rim].mean() < 0.3
    assert darkening[fraction == 0].max() < 0.4


def test_drawn_appearance_varies_and_has_dark_cores():
    fraction = _two_lesions()
    cores = []
    for seed in range(40):
        darkening, params = lesion_darkening(np.random.default_rng(seed), fraction, 1.0)
        assert 0 <= darkening.min() and darkening.max() <= 1.3
        cores.append(params["dark_core_count"])
    assert 0 < sum(cores) < 40  # some but not all big lesions get a dark core
    # The texture makes a lesion's darkening uneven.
    darkening, _ = lesion_darkening(np.random.default_rng(3), fraction, 1.0, dark_cores=False, soft_border=False)
    big = ndimage.label(fraction > 0.5)[0] == 1
    assert darkening[big].std() > 0.05 * darkening[big].mean()


def test_no_lesion_no_darkening():
    darkening, params = lesion_darkening(np.random.default_rng(0), np.zeros((5, 6, 7)), 1.0)
    assert not darkening.any() and params["lesion_count"] == 0
