"""A small BIDS cohort segmented once per session, shared by the cohort tests."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

from .cohort_testdata import write_bids

#: Two good subjects (one with two sessions would cost a third segmentation) and one corrupt scan.
SUBJECTS = {"01": [None], "02": ["1"], "03": [None]}


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI's main() points the wmhkit logger at this test's stderr; undo that for later tests."""
    logger = logging.getLogger("wmhkit")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.fixture(scope="session")
def cohort_bids(tmp_path_factory):
    """BIDS tree: sub-01 (no session), sub-02/ses-1, sub-03 with a truncated T1."""
    return write_bids(tmp_path_factory.mktemp("cohort") / "bids", SUBJECTS, corrupt=("03",))


@pytest.fixture(scope="session")
def reference_run(cohort_bids, tmp_path_factory):
    """One uninterrupted serial baseline run over ``cohort_bids`` (the reference for every comparison)."""
    from wmhkit.cohort import run_cohort

    cache = os.environ.get("WMHKIT_CACHE_DIR")
    os.environ["WMHKIT_CACHE_DIR"] = str(tmp_path_factory.getbasetemp() / "wmhkit-cache")
    try:
        yield run_cohort(cohort_bids, tmp_path_factory.mktemp("reference") / "deriv", method="baseline", progress=False)
    finally:
        if cache is None:
            os.environ.pop("WMHKIT_CACHE_DIR", None)
        else:
            os.environ["WMHKIT_CACHE_DIR"] = cache


@pytest.fixture
def reference_copy(reference_run, tmp_path):
    """A private copy of the reference derivatives folder (tests may change it)."""
    return shutil.copytree(reference_run.out_dir, tmp_path / "deriv")
