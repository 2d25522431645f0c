"""Cohort explorer: WMH against age, pick a subject, see the overlay and numbers, flag it for QC.

Flags are written to a tab-separated table (``subject``, ``flag``, ``note``, ``flagged_at``)
every time one changes, so a review interrupted half way resumes where it stopped: the
explorer reads the table back when it opens.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from wmhkit.errors import OptionError, TableError
from wmhkit.io import write_tsv
from wmhkit.plotting.style import PALETTE, house_style, new_figure, require_columns
from wmhkit.widgets.viewer import SliceViewer, widgets_available

__all__ = ["CohortExplorer", "FLAG_COLUMNS"]

logger = logging.getLogger(__name__)

#: Columns of the QC flag table.
FLAG_COLUMNS = ["subject", "flag", "note", "flagged_at"]


class CohortExplorer:
    """Review a cohort: a WMH-versus-age scatter, one subject's overlay and numbers, QC flags.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject, e.g. the combined table of a cohort run.
    flags_path : str or os.PathLike
        Where the QC flag table (TSV) is kept; read back if it exists.
    subject, age, value : str, default "subject_id", "age", "wmh_ml"
        Columns with the subject ID, the age (years) and the lesion volume (mL).
    t1, overlay : str, optional
        Columns with each subject's T1 path and lesion probability/mask path; the overlay
        view is offered when both are present (or when ``images`` is given).
    images : callable, optional
        ``images(row) -> (t1, overlay)`` for tables that hold no paths.
    log_scale : bool, default True
        Logarithmic volume axis.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> table = pd.DataFrame({"subject_id": ["a", "b", "c"], "age": [70, 75, 80], "wmh_ml": [1.0, 9.0, 3.0]})
    >>> flags = pathlib.Path(tempfile.mkdtemp()) / "qc_flags.tsv"
    >>> explorer = CohortExplorer(table, flags)
    >>> explorer.pick(74.0, 8.0)
    'b'
    >>> explorer.flag(note="segmentation leaks into cortex")["subject"].tolist()
    ['b']
    >>> pd.read_csv(flags, sep="\\t")["note"].tolist()
    ['segmentation leaks into cortex']
    """

    def __init__(
        self,
        table: pd.DataFrame,
        flags_path: str | os.PathLike = "qc_flags.tsv",
        *,
        subject: str = "subject_id",
        age: str = "age",
        value: str = "wmh_ml",
        t1: str | None = "t1",
        overlay: str | None = "probseg",
        images: Callable | None = None,
        log_scale: bool = True,
    ) -> None:
        require_columns(table, [subject, age, value], "CohortExplorer")
        if table[subject].duplicated().any():
            repeated = table.loc[table[subject].duplicated(), subject].iloc[0]
            raise TableError(f"CohortExplorer: subject {repeated!r} appears twice in column {subject!r}; keep one row.")
        self.table = table.reset_index(drop=True)
        self.columns = {"subject": subject, "age": age, "value": value}
        self.t1_column = t1 if t1 in table.columns else None
        self.overlay_column = overlay if overlay in table.columns else None
        self.images = images
        self.log_scale = log_scale
        self.flags_path = Path(flags_path)
        self.flags = self._read_flags()
        self.selected: str | None = None
        self.viewer: SliceViewer | None = None
        self._ui = None

    # -- flags ---------------------------------------------------------------------------
    def _read_flags(self) -> pd.DataFrame:
        if not self.flags_path.exists():
            return pd.DataFrame(columns=FLAG_COLUMNS)
        flags = pd.read_csv(self.flags_path, sep="\t", dtype=str, keep_default_na=False)
        missing = [c for c in FLAG_COLUMNS if c not in flags.columns]
        if missing:
            raise TableError(
                f"QC flag table {self.flags_path} lacks column(s) {missing}; move it away or fix its header."
            )
        logger.info("resumed %d QC flags from %s", len(flags), self.flags_path)
        return flags[FLAG_COLUMNS]

    def flag(self, subject: str | None = None, *, flag: str = "fail", note: str = "") -> pd.DataFrame:
        """Flag a subject (default: the selected one) and save the flag table at once.

        Parameters
        ----------
        subject : str, optional
            Subject ID; default the selected subject.
        flag : str, default "fail"
            Verdict, e.g. "fail", "check", "pass".
        note : str, default ""
            Free text (what is wrong).

        Returns
        -------
        pandas.DataFrame
            The flag table, one row per flagged subject (a new flag replaces an older one).
        """
        subject = self._subject(subject)
        row = {"subject": subject, "flag": str(flag), "note": str(note),
               "flagged_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        kept = self.flags[self.flags["subject"] != subject]
        self.flags = pd.concat([kept, pd.DataFrame([row])], ignore_index=True)[FLAG_COLUMNS]
        self.save_flags()
        return self.flags

    def unflag(self, subject: str | None = None) -> pd.DataFrame:
        """Remove a subject's flag (default: the selected subject) and save the table."""
        subject = self._subject(subject)
        self.flags = self.flags[self.flags["subject"] != subject].reset_index(drop=True)
        self.save_flags()
        return self.flags

    def save_flags(self) -> Path:
        """Write the flag table (TSV, atomically) to ``flags_path``."""
        write_tsv(self.flags, self.flags_path)
        return self.flags_path

    # -- selection -----------------------------------------------------------------------
    def _subject(self, subject) -> str:
        subject = self.selected if subject is None else subject
        if subject is None:
            raise OptionError("No subject is selected; pass a subject ID or pick a point first.")
        ids = self.table[self.columns["subject"]].astype(str)
        if str(subject) not in set(ids):
            raise OptionError(f"Subject {subject!r} is not in column {self.columns['subject']!r} of the table.")
        return str(subject)

    def subject_row(self, subject: str | None = None) -> pd.Series:
        """The table row of a subject (default: the selected one)."""
        subject = self._subject(subject)
        ids = self.table[self.columns["subject"]].astype(str)
        return self.table.loc[ids == subject].iloc[0]

    def _axes_values(self) -> tuple[np.ndarray, np.ndarray]:
        x = pd.to_numeric(self.table[self.columns["age"]], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(self.table[self.columns["value"]], errors="coerce").to_numpy(dtype=float)
        if self.log_scale:
            y = np.log10(np.clip(y, 1e-3, None))
        return x, y

    def pick(self, age: float, value: float) -> str:
        """Select the subject nearest to a point of the scatter (age in years, value in mL)."""
        x, y = self._axes_values()
        target_y = np.log10(max(value, 1e-3)) if self.log_scale else value
        # Distances in units of each axis' spread, as the eye sees the scatter.
        x_scale = np.nanstd(x) or 1.0
        y_scale = np.nanstd(y) or 1.0
        distance = ((x - age) / x_scale) ** 2 + ((y - target_y) / y_scale) ** 2
        if not np.isfinite(distance).any():
            raise TableError("CohortExplorer: no subject has both an age and a volume to pick from.")
        index = int(np.nanargmin(distance))
        return self.select(str(self.table.loc[index, self.columns["subject"]]))

    def select(self, subject: str) -> str:
        """Select a subject: its overlay viewer (when images exist) and numbers become current."""
        self.selected = self._subject(subject)
        self.viewer = None
        images = self._images(self.subject_row())
        if images is not None:
            self.viewer = SliceViewer(*images)
        if self._ui is not None:
            self._ui.refresh()
        return self.selected

    def _images(self, row: pd.Series):
        if self.images is not None:
            return self.images(row)
        if self.t1_column and self.overlay_column and pd.notna(row[self.t1_column]):
            overlay = row[self.overlay_column] if pd.notna(row[self.overlay_column]) else None
            return row[self.t1_column], overlay
        return None

    def ranked_subjects(self) -> list[str]:
        """Subjects ordered by how unusual their volume is for their age (largest residual first)."""
        x, y = self._axes_values()
        ok = np.isfinite(x) & np.isfinite(y)
        residual = np.full(x.shape, -np.inf)
        if ok.sum() >= 3:
            slope, intercept = np.polyfit(x[ok], y[ok], 1)
            residual[ok] = np.abs(y[ok] - (slope * x[ok] + intercept))
        order = np.argsort(-residual, kind="stable")
        return [str(s) for s in self.table[self.columns["subject"]].to_numpy()[order]]

    # -- figures -------------------------------------------------------------------------
    def scatter_figure(self, width_in: float = 4.0):
        """The WMH-versus-age scatter, flagged subjects crossed, the selected one ringed."""
        x = pd.to_numeric(self.table[self.columns["age"]], errors="coerce")
        y = pd.to_numeric(self.table[self.columns["value"]], errors="coerce")
        ids = self.table[self.columns["subject"]].astype(str)
        with house_style():
            fig = new_figure(width_in, 3.0)
            ax = fig.add_subplot()
            ax.scatter(x, y, s=8, color=PALETTE["blue"], alpha=0.4, linewidths=0, picker=True)
            flagged = ids.isin(self.flags["subject"])
            if flagged.any():
                ax.scatter(x[flagged], y[flagged], s=30, marker="x", color=PALETTE["vermillion"], label="Flagged")
                ax.legend(loc="upper left")
            if self.selected is not None:
                chosen = ids == self.selected
                ax.scatter(x[chosen], y[chosen], s=90, facecolors="none", edgecolors=PALETTE["black"],
                           linewidths=1.5)
            if self.log_scale:
                ax.set_yscale("log")
            ax.set_xlabel("Age (years)")
            ax.set_ylabel("WMH volume (mL)")
        return fig

    def summary_html(self) -> str:
        """HTML table of the selected subject's numbers and flag."""
        if self.selected is None:
            return "<i>No subject selected.</i>"
        row = self.subject_row()
        shown = {k: v for k, v in row.items() if k not in (self.t1_column, self.overlay_column)}
        flag = self.flags.loc[self.flags["subject"] == self.selected]
        if len(flag):
            shown["QC flag"] = f"{flag['flag'].iloc[0]}: {flag['note'].iloc[0]}"
        cells = "".join(
            f"<tr><td>{k}</td><td>{v:.3g}</td></tr>" if isinstance(v, (float, np.floating))
            else f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in shown.items()
        )
        return f"<table>{cells}</table>"

    def widget(self):
        """The ipywidgets panel: scatter, subject list (most unusual first), overlay, numbers, flag buttons."""
        if self._ui is None:
            from wmhkit.widgets._explorer_ui import ExplorerUI

            self._ui = ExplorerUI(self)
        return self._ui.box

    def show(self):
        """Display the interactive panel in Jupyter, or the static scatter elsewhere."""
        from IPython.display import display

        display(self.widget() if widgets_available() else self.scatter_figure())

    def _ipython_display_(self) -> None:
        self.show()

    def __repr__(self) -> str:
        return f"CohortExplorer({len(self.table)} subjects, {len(self.flags)} flagged, selected={self.selected!r})"
