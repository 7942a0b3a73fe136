"""What a batch of shards holds past its bytes crosses the parent still pickled (``executors_local._scan``).

A ``dir`` shard is listed by name; the worker that scans it stats its files and stops at ``BATCH_BYTES``
(``batching.expand_capped``); the files left over come back as shards of their own (``BatchResult.rest``). The
parent, one process serving every worker, used to unpickle each such batch and pickle it again for the worker
that scans it; it now sends it on as it came (``Listed``). These tests run the real pool (``--jobs 2``, forked)
in this process."""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import engine, executors_local, worker
from veritensor_fast.findings import Item
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions

from conftest import hf_token


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "SMALL_SCAN_BYTES", 0)
    monkeypatch.setattr(executors_local, "start_method", lambda: "fork")  # the workers inherit the patches
    # a worker's batch stops at 24 KB of the files its shards hold: most shards are cut, their rest sent back
    monkeypatch.setattr(worker, "BATCH_BYTES", 24 << 10)


def _tree(root: Path, tok: str) -> list[str]:
    """1,200 files of 1-2 KB in 24 directories, a token in some; the expected findings' paths."""
    want = []
    for d in range(24):
        sub = root / f"d{d:02}"
        sub.mkdir(parents=True)
        for i in range(50):
            body = "x = 1\n" * (170 + 3 * i)
            if i % 17 == 5 and d % 5 == 1:
                body += f"T = '{tok}'\n"
                want.append(f"d{d:02}/f{i:02}.py")
            (sub / f"f{i:02}.py").write_text(body)
    return sorted(want)


def test_the_parent_never_repickles_what_a_batch_held_past_its_bytes(tmp_path: Path, forked: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    want = _tree(tmp_path, hf_token())
    parent = os.getpid()
    sent: collections.Counter[str] = collections.Counter()  # shards the parent pickled for a worker, by directory
    real = Item.__reduce__

    def reduce(self: Item) -> Any:
        if os.getpid() == parent and self.kind == "dir":
            sent[self.key] += 1
        return real(self)

    monkeypatch.setattr(Item, "__reduce__", reduce)
    res = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=2)
    assert sorted(f.path for f in res.findings) == want and len(want) == 15
    assert res.stats["files"] == 1200 and not res.errors
    assert sent  # the parent sent the shards it listed itself, once each
    # fails before this change: the rest of each cut shard came back as items and was pickled here again
    assert [k for k, n in sent.items() if n > 1] == []


def test_a_failing_task_of_a_batchs_rest_loses_only_the_file_that_fails(tmp_path: Path, forked: None,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The rest of a cut batch, sent on pickled, is retried item by item when its task raises (a reader bug)."""
    want = _tree(tmp_path, hf_token())
    real = worker.WorkerContext.run_batch
    bad = "d06/f40.py"  # past the first 24 KB of d06: in the rest of its shard

    def run_batch(self: Any, batch: list[Item]) -> Any:
        cut = [it for it in batch if it.kind == "dir" and it.path == "d06" and it.entries
               and it.entries[0][1] >= 0]  # the rest of d06's shard, stat-ed by the worker that cut it
        if any(it.kind == "file" and it.path == bad for it in batch) or any(
                e[0] == "f40.py" for it in cut for e in it.entries):
            raise RuntimeError("reader bug")
        return real(self, batch)

    monkeypatch.setattr(worker.WorkerContext, "run_batch", run_batch)
    res = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=2)
    assert [(e.path, e.kind) for e in res.errors] == [(bad, "internal")]
    assert sorted(f.path for f in res.findings) == want
    assert res.stats["files"] == 1199
