"""The built-in recipe's cases: the label's geometry holds on either grid a network may train on."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.errors import OptionError
from wmhkit.train.geometry import forward_pairs
from wmhkit.train.recipe import phantom_case

# 2 mm phantoms keep the test fast; every case is forced to carry lesions.
OPTIONS = {"voxel_size_mm": 2.0, "healthy_fraction": 0.0, "lesion_burden": [2.0, 2.0], "skull_fraction": 0.0}


def _forward_on_block(case, centre, size=(48, 48, 24)):
    """A(exact lesion) and the label on the label voxels a block around ``centre`` covers."""
    start = np.clip(np.round(np.asarray(centre) - np.asarray(size) / 2).astype(int), 0,
                    np.asarray(case.t1.shape) - size)
    shift = np.eye(4)
    shift[:3, 3] = start
    pairs = forward_pairs(case.geometry.with_net_transform(shift), size)
    block = np.asarray(case.lesion_mni, np.float64)[tuple(slice(s, s + n) for s, n in zip(start, size))]
    mapped = np.bincount(pairs.label_row, weights=pairs.weight * block.reshape(-1)[pairs.net_index],
                         minlength=pairs.n_labels)
    return mapped, np.asarray(case.label).reshape(-1)[pairs.label_index]


@pytest.fixture(scope="module")
def cases():
    out = {space: phantom_case(4321, {**OPTIONS, "space": space}) for space in ("mni", "subject")}
    out["exact"] = phantom_case(4321, {**OPTIONS, "space": "subject", "label_source": "exact"})
    return out


@pytest.mark.parametrize("space", ["mni", "subject"])
def test_label_geometry_matches_the_exact_lesion(cases, space):
    case = cases[space]
    assert case.meta["space"] == space and len(case.lesion_points) > 10 and "label_source" not in case.meta
    mapped, label = [], []
    for centre in case.lesion_points[:: max(1, len(case.lesion_points) // 4)][:4]:
        m, y = _forward_on_block(case, centre)
        mapped.append(m)
        label.append(y)
    mapped, label = np.concatenate(mapped), np.concatenate(label) > 0.5
    assert label.sum() >= 5
    # Labelled thick voxels are more than half lesion by construction (interpolation of the
    # 2 mm phantom softens that); unlabelled ones are mostly lesion-free.
    assert mapped[label].mean() > 0.4 and mapped[~label].mean() < 0.05


def test_subject_case_lives_on_the_subject_grid(cases):
    mni, subject = cases["mni"], cases["subject"]
    assert subject.t1.shape != mni.t1.shape and subject.t1.dtype == np.float32
    # Same lesions on both 1 mm grids (the phantom's head is scaled into MNI: within 35 %).
    ratio = subject.lesion_mni.sum() / mni.lesion_mni.sum()
    assert 0.65 < ratio < 1.35
    # White matter is normalised to about 1 on both.
    for case in (mni, subject):
        inside = np.asarray(case.t1)[tuple(case.brain_points.astype(int).T)]
        assert 0.6 < np.median(inside) < 1.3


def test_exact_labels_are_the_lesion_mask_itself(cases):
    exact, thick = cases["exact"], cases["subject"]
    assert exact.meta["label_source"] == "exact" and exact.label.shape != thick.label.shape
    # Every lesion voxel is labelled, not only thick voxels more than half full.
    assert labelled_ml(exact) > 1.2 * labelled_ml(thick)
    mapped, label = _forward_on_block(exact, exact.lesion_points[len(exact.lesion_points) // 2])
    label = label > 0.5
    assert label.sum() >= 5 and mapped[label].mean() > 0.6 and mapped[~label].mean() < 0.05


def labelled_ml(case):
    """Labelled volume (mL); label voxel sizes from the geometry (the network grid is 1 mm)."""
    voxel_mm = 1.0 / np.sqrt((case.geometry.net_to_label[:3, :3] ** 2).sum(axis=1))
    return float(np.sum(case.label > 0.5) * np.prod(voxel_mm) / 1000.0)


def test_unknown_space_is_refused():
    with pytest.raises(OptionError, match="data.space"):
        phantom_case(4321, {**OPTIONS, "space": "talairach"})
