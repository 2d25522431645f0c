"""Shared synthetic cohorts for the statistics tests (built once per session)."""

from __future__ import annotations

import numpy as np
import pytest

from wmhkit.synth.cohort import make_cohort


@pytest.fixture(scope="session")
def cohort():
    """2,000 subjects, 8 sites, seed 11."""
    return make_cohort(2000, seed=11)


@pytest.fixture()
def cohort_table(cohort):
    table = cohort.table.copy()
    table["log_wmh"] = np.log1p(table["wmh_ml"])
    table["log_wmh_true"] = np.log(table["wmh_true_ml"])
    return table
