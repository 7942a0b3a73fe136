"""The rest of a walk goes to the workers in pieces (issue 16, scaling to many cores).

With a pool, the parent lists the first files and hands what is left of its walk to the workers. Before, it went
out as one ``tree`` item: one worker walked it while every other worker, once the first batches were done, waited
for that walk to hand pieces back (on 16 cores, 15 workers idle at the start of every scan). Now it goes out as
up to ``jobs`` ``tree`` items, each walked by its own task, all at once. These tests run the real pool
(``--jobs 2``, forked) with batches of 4 files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import engine, executors_local, executors_tasks, worker
from veritensor_fast.findings import Item
from veritensor_fast.sources.fs import FileSource, walk_tree
from veritensor_fast.worker import ScanOptions

from conftest import hf_token

#: How long each walk task sleeps before it lists: far longer than forking and sending a task.
WALK_S = 0.6
#: How long each scanning task sleeps first (the walk test): the pieces go to the first worker with room.
BATCH_S = 0.03


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 4 files, walks of 8: the parent lists 16 files, then hands the rest of its walk off."""
    for mod in (engine, worker, executors_local, executors_tasks):
        monkeypatch.setattr(mod, "BATCH_ITEMS", 4)
    monkeypatch.setattr(executors_tasks, "WALK_FILES", 8)
    monkeypatch.setattr(engine, "SMALL_SCAN_BYTES", 0)
    monkeypatch.setattr(executors_local, "start_method", lambda: "fork")  # the workers inherit the patches


def _tree(root: Path, dirs: int = 20, per_dir: int = 8) -> None:
    for d in range(dirs):
        sub = root / f"d{d:02}"
        sub.mkdir(parents=True)
        for i in range(per_dir):
            (sub / f"f{i}.txt").write_text(f"file {d} {i}\n")


def test_the_walk_handed_off_is_walked_by_every_worker_at_once(tmp_path: Path, small_batches: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's first walk task sleeps, then lists: the first two walks (the parent's pieces) overlap in
    time, in two workers. With one piece, the second walk could only start once the first had handed back the
    rest."""
    _tree(tmp_path)
    log = tmp_path.parent / f"{tmp_path.name}-walks.log"
    real_walk = executors_tasks.expand_trees
    slept: list[float] = []

    def slow_walk(batch: list[Item], *a: Any) -> Any:  # what a walk task (``_walk``) runs; the workers inherit it
        t = time.monotonic()
        if not slept:  # once per worker process (each has its own copy of the list)
            slept.append(t)
            time.sleep(WALK_S)
        res = real_walk(batch, *a)
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {t:.6f} {time.monotonic():.6f}\n")
        return res

    monkeypatch.setattr(executors_tasks, "expand_trees", slow_walk)
    real_batch = worker.WorkerContext.run_batch

    def steady_batch(self: worker.WorkerContext, batch: list[Item]) -> Any:
        time.sleep(BATCH_S)  # batches far longer than a fork's head start: each worker takes one piece
        return real_batch(self, batch)

    monkeypatch.setattr(worker.WorkerContext, "run_batch", steady_batch)
    res = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=2)
    assert res.stats["jobs"] == 2 and res.stats["files"] == 160 and not res.errors
    walks = sorted((float(s), float(e), pid) for pid, s, e in (ln.split() for ln in log.read_text().splitlines()))
    (s1, e1, p1), (s2, _e2, p2) = walks[:2]
    assert p1 != p2 and s2 < e1  # two workers listing at once from the start


def test_the_pieces_are_the_rest_of_the_walk_once(tmp_path: Path) -> None:
    """``items_sharded(trees=True, pieces=N)``: the parent's listing and the pieces' walks together list every
    file exactly once, as one process lists them (``items``), and the pieces cover the directories in order."""
    _tree(tmp_path, dirs=9, per_dir=3)
    (tmp_path / "d04" / "deep" / "er").mkdir(parents=True)
    (tmp_path / "d04" / "deep" / "er" / "k.txt").write_text("x\n")
    one = sorted(it.path for it in FileSource([str(tmp_path)]).items() if isinstance(it, Item))
    for pieces in (1, 2, 3, 16):
        got = list(FileSource([str(tmp_path)]).items_sharded(4, 1 << 20, stat_first=5, trees=True, pieces=pieces))
        trees = [it for it in got if isinstance(it, Item) and it.kind == "tree"]
        assert 1 <= len(trees) <= pieces
        assert len(trees) == min(pieces, sum(len(t.entries) for t in trees))
        listed: list[str] = []
        for it in got:
            if not isinstance(it, Item):
                continue
            if it.kind == "dir":
                listed += [os.path.join(it.path, e[0]) for e in it.entries]
            elif it.kind == "file":
                listed.append(it.path)
        for t in trees:
            todo = [t]
            while todo:
                items, errors, _skipped, rest = walk_tree(todo.pop(), 4, 1 << 20, 5)
                assert not errors
                todo += rest
                listed += [os.path.join(it.path, e[0]) for it in items for e in it.entries]
        assert sorted(listed) == one, pieces


def test_findings_and_counts_as_one_process(tmp_path: Path, small_batches: None) -> None:
    _tree(tmp_path, dirs=18, per_dir=5)
    tok = hf_token()
    (tmp_path / "d17" / "deep").mkdir()
    (tmp_path / "d17" / "deep" / "k.py").write_text(f"K = '{tok}'\n")
    (tmp_path / "d03" / "z.env").write_text(f"HF_TOKEN={hf_token()}\n")
    one = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=1)
    pool = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=2)
    assert pool.stats["jobs"] == 2 and pool.stats["files"] == one.stats["files"] == 92
    assert [(f.rule_id, f.path, f.line, f.column, f.fingerprint) for f in pool.findings] == [
        (f.rule_id, f.path, f.line, f.column, f.fingerprint) for f in one.findings]
    assert {f.path for f in pool.findings} == {"d17/deep/k.py", "d03/z.env"}
