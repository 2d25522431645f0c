"""Slice viewer: every state change changes the rendered image; lesion jumps land on lesions."""

from __future__ import annotations

import numpy as np
import pytest
from .widget_fixtures import t1_and_probseg, lesion_boxes  # noqa: F401 (fixtures)

from wmhkit.errors import OptionError
from wmhkit.widgets import SliceViewer, view_slices, widgets_available


def test_starts_on_the_slice_with_most_lesion(t1_and_probseg):
    viewer = view_slices(*t1_and_probseg)
    assert viewer.axis == "axial"
    assert viewer.slice_index == 15  # the bigger lesion (5x4 voxels per slice) starts at z = 15
    assert viewer.n_lesions == 2


def test_each_control_changes_the_rendered_array(t1_and_probseg):
    viewer = SliceViewer(*t1_and_probseg)
    before = viewer.render()
    viewer.alpha = 0.1
    faded = viewer.render()
    assert not np.array_equal(before, faded)
    viewer.threshold = 0.8  # hides the 0.7 lesion on this slice
    hidden = viewer.render()
    assert not np.array_equal(faded, hidden)
    assert np.ptp(hidden, axis=-1).max() == 0  # grey only
    viewer.slice_index = 0
    assert not np.array_equal(hidden, viewer.render())
    viewer.axis = "coronal"
    assert viewer.render().shape == (22, 30, 3)  # superior-inferior x left-right


def test_lesion_jump_visits_each_lesion_and_wraps(t1_and_probseg, lesion_boxes):
    viewer = SliceViewer(*t1_and_probseg, slice_index=0)
    centres = [np.mean([box[2].start, box[2].stop - 1]) for box in lesion_boxes]
    visited = [viewer.next_lesion(), viewer.slice_index, viewer.next_lesion(), viewer.slice_index]
    assert visited[0] == 0 and visited[1] == round(centres[0])
    assert visited[2] == 1 and visited[3] == round(centres[1])
    assert viewer.next_lesion() == 0  # wraps around
    assert viewer.previous_lesion() == 1
    on_lesion = viewer.render()
    assert np.ptp(on_lesion, axis=-1).max() > 0.1  # the lesion is coloured


def test_jump_without_lesions_stays_put(t1_and_probseg):
    viewer = SliceViewer(t1_and_probseg[0])
    start = viewer.slice_index
    assert viewer.next_lesion() is None and viewer.slice_index == start


def test_bad_state_raises(t1_and_probseg):
    viewer = SliceViewer(*t1_and_probseg)
    with pytest.raises(OptionError, match="outside"):
        viewer.slice_index = 99
    with pytest.raises(OptionError, match="alpha"):
        viewer.alpha = 1.5
    with pytest.raises(OptionError, match="axis"):
        viewer.axis = "oblique"


def test_static_png_fallback(t1_and_probseg, tmp_path):
    viewer = SliceViewer(*t1_and_probseg)
    assert not widgets_available()  # no Jupyter kernel under pytest
    data = viewer.to_png(tmp_path / "view.png")
    assert data.startswith(b"\x89PNG") and (tmp_path / "view.png").read_bytes() == data
    assert "axial slice 16/22" in viewer.describe()


def test_widget_controls_drive_the_viewer_and_redraw(t1_and_probseg):
    pytest.importorskip("ipywidgets")
    viewer = SliceViewer(*t1_and_probseg)
    viewer.widget()
    controls = viewer._controls
    first_png = bytes(controls.image.value)
    controls.slice.value = 5  # through the first lesion
    assert viewer.slice_index == 5 and bytes(controls.image.value) != first_png
    png = bytes(controls.image.value)
    controls.alpha.value = 0.0
    assert viewer.alpha == 0.0 and bytes(controls.image.value) != png
    controls.next.click()
    assert viewer.current_lesion == 1 and controls.slice.value == viewer.slice_index == 16
    controls.axis.value = "sagittal"
    assert viewer.axis == "sagittal" and controls.slice.max == 29
