"""Interactive viewers for Jupyter (ipywidgets), with static PNG fallbacks everywhere else.

:class:`SliceViewer` steps through one subject's T1 and lesion map; :class:`CohortExplorer`
walks a cohort's WMH-versus-age scatter and keeps a QC flag table on disk.
"""

from wmhkit.widgets.explorer import FLAG_COLUMNS, CohortExplorer
from wmhkit.widgets.viewer import SliceViewer, view_slices, widgets_available

__all__ = ["FLAG_COLUMNS", "CohortExplorer", "SliceViewer", "view_slices", "widgets_available"]
