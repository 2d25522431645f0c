"""Patches: the forward model stays exact under spatial augmentation; intensity augmentation."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from .train_cases import template_cases  # noqa: F401 (fixture)

from wmhkit.train.cases import load_case
from wmhkit.train.loss import PairBatch, apply_forward
from wmhkit.train.sampling import augment_intensity, random_transform, sample_patch

SPATIAL_ONLY = {"gamma": 0, "bias": 0, "contrast": 0, "blur_sigma": 0, "noise": 0}


def test_targets_match_forward_model_of_the_true_lesion_under_augmentation(template_cases):
    case = load_case(template_cases[0])
    rng = np.random.default_rng(5)
    checked, on_label, off_label = 0, [], []
    for _ in range(8):
        patch = sample_patch(case, rng, patch_size=(40, 36, 12), in_slices=3, lesion_fraction=1.0,
                             augment=SPATIAL_ONLY, naive=True)
        assert patch.image.shape == (40, 36, 14)
        # The true lesion seen through the same transform, on the output block (context 1 slice).
        grid = np.indices((40, 36, 12), dtype=np.float64).reshape(3, -1)
        grid[2] += 1
        coords = patch.to_box[:3, :3] @ grid + patch.to_box[:3, 3:]
        lesion = ndimage.map_coordinates(case.lesion_mni.astype(np.float32), coords, order=1).reshape(40, 36, 12)
        mapped = apply_forward(torch.from_numpy(lesion), PairBatch([patch.pairs], lesion.size)).numpy()
        if patch.target.sum() >= 3:
            # The template case's lesions are about one slice thick, so A(true lesion) sits
            # near 0.5 on labelled voxels (Dice of a threshold would be rounding noise); a wrong
            # geometry puts labelled voxels where A(true lesion) is 0.
            labelled = patch.target > 0.5
            on_label.extend(mapped[labelled].tolist())
            off_label.extend(mapped[~labelled].tolist())
            checked += 1
        assert patch.naive_valid.all() and patch.naive_target.shape == (40, 36, 12)
    assert checked >= 4 and np.mean(on_label) > 0.4 and np.mean(off_label) < 0.02


def test_random_transform_centres_the_patch():
    rng = np.random.default_rng(0)
    to_box = random_transform(rng, [50.0, 60.0, 40.0], (33, 21, 9), {"rotate_deg": 10, "scale": 0.1, "flip": True})
    assert np.allclose(to_box @ [16.0, 10.0, 4.0, 1.0], [50.0, 60.0, 40.0, 1.0])
    det = np.linalg.det(to_box[:3, :3])
    assert 0.7 < abs(det) < 1.4


def test_intensity_augmentation_keeps_background_dark_and_changes_contrast():
    rng = np.random.default_rng(1)
    image = np.zeros((20, 24, 10), np.float32)
    image[4:16, 4:20, 2:8] = 1.0
    out = augment_intensity(image, rng, {"gamma": 0.3, "bias": 0.3, "contrast": 0.1, "noise": 0.02,
                                         "probability": 1.0})
    assert out.shape == image.shape and out.dtype == np.float32
    assert abs(float(out[0, 0, 0])) < 0.2 and 0.5 < float(out[10, 10, 5]) < 1.8
    assert not np.allclose(out, image)


def test_exact_patches_read_whole_voxels_without_interpolation(template_cases):
    case = load_case(template_cases[1])
    rng = np.random.default_rng(7)
    options = {**SPATIAL_ONLY, "rotate_deg": 10, "scale": 0.1, "exact_fraction": 1.0}
    flips = set()
    for _ in range(6):
        patch = sample_patch(case, rng, patch_size=(24, 20, 6), in_slices=3, augment=options)
        linear, shift = patch.to_box[:3, :3], patch.to_box[:3, 3]
        assert np.allclose(np.abs(linear), np.eye(3)) and np.allclose(shift, np.round(shift))
        flips.add(float(linear[0, 0]))
        index = np.indices(patch.image.shape).reshape(3, -1)
        source = np.rint(linear @ index + shift[:, None]).astype(int)
        inside = np.all((source >= 0) & (source < np.array(case.t1.shape)[:, None]), axis=0)
        expected = np.zeros(index.shape[1], np.float32)
        expected[inside] = np.asarray(case.t1, np.float32)[tuple(source[:, inside])]
        np.testing.assert_array_equal(patch.image.reshape(-1), expected)
    assert flips == {1.0, -1.0}  # the left-right flip is still drawn
    # Without exact patches the same options rotate and scale.
    rotated = random_transform(np.random.default_rng(7), [30.0, 30.0, 30.0], (24, 20, 8), {**options, "exact_fraction": 0})
    assert not np.allclose(np.abs(rotated[:3, :3]), np.eye(3))


def test_local_field_darkens_and_brightens_at_lesion_scale_and_leaves_other_configs_alone():
    image = np.ones((40, 48, 20), np.float32)
    plain = {"gamma": 0.3, "noise": 0.02, "probability": 1.0}
    before = augment_intensity(image, np.random.default_rng(3), plain)
    assert np.array_equal(before, augment_intensity(image, np.random.default_rng(3), {**plain, "local_field": 0.0}))
    ratios = []
    for seed in range(6):
        out = augment_intensity(image, np.random.default_rng(seed), {"local_field": 0.1, "local_field_mm": 12.0,
                                                                     "probability": 1.0})
        ratios.append(out)
        # Lesion scale: neighbours alike (lag 1 mm), 12 mm apart nearly unrelated.
        log = np.log(out) - np.log(out).mean()
        lag1 = float((log[1:] * log[:-1]).mean() / log.var())
        lag12 = float((log[12:] * log[:-12]).mean() / log.var())
        assert lag1 > 0.8 and lag12 < 0.4
    spread = [float(np.log(o).std()) for o in ratios]
    assert max(spread) > 0.03 and min(spread) < 0.1
    assert min(float(o.min()) for o in ratios) < 0.97 and max(float(o.max()) for o in ratios) > 1.03


def test_exact_target_is_the_true_lesion_on_the_output_block_and_absent_without_one(template_cases):
    import dataclasses

    case = load_case(template_cases[0])
    rng = np.random.default_rng(11)
    patch = sample_patch(case, rng, patch_size=(40, 36, 12), in_slices=3, lesion_fraction=1.0,
                         augment=SPATIAL_ONLY, exact=True)
    grid = np.indices((40, 36, 12), dtype=np.float64).reshape(3, -1)
    grid[2] += 1  # output slice k is image slice k + 1 (context of 1 slice)
    coords = patch.to_box[:3, :3] @ grid + patch.to_box[:3, 3:]
    lesion = ndimage.map_coordinates(case.lesion_mni.astype(np.float32), coords, order=1).reshape(40, 36, 12)
    assert patch.exact_target.sum() > 10
    np.testing.assert_allclose(patch.exact_target, lesion, atol=1e-4)
    assert patch.exact_valid.all()
    # Lesion voxels are the darkened ones of the block the network sees.
    image = patch.image[..., 1:13]
    assert image[patch.exact_target > 0.9].mean() < 0.9 * image[(patch.exact_target == 0) & (image > 0.8)].mean()
    unlabelled = sample_patch(dataclasses.replace(case, lesion_mni=None), np.random.default_rng(11),
                              patch_size=(40, 36, 12), in_slices=3, augment=SPATIAL_ONLY, exact=True)
    assert not unlabelled.exact_valid.any() and not unlabelled.exact_target.any()
    assert sample_patch(case, rng, patch_size=(40, 36, 12), in_slices=3).exact_target is None
