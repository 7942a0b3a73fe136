"""The lean local pool (``executors_pool.LeanPool``): one pipe per worker and no thread in the parent, with
``ProcessPoolExecutor``'s contract as ``executors_local.PoolExecutor`` uses it (results, exceptions, a worker that
dies breaks the pool and fails every task it had, the other workers stop).

The scans that kill, raise in and signal real workers are ``tests/test_engine_faults.py`` (unchanged).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import engine
from veritensor_fast.executors_pool import BrokenProcessPool, LeanPool
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions

from conftest import hf_token


def _nothing() -> None:
    pass


def _fail_init() -> None:
    raise RuntimeError("cannot start")


def _square(x: int) -> int:
    return x * x


def _raise(msg: str) -> None:
    raise ValueError(msg)


def _unpicklable() -> Any:
    return lambda: None


def _die(after: float) -> None:
    time.sleep(after)
    os.kill(os.getpid(), signal.SIGKILL)


def _pool(jobs: int = 2) -> LeanPool:
    return LeanPool(jobs, mp.get_context("fork"), _nothing, ())


def test_results_exceptions_and_unpicklable_results() -> None:
    pool = _pool()
    try:
        futs = [pool.submit(_square, i) for i in range(20)]  # more than the workers take at once: they wait here
        bad = pool.submit(_raise, "boom")
        odd = pool.submit(_unpicklable)
        pool.wait([*futs, bad, odd], first=False)
        assert [f.result() for f in futs] == [i * i for i in range(20)]
        assert isinstance(bad.exception(), ValueError)
        assert isinstance(odd.exception(), RuntimeError)  # the worker could not send it; the pool goes on
        assert pool.submit(_square, 3) is not None
    finally:
        pool.shutdown()
    assert all(p.exitcode == 0 for p in pool._processes.values())


def test_a_worker_that_dies_breaks_the_pool_and_fails_what_was_in_flight() -> None:
    pool = _pool()
    try:
        done = pool.submit(_square, 7)
        pool.wait([done])
        dying = pool.submit(_die, 0.2)
        other = pool.submit(time.sleep, 30)  # the other worker: terminated when the pool breaks
        waiting = [pool.submit(_square, i) for i in range(4)]  # still in this process
        t = time.monotonic()
        pool.wait([dying, other, *waiting], first=False)
        assert time.monotonic() - t < 20  # the sleeping worker did not hold the break up
        assert done.result() == 49
        for f in (dying, other, *waiting):
            assert isinstance(f.exception(), BrokenProcessPool)
        with pytest.raises(BrokenProcessPool):
            pool.submit(_square, 1)
    finally:
        pool.shutdown()
    codes = sorted(p.exitcode for p in pool._processes.values())
    assert codes == sorted([-signal.SIGKILL, -signal.SIGTERM])


def test_workers_that_cannot_start_break_the_pool() -> None:
    pool = LeanPool(2, mp.get_context("fork"), _fail_init, ())
    try:
        time.sleep(0.2)
        with pytest.raises(BrokenProcessPool):  # refused at once (the worker's end is closed), or failed later
            f = pool.submit(os.getpid)
            pool.wait([f])
            f.result()
    finally:
        pool.shutdown()
    assert all(p.exitcode not in (None, 0) for p in pool._processes.values())


def test_a_pool_scan_starts_no_thread_in_the_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ProcessPoolExecutor`` ran a manager thread and a queue feeder thread in the parent: 0.4-0.55 ms of the
    parent's CPU per task, taken from the workers it serves."""
    monkeypatch.setattr(engine, "SMALL_SCAN_BYTES", 0)
    before = threading.active_count()  # (another test may have left a thread of its own)
    tok = hf_token()
    for i in range(700):
        (tmp_path / f"f{i:03}.txt").write_text(f"k = '{tok}'\n" if i == 500 else "nothing\n")
    seen: list[int] = []
    res = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=2,
                      on_progress=lambda r: seen.append(threading.active_count()))
    assert res.stats["jobs"] == 2 and res.stats["files"] == 700
    assert [f.path for f in res.findings] == ["f500.txt"]
    assert seen and set(seen) == {threading.active_count()} == {before}


def test_forkserver_workers_when_the_parent_runs_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A parent with another thread does not fork (``start_method``): the pool starts its workers from a fork
    server, with the options and rules database sent to them."""
    monkeypatch.setattr(engine, "SMALL_SCAN_BYTES", 0)
    tok = hf_token()
    for i in range(600):
        (tmp_path / f"f{i:03}.txt").write_text(f"k = '{tok}'\n" if i == 5 else "nothing\n")
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        from veritensor_fast.executors_local import start_method

        assert start_method() in ("forkserver", "spawn")
        res = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=2)
    finally:
        stop.set()
        t.join()
    assert res.stats["jobs"] == 2 and res.stats["files"] == 600
    assert [f.path for f in res.findings] == ["f005.txt"]


def _big(n: int) -> bytes:
    return b"r" * n


def test_a_big_task_queued_behind_a_big_result_does_not_hang() -> None:
    """One worker, two tasks: the first answers 8 MiB, the second sends 8 MiB. Written blocking, the parent would
    wait for the worker to read the second task while the worker waited for the parent to read its first result."""
    def hung(*_: Any) -> None:
        raise TimeoutError("the pool hung")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    pool = LeanPool(1, mp.get_context("fork"), _nothing, (), depth=2)
    try:
        first = pool.submit(_big, 8 << 20)
        second = pool.submit(len, b"t" * (8 << 20))
        pool.wait([first, second], first=False)
        assert len(first.result()) == 8 << 20 and second.result() == 8 << 20
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        pool.shutdown()
