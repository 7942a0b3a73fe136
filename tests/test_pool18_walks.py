"""Walks ahead of the scan (issue 16, scaling): with a pool, a task of ``tree`` items only lists (``_walk``) and
hands back what it listed as batches, with the rest of its walk; it scans nothing.

Before, a task walked about one batch, scanned it, and only then handed the rest of the walk back: one slow file
(a big model, a slow disk) held the rest of the tree from every other worker. These tests run the real pool
(``--jobs 2``) in this process, with batches of 4 files so that a small tree has many of them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import engine, executors_local, executors_tasks, worker
from veritensor_fast.sources.fs import FileReader, FileSource
from veritensor_fast.worker import BatchResult, ScanOptions

from conftest import hf_token

#: The longest the slow file waits for the rest of the tree to be scanned. It waits on the parent's word, not a
#: fixed time: on a loaded machine (CI with 2 cores) a fixed 2 s was once too short for the other worker to scan
#: the 150 other files, and the test failed with nothing wrong. A pool that holds the rest of the tree behind the
#: slow file never gives the word, and the test fails after this long.
SLOW_MAX_S = 30.0


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 4 files, walks of 8: the parent lists 16 files, then hands the rest of its walk off."""
    for mod in (engine, worker, executors_local, executors_tasks):
        monkeypatch.setattr(mod, "BATCH_ITEMS", 4)
    monkeypatch.setattr(executors_tasks, "WALK_FILES", 8)
    monkeypatch.setattr(engine, "SMALL_SCAN_BYTES", 0)
    # the workers must inherit these patches: fork, even when an earlier test of the suite left a thread running
    # (the scan would choose forkserver then, whose workers import the modules afresh)
    monkeypatch.setattr(executors_local, "start_method", lambda: "fork")


def _tree(root: Path, dirs: int = 20, per_dir: int = 8) -> None:
    """``dirs`` directories of ``per_dir`` files each: the parent lists ``d00`` and ``d01`` and hands the rest
    of its walk off; ``d02`` is the first directory a worker walks."""
    for d in range(dirs):
        sub = root / f"d{d:02}"
        sub.mkdir(parents=True)
        for i in range(per_dir):
            (sub / f"f{i}.txt").write_text(f"file {d} {i}\n")


def test_a_slow_file_does_not_hold_the_rest_of_the_tree(tmp_path: Path, small_batches: None,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "tree"
    _tree(root)
    tok = hf_token()
    (root / "d02" / "slow.txt").write_text(f"T = '{tok}'\n")
    real_open = FileReader.open
    # everything else but the slow file's own batch and those queued behind it on its worker
    expected = 161 - 4 * (1 + executors_local.IN_FLIGHT_PER_JOB)
    word = tmp_path / "the-rest-is-scanned"  # outside the scanned tree

    def slow_open(self: FileReader, item: Any) -> Any:
        if item.path.endswith("slow.txt"):
            deadline = time.monotonic() + SLOW_MAX_S
            while not word.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return real_open(self, item)

    monkeypatch.setattr(FileReader, "open", slow_open)  # the forked workers inherit it
    scanned = 0
    before_slow: list[int] = []

    def progress(res: BatchResult) -> None:
        nonlocal scanned
        if any(f.path.endswith("slow.txt") for f in res.findings):
            before_slow.append(scanned)
        scanned += res.items
        if scanned >= expected:
            word.touch()

    res = engine.scan(FileSource([str(root)]), ScanOptions(), jobs=2, on_progress=progress)
    assert res.stats["jobs"] == 2 and res.stats["files"] == 161
    assert [f.path for f in res.findings] == ["d02/slow.txt"]
    # while the slow file was read, the other worker scanned everything else but the slow file's own batch and
    # those queued behind it on its worker (before: only the 16 files the parent listed; the task that walked
    # d02 held the rest of the walk until the slow file was read)
    assert before_slow and before_slow[0] >= expected


def test_what_the_walks_listed_and_the_scan_has_not_reached_stays_bounded(tmp_path: Path, small_batches: None,
                                                                          ) -> None:
    """Walks run first only while few listed batches wait: the parent holds a number of listed files bounded
    by the workers (``WALK_AHEAD`` batches per worker, plus what the walks in flight list), not by the tree."""
    _tree(tmp_path, dirs=120, per_dir=6)
    listed = scanned = 0
    most = 0

    def progress(res: BatchResult) -> None:
        nonlocal listed, scanned, most
        listed += res.walked[0]
        scanned += res.items
        most = max(most, listed - scanned)

    res = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=2, on_progress=progress)
    assert res.stats["files"] == 720 and not res.errors
    jobs, batch = 2, 4
    window = executors_local.IN_FLIGHT_PER_JOB * jobs
    # listed batches waiting (a walk may add its whole output past the mark), the batches in flight, the walks
    # in flight: each lists about WALK_FILES files, plus the rest of the directory it stopped in
    bound = (executors_local.WALK_AHEAD * jobs + window) * batch + (window + 1) * (8 + 6)
    assert 0 < most <= bound


def test_walks_list_exactly_the_files_one_process_lists(tmp_path: Path, small_batches: None) -> None:
    _tree(tmp_path, dirs=30, per_dir=5)
    (tmp_path / "d03" / "node_modules").mkdir()
    (tmp_path / "d03" / "node_modules" / "x.js").write_text(f"t = '{hf_token()}'\n")  # skipped by default
    tok = hf_token()
    (tmp_path / "d11" / "deep").mkdir()
    (tmp_path / "d11" / "deep" / "k.py").write_text(f"K = '{tok}'\n")
    one = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=1)
    pool = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=2)
    assert pool.stats["jobs"] == 2
    assert [(f.path, f.line, f.column, f.fingerprint) for f in pool.findings] == [
        (f.path, f.line, f.column, f.fingerprint) for f in one.findings] == [
        ("d11/deep/k.py", 1, 6, one.findings[0].fingerprint)]
    assert pool.stats["files"] == one.stats["files"] == 151
    assert pool.stats.get("skipped_dirs") == one.stats.get("skipped_dirs") == ["d03/node_modules"]
