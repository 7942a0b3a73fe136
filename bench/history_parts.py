"""CPU seconds of the parts of a history sweep's worker side, each timed apart, in one process.

    PYTHONPATH=/path/to/tree python3 bench/history_parts.py REPO [ROUNDS]

The sweep's batches are made as the engine makes them (``bench_history.py stages``), then run through one
``WorkerContext`` ``ROUNDS`` times (the last round is printed): the batch gate (its joined Hyperscan scan
``gate:hit_ends``, each detector's ``quiet_batch`` ``qb:NAME``), each detector's ``scan`` of the loud items
(``scan:NAME``), the blob reads (``read:read_one``: ``git cat-file`` not counted, it is another process) and the
object-id check (``read:hash``). Parts nest: ``gate:total`` holds the ``qb:`` and ``gate:`` lines. CPU time
(``time.process_time``), wrappers included (~0.2 us a call): compare two trees run alternately, not absolute values.
"""

from __future__ import annotations

import collections
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from veritensor_fast import batch_gate
from veritensor_fast.engine import make_batches
from veritensor_fast.sources import git_objects, git_read
from veritensor_fast.sources.git import GitHistorySource
from veritensor_fast.worker import ScanOptions, WorkerContext

SPENT: dict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter[str] = collections.Counter()


def timed(name: str, f: Callable[..., Any]) -> Callable[..., Any]:
    clock = time.process_time

    def g(*a: Any, **k: Any) -> Any:
        t = clock()
        try:
            return f(*a, **k)
        finally:
            SPENT[name] += clock() - t
            CALLS[name] += 1

    return g


def main(repo: str, rounds: int) -> int:
    src = GitHistorySource(repo, ScanOptions(), use_datastore=False)
    src.start()
    for sp in list(src._spools.values()):
        if sp is not None:
            sp.wait()
    batches = list(make_batches(src.items(), []))
    src.close()
    ctx = WorkerContext(ScanOptions())
    for d in ctx.detectors:
        d.scan = timed("scan:" + d.name, d.scan)  # type: ignore[method-assign]
        if hasattr(d, "quiet_batch"):
            d.quiet_batch = timed("qb:" + d.name, d.quiet_batch)
    m: Any = ctx.matcher
    m.hit_ends = timed("gate:hit_ends", m.hit_ends)
    m.candidate_ends = timed("gate:candidate_ends", m.candidate_ends)
    batch_gate.Gate.quiet = timed("gate:total", batch_gate.Gate.quiet)  # type: ignore[method-assign]
    git_read.object_matches = timed("read:hash", git_objects.object_matches)
    git_read._CatFile.read_one = timed("read:read_one", git_read._CatFile.read_one)  # type: ignore[method-assign]
    total = 0.0
    for _ in range(rounds):
        SPENT.clear()
        CALLS.clear()
        t = time.process_time()
        for b in batches:
            ctx.run_batch(b)
        total = time.process_time() - t
    ctx.close()
    print(f"batches {total:.3f} CPU-s, {sum(map(len, batches))} items, load {os.getloadavg()[0]:.2f}")
    for k, v in sorted(SPENT.items(), key=lambda kv: -kv[1]):
        print(f"  {k:24s} {v:7.3f}  {CALLS[k]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2))
