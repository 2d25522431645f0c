"""The classical baseline on a small synthetic brain with known lesions and look-alikes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from wmhkit.segmentation.baseline import baseline_probability, tissue_levels

SHAPE = (64, 72, 56)


def _brain(rng, *, bias=0.0):
    """Cortex shell around white matter, a central ventricle, a sulcus, lesions and a rim."""
    grid = np.indices(SHAPE).astype(np.float32)
    centre = np.array(SHAPE, np.float32)[:, None, None, None] / 2
    radius = np.sqrt((((grid - centre) / (np.array(SHAPE)[:, None, None, None] * 0.42)) ** 2).sum(0))
    brain = radius < 1.0
    wm = radius < 0.85
    ventricle = (np.abs(grid[0] - 32) < 3) & (np.abs(grid[1] - 36) < 9) & (np.abs(grid[2] - 28) < 4)
    sulcus = (np.abs(grid[0] - 12) < 1.5) & (np.abs(grid[2] - 28) < 5) & brain  # cortex folding into WM
    wm_true = wm & ~ventricle & ~sulcus
    t1 = np.where(brain, 0.72, 0.0).astype(np.float32)
    t1[wm_true] = 1.0
    t1[ventricle] = 0.3
    deep = np.zeros(SHAPE, bool)
    deep[40:45, 26:31, 30:34] = True
    deep[24:26, 24:26, 22:24] = True  # small deep lesion (8 voxels)
    cap = (np.abs(grid[0] - 32) < 3) & (grid[1] >= 45) & (grid[1] < 49) & (np.abs(grid[2] - 28) < 4)
    lesions = deep | cap
    t1[lesions] = 0.8
    # A one-voxel partial-volume rim around the ventricle, as dark as a lesion: not a lesion.
    rim = ndimage.binary_dilation(ventricle) & ~ventricle & ~cap
    t1[rim] = 0.8
    t1 = ndimage.gaussian_filter(t1, 0.5)
    t1 += rng.normal(0, 0.02, SHAPE).astype(np.float32) * brain
    t1 *= (1.0 + bias * (grid[1] - SHAPE[1] / 2) / SHAPE[1]).astype(np.float32)
    t1[~brain] = 0.0
    smooth = lambda m: np.clip(ndimage.gaussian_filter(m.astype(np.float32), 1.5), 0, 1)  # noqa: E731
    wm_prior = smooth(wm)
    csf_prior = smooth(ventricle) * brain
    gm_prior = np.clip(smooth(brain) - wm_prior - csf_prior, 0, 1)
    return t1.astype(np.float32), wm_prior, gm_prior, csf_prior, lesions, ventricle, sulcus | (brain & ~wm)


@pytest.mark.parametrize("bias", [0.0, 0.3])
def test_finds_deep_and_periventricular_lesions_not_look_alikes(rng, bias):
    t1, wm_p, gm_p, csf_p, lesions, ventricle, cortex = _brain(rng, bias=bias)
    zone = ndimage.binary_dilation(ventricle, iterations=4)
    p, levels = baseline_probability(t1, wm_p, gm_p, csf_p, ventricle_zone=zone)
    assert p.dtype == np.float32 and p.shape == SHAPE and 0.0 <= p.min() and p.max() <= 1.0
    found = p >= 0.5
    dice = 2 * (found & lesions).sum() / (found.sum() + lesions.sum())
    assert dice > 0.6, dice
    labels, n = ndimage.label(lesions)
    hit = set(np.unique(labels[found & lesions])) - {0}
    assert len(hit) >= n - 1  # every lesion but at most the 8-voxel one
    assert not (found & cortex).any()
    assert not (found & ventricle).any()
    assert levels["wm_sd"] < 0.1 and levels["gm"] < levels["wm"]


def test_healthy_brain_has_no_lesions(rng):
    t1, wm_p, gm_p, csf_p, lesions, ventricle, _ = _brain(rng)
    t1 = t1.copy()
    t1[lesions] = 1.0
    zone = ndimage.binary_dilation(ventricle, iterations=4)
    p, _ = baseline_probability(t1, wm_p, gm_p, csf_p, ventricle_zone=zone)
    from wmhkit.segmentation.postprocess import threshold_and_clean

    assert threshold_and_clean(p, 1.0, 0.5, 5.0)[2] == 0  # no lesion of the default minimum size


def test_deep_gm_is_never_lesion(rng):
    t1, wm_p, gm_p, csf_p, lesions, ventricle, _ = _brain(rng)
    p, _ = baseline_probability(t1, wm_p, gm_p, csf_p, deep_gm=lesions)
    assert (p[lesions] == 0).all()


def test_tissue_levels_ignore_dark_half():
    rng = np.random.default_rng(1)
    ratio = rng.normal(1.0, 0.03, (30, 31, 32)).astype(np.float32)
    wm = np.ones_like(ratio)
    ratio[:10] -= 0.3  # grey matter mixed into the white-matter prior by misalignment
    levels = tissue_levels(ratio, wm, np.zeros_like(ratio), np.zeros_like(ratio))
    assert levels["wm_sd"] == pytest.approx(0.03, rel=0.25)


def test_surface_reach_keeps_a_deep_load_connected_to_the_cortex(rng):
    """A deep lesion joined to the cortex by a dark channel is removed whole by default; with a
    surface reach only the part near the cortex is."""
    t1, wm_p, gm_p, csf_p, lesions, ventricle, cortex = _brain(rng)
    t1 = t1.copy()
    deep = np.zeros(SHAPE, bool)
    deep[38:47, 24:34, 26:34] = True
    channel = np.zeros(SHAPE, bool)
    channel[44:62, 28:31, 29:32] = True  # from the deep lesion out through the white matter to the cortex
    t1[(deep | channel) & (wm_p > 0.05)] = 0.8
    wm_p = np.where(deep, 1.0, wm_p).astype(np.float32)  # deep white matter in the template
    zone = ndimage.binary_dilation(ventricle, iterations=4)
    default, _ = baseline_probability(t1, wm_p, gm_p, csf_p, ventricle_zone=zone)
    reached, _ = baseline_probability(t1, wm_p, gm_p, csf_p, ventricle_zone=zone, surface_reach_mm=4)
    inner = deep & (np.indices(SHAPE)[0] < 43)
    assert (default[inner] >= 0.5).mean() < 0.2
    assert (reached[inner] >= 0.5).mean() > 0.8
    assert not ((reached >= 0.5) & channel & (np.indices(SHAPE)[0] >= 56)).any()  # the end at the cortex
