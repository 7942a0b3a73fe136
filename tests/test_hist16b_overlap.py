"""Issue 16, history (hist16b): the sweep's serial start is overlapped. The process pool starts while git still
lists (a full sweep of a repository that is not small), the commit items come before the blob listing is
needed, and a worker's reader does not ask the kernel about its git process once per blob. Each test checks
what happens in which order (or how often), never time."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import executors_local, history
from veritensor_fast.findings import Item
from veritensor_fast.history import scan_history
from veritensor_fast.sources import git_list
from veritensor_fast.sources.git import GitHistorySource
from veritensor_fast.sources.git_overlap import OverlappedListing
from veritensor_fast.sources.git_read import BlobReader
from veritensor_fast.worker import ScanOptions

from conftest import git_run, hf_token, init_repo


def _repo(tmp_path: Path, commits: int = 4) -> tuple[Path, list[str]]:
    """``commits`` commits, the first two adding a token each (their ids returned)."""
    repo = init_repo(tmp_path / "r")
    intro = []
    for i in range(commits):
        (repo / f"f{i}.py").write_text(f"T = '{hf_token()}'\n" if i < 2 else f"x = {i}\n" * 40)
        git_run(repo, "add", ".")
        git_run(repo, "commit", "-q", "-m", f"c{i}")
        if i < 2:
            intro.append(git_run(repo, "rev-parse", "HEAD").stdout.strip())
    return repo, intro


def _events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record, in order, when the pool is built and when the blob listing (``rev-list --objects``) is read."""
    events: list[str] = []
    real_parse, real_init = git_list.parse_reachable, executors_local.PoolExecutor.__init__

    def parse(*a: Any, **kw: Any) -> Any:
        events.append("listing read")
        return real_parse(*a, **kw)

    def init(self: Any, *a: Any, **kw: Any) -> None:
        events.append("pool")
        real_init(self, *a, **kw)

    real_iter = OverlappedListing.__iter__

    def overlapped(self: Any) -> Any:  # the listing read as git writes it (hist18), beside the pool
        events.append("listing read")
        return real_iter(self)

    monkeypatch.setattr(git_list, "parse_reachable", parse)
    monkeypatch.setattr(OverlappedListing, "__iter__", overlapped)
    monkeypatch.setattr(executors_local.PoolExecutor, "__init__", init)
    return events


def test_pool_starts_before_the_listing_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full ``--jobs 2`` sweep forks its workers while git lists; before, the engine first read the whole
    listing (to decide whether the scan was small) and only then started the pool."""
    repo, intro = _repo(tmp_path)
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1, raising=False)  # this small repository counts as large
    events = _events(monkeypatch)
    r = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False)
    assert events[:2] == ["pool", "listing read"]
    assert r.stats["jobs"] == 2
    assert sorted(f.commit["id"] for f in r.findings if f.commit) == sorted(intro)


def test_small_or_incremental_sweeps_keep_the_engine_decision(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """No early pool for a small repository (the engine's small-scan shortcut runs it in-process), nor for an
    incremental sweep (it usually lists a few new blobs: starting workers would cost more than scanning)."""
    repo, intro = _repo(tmp_path)
    events = _events(monkeypatch)
    ds = str(tmp_path / "ds.sqlite")
    first = scan_history([str(repo)], ScanOptions(), jobs=2, datastore=ds)
    assert "pool" not in events and first.stats["jobs"] == 1  # small: in-process
    monkeypatch.setattr(history, "EARLY_POOL_OBJECTS", 1, raising=False)
    events.clear()
    second = scan_history([str(repo)], ScanOptions(), jobs=2, datastore=ds)
    assert second.stats["listing"] == "incremental" and "pool" not in events
    assert sorted(f.commit["id"] for f in second.findings if f.commit) == sorted(intro)


def test_commit_items_come_before_the_blob_listing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit list is ready long before ``rev-list --objects`` ends: its items are yielded first, so the
    workers scan commit messages while the blob walk still runs."""
    repo, _ = _repo(tmp_path)
    events = _events(monkeypatch)
    src = GitHistorySource(str(repo), use_datastore=False)
    kinds = []
    try:
        for it in src.items():
            if isinstance(it, Item):
                kinds.append(it.kind)
                if it.kind == "commit":
                    assert "listing read" not in events
    finally:
        src.close()
    n = len(git_run(repo, "rev-list", "--all").stdout.split())
    assert kinds == ["commit"] * n + ["blob"] * (len(kinds) - n) and len(kinds) > n


def test_reader_checks_git_once_per_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening the prefetched blobs of a batch does not call ``poll`` (a ``waitpid`` system call) per blob; a
    git that dies mid-batch is still noticed (the next read gets EOF) and restarted."""
    repo, _ = _repo(tmp_path, commits=6)
    blobs = [ln.split()[2] for ln in git_run(repo, "ls-tree", "-r", "HEAD").stdout.splitlines()]
    items = [Item("blob", oid, oid, -1, str(repo)) for oid in blobs]
    polls = []
    real = subprocess.Popen.poll

    def poll(self: subprocess.Popen[bytes]) -> int | None:
        polls.append(1)
        return real(self)

    monkeypatch.setattr(subprocess.Popen, "poll", poll)
    r = BlobReader()
    try:
        r.prefetch(items)
        for it in items:
            assert r.open(it)[0]
        assert len(polls) <= 1, polls
        # git killed while a batch is in flight: the rest of the batch is read from a new git
        r.prefetch(items)
        proc = r._procs[str(repo)].proc
        proc.kill()
        proc.wait()
        got = []
        for it in items:
            try:
                got.append(r.open(it)[0])
            except Exception as exc:  # the object in flight when git died is reported, never lost silently
                got.append(type(exc).__name__.encode())
        assert sum(1 for g in got if g != b"InputError") >= len(items) - 1
    finally:
        r.close()
