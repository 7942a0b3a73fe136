"""A shard's files are stat-ed by opening them (``FileReader.probe``): no ``stat`` + ``open`` + ``fstat`` per file.

Ground truth is the plain expansion (``expand_shard`` with ``os.stat``): the worker's batch must give exactly its
items, errors, findings and deferred files, on regular files, a FIFO, a symlink swapped in, a vanished file and a
large file deferred to its own task, and must leave no descriptor open. Nothing here times anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import worker
from veritensor_fast.findings import Item, ScanError
from veritensor_fast.matcher import compile_ruleset
from veritensor_fast.sources import fs, fs_read
from veritensor_fast.sources.fs import FileReader, FileSource, expand_shard
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import hf_token


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    opts = ScanOptions()
    rs = opts.ruleset()
    return WorkerContext(opts, compile_ruleset(rs), rs)


def _shards(root: Path) -> list[Item]:
    """Every file listed by name only (``stat_first=0``): the worker stats them all."""
    src = FileSource([str(root)], default_excludes=False)
    out = [it for it in src.items_sharded(64, 1 << 20, 0) if isinstance(it, Item)]
    assert out and all(it.kind == "dir" for it in out)
    return out


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _key(x: Item | ScanError) -> tuple[Any, ...]:
    if isinstance(x, ScanError):
        return ("error", x.path, x.kind, x.reason)
    return (x.kind, x.key, x.path, x.size, x.dev, x.ino, x.follow)


def test_a_shard_is_read_without_a_stat_per_file(ctx: WorkerContext, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    toks = [hf_token() for _ in range(3)]
    for i in range(30):
        (tmp_path / f"f{i:02}.py").write_text(f"T = '{toks[i % 3]}'\n" if i % 10 == 0 else "x = 1\n")
    shards = _shards(tmp_path)
    real_stat = os.stat
    paths: list[str] = []

    def counting(path: Any, *a: Any, **k: Any) -> os.stat_result:
        if str(path).startswith(str(tmp_path)):
            paths.append(str(path))
        return real_stat(path, *a, **k)

    monkeypatch.setattr(fs.os, "stat", counting)
    before = _open_fds()
    res = ctx.run_batch(shards)
    # each file: one open and one fstat, no stat of its path; the directory: at most one stat for the batch (its
    # mtime, whether a Distributed Checkpoint's metadata names must be listed again: models.sniff, model24)
    assert [p for p in paths if p != str(tmp_path)] == [] and len(paths) <= 1, paths
    assert _open_fds() == before
    assert res.items == 30 and not res.errors
    assert sorted(f.secret for f in res.findings) == sorted(toks)


def test_probe_reports_what_stat_reported(ctx: WorkerContext, tmp_path: Path) -> None:
    """Files that changed after the listing: the same errors and items as the plain expansion."""
    for i in range(8):
        (tmp_path / f"f{i}.txt").write_text("hello\n")
    shards = _shards(tmp_path)
    os.unlink(tmp_path / "f1.txt")  # vanished
    os.unlink(tmp_path / "f2.txt")
    os.symlink(tmp_path / "f0.txt", tmp_path / "f2.txt")  # a symlink now
    os.unlink(tmp_path / "f3.txt")
    os.mkfifo(tmp_path / "f3.txt")  # a FIFO now
    os.unlink(tmp_path / "f4.txt")
    os.mkdir(tmp_path / "f4.txt")  # a directory now
    want = []
    for sh in shards:
        items, errors, deferred = expand_shard(sh, 0)
        want += [_key(x) for x in [*items, *errors, *deferred]]
    reader = FileReader()
    before = _open_fds()
    got = []
    for sh in shards:
        items, errors, deferred = expand_shard(sh, 0, reader.probe)
        got += [_key(x) for x in [*items, *errors, *deferred]]
    assert got == want
    assert len(reader._probed) == 4  # the regular files left (f0, f5, f6, f7) are held open for ``open``
    buf, close = reader.open(next(it for sh in shards for it in expand_shard(sh, 0)[0]))
    close()
    assert buf == b"hello\n" and len(reader._probed) == 3
    reader.release()
    assert _open_fds() == before and not reader._probed


def test_deferred_and_cut_files_are_closed_and_scanned_elsewhere(ctx: WorkerContext, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    tok = hf_token()
    (tmp_path / "big.log").write_bytes(b"y" * 3000 + f"\nK = '{tok}'\n".encode())
    for i in range(20):
        (tmp_path / f"s{i:02}.txt").write_bytes(b"z" * 400)
    monkeypatch.setattr(worker, "BATCH_BYTES", 2000)  # the big file is deferred, the batch is cut at 2000 bytes
    before = _open_fds()
    res = ctx.run_batch(_shards(tmp_path))
    assert _open_fds() == before
    assert [os.path.basename(m.key) for m in res.more] == ["big.log"] and res.rest
    n, found = res.items, list(res.findings)
    todo = [[m] for m in res.more] + list(res.rest)
    while todo:
        r = ctx.run_batch(todo.pop())
        n += r.items
        found += r.findings
        todo += [[m] for m in r.more] + list(r.rest)
        assert _open_fds() == before
    assert n == 21 and [f.secret for f in found] == [tok]


def test_probe_holds_at_most_probe_max_descriptors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(12):
        (tmp_path / f"f{i:02}").write_text("a\n")
    reader = FileReader()
    monkeypatch.setattr(FileReader, "PROBE_MAX", 5)
    sts = [reader.probe(str(tmp_path / f"f{i:02}")) for i in range(12)]
    assert len(reader._probed) == 5 and all(st.st_size == 2 for st in sts)
    reader.release()


def test_probe_holds_a_quarter_of_the_descriptor_limit_at_most(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(12):
        (tmp_path / f"f{i:02}").write_text("a\n")
    monkeypatch.setattr(fs_read, "_fd_limit", lambda: 16)
    reader = FileReader()
    for i in range(12):
        reader.probe(str(tmp_path / f"f{i:02}"))
    assert len(reader._probed) == 4
    reader.release()
