"""Issue 14: a long-lived worker (a Dask worker thread keeps its ``WorkerContext``) that reads blobs of many
repositories one after the other does not keep a ``git cat-file`` per repository alive."""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.findings import Item
from veritensor_fast.sources.git import BlobReader
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import child_argvs, git_run, hf_token, init_repo


def _cat_files() -> list[int]:
    """Pids of this process's live ``git cat-file`` children."""
    return [pid for pid, argv in child_argvs().items() if b"cat-file" in argv]


def _repos(tmp_path: Path, n: int) -> list[tuple[str, str]]:
    out = []
    for i in range(n):
        repo = init_repo(tmp_path / f"r{i}")
        (repo / "s.txt").write_text(f"HF_TOKEN={hf_token()}\n")
        git_run(repo, "add", "s.txt")
        git_run(repo, "commit", "-q", "-m", "s")
        out.append((str(repo), git_run(repo, "rev-parse", "HEAD:s.txt").stdout.strip()))
    return out


def test_many_repository_sweep_leaves_bounded_readers(tmp_path: Path) -> None:
    before = set(_cat_files())
    ctx = WorkerContext(ScanOptions())
    try:
        for repo, oid in _repos(tmp_path, 6):
            res = ctx.run_batch([Item("blob", oid, "s.txt", -1, repo)])
            assert len(res.findings) == 1 and not res.errors
        alive = set(_cat_files()) - before
        assert len(alive) <= getattr(BlobReader, "MAX_OPEN", 2), alive
    finally:
        ctx.close()
    assert not set(_cat_files()) - before


def test_idle_readers_of_finished_repositories_are_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BlobReader, "IDLE_CLOSE_S", -1.0)  # every other repository counts as done
    before = set(_cat_files())
    reader = BlobReader()
    try:
        for repo, oid in _repos(tmp_path, 3):
            data, _ = reader.open(Item("blob", oid, "s.txt", -1, repo))
            assert data.startswith(b"HF_TOKEN=")
            assert len(set(_cat_files()) - before) == 1
        reader.close_origin(repo)
        assert not set(_cat_files()) - before
    finally:
        reader.close()
