"""The training history figure."""

from __future__ import annotations

import pandas as pd

from wmhkit.plotting import save_figure
from wmhkit.plotting.training import plot_training_history


def test_history_figure_shows_loss_and_both_scores(tmp_path):
    history = pd.DataFrame({"step": [5, 10, 15], "train_loss": [0.9, 0.6, 0.5], "val_dice": [0.2, 0.35, 0.4],
                            "val_lesion_f1": [0.1, 0.3, 0.45]})
    fig = plot_training_history(history)
    loss, scores = fig.axes
    assert loss.get_lines()[0].get_ydata().tolist() == [0.9, 0.6, 0.5]
    assert [line.get_label() for line in scores.get_lines()] == ["Dice", "lesion F1"]
    assert scores.get_ylim() == (0.0, 1.0)
    (path,) = save_figure(fig, tmp_path / "history.png", dpi=100)
    assert path.stat().st_size > 0 and not list(tmp_path.glob(".*"))
