"""ipywidgets controls of the slice viewer (imported only when widgets are shown)."""

from __future__ import annotations

import ipywidgets as widgets


class ViewerControls:
    """Sliders, buttons and the image of one :class:`~wmhkit.widgets.viewer.SliceViewer`, kept in sync."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self._updating = False
        self.axis = widgets.ToggleButtons(options=["axial", "coronal", "sagittal"], value=viewer.axis,
                                          description="View")
        self.slice = widgets.IntSlider(value=viewer.slice_index, min=0, max=viewer.n_slices - 1,
                                       description="Slice", continuous_update=False)
        self.threshold = widgets.FloatSlider(value=viewer.threshold, min=0.0, max=0.95, step=0.05,
                                             description="Threshold", continuous_update=False)
        self.alpha = widgets.FloatSlider(value=viewer.alpha, min=0.0, max=1.0, step=0.05, description="Opacity",
                                         continuous_update=False)
        self.previous = widgets.Button(description="Previous lesion", icon="arrow-left")
        self.next = widgets.Button(description="Next lesion", icon="arrow-right")
        self.info = widgets.HTML()
        self.image = widgets.Image(format="png")
        has_overlay = viewer.volume.overlay is not None
        for control in (self.threshold, self.alpha, self.previous, self.next):
            control.disabled = not has_overlay
        self.axis.observe(self._on_axis, names="value")
        self.slice.observe(self._on_slice, names="value")
        self.threshold.observe(self._on_threshold, names="value")
        self.alpha.observe(self._on_alpha, names="value")
        self.previous.on_click(lambda _: viewer.previous_lesion())
        self.next.on_click(lambda _: viewer.next_lesion())
        self.box = widgets.VBox([
            self.axis, self.slice,
            widgets.HBox([self.threshold, self.alpha]),
            widgets.HBox([self.previous, self.next]),
            self.info, self.image,
        ])
        self.refresh()

    def _on_axis(self, change) -> None:
        if not self._updating:
            self.viewer.axis = change["new"]

    def _on_slice(self, change) -> None:
        if not self._updating:
            self.viewer.slice_index = change["new"]

    def _on_threshold(self, change) -> None:
        if not self._updating:
            self.viewer.threshold = change["new"]
            self.viewer.current_lesion = None
            self.refresh()

    def _on_alpha(self, change) -> None:
        if not self._updating:
            self.viewer.alpha = change["new"]
            self.refresh()

    def refresh(self) -> None:
        """Copy the viewer's state into the controls and redraw the image."""
        self._updating = True
        try:
            viewer = self.viewer
            self.axis.value = viewer.axis
            self.slice.max = viewer.n_slices - 1
            self.slice.value = viewer.slice_index
            self.threshold.value = viewer.threshold
            self.alpha.value = viewer.alpha
            self.info.value = f"<small>{viewer.describe()}</small>"
            self.image.value = viewer.to_png()
        finally:
            self._updating = False


def build_viewer_controls(viewer) -> ViewerControls:
    """Controls bound to ``viewer``: moving a slider changes the viewer and redraws."""
    return ViewerControls(viewer)
