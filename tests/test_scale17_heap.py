"""Pool workers keep freed heap memory for the next large read (issue 16, scaling; ``executors_local.keep_heap``).

Each 16 MiB window of a large file is a fresh ``bytes``. With glibc's defaults, freed memory at the top of the heap
goes back to the system once more than twice the (adaptive) mmap threshold is free, and the next reads fault it in
again, page by page: 12k minor faults for three windows here. A pool worker (its initializer) keeps it. Run in a subprocess: the allocator setting is per process.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = r"""
import json, os, resource, sys, tempfile
if sys.argv[1] == "init":
    from veritensor_fast import executors_local, matcher, worker
    o = worker.ScanOptions()
    executors_local._init(o, matcher.compile_ruleset(o.ruleset()))  # what a pool worker runs first
fd, path = tempfile.mkstemp()
n = (16 << 20) + (128 << 10)  # a window and its context
os.write(fd, b"x" * (16 << 20) + b"y" * (128 << 10))
got = []
for _ in range(4):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = os.pread(fd, n, 0)
    b = os.pread(fd, n, 0)  # the next window is read while the previous ones are still held
    c = os.pread(fd, n, 0)
    del a, b, c
    got.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
os.close(fd)
os.unlink(path)
print(json.dumps(got))
"""


def _faults(mode: str) -> list[int]:
    p = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True, timeout=60)
    return list(json.loads(p.stdout))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_a_pool_worker_reuses_the_memory_of_one_large_read_for_the_next() -> None:
    plain = _faults("plain")
    assert min(plain[1:]) > 4000  # glibc's default: every pair of windows faults its pages in again
    worker = _faults("init")
    assert max(worker[1:]) < 200  # the pool worker's initializer keeps the heap: the pages are reused
