"""Two-step cleaning: the three label checks against A(p), the flagging rules, the corruptions."""

from __future__ import annotations

import dataclasses

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from wmhkit.errors import OptionError
from wmhkit.train.cases import load_case
from wmhkit.train.cleaning import case_weights, flag_outliers, label_checks
from wmhkit.train.pipeline import choose_corrupted, corrupt_label

from .train_cases import template_case, template_cases  # noqa: F401 (fixture)


def test_a_true_map_explains_its_label_and_finds_a_displaced_one(template_cases):
    case = load_case(template_cases[0], mmap=False)
    truth = case.lesion_mni.astype(np.float32)
    good = label_checks(truth, case)
    assert good["label_ml"] > 0.1 and good["agreement"] > 0.8
    # Edge voxels may sample the footprint slightly differently from the label's block mean.
    assert good["unsupported_label_ml"] < 0.05 * good["label_ml"] and good["unlabelled_prediction_ml"] == 0.0
    assert good["shifted_overlap_ml"] < 1.5 * good["overlap_ml"]
    shifted = template_case(1, shift_label_mm=8.0)
    bad = label_checks(shifted.lesion_mni.astype(np.float32), shifted)
    assert bad["displacement_mm"] == pytest.approx(8.0, abs=1.5)
    assert bad["shifted_overlap_ml"] > 2 * bad["overlap_ml"]
    table = flag_outliers(pd.DataFrame([good, good, bad, good]))
    assert table["flagged"].tolist() == [False, False, True, False]
    assert "displaced by 8 mm" in table.loc[2, "reason"]


def test_checks_measure_spurious_and_unlabelled_lesions(template_cases):
    case = load_case(template_cases[0], mmap=False)
    truth = case.lesion_mni.astype(np.float32)
    rng = np.random.default_rng(0)
    spurious, kind = corrupt_label(case.label, case.geometry.slice_axis, rng, "spurious")
    checks = label_checks(truth, dataclasses.replace(case, label=spurious))
    base = label_checks(truth, case)
    added_ml = checks["label_ml"] - base["label_ml"]
    assert kind == "spurious" and added_ml > 0.5
    # Blobs touching a true lesion are explained by it; the rest are unsupported.
    assert 0.5 * added_ml < checks["unsupported_label_ml"] <= added_ml + base["unsupported_label_ml"] + 1e-9
    # A confident 12 mm cube (1.73 mL) the label does not have: counted, less its blurred edges.
    cube = np.zeros_like(truth)
    centre = np.array(cube.shape) // 2
    cube[tuple(slice(c - 6, c + 6) for c in centre)] = 1.0
    empty = label_checks(cube, dataclasses.replace(case, label=np.zeros_like(case.label)))
    assert empty["label_ml"] == 0.0 and 0.8 < empty["unlabelled_prediction_ml"] <= 1.73
    nothing = label_checks(np.zeros_like(truth), case)
    # Lesions under 0.1 mL are not counted (the step-1 model misses many true small lesions).
    assert 0.1 <= nothing["unsupported_label_ml"] <= nothing["label_ml"]
    assert nothing["predicted_ml"] == 0.0 and nothing["agreement"] == 0.0


def test_corrupt_label_kinds():
    label = np.zeros((30, 24, 7), dtype=np.float32)
    label[10:14, 8:12, 3] = 1.0
    label[20:22, 15:18, 5] = 1.0
    rng = np.random.default_rng(3)
    shifted, _ = corrupt_label(label, 2, rng, "shift")
    assert shifted.sum() == label.sum() and not np.array_equal(shifted, label)
    assert np.array_equal(shifted.sum(axis=(0, 1)), label.sum(axis=(0, 1)))  # not across slices
    dropped, _ = corrupt_label(label, 2, rng, "drop")
    assert set(np.unique(dropped)) <= {0.0, 1.0} and dropped.sum() <= label.sum()
    blobs, _ = corrupt_label(label, 2, rng, "spurious")
    assert blobs.sum() > label.sum() and np.all(blobs >= label)
    with pytest.raises(OptionError, match="rotate"):
        corrupt_label(label, 2, rng, "rotate")


