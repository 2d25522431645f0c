"""Cohort runs: discover a dataset's T1 images, segment them all (resumable, local processes or
Dask), and write a BIDS-derivatives folder with a combined table, a QC report and a group map::

    from wmhkit.cohort import run_cohort
    result = run_cohort("/data/bids", "/data/derivatives/wmhkit", workers=2)
    result.table  # one row per T1: volumes (mL), eTIV, QC flags, versions
"""

from wmhkit.cohort.discover import discover_inputs
from wmhkit.cohort.groupmaps import lesion_frequency_map, write_group_map
from wmhkit.cohort.report import write_report
from wmhkit.cohort.runner import CohortResult, run_cohort
from wmhkit.cohort.table import build_table

__all__ = [
    "CohortResult",
    "build_table",
    "discover_inputs",
    "lesion_frequency_map",
    "run_cohort",
    "write_group_map",
    "write_report",
]
