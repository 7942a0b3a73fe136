"""``init_worker`` called in-process (a test, a harness) leaves the caller's garbage-collector thresholds alone:
only the pool's initializer sets the scan thresholds, for a worker process's whole life. It used to push an
entry onto the in-process scan count that nothing took off, so a later in-process scan never gave the caller's
thresholds back (``test_scale16`` failed when run after ``test_walk16_shards``)."""

from __future__ import annotations

import gc

from veritensor_fast import engine, worker
from veritensor_fast.engine import InProcessExecutor
from veritensor_fast.worker import ScanOptions


def test_init_worker_in_process_leaves_the_callers_gc_thresholds() -> None:
    o = ScanOptions()
    rs = o.ruleset()
    db = engine.compile_ruleset(rs)
    old = gc.get_threshold()
    try:
        gc.set_threshold(1234, 5, 6)
        worker.init_worker(o, db)
        assert gc.get_threshold() == (1234, 5, 6)
        # and an in-process scan afterwards still gives the caller's thresholds back when it ends
        ex = InProcessExecutor(o, db, rs)
        assert gc.get_threshold() == worker.SCAN_GC_THRESHOLD
        ex.close()
        assert gc.get_threshold() == (1234, 5, 6)
    finally:
        worker._CTX = None
        gc.set_threshold(*old)
