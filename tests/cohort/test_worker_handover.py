"""The worker hands the segmentation's alignment to the QC step in memory: a subject processed in
this run is aligned once (by the segmentation), whichever form the processor is given in."""

from __future__ import annotations

import sys

import pytest

from wmhkit.cohort import run_cohort
from wmhkit.cohort.worker import DEFAULT_PROCESSOR, resolve_processor
from wmhkit.errors import OptionError


@pytest.fixture
def alignment_calls(monkeypatch):
    """Count calls of the real ``align_to_mni``, wherever a wmhkit module bound it."""
    from wmhkit.preprocess.alignment import align_to_mni

    calls = []

    def counting(*args, **kwargs):
        calls.append(args[0] if args else None)
        return align_to_mni(*args, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("wmhkit") and getattr(module, "align_to_mni", None) is align_to_mni:
            monkeypatch.setattr(module, "align_to_mni", counting)
    return calls


@pytest.mark.slow
@pytest.mark.parametrize("processor", [DEFAULT_PROCESSOR, "wmhkit.segmentation:segment_file"],
                         ids=["callable-result", "string-summary"])
def test_qc_does_not_align_a_subject_processed_in_this_run_again(cohort_bids, tmp_path, alignment_calls, processor):
    result = run_cohort(cohort_bids, tmp_path / "deriv", method="baseline", participant_label=["01"], progress=False,
                        report=False, group_map=False, processor=processor)
    assert result.runs["status"].tolist() == ["ok"]
    assert result.table.loc[0, "qc_wm_gm_ratio"] > 1.0
    assert len(alignment_calls) == 1  # the segmentation's own; the QC step used it


def _returns_nothing(input_path, out_dir, **options):
    return None


def test_a_processor_that_hands_over_no_alignment_fails_its_subject(cohort_bids, tmp_path, alignment_calls):
    result = run_cohort(cohort_bids, tmp_path / "deriv", method="baseline", participant_label=["01"], progress=False,
                        report=False, group_map=False, processor=_returns_nothing)
    assert result.runs["status"].tolist() == ["failed"]
    assert "OptionError" in result.runs.loc[0, "error"] and "_returns_nothing" in result.runs.loc[0, "error"]
    assert alignment_calls == []


def test_processor_forms():
    assert resolve_processor(DEFAULT_PROCESSOR, picklable=True) is DEFAULT_PROCESSOR
    with pytest.raises(OptionError, match="top-level function"):
        resolve_processor(lambda path, out: None, picklable=True)
    with pytest.raises(OptionError, match="cannot be imported"):
        resolve_processor("wmhkit.nowhere:segment")
