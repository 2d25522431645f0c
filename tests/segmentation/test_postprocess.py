"""Threshold, minimum lesion size, lesion table and option checks."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.errors import OptionError
from wmhkit.segmentation.postprocess import check_min_peak, check_options, lesion_table, threshold_and_clean


def _blobs():
    p = np.zeros((21, 26, 17), np.float32)
    p[2:5, 2:5, 2:5] = 0.9  # 27 voxels
    p[10:12, 10:12, 10:12] = 0.6  # 8 voxels
    p[15, 20, 5] = 0.99  # 1 voxel
    p[18, 3, 12] = 0.3  # below threshold
    return p


def test_threshold_and_min_size_in_mm3():
    p = _blobs()
    mask, labels, n = threshold_and_clean(p, 1.0, 0.5, 8.0)
    assert n == 2 and int(mask.sum()) == 35
    assert mask.dtype == np.uint8 and labels.max() == 2
    # The same clusters with 2 mm voxels (8 mm^3 each): the single voxel now passes 8 mm^3.
    _, _, n2 = threshold_and_clean(p, 8.0, 0.5, 8.0)
    assert n2 == 3
    # A stricter threshold drops the 0.6 blob.
    _, _, n3 = threshold_and_clean(p, 1.0, 0.7, 0.0)
    assert n3 == 2


def test_diagonal_voxels_are_one_lesion():
    p = np.zeros((10, 11, 12), np.float32)
    for k in range(4):
        p[2 + k, 2 + k, 2 + k] = 1.0
    _, _, n = threshold_and_clean(p, 1.0, 0.5, 4.0)
    assert n == 1


def test_empty_probability():
    mask, labels, n = threshold_and_clean(np.zeros((5, 6, 7), np.float32), 1.0, 0.5, 5.0)
    assert n == 0 and mask.sum() == 0
    table = lesion_table(labels, np.zeros((5, 6, 7)), np.eye(4), 1.0)
    assert len(table) == 0 and "lesion_ml" in table.columns


def test_lesion_table_world_centroids_and_volumes():
    p = _blobs()
    _, labels, _ = threshold_and_clean(p, 2.0, 0.5, 0.0)
    affine = np.array([[-2.0, 0, 0, 40.0], [0, 1.0, 0, -20.0], [0, 0, 1.0, 5.0], [0, 0, 0, 1]])
    table = lesion_table(labels, p, affine, 2.0)
    first = table.iloc[0]
    assert first["n_voxels"] == 27
    assert first["lesion_ml"] == pytest.approx(27 * 2.0 / 1000.0)
    assert first["centroid_x_mm"] == pytest.approx(-2.0 * 3 + 40.0)
    assert first["centroid_y_mm"] == pytest.approx(3 - 20.0)
    assert first["max_probability"] == pytest.approx(0.9)


@pytest.mark.parametrize("threshold, size", [(0.0, 5), (1.0, 5), (1.5, 5), (0.5, -1), ("x", 5), (0.5, float("nan"))])
def test_bad_options_refused(threshold, size):
    with pytest.raises(OptionError) as info:
        check_options(threshold, size)
    assert str(info.value).endswith(".")


def test_min_peak_drops_clusters_without_a_confident_core():
    p = _blobs()
    p[3, 3, 3] = 0.97  # the 27-voxel blob has a confident core; the 0.6 blob has none
    mask, _, n = threshold_and_clean(p, 1.0, 0.5, 8.0, min_peak=0.95)
    assert n == 1 and int(mask.sum()) == 27  # kept whole down to the threshold, not only its core
    assert threshold_and_clean(p, 1.0, 0.5, 8.0, min_peak=0.5)[2] == 2  # at or below the threshold: no rule
    assert threshold_and_clean(p, 1.0, 0.5, 8.0, min_peak=None)[2] == 2


@pytest.mark.parametrize("value", [1.0, -0.1, "x"])
def test_bad_min_peak_refused(value):
    with pytest.raises(OptionError, match="min-peak-probability"):
        check_min_peak(value)
    assert check_min_peak(None) is None and check_min_peak(0) == 0.0
