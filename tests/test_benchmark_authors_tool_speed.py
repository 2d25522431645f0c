"""Parsing in benchmarks/authors_tool_speed.py: the /usr/bin/time -v report and the authors' log."""

from __future__ import annotations

import pytest

BENCHMARK = "authors_tool_speed"


@pytest.fixture(scope="module")
def speed(benchmark_script):
    return benchmark_script


TIME_V = """ Saving scalars stats as t1_wmh_in_lrois.csv
\tCommand being timed: "bash deepwmh.sh t1.nii.gz"
\tUser time (seconds): 24.12
\tSystem time (seconds): 12.92
\tPercent of CPU this job got: 80%
\tElapsed (wall clock) time (h:mm:ss or m:ss): {clock}
\tMaximum resident set size (kbytes): 3632948
\tExit status: 0
"""


@pytest.mark.parametrize("clock, seconds", [("0:46.07", 46.07), ("1:02:46.50", 3766.5)])
def test_parse_time_v_reads_cpu_wall_and_peak_memory(speed, clock, seconds):
    parsed = speed.parse_time_v(TIME_V.format(clock=clock))
    assert parsed["cpu_s"] == pytest.approx(24.12 + 12.92)
    assert parsed["wall_s"] == pytest.approx(seconds)
    assert parsed["peak_rss_gb"] == pytest.approx(3632948 / 1024**2)


def test_parse_time_v_names_the_missing_line(speed):
    with pytest.raises(ValueError, match="Maximum resident set size"):
        speed.parse_time_v(TIME_V.format(clock="0:01.00").replace("Maximum resident", "Max resident"))


def test_parse_authors_log_reads_threads_subject_time_and_peak(speed):
    log = ("Using 2 CPU threads\nLoading image t1.nii.gz\n Elapsed time for subject 42.30s \n"
           "Peak memory used (Gb) 3.464649200439453\n")
    assert speed.parse_authors_log(log) == {"threads": 2, "subject_s": pytest.approx(42.3),
                                            "peak_gb": pytest.approx(3.4646492)}
    assert speed.parse_authors_log("Loading image t1.nii.gz\n")["subject_s"] is None


def test_ratio_line_verdict_follows_the_target(speed):
    assert "meets <= 0.25" in speed.ratio_line(10.0, 50.0)
    assert "= 0.200" in speed.ratio_line(10.0, 50.0)
    assert "misses <= 0.25" in speed.ratio_line(13.0, 50.0)
