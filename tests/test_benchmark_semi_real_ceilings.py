"""Helpers of benchmarks/semi_real_ceilings.py: the intensity-only oracle's cut."""

from __future__ import annotations

import numpy as np
import pytest

BENCHMARK = "semi_real_ceilings"


@pytest.fixture(scope="module")
def ceilings(benchmark_script):
    return benchmark_script


def test_best_cut_separates_dark_lesions_from_normal_white_matter(ceilings):
    rng = np.random.default_rng(3)
    shape = (20, 24, 18)
    ratio = rng.normal(1.0, 0.01, shape)
    truth = np.zeros(shape, bool)
    truth[5:9, 6:12, 4:8] = True
    ratio[truth] = 0.8                              # 20 % darker: one cut separates them
    region = np.ones(shape, bool)
    cut, dice = ceilings.best_cut(ratio, truth, region)
    assert 0.8 < cut < 0.97 and dice == pytest.approx(1.0)


def test_best_cut_counts_lesion_outside_the_region_as_missed(ceilings):
    shape = (12, 14, 10)
    ratio = np.ones(shape)
    truth = np.zeros(shape, bool)
    truth[2:4, 2:4, 2:4] = True                     # 8 voxels, half of them outside the region
    ratio[truth] = 0.75
    region = np.ones(shape, bool)
    region[2:4, 2:4, 2] = False
    _, dice = ceilings.best_cut(ratio, truth, region)
    assert dice == pytest.approx(2 * 4 / (4 + 8))
