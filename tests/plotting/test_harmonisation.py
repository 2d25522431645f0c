"""Site effect before and after harmonisation."""

from __future__ import annotations

import numpy as np
import pytest
from .figure_fixtures import cohort_table  # noqa: F401 (fixtures)

from wmhkit.errors import TableError
from wmhkit.plotting import plot_site_effect


def test_two_panels_one_box_per_site_with_shared_axis(cohort_table):
    fig = plot_site_effect(cohort_table)
    before, after = fig.axes
    assert [t.get_text() for t in before.get_xticklabels()] == ["A", "B", "C"]
    assert len(before.patches) == len(after.patches) == 3
    assert before.get_shared_y_axes().joined(before, after)
    # The dashed median line sits at the median of every subject.
    median_line = [line for line in before.lines if line.get_linestyle() == "--"][0]
    assert median_line.get_ydata()[0] == pytest.approx(np.median(cohort_table["wmh_ml"]))


def test_site_b_stands_out_before_only(cohort_table):
    fig = plot_site_effect(cohort_table, log_scale=False)
    medians = []
    for ax in fig.axes:
        box_medians = [line for line in ax.lines if line.get_linewidth() == 1.2]
        medians.append([line.get_ydata()[0] for line in box_medians])
    before, after = medians
    assert before[1] > 1.4 * max(before[0], before[2])
    assert after[1] < 1.4 * max(after[0], after[2])


def test_missing_column_raises(cohort_table):
    with pytest.raises(TableError, match="wmh_combat"):
        plot_site_effect(cohort_table, after="wmh_combat")
