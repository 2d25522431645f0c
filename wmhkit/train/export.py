"""Ship a trained checkpoint as a named model (``wmhkit/segmentation/weights/<name>.pt``)."""

from __future__ import annotations

from pathlib import Path

from wmhkit import __version__
from wmhkit.errors import ModelError, OptionError
from wmhkit.segmentation.network import load_checkpoint, save_checkpoint

__all__ = ["export_model", "interpolate_checkpoints"]


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


def interpolate_checkpoints(start, end, dest, *, weight: float, metadata: dict | None = None) -> Path:
    """Write the network whose weights lie ``weight`` of the way from ``start`` to ``end``.

    A weight-space ensemble (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR
    2022): a fine-tuned model and the model it was fine-tuned from are mixed weight by weight,
    ``(1 - weight) * start + weight * end``. Between the two, a fine-tune's gains on its new
    data are often kept while its losses on data neither saw (here, heads outside training)
    shrink. Batch-norm running statistics are mixed the same way; integer counters are taken
    from ``end``.

    Parameters
    ----------
    start, end : path or str
        Checkpoints of the same architecture (``.pt`` paths or registry names such as
        ``"default"``); ``end`` is usually fine-tuned from ``start``.
    dest : path
        Destination ``.pt`` file.
    weight : float
        Share of ``end`` (0 gives ``start``, 1 gives ``end``).
    metadata : dict, optional
        Entries merged over ``end``'s metadata.

    Returns
    -------
    pathlib.Path
        ``dest``.
    """
    from wmhkit.segmentation.models import model_path

    if not 0.0 <= float(weight) <= 1.0:
        raise OptionError(f"Interpolation weight {weight} is outside 0-1; give the share of the second checkpoint.")
    first, _, _ = load_checkpoint(model_path(start))
    second, config, old = load_checkpoint(model_path(end))
    first_state, mixed = first.state_dict(), second.state_dict()
    if set(first_state) != set(mixed) or any(first_state[k].shape != v.shape for k, v in mixed.items()):
        raise ModelError(f"Checkpoints {start} and {end} have different architectures; they cannot be mixed.")
    for key, value in mixed.items():
        if value.is_floating_point():
            mixed[key] = (1.0 - weight) * first_state[key] + weight * value
    second.load_state_dict(mixed)
    recorded = {"start": str(start), "end": str(end), "weight": float(weight)}
    merged = {**old, "interpolated": recorded, **(metadata or {})}
    return save_checkpoint(dest, second, config, merged)
