"""The super-resolution forward model A and its loss, on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmhkit.train.geometry import LabelGeometry, forward_pairs, nearest_label
from wmhkit.train.loss import PairBatch, apply_forward, naive_loss, sr_loss, sr_threshold_loss


def _axial_geometry(label_shape, thickness_mm=5.0, gap_mm=0.0):
    """Label voxels 1 x 1 x spacing mm; label slice k covers net z in [s*k - 0.5, s*k + t - 0.5)."""
    spacing = thickness_mm + gap_mm
    label_affine = np.diag([1.0, 1.0, spacing, 1.0])
    label_affine[2, 3] = thickness_mm / 2.0 - 0.5
    return LabelGeometry.from_affines(label_shape, label_affine, np.eye(4), gap_mm=gap_mm)


def _forward(prob: np.ndarray, pairs) -> np.ndarray:
    batch = PairBatch([pairs], prob.size)
    return apply_forward(torch.from_numpy(prob.astype(np.float32)), batch).numpy()


def test_rows_are_means():
    geom = _axial_geometry((6, 5, 3))
    pairs = forward_pairs(geom, (6, 5, 15))
    assert pairs.n_labels == 6 * 5 * 3
    dense = pairs.matrix(6 * 5 * 15)
    assert np.allclose(dense.sum(axis=1), 1.0)
    assert np.allclose(_forward(np.full((6, 5, 15), 0.3), pairs), 0.3)


def test_lesion_one_slice_thick():
    geom = _axial_geometry((6, 5, 3))
    prob = np.zeros((6, 5, 15))
    prob[2:4, 1:3, 5:10] = 1.0  # exactly fills label slice 1
    out = np.zeros(geom.shape)
    pairs = forward_pairs(geom, prob.shape)
    out.flat[pairs.label_index] = _forward(prob, pairs)
    assert np.allclose(out[2:4, 1:3, 1], 1.0)
    assert out.sum() == pytest.approx(4.0)
    thin = np.zeros_like(prob)
    thin[2, 1, 7] = 1.0  # 1 mm inside a 5 mm slice: partial volume 0.2
    out.flat[pairs.label_index] = _forward(thin, pairs)
    assert out[2, 1, 1] == pytest.approx(0.2) and out.sum() == pytest.approx(0.2)


def test_lesion_straddling_two_slices():
    geom = _axial_geometry((6, 5, 3))
    prob = np.zeros((6, 5, 15))
    prob[3, 2, 3:7] = 1.0  # 2 mm in slice 0 (z 0-4) and 2 mm in slice 1 (z 5-9)
    pairs = forward_pairs(geom, prob.shape)
    out = np.zeros(geom.shape)
    out.flat[pairs.label_index] = _forward(prob, pairs)
    assert out[3, 2, 0] == pytest.approx(0.4) and out[3, 2, 1] == pytest.approx(0.4)
    assert out.sum() == pytest.approx(0.8)


def test_slice_gap_excludes_voxels_between_slices():
    geom = _axial_geometry((4, 3, 2), thickness_mm=4.0, gap_mm=2.0)
    assert geom.thickness_fraction == pytest.approx(4.0 / 6.0)
    prob = np.zeros((4, 3, 12))
    prob[:, :, 4:6] = 1.0  # the gap between slice 0 (z 0-3) and slice 1 (z 6-9)
    pairs = forward_pairs(geom, prob.shape)
    assert np.allclose(_forward(prob, pairs), 0.0)
    prob[:, :, 6] = 1.0
    assert np.allclose(_forward(prob, pairs).reshape(4, 3, 2)[:, :, 1], 0.25)


def test_partial_footprints_at_patch_border_are_dropped():
    geom = _axial_geometry((6, 5, 3))
    pairs = forward_pairs(geom, (6, 5, 12))  # slice 2 (z 10-14) is only partly inside
    slices = np.unravel_index(pairs.label_index, geom.shape)[2]
    assert set(slices.tolist()) == {0, 1}


def _rotation(angle_deg: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    rot = np.eye(4)
    rot[:3, :3] = [[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]]
    return rot


def _brute_force(prob, geom, label_index, step=0.1):
    """Mean of nearest-neighbour p over a fine grid of points inside each label voxel."""
    label_to_net = np.linalg.inv(geom.net_to_label)
    ticks = np.arange(-0.5 + step / 2, 0.5, step)
    half = 0.5 * geom.thickness_fraction
    slice_ticks = ticks[np.abs(ticks) <= half]
    axes = [slice_ticks if k == geom.slice_axis else ticks for k in range(3)]
    offsets = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    out = []
    for flat in label_index:
        centre = np.array(np.unravel_index(flat, geom.shape), float)
        pts = (centre + offsets) @ label_to_net[:3, :3].T + label_to_net[:3, 3]
        idx = np.clip(np.rint(pts).astype(int), 0, np.array(prob.shape) - 1)
        out.append(prob[tuple(idx.T)].mean())
    return np.array(out)


def test_oblique_slice_stack_matches_brute_force():
    rng = np.random.default_rng(3)
    label_affine = _rotation(30.0) @ np.diag([0.9, 0.9, 4.0, 1.0])
    label_affine[:3, 3] = [1.0, 3.0, 2.0]
    geom = LabelGeometry.from_affines((16, 14, 4), label_affine, np.eye(4))
    assert geom.slice_axis == 2
    prob = np.zeros((17, 19, 15))
    prob[4:12, 5:14, 3:11] = rng.random((8, 9, 8))
    pairs = forward_pairs(geom, prob.shape, subsamples=4)
    assert pairs.n_labels > 50
    fast = _forward(prob, pairs)
    slow = _brute_force(prob, geom, pairs.label_index)
    assert np.abs(fast - slow).mean() < 0.02
    assert np.corrcoef(fast, slow)[0, 1] > 0.98


def test_forward_agrees_with_numpy_reference():
    forward = pytest.importorskip("wmhkit.forward")
    rng = np.random.default_rng(4)
    hr = np.zeros((24, 26, 22), dtype=np.float32)
    hr[6:18, 7:19, 5:17] = rng.random((12, 12, 12)) > 0.4
    from scipy.ndimage import gaussian_filter

    hr = gaussian_filter(hr, 1.0)
    lr_affine = _rotation(20.0) @ np.diag([0.9, 0.9, 5.0, 1.0])
    lr_affine[:3, 3] = [2.0, 4.0, 2.0]
    lr_shape = (22, 20, 4)
    reference = forward.thick_slice_average(hr, np.eye(4), lr_shape, lr_affine, slice_axis=2)
    geom = LabelGeometry.from_affines(lr_shape, lr_affine, np.eye(4), slice_axis=2)
    pairs = forward_pairs(geom, hr.shape, subsamples=4)
    ours = _forward(hr, pairs)
    theirs = np.asarray(reference).reshape(-1)[pairs.label_index]
    assert pairs.n_labels > 100
    assert np.abs(ours - theirs).max() < 0.05


def test_gradient_reaches_p_and_loss_drops_with_fit():
    geom = _axial_geometry((6, 5, 3))
    pairs = forward_pairs(geom, (6, 5, 15))
    label = np.zeros(geom.shape, np.float32)
    label[2:4, 1:3, 1] = 1.0
    batch = PairBatch([pairs], 6 * 5 * 15, labels=[label.reshape(-1)[pairs.label_index]])
    logits = torch.zeros((1, 6, 5, 15), requires_grad=True)
    loss = sr_loss(torch.sigmoid(logits), batch)
    loss.backward()
    assert logits.grad is not None and torch.count_nonzero(logits.grad) == 6 * 5 * 15
    assert logits.grad[0, 2, 1, 7] < 0 < logits.grad[0, 0, 0, 7]  # push up inside, down outside
    fitted = torch.zeros((1, 6, 5, 15))
    fitted[0, 2:4, 1:3, 5:10] = 1.0
    assert sr_loss(fitted.clamp(0.01, 0.99), batch) < loss


def test_naive_label_is_blocky_and_naive_loss_runs():
    geom = _axial_geometry((6, 5, 3))
    label = np.zeros(geom.shape, np.float32)
    label[2, 1, 1] = 1.0
    up, valid = nearest_label(geom, label, (6, 5, 15))
    assert valid.all() and up.sum() == 5.0 and np.all(up[2, 1, 5:10] == 1.0)
    prob = torch.full((1, 6, 5, 15), 0.5, requires_grad=True)
    loss = naive_loss(prob, torch.from_numpy(up[None]), torch.from_numpy(valid[None]))
    loss.backward()
    assert prob.grad[0, 2, 1, 7] < 0 < prob.grad[0, 0, 0, 0]


def test_threshold_loss_spares_lesions_too_shallow_to_be_labelled():
    # One lesion fills 2 of the 5 mm of a thick voxel (average 0.4 < 0.5: label 0); another fills
    # 4 of 5 (label 1). Predicting both exactly is cheap under the label-rule loss, while the plain
    # SR loss wants the shallow one erased and the deep one stretched through the whole slice.
    geom = _axial_geometry((6, 5, 3))
    pairs = forward_pairs(geom, (6, 5, 15))
    truth = np.zeros((1, 6, 5, 15), np.float32)
    truth[0, 1, 1, 5:7] = 1.0  # shallow: slice 1, 2 of 5 voxels
    truth[0, 4, 3, 5:9] = 1.0  # deep: slice 1, 4 of 5 voxels
    label = np.zeros(geom.shape, np.float32)
    label[4, 3, 1] = 1.0
    batch = PairBatch([pairs], truth.size, labels=[label.reshape(-1)[pairs.label_index]])
    exact = torch.from_numpy(truth).clamp(0.01, 0.99).requires_grad_(True)
    no_shallow = exact.detach().clone()
    no_shallow[0, 1, 1, 5:7] = 0.01
    assert sr_loss(no_shallow, batch) < sr_loss(exact.detach(), batch)  # plain SR: erasing it is better
    assert sr_threshold_loss(exact.detach(), batch) - sr_threshold_loss(no_shallow, batch) < 0.02
    push = torch.autograd.grad(sr_threshold_loss(exact, batch), exact)[0]
    plain_push = torch.autograd.grad(sr_loss(exact, batch), exact)[0]
    assert 0 < float(push[0, 1, 1, 5]) < float(plain_push[0, 1, 1, 5])
    bce_push = torch.autograd.grad(sr_threshold_loss(exact, batch, dice_weight=0.0), exact)[0]
    plain_bce_push = torch.autograd.grad(sr_loss(exact, batch, dice_weight=0.0), exact)[0]
    assert 0 < float(bce_push[0, 1, 1, 5]) < 0.5 * float(plain_bce_push[0, 1, 1, 5])
    assert abs(float(push[0, 4, 3, 5])) < 1e-3 < abs(float(plain_push[0, 4, 3, 5]))  # deep: already past 0.5


def test_threshold_loss_options_are_checked():
    from wmhkit.errors import OptionError
    from wmhkit.train.config import load_config

    assert load_config(None, {"training": {"loss": "sr_threshold"}})["training"]["label_threshold"] == 0.5
    with pytest.raises(OptionError, match="label_threshold"):
        load_config(None, {"training": {"loss": "sr_threshold", "label_threshold": 1.5}})
