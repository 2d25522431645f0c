"""Ship a trained checkpoint as a named model (``wmhkit/segmentation/weights/<name>.pt``)."""

from __future__ import annotations

from pathlib import Path

from wmhkit import __version__
from wmhkit.segmentation.network import load_checkpoint, save_checkpoint

__all__ = ["export_model"]


def export_model(checkpoint, dest, *, name: str, version: str, metadata: dict | None = None) -> Path:
    """Re-save ``checkpoint`` at ``dest`` with the metadata the model registry reads.

    Parameters
    ----------
    checkpoint : path
        A checkpoint written by training (``best.pt``, ``last.pt`` or ``model.pt``).
    dest : path
        Destination ``.pt`` file.
    name : str
        Model name (e.g. ``"default"``).
    version : str
        Model version recorded in every segmentation output (``metadata["version"]``).
    metadata : dict, optional
        Extra entries (training recipe, validation numbers) merged over the checkpoint's own.

    Returns
    -------
    pathlib.Path
        ``dest``.
    """
    net, config, old = load_checkpoint(checkpoint)
    merged = {**old, **(metadata or {}), "name": name, "version": version, "wmhkit_version": __version__}
    return save_checkpoint(dest, net, config, merged)
