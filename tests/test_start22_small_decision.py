"""The small-scan decision at ``--jobs 2`` lists no more than it needs (issue 16: the serial start).

A scan whose files fit in ``SMALL_SCAN_BATCHES`` batches runs in-process; before forking the workers, the
parent used to list (and stat) a whole extra batch of files just to learn that there was one. One more file
after the small number of full batches already says the scan is not small: the decision is the same, made
while the parent has listed 2 batches and one file instead of 3 batches. These tests walk a real directory with
the real ``FileSource`` and stop the scan where the pool would be forked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import engine, executors_local
from veritensor_fast.findings import Item, ScanError
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import BATCH_ITEMS, ScanOptions


class _Forked(Exception):
    """Raised where the pool would start: the scan is not small."""


def _listed_at_fork(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bool, int]:
    """(pool started, files the walk had yielded by then) for ``scan(root, jobs=2)``."""
    listed = [0]
    real = FileSource.items_sharded

    def counting(self: FileSource, *a: Any, **k: Any) -> Iterator[Item | ScanError]:
        for it in real(self, *a, **k):
            if isinstance(it, Item):
                listed[0] += len(it.entries) or (0 if it.kind == "tree" else 1)
            yield it

    def pool(*_a: Any, **_k: Any) -> Any:
        raise _Forked(listed[0])

    monkeypatch.setattr(FileSource, "items_sharded", counting)
    monkeypatch.setattr(executors_local, "PoolExecutor", pool)
    try:
        engine.scan(FileSource([str(root)], ()), ScanOptions(), jobs=2)
    except _Forked as exc:
        return True, exc.args[0]
    return False, listed[0]


def _files(root: Path, per_dir: list[int]) -> Path:
    for d, n in enumerate(per_dir):
        sub = root / f"d{d:03}"
        sub.mkdir(parents=True)
        for i in range(n):
            (sub / f"f{i:04}.txt").write_text("x\n")
    return root


def test_not_small_is_decided_one_file_after_the_small_batches(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 files in directories of 10: the pool starts once 2 batches and one more directory are listed
    (520 + 10 files; before: 3 batches, 780)."""
    root = _files(tmp_path / "t", [10] * 100)  # directory shards of 10 files: batches of 260
    forked, listed = _listed_at_fork(root, monkeypatch)
    assert forked
    assert listed <= engine.SMALL_SCAN_BATCHES * BATCH_ITEMS + BATCH_ITEMS // 2, listed  # baseline: 780


@pytest.mark.parametrize("per_dir, small", [
    ([BATCH_ITEMS, BATCH_ITEMS], True),  # exactly 2 full batches: in-process
    ([BATCH_ITEMS, BATCH_ITEMS, 1], False),  # one file more: a third batch
    ([BATCH_ITEMS, 100], True),
    ([50] * 12 + [12], False),  # shards of 50: batches close at 300 files, the last 12 make a third
    ([3], True),
])
def test_the_decision_is_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_dir: list[int],
                                   small: bool) -> None:
    root = _files(tmp_path / "t", per_dir)
    forked, _ = _listed_at_fork(root, monkeypatch)
    assert forked is not small


def test_errors_after_the_small_batches_make_no_batch() -> None:
    """Only a ``ScanError`` after the small batches: still small (it goes to the errors, as before)."""
    errors: list[ScanError] = []
    items: list[Item | ScanError] = [Item("file", f"/x/{i}", f"{i}", 1) for i in range(2 * BATCH_ITEMS)]
    items.append(ScanError("fifo", "not a regular file", "not-regular"))
    ahead = engine._Ahead(items)
    batches, small = engine._peek_small(engine.make_batches(ahead, errors), ahead)
    assert small
    assert [len(b) for b in batches] == [BATCH_ITEMS, BATCH_ITEMS]
    assert [e.path for e in errors] == ["fifo"]


def test_a_held_back_batch_still_counts() -> None:
    """A big file yields a batch of its own while smaller files wait: the waiting batch is a third one even
    though no item follows it (the answer the full read-ahead gave)."""
    errors: list[ScanError] = []
    big = engine.BATCH_BYTES
    items: list[Item | ScanError] = [Item("file", "/x/a", "a", 10), Item("file", "/x/big1", "big1", big),
                                     Item("file", "/x/big2", "big2", big)]
    ahead = engine._Ahead(items)
    batches, small = engine._peek_small(engine.make_batches(ahead, errors), ahead)
    old, old_small = engine._peek_small(engine.make_batches(iter(items), []))
    assert small is old_small
    assert [[i.path for i in b] for b in batches] == [[i.path for i in b] for b in old]
