"""A cohort processor that kills its own worker process on one subject (tests of crash isolation)."""

from __future__ import annotations

import os
import signal

from wmhkit.segmentation import segment_file

#: Inputs whose path contains this string kill the worker (SIGKILL, as the kernel's OOM killer does).
CRASH_ON = "sub-02"


def segment_or_crash(input_path, out_dir, **kwargs):
    """``segment_file``, except that the worker dies hard on :data:`CRASH_ON`."""
    if CRASH_ON in str(input_path):
        os.kill(os.getpid(), signal.SIGKILL)
    return segment_file(input_path, out_dir, **kwargs)
