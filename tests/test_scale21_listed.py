"""What a walk task lists crosses the parent still pickled (``executors_local.Listed``).

With a pool, the workers walk the tree (``_walk``) and hand back the batches they listed; the parent, one process
for every worker, used to unpickle each batch's ``dir`` items and pickle them again for the worker that scans
them (~220 us a batch, 200-300 batches a scan, on the same cores as the workers). It now only counts them and
sends them on as they came. These tests run the real pool (``--jobs 2``, forked) in this process."""

from __future__ import annotations

import os
import pickle
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import engine, executors_local, worker
from veritensor_fast.executors_local import PLANNED, SINGLE, Listed, _merge, _merge_listed
from veritensor_fast.findings import Item
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions

from conftest import hf_token


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "SMALL_SCAN_BYTES", 0)
    monkeypatch.setattr(executors_local, "start_method", lambda: "fork")  # the workers inherit the patches


def _tree(root: Path, tok: str) -> None:
    """1,500 files in 30 directories: the parent lists the first 1,024 (d00-d20), the workers walk the rest."""
    for d in range(30):
        sub = root / f"d{d:02}"
        sub.mkdir(parents=True)
        for i in range(50):
            (sub / f"f{i:02}.txt").write_text(f"T = '{tok}'\n" if i == 7 and d in (3, 25, 29) else "x\n")


def test_the_parent_never_repickles_the_items_a_walk_listed(tmp_path: Path, forked: None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    tok = hf_token()
    _tree(tmp_path, tok)
    parent = os.getpid()
    sent: list[str] = []  # items the parent pickled for a worker, from the directories only workers walk
    real = Item.__reduce__

    def reduce(self: Item) -> Any:
        if os.getpid() == parent and self.kind != "tree" and os.path.basename(self.key) >= "d25":
            sent.append(self.key)
        return real(self)

    monkeypatch.setattr(Item, "__reduce__", reduce)
    res = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=2)
    assert sorted(f.path for f in res.findings) == ["d03/f07.txt", "d25/f07.txt", "d29/f07.txt"]
    assert res.stats["files"] == 1500 and not res.errors
    assert sent == []  # fails before this change: every walked batch was unpickled and pickled again here


def _listed(names: list[str], size: int = 10) -> Listed:
    return Listed.of([Item("file", f"/r/{n}", n, size) for n in names])


def test_listed_batches_round_trip_and_merge_as_batches_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(executors_local, "BATCH_ITEMS", 4)
    a, b, c = _listed(["a", "b"]), _listed(["c"]), _listed(["d", "e"])
    again = pickle.loads(pickle.dumps(a))
    assert [it.path for it in again.items()] == ["a", "b"] and (again.files, again.size) == (2, 20)
    retry: deque[Any] = deque([(b, PLANNED), (c, PLANNED), (_listed(["z"]), SINGLE)])
    merged = _merge_listed(a, retry)
    assert [it.path for it in merged.items()] == ["a", "b", "c"] and merged.files == 3
    assert len(retry) == 2 and retry[0][0] is c  # d, e would make 5 files: left for the next task
    # a plain batch stops at a Listed one (and the other way round)
    plain = [Item("file", "/r/p", "p", 1)]
    retry = deque([(c, PLANNED)])
    assert _merge(plain, retry) == plain and len(retry) == 1


def test_a_failing_task_of_listed_batches_is_retried_item_by_item(tmp_path: Path, forked: None,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A task of walked batches that raises (a reader bug) loses only the file that fails."""
    tok = hf_token()
    _tree(tmp_path, tok)
    real = worker.WorkerContext.run_batch

    def run_batch(self: Any, batch: list[Item]) -> Any:
        if any(it.kind == "file" and it.path == "d27/f11.txt" for it in batch):
            raise RuntimeError("reader bug")
        if any(it.kind == "dir" and it.path == "d27" for it in batch):
            raise RuntimeError("reader bug")
        return real(self, batch)

    monkeypatch.setattr(worker.WorkerContext, "run_batch", run_batch)
    res = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=2)
    assert [(e.path, e.kind) for e in res.errors] == [("d27/f11.txt", "internal")]
    assert sorted(f.path for f in res.findings) == ["d03/f07.txt", "d25/f07.txt", "d29/f07.txt"]
    assert res.stats["files"] == 1499
