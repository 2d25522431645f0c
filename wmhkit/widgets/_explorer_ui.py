"""ipywidgets layout of the cohort explorer (imported only when widgets are shown)."""

from __future__ import annotations

import io

import ipywidgets as widgets


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


class ExplorerUI:
    """Scatter image, ranked subject list, the selected subject's viewer and numbers, QC buttons."""

    def __init__(self, explorer) -> None:
        self.explorer = explorer
        self._updating = False
        self.scatter = widgets.Image(format="png")
        self.subjects = widgets.Select(options=explorer.ranked_subjects(), rows=10,
                                       description="Subject", layout=widgets.Layout(width="260px"))
        self.pick_age = widgets.FloatText(description="Age (y)", layout=widgets.Layout(width="180px"))
        self.pick_value = widgets.FloatText(description="WMH (mL)", layout=widgets.Layout(width="180px"))
        self.pick_button = widgets.Button(description="Pick nearest")
        self.numbers = widgets.HTML()
        self.viewer_box = widgets.VBox()
        self.verdict = widgets.Dropdown(options=["fail", "check", "pass"], value="fail", description="Flag")
        self.note = widgets.Text(placeholder="what is wrong", description="Note")
        self.save = widgets.Button(description="Save flag", button_style="warning")
        self.clear = widgets.Button(description="Clear flag")
        self.status = widgets.HTML()
        self.subjects.observe(self._on_subject, names="value")
        self.pick_button.on_click(lambda _: explorer.pick(self.pick_age.value, self.pick_value.value))
        self.save.on_click(self._on_save)
        self.clear.on_click(self._on_clear)
        left = widgets.VBox([self.scatter, self.subjects,
                             widgets.HBox([self.pick_age, self.pick_value, self.pick_button])])
        right = widgets.VBox([self.numbers, widgets.HBox([self.verdict, self.note]),
                              widgets.HBox([self.save, self.clear]), self.status, self.viewer_box])
        self.box = widgets.HBox([left, right])
        self.refresh()

    def _on_subject(self, change) -> None:
        if not self._updating and change["new"] is not None:
            self.explorer.select(change["new"])

    def _on_save(self, _) -> None:
        if self.explorer.selected is not None:
            self.explorer.flag(flag=self.verdict.value, note=self.note.value)
            self.refresh()

    def _on_clear(self, _) -> None:
        if self.explorer.selected is not None:
            self.explorer.unflag()
            self.refresh()

    def refresh(self) -> None:
        """Redraw the scatter, numbers and viewer for the current selection."""
        self._updating = True
        try:
            explorer = self.explorer
            self.scatter.value = _png(explorer.scatter_figure())
            if explorer.selected is not None:
                self.subjects.value = explorer.selected
            self.numbers.value = explorer.summary_html()
            self.viewer_box.children = [explorer.viewer.widget()] if explorer.viewer is not None else []
            self.status.value = f"<small>{len(explorer.flags)} flagged, saved to {explorer.flags_path}</small>"
        finally:
            self._updating = False
