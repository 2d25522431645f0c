"""Shipping a checkpoint as a named model keeps the weights and adds the registry metadata."""

from __future__ import annotations

import torch

from wmhkit.segmentation.network import build_network, load_checkpoint, save_checkpoint
from wmhkit.train.export import export_model


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
