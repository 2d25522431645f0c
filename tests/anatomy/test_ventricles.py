"""The one ventricle estimator: dark components reaching the template ventricles."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from wmhkit.anatomy.ventricles import connected_ventricles, ventricles_near_zone


def _scene():
    """A ventricle touching the template zone, sulcal CSF apart from it, and a leak far away."""
    dark = np.zeros((40, 34, 30), bool)
    dark[10:16, 10:20, 10:16] = True          # ventricle
    dark[15:17, 12:14, 16:29] = True          # a thin dark path out of it, up to z = 28
    dark[30:35, 25:30, 5:8] = True            # sulcal CSF, not connected
    zone = np.zeros_like(dark)
    zone[11:14, 12:16, 11:14] = True
    return dark, zone


def test_only_the_components_that_reach_the_template_are_kept():
    dark, zone = _scene()
    found = connected_ventricles(dark, zone)
    assert found[12, 15, 12] and found[16, 13, 28] and not found[32, 27, 6]
    labels, _ = ndimage.label(dark, structure=ndimage.generate_binary_structure(3, 1))
    assert found.sum() == (labels == labels[12, 15, 12]).sum()


def test_reach_bounds_a_leak_and_holes_fill():
    dark, zone = _scene()
    near = ventricles_near_zone(dark, zone, reach_voxels=6)
    assert near[12, 15, 12] and not near[16, 13, 28]  # 14 voxels above the zone: out of reach
    hollow = np.zeros((20, 22, 18), bool)
    hollow[5:12, 5:12, 5:12] = True
    hollow[8, 8, 8] = False                    # choroid plexus: brighter, enclosed
    seed = np.zeros_like(hollow)
    seed[6, 6, 6] = True
    assert not connected_ventricles(hollow, seed)[8, 8, 8]
    assert connected_ventricles(hollow, seed, fill_holes=True)[8, 8, 8]


def test_nothing_dark_gives_nothing():
    empty = np.zeros((6, 7, 8), bool)
    assert not connected_ventricles(empty, ~empty).any()
