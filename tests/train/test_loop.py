"""A tiny end-to-end training stage: batches, loss, validation, checkpoints, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from wmhkit.segmentation.network import load_checkpoint
from .train_cases import template_cases  # noqa: F401 (fixture)

from wmhkit.train.cases import load_case
from wmhkit.errors import OptionError
from wmhkit.train.config import load_config
from wmhkit.train.loop import PatchBatches, network_forward, run_stage

TINY = {
    "network": {"base_channels": 4, "levels": 2, "in_slices": 3},
    "training": {"steps": 4, "batch_patches": 1, "patch_size": [32, 32, 8], "validate_every": 2,
                 "checkpoint_every": 2, "workers": 0, "threads": 1, "warmup_steps": 1},
}


def test_batches_are_a_function_of_step(template_cases):
    config = load_config(None, TINY)
    first = PatchBatches(template_cases[:2], [1, 1], config, 0, 4)[3]
    again = PatchBatches(template_cases[:2], [1, 1], config, 3, 4)[0]
    assert first["step"] == again["step"] == 3
    assert torch.equal(first["image"], again["image"])
    assert first["image"].shape == (1, 32, 32, 10)
    assert first["pairs"].n_rows > 0
    assert "exact_target" not in first


def test_the_exact_label_rides_in_the_batch_and_adds_to_the_loss(template_cases, tmp_path):
    config = load_config(None, {**TINY, "training": {**TINY["training"], "exact_label_weight": 2.0,
                                                     "lesion_fraction": 1.0}})
    batches = [PatchBatches(template_cases[:1], [1], config, 0, 4)[step] for step in range(4)]
    assert all(b["exact_target"].shape == b["exact_valid"].shape == (1, 32, 32, 8) for b in batches)
    assert sum(float(b["exact_target"].sum()) for b in batches) > 0 and all(b["exact_valid"].all() for b in batches)
    plain = load_config(None, {**TINY, "training": {**TINY["training"], "lesion_fraction": 1.0}})
    losses = []
    for name, stage_config in (("plain", plain), ("exact", config)):
        run_stage(tmp_path / name, template_cases[:1], [1], [], stage_config, steps=2, progress=False)
        losses.append(pd.read_csv(tmp_path / name / "history.tsv", sep="\t")["train_loss"].iloc[-1])
    # Same seed, same patches, same start: the term is all that differs, and it is never negative.
    assert losses[1] > losses[0] + 0.1
    with pytest.raises(OptionError, match="exact_label_weight"):
        load_config(None, {"training": {"exact_label_weight": -1}})


def test_network_forward_matches_per_slice():
    from wmhkit.segmentation.network import build_network

    net = build_network(TINY["network"]).eval()
    image = torch.rand(2, 12, 10, 7)
    prob = network_forward(net, image, 3)
    assert prob.shape == (2, 12, 10, 5)
    with torch.no_grad():
        direct = torch.sigmoid(net(image[1:2, :, :, 2:5].permute(0, 3, 1, 2)))[0, 0]
    assert torch.allclose(prob[1, :, :, 2], direct, atol=1e-5)


@pytest.mark.slow
def test_stage_trains_validates_and_resumes(template_cases, tmp_path):
    config = load_config(None, TINY)
    stage = tmp_path / "step1"
    best = run_stage(stage, template_cases[:2], [1, 1], template_cases[2:], config, steps=2, progress=False)
    assert best.name == "best.pt" and (stage / "last.pt").is_file()
    history = pd.read_csv(stage / "history.tsv", sep="\t")
    assert history["step"].tolist() == [2] and 0.0 <= history["val_dice"].iloc[0] <= 1.0
    assert (stage / "history.png").is_file()
    run_stage(stage, template_cases[:2], [1, 1], template_cases[2:], config, steps=4, resume=True, progress=False)
    history = pd.read_csv(stage / "history.tsv", sep="\t")
    assert history["step"].tolist() == [2, 4]
    net, net_config, metadata = load_checkpoint(stage / "last.pt")
    assert metadata["step"] == 4 and net_config["in_slices"] == 3
    keep_last = load_config(None, {**TINY, "training": {**TINY["training"], "keep": "last"}})
    kept = run_stage(stage, template_cases[:2], [1, 1], template_cases[2:], keep_last, steps=4, resume=True,
                     progress=False)
    assert kept == stage / "last.pt"
    assert np.isfinite(history["train_loss"]).all()
    assert load_case(template_cases[2]).lesion_mni.sum() > 0


def test_weight_average_is_written_resumed_and_kept(template_cases, tmp_path):
    ema_config = load_config(None, {**TINY, "training": {**TINY["training"], "ema_decay": 0.5, "keep": "ema"}})
    stage = tmp_path / "ema"
    kept = run_stage(stage, template_cases[:2], [1, 1], [], ema_config, steps=2, progress=False)
    assert kept == stage / "ema.pt"
    last, average = load_checkpoint(stage / "last.pt")[0], load_checkpoint(kept)[0]
    # An average of the steps' weights, not the last weights themselves.
    differ = [not torch.equal(a, b) for a, b in zip(last.state_dict().values(), average.state_dict().values())
              if a.is_floating_point()]
    assert any(differ)
    state = torch.load(stage / "train_state.pt", weights_only=False)
    assert int(state["ema"]["n_averaged"]) == 2
    run_stage(stage, template_cases[:2], [1, 1], [], ema_config, steps=3, resume=True, progress=False)
    state = torch.load(stage / "train_state.pt", weights_only=False)
    assert int(state["ema"]["n_averaged"]) == 3 and load_checkpoint(kept)[2]["step"] == 3
    with pytest.raises(OptionError, match="ema_decay"):
        load_config(None, {**TINY, "training": {**TINY["training"], "keep": "ema"}})
