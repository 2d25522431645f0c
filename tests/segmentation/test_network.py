"""The 2.5D U-Net: shapes, checkpoint round trip, whole-volume inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wmhkit.errors import ModelError, OptionError
from wmhkit.segmentation.network import (
    build_network,
    load_checkpoint,
    predict_volume,
    save_checkpoint,
    slab_inputs,
)

TINY = {"base_channels": 4, "levels": 3, "in_slices": 3}


def test_output_shape_any_size():
    net = build_network(TINY)
    out = net(torch.zeros(2, 3, 13, 11))
    assert out.shape == (2, 1, 13, 11)


def test_bad_options_raise():
    with pytest.raises(OptionError, match="in_slices"):
        build_network({"in_slices": 4})
    with pytest.raises(OptionError, match="norm"):
        build_network({"norm": "layer"})


def test_slab_inputs_neighbours():
    volume = torch.arange(7.0)[:, None, None].expand(7, 2, 3)
    stacked = slab_inputs(volume, 3)
    assert stacked.shape == (5, 3, 2, 3)
    assert stacked[0, :, 0, 0].tolist() == [0.0, 1.0, 2.0]
    assert stacked[4, :, 1, 2].tolist() == [4.0, 5.0, 6.0]


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    net = build_network(TINY | {"norm": "instance"})
    path = save_checkpoint(tmp_path / "m.pt", net, TINY | {"norm": "instance", "lr": 0.01}, {"step": 3})
    loaded, config, metadata = load_checkpoint(path)
    assert metadata == {"step": 3}
    assert config["lr"] == 0.01 and config["in_slices"] == 3
    x = torch.randn(1, 3, 16, 12)
    net.eval()
    assert torch.allclose(net(x), loaded(x))


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="could not be read"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ModelError, match="not a wmhkit"):
        load_checkpoint(other)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_predict_volume_matches_slicewise_forward(axis):
    rng = np.random.default_rng(1)
    torch.manual_seed(1)
    net = build_network(TINY).eval()
    volume = rng.random((9, 12, 7)).astype(np.float32)
    volume[:, :, 0] = 0.0  # an empty slice stays at probability 0 when skipped
    prob = predict_volume(net, volume, batch_size=4, slice_axis=axis)
    assert prob.shape == volume.shape and prob.dtype == np.float32
    assert 0.0 <= prob.min() and prob.max() <= 1.0
    # Reference: centre slice k with its zero-padded neighbours, one forward pass.
    moved = np.pad(np.moveaxis(volume, axis, 0), ((1, 1), (0, 0), (0, 0)))
    k = 3
    with torch.no_grad():
        expected = torch.sigmoid(net(torch.from_numpy(moved[k : k + 3][None])))[0, 0].numpy()
    assert np.allclose(np.moveaxis(prob, axis, 0)[k], expected, atol=1e-5)
    if axis == 2:
        assert np.all(prob[:, :, 0] == 0.0)
        full = predict_volume(net, volume, skip_empty=False)
        assert np.allclose(full[:, :, 1:], prob[:, :, 1:], atol=1e-5) and full[:, :, 0].max() > 0


@pytest.mark.parametrize("slice_axis, flip_axis", [(2, 0), (2, 1), (0, 2)])
def test_flip_average_is_the_mean_of_both_mirrors(slice_axis, flip_axis):
    rng = np.random.default_rng(2)
    torch.manual_seed(2)
    net = build_network(TINY).eval()
    volume = rng.random((11, 9, 7)).astype(np.float32)
    mirrored = np.ascontiguousarray(np.flip(volume, flip_axis))
    single = predict_volume(net, volume, slice_axis=slice_axis, batch_size=3)
    mirror = np.flip(predict_volume(net, mirrored, slice_axis=slice_axis, batch_size=3), flip_axis)
    averaged = predict_volume(net, volume, slice_axis=slice_axis, batch_size=3, flip_axis=flip_axis)
    assert np.allclose(averaged, (single + mirror) / 2, atol=1e-6)
    # A random network is not mirror-symmetric; the average is, exactly.
    assert np.abs(single - mirror).max() > 1e-4  # float error is about 1e-7
    again = np.flip(predict_volume(net, mirrored, slice_axis=slice_axis, batch_size=3, flip_axis=flip_axis), flip_axis)
    assert np.allclose(again, averaged, atol=1e-6)


def test_flip_along_the_slice_axis_is_refused():
    net = build_network(TINY)
    with pytest.raises(OptionError, match="flip_axis=2"):
        predict_volume(net, np.ones((5, 6, 7), dtype=np.float32), flip_axis=2)
