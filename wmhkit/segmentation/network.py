"""The lesion network: a small 2.5D U-Net, its checkpoint format and whole-volume inference.

The network reads ``in_slices`` adjacent axial slices (along ``slice_axis`` of the normalised
T1 on the MNI 1 mm grid) as channels and predicts the lesion logit of the centre slice. A whole
brain is ~150 such slices, so inference is a batched 2D problem that runs in a few seconds on
two CPU cores (speed table: docs/results.md). Only this module and :mod:`wmhkit.train` define or build
networks; everything else goes through :func:`build_network`, :func:`load_checkpoint` and
:func:`predict_volume`.

Checkpoint format (``torch.save`` of a plain dict, loadable with ``weights_only=True``)::

    {"format": "wmhkit-unet2p5d", "format_version": 1,
     "config": {...}, "metadata": {...}, "state_dict": {...}}
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmhkit.errors import ModelError, OptionError
from wmhkit.preprocess.templates import MNI_BRAIN_BOX as _TEMPLATE_BRAIN_BOX

__all__ = [
    "DEFAULT_CONFIG",
    "MNI_BRAIN_BOX",
    "CHECKPOINT_FORMAT",
    "UNet2p5D",
    "build_network",
    "fold_batch_norm",
    "predict_volume",
    "slab_inputs",
    "save_checkpoint",
    "load_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "wmhkit-unet2p5d"
CHECKPOINT_VERSION = 1

#: Voxel box of the MNI152 1 mm grid (197x233x189) that holds every brain after linear alignment
#: (:data:`wmhkit.preprocess.templates.MNI_BRAIN_BOX`, defined there once). Training crops to it;
#: inference may use it or any other crop (the network is translation equivariant).
MNI_BRAIN_BOX = _TEMPLATE_BRAIN_BOX

#: Architecture defaults; a config passed to :func:`build_network` overrides any of them.
DEFAULT_CONFIG: dict = {
    "arch": "unet2p5d",
    "in_slices": 5,  # adjacent slices fed as channels (odd)
    "base_channels": 8,  # channels of the first level; level k has base * 2**k
    "levels": 4,  # resolution levels (3 poolings)
    "norm": "batch",  # "batch" or "instance"
    "slice_axis": 2,  # axis of the MNI volume the slices are taken along (2 = axial)
}


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    raise OptionError(f"Network option norm={kind!r} is unknown; use 'batch' or 'instance'.")


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
        )


class UNet2p5D(nn.Module):
    """2D U-Net over ``in_slices`` stacked slices; returns one logit map (the centre slice).

    Parameters
    ----------
    in_slices : int, default 5
        Number of adjacent slices given as input channels (odd).
    base_channels : int, default 8
        Feature channels at full resolution; doubled at each coarser level.
    levels : int, default 4
        Resolution levels; inputs are padded to a multiple of ``2 ** (levels - 1)``.
    norm : {"batch", "instance"}, default "batch"
        Normalisation layer after each convolution.
    """

    def __init__(self, in_slices: int = 5, base_channels: int = 8, levels: int = 4, norm: str = "batch"):
        super().__init__()
        widths = [base_channels * 2**k for k in range(levels)]
        self.down = nn.ModuleList()
        cin = in_slices
        for width in widths:
            self.down.append(_DoubleConv(cin, width, norm))
            cin = width
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for k in range(levels - 1, 0, -1):
            self.up.append(nn.ConvTranspose2d(widths[k], widths[k - 1], 2, stride=2))
            self.merge.append(_DoubleConv(2 * widths[k - 1], widths[k - 1], norm))
        self.head = nn.Conv2d(widths[0], 1, 1)
        self.multiple = 2 ** (levels - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in_slices, H, W) -> (B, 1, H, W)
        height, width = x.shape[-2:]
        pad_h = (-height) % self.multiple
        pad_w = (-width) % self.multiple
        if pad_h or pad_w:
            x = nn.functional.pad(x, (0, pad_w, 0, pad_h))
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)[..., :height, :width]


def _full_config(config: dict | None) -> dict:
    merged = dict(DEFAULT_CONFIG)
    merged.update(config or {})
    if merged["arch"] != "unet2p5d":
        raise OptionError(f"Network option arch={merged['arch']!r} is unknown; use 'unet2p5d'.")
    if int(merged["in_slices"]) < 1 or int(merged["in_slices"]) % 2 == 0:
        raise OptionError(f"Network option in_slices={merged['in_slices']} must be a positive odd number.")
    if int(merged["levels"]) < 1 or int(merged["base_channels"]) < 1:
        raise OptionError("Network options levels and base_channels must be positive integers.")
    if int(merged["slice_axis"]) not in (0, 1, 2):
        raise OptionError(f"Network option slice_axis={merged['slice_axis']} must be 0, 1 or 2.")
    return merged


def build_network(config: dict | None = None) -> UNet2p5D:
    """Build the lesion network described by ``config`` (missing keys take :data:`DEFAULT_CONFIG`).

    Parameters
    ----------
    config : dict, optional
        Keys ``arch``, ``in_slices``, ``base_channels``, ``levels``, ``norm``, ``slice_axis``.
        Keys the network does not use (training settings) are ignored.

    Returns
    -------
    UNet2p5D
        Freshly initialised network in training mode (seed torch first for reproducibility).

    Examples
    --------
    >>> net = build_network({"base_channels": 4, "levels": 2})
    >>> import torch
    >>> tuple(net(torch.zeros(2, 5, 12, 10)).shape)
    (2, 1, 12, 10)
    """
    cfg = _full_config(config)
    net = UNet2p5D(int(cfg["in_slices"]), int(cfg["base_channels"]), int(cfg["levels"]), str(cfg["norm"]))
    net.slice_axis = int(cfg["slice_axis"])
    return net


def fold_batch_norm(net: nn.Module) -> nn.Module:
    """Fold each batch norm into the convolution before it, in place, for inference only.

    In eval mode a batch norm is a fixed per-channel affine map, so it can be merged into the
    preceding convolution's weights and bias: one pass over the activations fewer (about 15 %
    of the network's CPU time) and the same output to float rounding. The network is put in
    eval mode and must not be trained afterwards (the batch statistics are gone).

    Examples
    --------
    >>> import torch
    >>> net = build_network({"base_channels": 4, "levels": 2}).eval()
    >>> x = torch.rand(2, 5, 12, 10)
    >>> before = net(x)
    >>> bool(torch.allclose(before, fold_batch_norm(net)(x), atol=1e-5))
    True
    >>> any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    False
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net.eval()
    for module in list(net.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                module[i + 1] = nn.Identity()
    return net


def slab_inputs(volume: torch.Tensor, in_slices: int) -> torch.Tensor:
    """Stack each slice with its neighbours: ``(D + in_slices - 1, H, W)`` -> ``(D, in_slices, H, W)``.

    The first axis of ``volume`` is the slice axis; the caller pads it with ``in_slices // 2``
    slices at each end (:func:`predict_volume` pads with zeros, the background value).
    """
    return volume.unfold(0, in_slices, 1).permute(0, 3, 1, 2)


def _network_config(net: nn.Module) -> tuple[int, int]:
    first = net.down[0][0]
    return int(first.in_channels), int(getattr(net, "slice_axis", DEFAULT_CONFIG["slice_axis"]))


def predict_volume(
    net: nn.Module,
    volume: np.ndarray,
    *,
    batch_size: int = 16,
    device: str = "cpu",
    slice_axis: int | None = None,
    skip_empty: bool = True,
    flip_axis: int | None = None,
) -> np.ndarray:
    """Lesion probability for every voxel of a normalised T1 volume on the MNI 1 mm grid.

    Parameters
    ----------
    net : torch.nn.Module
        A network from :func:`build_network` or :func:`load_checkpoint` (set to eval mode here).
    volume : numpy.ndarray
        3D float array, the normalised T1 (white matter about 1.0, background 0), ideally cropped
        to the brain box. Any shape; slices are padded as the network needs.
    batch_size : int, default 16
        Slices per forward pass (memory grows linearly with it).
    device : str, default "cpu"
        Torch device, e.g. ``"cuda"``.
    slice_axis : int, optional
        Axis the slices are taken along; default the network's own (``config["slice_axis"]``, 2).
    skip_empty : bool, default True
        Give probability 0 without running the network on slices whose centre is all background
        (every voxel ``<= 1e-6``); saves time outside the brain.
    flip_axis : int, optional
        Also run the network on the volume mirrored along this axis (0 is left-right on the MNI
        and RAS-ordered grids) and average the two probabilities (test-time flip averaging:
        twice the compute, a smoother map; the mean is exactly mirror-symmetric in the network).
        Must differ from the slice axis. Default: one pass.

    Returns
    -------
    numpy.ndarray
        float32 probabilities in [0, 1], same shape as ``volume``.

    Examples
    --------
    >>> net = build_network({"base_channels": 4, "levels": 2})
    >>> predict_volume(net, np.ones((9, 7, 6), dtype=np.float32)).shape
    (9, 7, 6)
    """
    array = np.asarray(volume, dtype=np.float32)
    if array.ndim != 3:
        raise OptionError(f"predict_volume needs a 3D volume; got an array of shape {array.shape}.")
    in_slices, default_axis = _network_config(net)
    axis = default_axis if slice_axis is None else int(slice_axis)
    flip_dims = None
    if flip_axis is not None:
        if int(flip_axis) not in (0, 1, 2) or int(flip_axis) == axis:
            raise OptionError(f"flip_axis={flip_axis} must be 0, 1 or 2 and differ from the slice axis {axis}.")
        # Position of the flipped axis in a (batch, slices, H, W) tensor of slices along `axis`.
        flip_dims = [2 + [a for a in range(3) if a != axis].index(int(flip_axis))]
    half = in_slices // 2
    moved = np.moveaxis(array, axis, 0)
    padded = np.pad(moved, ((half, half), (0, 0), (0, 0)))
    keep = np.flatnonzero(np.abs(moved).reshape(moved.shape[0], -1).max(axis=1) > 1e-6) if skip_empty else (
        np.arange(moved.shape[0])
    )
    out = np.zeros(moved.shape, dtype=np.float32)
    net.eval()
    net.to(device)
    tensor = torch.from_numpy(np.ascontiguousarray(padded)).to(device)
    with torch.inference_mode():
        for start in range(0, len(keep), max(1, int(batch_size))):
            index = torch.as_tensor(keep[start : start + batch_size], device=device)
            # Slice i of the output needs padded slices i .. i + in_slices - 1.
            window = index[:, None] + torch.arange(in_slices, device=device)[None, :]
            batch = tensor[window]  # (B, in_slices, H, W)
            probs = torch.sigmoid(net(batch))[:, 0]
            if flip_dims is not None:
                # A second pass rather than one doubled batch: same time, half the peak memory.
                mirrored = torch.sigmoid(net(torch.flip(batch, flip_dims)))
                probs = 0.5 * (probs + torch.flip(mirrored, flip_dims)[:, 0])
            out[keep[start : start + batch_size]] = probs.float().cpu().numpy()
    return np.moveaxis(out, 0, axis)


def save_checkpoint(path: str | os.PathLike, net: nn.Module, config: dict, metadata: dict | None = None) -> Path:
    """Write the network weights with their config and metadata, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination ``.pt`` file; its folder is created.
    net : torch.nn.Module
        The network (weights are stored as float32 on the CPU).
    config : dict
        The config the network was built from (plain JSON-like values).
    metadata : dict, optional
        Anything JSON-like: training recipe, step, validation numbers, version.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    from wmhkit.io import atomic_path

    state = {key: value.detach().cpu().clone() for key, value in net.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "config": _full_config(config) | {k: v for k, v in config.items() if k not in DEFAULT_CONFIG},
        "metadata": dict(metadata or {}),
        "state_dict": state,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, *, device: str = "cpu") -> tuple[nn.Module, dict, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.pt`` file.
    device : str, default "cpu"
        Where the weights are placed.

    Returns
    -------
    (torch.nn.Module, dict, dict)
        The network in eval mode, its config and its metadata.

    Raises
    ------
    wmhkit.errors.ModelError
        When the file is missing, unreadable, or not a wmhkit checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Model file {path} does not exist; give the path of a .pt file written by wmhkit train.")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ModelError(f"Model file {path} could not be read ({type(exc).__name__}); it may be truncated.") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"Model file {path} is not a wmhkit network checkpoint; train one with wmhkit train.")
    if int(payload.get("format_version", 0)) > CHECKPOINT_VERSION:
        raise ModelError(f"Model file {path} was written by a newer wmhkit; upgrade wmhkit to read it.")
    config = dict(payload["config"])
    net = build_network(config)
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"Model file {path} does not match its own config ({exc}); the file is damaged.") from None
    net.to(device).eval()
    return net, config, dict(payload.get("metadata", {}))
