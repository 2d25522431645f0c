"""Worker memory: glibc malloc thresholds restored under a Dask nanny, freed memory released per subject."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from wmhkit.cohort.worker import restore_malloc_thresholds

_PROBE = r"""
import json, resource, sys
import numpy as np
from wmhkit.cohort.worker import restore_malloc_thresholds
fixed = restore_malloc_thresholds() if sys.argv[1] == "fix" else False
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    a = np.ones(2_000_000)  # 16 MB: above the fixed 128 kB mmap threshold, below 32 MB
    del a
print(json.dumps({"fixed": fixed, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _probe(mode: str, env_value: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    if env_value is not None:
        env["MALLOC_TRIM_THRESHOLD_"] = env_value
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_nothing_changes_without_the_variable(monkeypatch):
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert restore_malloc_thresholds() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_restoring_thresholds_stops_page_faults_from_reused_arrays():
    # Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536: each 16 MB array is then
    # mapped afresh (hundreds of page faults each, fewer with huge pages); restored, freed memory
    # is reused.
    slow = _probe("keep", "65536")
    fast = _probe("fix", "65536")
    assert fast["fixed"] is True and slow["fixed"] is False
    assert slow["faults"] > 40 * 100
    assert fast["faults"] < slow["faults"] / 5


_RETAIN = r"""
import json
import numpy as np
from wmhkit.cohort.worker import release_memory

def rss_mb():
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) / 1024 for line in handle if line.startswith("VmRSS"))

# 200 kB arrays (from the heap once glibc's mmap threshold has risen) interleaved with small
# survivors: freed, they stay in the heap, which cannot shrink past the survivors.
np.ones(3_000_000); kept, big = [], []  # freeing 24 MB raises the mmap threshold to 24 MB
for _ in range(1500):
    big.append(np.ones(25_000))
    kept.append(np.ones(100))
del big
held = rss_mb()
released = release_memory()
print(json.dumps({"released": released, "held": held, "after": rss_mb()}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_release_memory_returns_freed_heap_to_the_system():
    # Without the MALLOC_* variables a Dask nanny leaves in this process's environment (glibc
    # then trims by itself, and there is nothing left to release).
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _RETAIN], env=env, capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["released"] is True
    assert probe["held"] - probe["after"] > 150  # of the 300 MB freed
