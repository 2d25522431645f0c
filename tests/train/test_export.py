"""Shipping a checkpoint as a named model keeps the weights and adds the registry metadata."""

from __future__ import annotations

import torch

from wmhkit.segmentation.network import build_network, load_checkpoint, save_checkpoint
import pytest

from wmhkit.errors import ModelError, OptionError
from wmhkit.train.export import export_model, interpolate_checkpoints


def test_export_model_adds_name_and_version(tmp_path):
    torch.manual_seed(0)
    config = {"base_channels": 4, "levels": 2, "in_slices": 3}
    net = build_network(config)
    source = save_checkpoint(tmp_path / "best.pt", net, config, {"step": 7, "val_dice": 0.5})
    dest = export_model(source, tmp_path / "weights" / "m.pt", name="m", version="1.2", metadata={"val_dice": 0.6})
    loaded, loaded_config, metadata = load_checkpoint(dest)
    assert metadata["name"] == "m" and metadata["version"] == "1.2" and metadata["step"] == 7
    assert metadata["val_dice"] == 0.6 and loaded_config["in_slices"] == 3
    x = torch.randn(1, 3, 8, 8)
    assert torch.allclose(net.eval()(x), loaded(x))


def test_interpolated_checkpoint_mixes_every_weight(tmp_path):
    torch.manual_seed(1)
    config = {"base_channels": 4, "levels": 2, "in_slices": 3}
    first, second = build_network(config), build_network(config)
    with torch.no_grad():
        for parameter in second.parameters():
            parameter.add_(torch.randn_like(parameter))
    a = save_checkpoint(tmp_path / "a.pt", first, config, {"step": 1})
    b = save_checkpoint(tmp_path / "b.pt", second, config, {"step": 9})
    dest = interpolate_checkpoints(a, b, tmp_path / "mix.pt", weight=0.25, metadata={"threshold": 0.6})
    mixed, _, metadata = load_checkpoint(dest)
    for key, value in mixed.state_dict().items():
        if value.is_floating_point():
            expected = 0.75 * first.state_dict()[key] + 0.25 * second.state_dict()[key]
            assert torch.allclose(value, expected, atol=1e-6), key
    assert metadata["step"] == 9 and metadata["threshold"] == 0.6 and metadata["interpolated"]["weight"] == 0.25
    ends = interpolate_checkpoints(a, b, tmp_path / "end.pt", weight=1.0)
    x = torch.randn(1, 3, 8, 8)
    assert torch.allclose(load_checkpoint(ends)[0](x), second.eval()(x), atol=1e-5)


def test_interpolation_refuses_bad_weight_and_other_architectures(tmp_path):
    small = {"base_channels": 4, "levels": 2, "in_slices": 3}
    wide = {"base_channels": 8, "levels": 2, "in_slices": 3}
    a = save_checkpoint(tmp_path / "a.pt", build_network(small), small)
    b = save_checkpoint(tmp_path / "b.pt", build_network(wide), wide)
    with pytest.raises(OptionError, match="outside 0-1"):
        interpolate_checkpoints(a, a, tmp_path / "x.pt", weight=1.5)
    with pytest.raises(ModelError, match="different architectures"):
        interpolate_checkpoints(a, b, tmp_path / "x.pt", weight=0.5)
    assert not (tmp_path / "x.pt").exists()