def test_corruptions_go_to_labels_that_hold_lesions(template_cases, tmp_path):
    import shutil

    empty = tmp_path / "empty"
    shutil.copytree(template_cases[0], empty)
    np.save(empty / "label.npy", np.zeros_like(np.load(empty / "label.npy")))
    folders, roles = [str(empty), *template_cases[:2]], ["train", "train", "train"]
    label_ml = load_case(template_cases[0]).label.sum() * 5.0 / 1000.0  # 1 x 1 x 5 mm label voxels
    assert label_ml > 0.2
    for seed in range(5):
        chosen = choose_corrupted(folders, roles, 2 / 3, 0.2, np.random.default_rng(seed))
        assert chosen == {1, 2}
    assert choose_corrupted(folders, roles, 2 / 3, label_ml * 10, np.random.default_rng(0)) == set()
    anywhere = [choose_corrupted(folders, roles, 1 / 3, 0.0, np.random.default_rng(seed)) for seed in range(30)]
    assert {0} in anywhere and all(len(c) == 1 for c in anywhere)


def test_flagging_rules_and_reasons():
    rng = np.random.default_rng(0)
    n = 20
    table = pd.DataFrame({
        "label_ml": rng.uniform(1.0, 5.0, n), "unsupported_label_ml": rng.uniform(0.0, 0.2, n),
        "unlabelled_prediction_ml": rng.uniform(0.0, 0.3, n), "displacement_mm": np.zeros(n),
        "overlap_ml": np.full(n, 1.0), "shifted_overlap_ml": np.full(n, 1.0),
    })
    table.loc[3, ["label_ml", "unlabelled_prediction_ml"]] = [1.0, 2.0]  # dropped lesions
    table.loc[5, ["label_ml", "unlabelled_prediction_ml"]] = [30.0, 2.0]  # extra small next to a big load
    table.loc[7, ["label_ml", "unsupported_label_ml"]] = [3.0, 1.5]  # spurious blobs
    table.loc[9, ["label_ml", "unsupported_label_ml"]] = [20.0, 0.8]  # 4 % unexplained: tolerated
    table.loc[11, ["displacement_mm", "overlap_ml", "shifted_overlap_ml"]] = [9.0, 0.1, 0.9]
    table.loc[13, ["displacement_mm", "overlap_ml", "shifted_overlap_ml"]] = [9.0, 1.0, 1.3]  # small gain
    flagged = flag_outliers(table, z_threshold=2.5)
    assert flagged.index[flagged["flagged"]].tolist() == [3, 7, 11]
    assert "misses 2.0 mL" in flagged.loc[3, "reason"] and "does not find" in flagged.loc[7, "reason"]
    assert "displaced by 9 mm" in flagged.loc[11, "reason"] and flagged.loc[0, "reason"] == ""
    # A model that "finds" 2 mL everywhere makes the unlabelled check silent (relative to the set).
    noisy = table.assign(unlabelled_prediction_ml=2.0)
    assert not flag_outliers(noisy).loc[3, "flagged"]
    assert case_weights(flagged).sum() == n - 3
    assert np.allclose(case_weights(flagged, "downweight", 0.2)[[3, 7, 11]], 0.2)


def test_label_volumes_are_in_the_label_images_own_millimetres():
    from wmhkit.train.cases import make_case
    from wmhkit.train.cleaning import label_voxel_mm

    # A subject-space case whose network grid has 1.1 mm voxels and a 0.9 x 0.9 x 4 mm label.
    net_affine = np.diag([1.1, 1.1, 1.1, 1.0])
    t1 = np.ones((40, 36, 30), dtype=np.float32)
    lesion = np.zeros(t1.shape, dtype=np.float32)
    lesion[15:25, 12:22, 10:20] = 1.0  # 11 mm cube edge
    label_affine = np.diag([0.9, 0.9, 4.0, 1.0])
    centres = np.indices((49, 44, 8)).reshape(3, -1).T * [0.9, 0.9, 4.0]
    inside = np.all((centres >= [15 * 1.1, 12 * 1.1, 10 * 1.1]) & (centres <= [24 * 1.1, 21 * 1.1, 19 * 1.1]), axis=1)
    label = nib.Nifti1Image(inside.reshape(49, 44, 8).astype(np.uint8), label_affine)
    case = make_case("subject-grid", t1, label, np.eye(4), net_affine=net_affine, slice_axis=2, thickness_mm=4.0)
    np.testing.assert_allclose(label_voxel_mm(case), [0.9, 0.9, 4.0])
    checks = label_checks(lesion, case)
    assert checks["label_ml"] == pytest.approx(inside.sum() * 0.9 * 0.9 * 4.0 / 1000.0)
    # Cases cached before the size was recorded read it from the network grid, as 1 mm voxels.
    legacy = dataclasses.replace(case, meta={})
    np.testing.assert_allclose(label_voxel_mm(legacy), [0.9 / 1.1, 0.9 / 1.1, 4.0 / 1.1])
