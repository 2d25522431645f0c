"""Cohort runs: discover a dataset's T1 images, segment them all (resumable, local processes or
Dask), and write a BIDS-derivatives folder with a combined table, a QC report and a group map::

    from wmhkit.cohort import run_cohort
    result = run_cohort("/data/bids", "/data/derivatives/wmhkit", workers=2)
    result.table  # one row per T1: volumes (mL), eTIV, QC flags, versions

The BIDS-Apps split (one participant per cluster task, then one group step)::

    run_cohort("/data/bids", out, participant_label=["01"], group=False)   # per task
    run_group("/data/bids", out)                                            # at the end
"""

from wmhkit.cohort.discover import discover_inputs
from wmhkit.cohort.groupmaps import lesion_frequency_map, write_group_map
from wmhkit.cohort.report import write_report
from wmhkit.cohort.runner import CohortResult, run_cohort, run_group
from wmhkit.cohort.table import build_table

__all__ = [
    "CohortResult",
    "build_table",
    "discover_inputs",
    "lesion_frequency_map",
    "run_cohort",
    "run_group",
    "write_group_map",
    "write_report",
]
