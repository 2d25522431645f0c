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


def test_real_masks_drawn_for_training_never_held_out(tmp_path):
    from wmhkit.synth.real_masks import HELD_OUT_MASKS
    from wmhkit.train.recipe import draw_acquisition

    import nibabel as nib

    for name in ["ms_lesions_90", "ms_lesions_91", *HELD_OUT_MASKS]:
        nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.uint8), np.eye(4)), tmp_path / f"{name}.nii.gz")
    options = {"real_mask_share": 1.0, "real_mask_dir": str(tmp_path), "skull_strip_share": 0.5}
    drawn = [draw_acquisition(seed, options) for seed in range(60)]
    chosen = {d["real_lesion_mask"] for d in drawn if d["lesion_burden"] > 0}
    assert chosen and all(c is not None for c in chosen)
    assert {c.split("/")[-1].split(".")[0] for c in chosen} <= {"ms_lesions_90", "ms_lesions_91"}
    assert all(d["real_lesion_mask"] is None for d in drawn if d["lesion_burden"] == 0)
    assert 10 < sum(d["skull_strip"] for d in drawn) < 50
    # The draws that existed before real masks are unchanged by the new options.
    plain = [draw_acquisition(seed) for seed in range(60)]
    for a, b in zip(drawn, plain):
        assert {k: a[k] for k in ("lesion_burden", "flair_slice_mm", "flair_orientation", "skull")} == \
               {k: b[k] for k in ("lesion_burden", "flair_slice_mm", "flair_orientation", "skull")}
        assert b["real_lesion_mask"] is None and not b["skull_strip"]


def test_real_mask_load_and_move_options_reach_the_variation(tmp_path):
    from wmhkit.train.recipe import draw_acquisition

    import nibabel as nib

    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.uint8), np.eye(4)), tmp_path / "ms_lesions_90.nii.gz")
    options = {"real_mask_share": 1.0, "real_mask_dir": str(tmp_path), "real_mask_keep_share": [0.1, 0.3],
               "real_mask_move": [15.0, 12.0]}
    drawn = [draw_acquisition(seed, options) for seed in range(40)]
    variations = [d["real_mask_variation"] for d in drawn if d["real_lesion_mask"]]
    assert variations and all(0.1 <= v["keep_share"] <= 0.3 for v in variations)
    assert all(v["rotate_deg"] == 15.0 and v["shift_mm"] == 12.0 for v in variations)
    assert all(d["real_mask_variation"] is None for d in drawn if not d["real_lesion_mask"])
    assert all(d["real_mask_variation"] is None for d in (draw_acquisition(s, {**options, "real_mask_keep_share": None,
                                                                                "real_mask_move": None})
                                                          for s in range(10)))


@pytest.mark.real_data
@pytest.mark.slow
def test_real_head_case_with_a_real_mask(real_t1_1p75mm):
    """A real head with a real lesion mask placed through its alignment, skull-stripped: the
    lesions sit in the head's white matter and its T1 is darker there; a healthy variant has none."""
    from wmhkit.synth.real_masks import real_mask_paths
    from wmhkit.train.recipe import real_anatomy_case

    masks = real_mask_paths(role="train")
    if not masks:
        pytest.skip("real lesion masks are absent (../shared not beside the checkout)")
    options = {"space": "subject", "real_mask_share": 1.0, "skull_strip_share": 1.0, "healthy_fraction": 0.0}
    case = real_anatomy_case(real_t1_1p75mm, 7, options)
    assert case.meta["params"]["real_lesion_mask"] and case.meta["params"]["skull_strip"]
    lesion = np.asarray(case.lesion_mni) > 0
    t1 = np.asarray(case.t1, dtype=np.float32)
    assert lesion.sum() > 100 and len(case.lesion_points) > 0
    # Skull-stripped: the corners of the box are background.
    assert t1[:3, :3, :3].max() < 0.05
    # Lesions are darker than the white matter around them, but not as dark as grey matter usually is.
    from scipy import ndimage

    around = ndimage.binary_dilation(lesion, iterations=3) & ~ndimage.binary_dilation(lesion) & (t1 > 0.9)
    assert 0.55 < np.median(t1[lesion]) / np.median(t1[around]) < 0.99
    healthy = real_anatomy_case(real_t1_1p75mm, 7, {**options, "real_healthy": True})
    assert not np.asarray(healthy.lesion_mni).any() and np.asarray(healthy.label).max() == 0
    # A warped variant: another anatomy from the same head, still healthy.
    warped = real_anatomy_case(real_t1_1p75mm, 7, {**options, "real_healthy": True, "head_warp_mm": 4.0})
    assert 1.5 < warped.meta["params"]["head_warp_rms_mm"] < 4.5
    assert not np.asarray(warped.lesion_mni).any()
    assert np.abs(np.asarray(warped.t1) - np.asarray(healthy.t1)).mean() > 0.02


def test_perivascular_spaces_drawn_unlabelled_in_phantom_cases():
    """pvs_count puts spaces in the T1 and nowhere in the label; the draws before it are unchanged."""
    from wmhkit.train.recipe import draw_acquisition

    drawn = [draw_acquisition(seed, {"pvs_count": [10, 20]}) for seed in range(30)]
    assert all(10 <= d["pvs_count"] <= 20 for d in drawn)
    assert all(draw_acquisition(seed)["pvs_count"] == 0 for seed in range(30))
    assert [d["lesion_burden"] for d in drawn] == [draw_acquisition(s)["lesion_burden"] for s in range(30)]
    options = {**OPTIONS, "space": "subject"}
    plain = phantom_case(4321, options)
    spaced = phantom_case(4321, {**options, "pvs_count": [60, 60]})
    assert spaced.meta["params"]["pvs_count"] == 60 and spaced.meta["params"]["pvs_ml"] > 0
    np.testing.assert_array_equal(np.asarray(spaced.label), np.asarray(plain.label))
    np.testing.assert_array_equal(np.asarray(spaced.lesion_mni), np.asarray(plain.lesion_mni))
    darker = np.asarray(plain.t1, np.float32) - np.asarray(spaced.t1, np.float32)
    assert darker.max() > 0.2 and not (darker[np.asarray(spaced.lesion_mni) > 0] > 1e-3).any()
