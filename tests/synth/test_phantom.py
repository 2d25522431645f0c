"""Phantoms: lesions, labels, contrasts, determinism (all on the fast 2 mm path)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from wmhkit.errors import OptionError
from wmhkit.forward import thick_slice_average
from wmhkit.synth import TISSUE_LABELS, Phantom, make_phantom
from wmhkit.synth.anatomy import make_anatomy
from wmhkit.synth.phantom import random_streams

FAST = {"voxel_size_mm": 2.0}


def _data(img):
    return np.asarray(img.dataobj)


@pytest.fixture(scope="module")
def burden_series():
    """One subject (seed 5) at three lesion burdens."""
    return {burden: make_phantom(5, lesion_burden=burden, **FAST) for burden in (0.0, 1.0, 2.5)}


def test_lesion_volume_grows_with_burden(burden_series):
    volumes = [burden_series[b].params["lesion_ml"] for b in (0.0, 1.0, 2.5)]
    assert volumes[0] == 0.0
    assert 0.0 < volumes[1] < volumes[2]
    light, heavy = (_data(burden_series[b].lesion_mask) for b in (1.0, 2.5))
    assert not (light & ~heavy).any(), "a higher burden must keep every lesion of a lower one"
    # Same anatomy at every burden: only the lesions change.
    np.testing.assert_array_equal(burden_series[0.0].t1.affine, burden_series[2.5].t1.affine)


def test_lesions_lie_in_white_matter_only(burden_series):
    phantom = burden_series[2.5]
    anatomy = make_anatomy(random_streams(5)[0], voxel_size_mm=2.0, skull=False, age_years=None)
    np.testing.assert_array_equal(anatomy.affine, phantom.t1.affine)
    fractions = anatomy.fractions
    names = ["wm", "gm", "deep_gm", "csf", "ventricle"]
    before = np.argmax(np.stack([fractions[n] for n in names]), axis=0)
    lesion = _data(phantom.lesion_mask).astype(bool)
    assert lesion.sum() > 50
    assert (before[lesion] == 0).all(), "lesion voxels must have been white matter"
    tissue = _data(phantom.tissue)
    np.testing.assert_array_equal(tissue == TISSUE_LABELS["lesion"], lesion)


def _label_box(lesion, t1_affine, flair_shape, flair_affine, margin=4):
    index = np.array(np.nonzero(lesion))
    corners = np.array(np.meshgrid(*zip(index.min(1) - 1.0, index.max(1) + 1.0), indexing="ij")).reshape(3, -1)
    to_lr = np.linalg.inv(flair_affine) @ t1_affine
    lr = to_lr[:3, :3] @ corners + to_lr[:3, 3:4]
    start = np.maximum(np.floor(lr.min(1)).astype(int) - margin, 0)
    stop = np.minimum(np.ceil(lr.max(1)).astype(int) + margin + 1, flair_shape)
    return start, stop


@pytest.mark.parametrize("geometry", [{}, {"flair_slice_mm": 3.0, "flair_gap_mm": 1.5, "flair_orientation": "coronal"}])
def test_flair_label_is_thick_slice_average_above_half(geometry):
    phantom = make_phantom(11, lesion_burden=1.5, **FAST, **geometry)
    lesion = _data(phantom.lesion_mask)
    label = _data(phantom.flair_label)
    rule = phantom.params["flair_label_rule"]
    assert rule["thickness_mm"] == geometry.get("flair_slice_mm", 5.0)
    start, stop = _label_box(lesion, phantom.t1.affine, phantom.flair.shape, phantom.flair.affine)
    # The footprints outside the lesion's box cannot touch it: compute the box only.
    box_affine = phantom.flair.affine.copy()
    box_affine[:3, 3] = phantom.flair.affine[:3, :3] @ start + phantom.flair.affine[:3, 3]
    average = thick_slice_average(
        lesion,
        phantom.t1.affine,
        tuple(stop - start),
        box_affine,
        slice_axis=rule["slice_axis"],
        thickness_mm=rule["thickness_mm"],
        gap_mm=rule["gap_mm"],
        step_mm=rule["step_mm"],
    )
    inside = label[tuple(slice(a, b) for a, b in zip(start, stop))]
    disagree = (average > 0.5) != inside.astype(bool)
    # Only round-off at exactly 0.5 may differ between the cropped and the full grid.
    assert not (disagree & (np.abs(average - 0.5) > 1e-9)).any()
    assert inside.sum() == label.sum() > 0


@pytest.mark.slow
def test_contrast_orderings_hold_in_params_and_images(burden_series):
    for seed in (1, 2, 3):
        contrasts = make_phantom(seed, lesion_burden=0.0, **FAST).params["contrasts"]
        t1, flair = contrasts["t1"], contrasts["flair"]
        assert t1["wm"] > t1["lesion"] >= t1["gm"] > t1["csf"]
        assert flair["lesion"] > flair["gm"] > flair["wm"] > flair["csf"]
    phantom = burden_series[2.5]
    t1 = _data(phantom.t1)
    tissue = _data(phantom.tissue)
    mean = {name: t1[tissue == code].mean() for name, code in TISSUE_LABELS.items() if (tissue == code).any()}
    assert mean["wm"] > mean["lesion"] > mean["csf"]
    assert mean["gm"] > mean["csf"]


@pytest.mark.slow
def test_same_seed_same_phantom_and_different_seeds_differ():
    first = make_phantom(21, **FAST)
    again = make_phantom(21, **FAST)
    other = make_phantom(22, **FAST)
    for name in ("t1", "flair", "flair_label", "lesion_mask", "tissue", "brain_mask"):
        np.testing.assert_array_equal(_data(getattr(first, name)), _data(getattr(again, name)))
        np.testing.assert_array_equal(getattr(first, name).affine, getattr(again, name).affine)
    assert json.dumps(first.params, default=str) == json.dumps(again.params, default=str)
    assert first.t1.shape != other.t1.shape or not np.array_equal(_data(first.t1), _data(other.t1))
    assert first.params["contrasts"] != other.params["contrasts"]


def test_params_record_generation(burden_series):
    phantom = burden_series[1.0]
    params = phantom.params
    for key in ("seed", "lesion_burden", "age_years", "contrasts", "flair_label_rule", "lesion_ml", "t1_orientation",
                "flair_voxel_mm", "ventricle_growth_mm", "t1_corruption", "deep_blob_count"):
        assert key in params, key
    assert params["seed"] == 5 and params["lesion_burden"] == 1.0
    np.testing.assert_allclose(params["flair_voxel_mm"], [0.9, 0.9, 5.0])
    voxel_ml = abs(np.linalg.det(phantom.t1.affine[:3, :3])) / 1000
    assert params["lesion_ml"] == pytest.approx(_data(phantom.lesion_mask).sum() * voxel_ml)
    assert phantom.subject_to_mni.shape == (4, 4)
    assert phantom.t1.get_data_dtype() == np.float32
    assert phantom.flair_label.get_data_dtype() == np.uint8


@pytest.mark.slow
def test_skull_on_head_has_extracerebral_layers_and_noisy_air():
    skull_on = make_phantom(4, skull=True, **FAST)
    tissue = _data(skull_on.tissue)
    assert (tissue == TISSUE_LABELS["extracerebral"]).sum() > 1000
    t1 = _data(skull_on.t1)
    background = t1[tissue == TISSUE_LABELS["background"]]
    assert background.min() > 0  # Rician noise floor in the air
    skull_off = make_phantom(4, **FAST)
    off = _data(skull_off.t1)
    assert (off[_data(skull_off.tissue) == TISSUE_LABELS["background"]] == 0).mean() > 0.9
    assert not (_data(skull_off.tissue) == TISSUE_LABELS["extracerebral"]).any()


@pytest.mark.slow
def test_label_noise_drops_adds_and_shifts(burden_series):
    clean = make_phantom(8, lesion_burden=2.0, **FAST)
    dropped = make_phantom(8, lesion_burden=2.0, label_noise={"missed": 1.0}, **FAST)
    assert _data(clean.flair_label).sum() > 0 and _data(dropped.flair_label).sum() == 0
    noisy = make_phantom(8, lesion_burden=2.0, label_noise=1.0, **FAST)
    params = noisy.params
    assert params["label_noise"] == {"missed": 0.5, "spurious": 4, "shift_mm": 3.0}
    assert np.linalg.norm(params["label_noise_shift_mm"]) == pytest.approx(3.0)
    assert len(params["label_noise_spurious_centres_vox"]) == 4
    assert not np.array_equal(_data(noisy.flair_label), _data(clean.flair_label))
    # Only the label changes: the images are the same.
    np.testing.assert_array_equal(_data(noisy.flair), _data(clean.flair))


@pytest.mark.parametrize(
    "options",
    [{"lesion_burden": -1}, {"voxel_size_mm": 0.2}, {"flair_orientation": "oblique"}, {"label_noise": 2.0},
     {"label_noise": {"lost": 0.1}}, {"age_years": 300}],
)
def test_bad_options_raise_option_error(options):
    with pytest.raises(OptionError):
        make_phantom(0, **{**FAST, **options})


def test_save_writes_images_and_params(tmp_path, burden_series):
    phantom = burden_series[1.0]
    paths = phantom.save(tmp_path / "out", stem="sub-01")
    assert set(paths) == set(Phantom.SUFFIXES) | {"params"}
    loaded = nib.load(paths["flair_label"])
    np.testing.assert_array_equal(np.asarray(loaded.dataobj), _data(phantom.flair_label))
    np.testing.assert_allclose(loaded.affine, phantom.flair.affine, atol=1e-5)
    record = json.loads(paths["params"].read_text())
    assert record["lesion_ml"] == pytest.approx(phantom.params["lesion_ml"])
    assert record["tissue_labels"]["lesion"] == 4
    assert len(record["subject_to_mni"]) == 4
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths.values())
