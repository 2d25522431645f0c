"""Widen a trained 2.5D U-Net without changing what it computes (Net2WiderNet).

A wider network trained from scratch on a CPU needs days to catch up with a model that has been
through several fine-tunes. Net2WiderNet (Chen, Goodfellow & Shlens, ICLR 2016) copies each
feature channel instead: a new channel repeats an old one, and every layer that reads the
repeated channel divides its weights by the number of copies, so the wider network starts from
the same function. Batch norm keeps that property in training too (copies share their batch
statistics). A little weight noise then lets the copies learn different features.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from wmhkit.errors import OptionError
from wmhkit.segmentation.models import model_path
from wmhkit.segmentation.network import build_network, load_checkpoint, save_checkpoint

__all__ = ["widen_checkpoint"]

log = logging.getLogger(__name__)

_BN_ENTRIES = ("weight", "bias", "running_mean", "running_var")


def _copies(sources: np.ndarray, width: int) -> np.ndarray:
    """For each new channel, how many new channels copy the same old one."""
    return np.bincount(sources, minlength=width)[sources].astype(np.float32)


def _widened_state(old: dict, base: int, new_base: int, levels: int, in_slices: int,
                   rng: np.random.Generator) -> dict:
    """State dict of the widened network: channel copies, reads divided by the copy count."""
    sources = {}
    for k in range(levels):
        width = base * 2**k
        sources[k] = np.concatenate([np.arange(width), rng.choice(width, new_base * 2**k - width)])
    copies = {k: _copies(sources[k], base * 2**k) for k in range(levels)}
    state = {}

    def conv(name, out_src, in_src, in_copies):
        weight = old[name].numpy()[out_src][:, in_src] / in_copies[None, :, None, None]
        state[name] = torch.from_numpy(np.ascontiguousarray(weight)).float()

    def norm(prefix, out_src):
        index = torch.from_numpy(out_src)
        for entry in _BN_ENTRIES:
            state[f"{prefix}.{entry}"] = old[f"{prefix}.{entry}"][index].clone()
        state[f"{prefix}.num_batches_tracked"] = old[f"{prefix}.num_batches_tracked"].clone()

    for k in range(levels):
        if k == 0:
            conv("down.0.0.weight", sources[0], np.arange(in_slices), np.ones(in_slices, np.float32))
        else:
            conv(f"down.{k}.0.weight", sources[k], sources[k - 1], copies[k - 1])
        norm(f"down.{k}.1", sources[k])
        conv(f"down.{k}.3.weight", sources[k], sources[k], copies[k])
        norm(f"down.{k}.4", sources[k])
    for j, k in enumerate(range(levels - 1, 0, -1)):
        below = base * 2 ** (k - 1)
        up = old[f"up.{j}.weight"].numpy()[sources[k]][:, sources[k - 1]] / copies[k][:, None, None, None]
        state[f"up.{j}.weight"] = torch.from_numpy(np.ascontiguousarray(up)).float()
        state[f"up.{j}.bias"] = old[f"up.{j}.bias"][torch.from_numpy(sources[k - 1])].clone()
        # the merge reads [upsampled, skip], each of the finer level's width
        conv(f"merge.{j}.0.weight", sources[k - 1], np.concatenate([sources[k - 1], sources[k - 1] + below]),
             np.concatenate([copies[k - 1], copies[k - 1]]))
        norm(f"merge.{j}.1", sources[k - 1])
        conv(f"merge.{j}.3.weight", sources[k - 1], sources[k - 1], copies[k - 1])
        norm(f"merge.{j}.4", sources[k - 1])
    conv("head.weight", np.arange(1), sources[0], copies[0])
    state["head.bias"] = old["head.bias"].clone()
    return state


def widen_checkpoint(model, dest, *, factor: float = 2.0, seed: int = 0, noise: float = 0.01) -> Path:
    """Write a wider copy of a trained U-Net checkpoint that computes the same function.

    Parameters
    ----------
    model : str or path
        Model name (e.g. ``"default"``) or ``.pt`` checkpoint of the ``unet2p5d`` architecture.
    dest : path
        Where the widened checkpoint is written (``.pt``).
    factor : float, default 2.0
        New channel count over the old one, at every level (>= 1; 2 turns 8/16/32/64 channels
        into 16/32/64/128).
    seed : int, default 0
        Seed of which old channels the extra ones copy (factors below 2) and of the noise.
    noise : float, default 0.01
        Standard deviation of the Gaussian noise added to each convolution's weights, as a share
        of that layer's weight standard deviation; 0 keeps the function exactly.

    Returns
    -------
    pathlib.Path
        ``dest``. Fine-tune it with ``wmhkit train --init-from DEST --set
        network.base_channels=<new width>``.

    Examples
    --------
    >>> import tempfile, torch
    >>> from wmhkit.segmentation.network import build_network, load_checkpoint, save_checkpoint
    >>> folder = Path(tempfile.mkdtemp())
    >>> small = save_checkpoint(folder / "small.pt", build_network({"base_channels": 2, "levels": 2}).eval(),
    ...                         {"base_channels": 2, "levels": 2})
    >>> wide, config, _ = load_checkpoint(widen_checkpoint(small, folder / "wide.pt", noise=0.0))
    >>> config["base_channels"]
    4
    >>> x = torch.rand(1, 5, 12, 10)
    >>> bool(torch.allclose(load_checkpoint(small)[0](x), wide(x), atol=1e-5))
    True
    """
    if not factor >= 1.0:
        raise OptionError(f"Widening factor {factor!r} must be at least 1; the network cannot lose channels.")
    if not noise >= 0.0:
        raise OptionError(f"Widening noise {noise!r} must be 0 or more.")
    net, config, metadata = load_checkpoint(model_path(model))
    if config.get("arch", "unet2p5d") != "unet2p5d":
        raise OptionError(f"Model {model} is a {config['arch']!r} network; only unet2p5d networks can be widened.")
    base, levels = int(config["base_channels"]), int(config["levels"])
    new_base = int(round(base * factor))
    new_config = {**config, "base_channels": new_base}
    wide = build_network(new_config)
    rng = np.random.default_rng(seed)
    wide.load_state_dict(_widened_state(net.state_dict(), base, new_base, levels, int(config["in_slices"]), rng))
    if noise > 0:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in wide.parameters():
                if parameter.ndim == 4:
                    parameter.add_(torch.randn(parameter.shape, generator=generator) * noise * parameter.std())
    log.info("widened %s from %d to %d base channels", model, base, new_base)
    kept = {key: metadata[key] for key in ("name", "space", "threshold") if key in metadata}
    return save_checkpoint(dest, wide, new_config, {**kept, "widened_from": str(model), "widening_factor": factor})
