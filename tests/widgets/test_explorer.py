"""Cohort explorer: pick a point, see the subject, flag it into a saved table that survives a restart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from .widget_fixtures import t1_and_probseg  # noqa: F401 (fixtures)

from wmhkit.errors import OptionError, TableError
from wmhkit.widgets import FLAG_COLUMNS, CohortExplorer


@pytest.fixture
def cohort(t1_and_probseg):
    t1, probseg = t1_and_probseg
    return pd.DataFrame({
        "subject_id": ["sub-01", "sub-02", "sub-03", "sub-04"],
        "age": [66.0, 72.0, 80.0, 88.0],
        "wmh_ml": [0.8, 12.0, 3.5, 9.0],
        "t1": [str(t1)] * 4,
        "probseg": [str(probseg)] * 4,
    })


def test_pick_selects_nearest_point_and_opens_its_overlay(cohort, tmp_path):
    explorer = CohortExplorer(cohort, tmp_path / "qc.tsv")
    assert explorer.pick(71.0, 10.0) == "sub-02"
    assert explorer.viewer is not None and explorer.viewer.n_lesions == 2
    assert "12" in explorer.summary_html() and "probseg" not in explorer.summary_html()


def test_flagging_writes_the_table_and_a_restart_resumes_it(cohort, tmp_path):
    path = tmp_path / "review" / "qc.tsv"
    explorer = CohortExplorer(cohort, path)
    explorer.select("sub-03")
    explorer.flag(note="lesion in cortex")
    explorer.flag("sub-04", flag="check")
    explorer.flag("sub-03", flag="pass", note="fine on second look")  # replaces the first flag
    saved = pd.read_csv(path, sep="\t", keep_default_na=False)
    assert list(saved.columns) == FLAG_COLUMNS
    assert saved[["subject", "flag", "note"]].values.tolist() == [
        ["sub-04", "check", ""], ["sub-03", "pass", "fine on second look"]]
    resumed = CohortExplorer(cohort, path)
    assert resumed.flags["subject"].tolist() == ["sub-04", "sub-03"]
    resumed.unflag("sub-04")
    assert pd.read_csv(path, sep="\t")["subject"].tolist() == ["sub-03"]


def test_scatter_marks_flagged_and_selected(cohort, tmp_path):
    explorer = CohortExplorer(cohort, tmp_path / "qc.tsv")
    explorer.flag("sub-01", note="motion")
    explorer.select("sub-02")
    ax = explorer.scatter_figure().axes[0]
    assert len(ax.collections) == 3  # everyone, flagged, selected
    assert np.allclose(ax.collections[1].get_offsets(), [[66.0, 0.8]])
    assert np.allclose(ax.collections[2].get_offsets(), [[72.0, 12.0]])


def test_ranking_puts_unusual_volumes_first(cohort, tmp_path):
    ranked = CohortExplorer(cohort, tmp_path / "qc.tsv").ranked_subjects()
    assert sorted(ranked) == sorted(cohort["subject_id"]) and ranked[0] == "sub-02"


def test_errors_name_the_problem(cohort, tmp_path):
    explorer = CohortExplorer(cohort, tmp_path / "qc.tsv")
    with pytest.raises(OptionError, match="No subject"):
        explorer.flag()
    with pytest.raises(OptionError, match="sub-99"):
        explorer.select("sub-99")
    with pytest.raises(TableError, match="twice"):
        CohortExplorer(pd.concat([cohort, cohort.iloc[:1]]), tmp_path / "qc.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("who\twhat\n")
    with pytest.raises(TableError, match="lacks"):
        CohortExplorer(cohort, bad)


def test_widget_select_and_flag_buttons(cohort, tmp_path):
    pytest.importorskip("ipywidgets")
    path = tmp_path / "qc.tsv"
    explorer = CohortExplorer(cohort, path)
    explorer.widget()
    ui = explorer._ui
    scatter_before = bytes(ui.scatter.value)
    ui.subjects.value = "sub-04"
    assert explorer.selected == "sub-04" and bytes(ui.scatter.value) != scatter_before
    assert len(ui.viewer_box.children) == 1
    ui.verdict.value = "check"
    ui.note.value = "bright rim"
    ui.save.click()
    assert pd.read_csv(path, sep="\t")[["subject", "flag", "note"]].values.tolist() == [["sub-04", "check", "bright rim"]]
    ui.pick_age.value, ui.pick_value.value = 66.0, 1.0
    ui.pick_button.click()
    assert explorer.selected == "sub-01" and ui.subjects.value == "sub-01"
