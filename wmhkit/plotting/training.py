"""Training figures: loss and validation scores against the step, and slices of what a model saw and said."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["plot_training_history", "plot_slice_panels"]


def plot_training_history(history: pd.DataFrame) -> Figure:
    """Training loss (left) and validation Dice and lesion F1 (right) against the step.

    Parameters
    ----------
    history : pandas.DataFrame
        One row per validation: ``step``, ``train_loss`` (running mean), ``val_dice`` and
        ``val_lesion_f1`` (0-1, at 1 mm), as :func:`wmhkit.train.loop.run_stage` records them.

    Returns
    -------
    matplotlib.figure.Figure
        9 x 3.5 inches; :func:`wmhkit.plotting.save_figure` writes it (``history.png`` at 100 dpi
        in a training stage's folder).

    Examples
    --------
    >>> history = pd.DataFrame({"step": [10, 20], "train_loss": [0.9, 0.5], "val_dice": [0.2, 0.4],
    ...                         "val_lesion_f1": [0.1, 0.3]})
    >>> len(plot_training_history(history).axes)
    2
    """
    fig = Figure(figsize=(9, 3.5))
    ax_loss, ax_dice = fig.subplots(1, 2)
    ax_loss.plot(history["step"], history["train_loss"], marker="o")
    ax_loss.set(xlabel="step", ylabel="training loss (running mean)")
    ax_dice.plot(history["step"], history["val_dice"], marker="o", label="Dice")
    ax_dice.plot(history["step"], history["val_lesion_f1"], marker="s", label="lesion F1")
    ax_dice.set(xlabel="step", ylabel="validation at 1 mm", ylim=(0, 1))
    ax_dice.legend()
    fig.tight_layout()
    return fig


def plot_slice_panels(rows: Sequence[Sequence[tuple[str, np.ndarray, str]]], *, panel_in: float = 3.0) -> Figure:
    """A grid of 2D slices, one row per case: each panel a ``(title, slice, colour map)``.

    Slices are drawn transposed with the origin at the bottom (first array axis left to right,
    second bottom to top), as a RAS volume's coronal or axial slice is seen.

    Parameters
    ----------
    rows : sequence of sequences of (str, numpy.ndarray, str)
        Panels row by row; every row has the same number of panels.
    panel_in : float, default 3.0
        Width and height of one panel (inches).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> panel = ("T1", np.zeros((4, 3)), "gray")
    >>> len(plot_slice_panels([[panel, panel], [panel, panel]]).axes)
    4
    """
    n_columns = max(len(row) for row in rows)
    fig = Figure(figsize=(panel_in * n_columns, panel_in * len(rows)))
    axes = fig.subplots(len(rows), n_columns, squeeze=False)
    for ax_row, row in zip(axes, rows):
        for ax, (title, image, cmap) in zip(ax_row, row):
            ax.imshow(np.asarray(image, float).T, origin="lower", cmap=cmap)
            ax.set_title(title)
            ax.axis("off")
    fig.tight_layout()
    return fig
