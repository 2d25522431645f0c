"""Cohort processors for fault tests: one announces which process is busy with which subject (the
test kills that process from outside); one segments under a file-size limit (a full disk).

Their settings come as processor options (``run_cohort(..., busy_dir=...)``), not environment
variables: local workers are forked from a forkserver that keeps the environment it started with.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from wmhkit.segmentation import segment_file

#: Inputs whose path contains this string get the file-size limit.
LIMITED = "sub-02"


def segment_and_announce(input_path, out_dir, *, busy_dir=None, **kwargs):
    """``segment_file``, after dropping ``<pid>-<input name>`` into ``busy_dir``."""
    if busy_dir:
        Path(busy_dir, f"{os.getpid()}-{Path(input_path).name}").touch()
    return segment_file(input_path, out_dir, **kwargs)


def segment_with_file_size_limit(input_path, out_dir, *, fsize_limit=0, keep_limit=False, **kwargs):
    """``segment_file`` with RLIMIT_FSIZE at ``fsize_limit`` bytes (for :data:`LIMITED` inputs).

    The kernel then refuses any write past the limit (EFBIG; Python ignores SIGXFSZ), as a full
    disk refuses it (ENOSPC). The limit is lifted afterwards, unless ``keep_limit``: then the
    worker keeps it for the QC files the cohort writes after the segmentation, and for the rest
    of its life.
    """
    if not fsize_limit or LIMITED not in str(input_path):
        return segment_file(input_path, out_dir, **kwargs)
    previous = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(fsize_limit), previous[1]))
    try:
        return segment_file(input_path, out_dir, **kwargs)
    finally:
        if not keep_limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, previous)
