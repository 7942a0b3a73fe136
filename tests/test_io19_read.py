"""The per-file read path (io19): each file opened once, items built as ``Item`` builds them, one window at a time.

Ground truth: the files of a directory split across tasks are each opened exactly once in all (before, a file
past the batch's byte cap was opened by ``FileReader.probe``, closed unread and opened again by the task that
read it), and every token is still found; a fast-built ``file`` item equals ``Item(...)`` in every field, hash
and pickle; a large file scanned in windows never holds two windows' bytes at once (docs/resources.md: about
16.2 MiB of file bytes per worker; two windows alive doubled it). Nothing here times anything.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import buffers, windows, worker
from veritensor_fast.buffers import LargeFile
from veritensor_fast.findings import Item
from veritensor_fast.matcher import compile_ruleset
from veritensor_fast.sources import fs
from veritensor_fast.sources.fs import FileReader, FileSource
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import hf_token


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    opts = ScanOptions()
    rs = opts.ruleset()
    return WorkerContext(opts, compile_ruleset(rs), rs)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _run_all(ctx: WorkerContext, batches: list[list[Item]]) -> tuple[int, list[Any]]:
    """Run batches and everything they hand back (``more``, ``rest``) to the end, as the executor does."""
    n, found = 0, []
    todo = list(batches)
    while todo:
        r = ctx.run_batch(todo.pop())
        n += r.items
        found += r.findings
        todo += [[m] for m in r.more] + list(r.rest)
    return n, found


def test_files_past_the_batch_cap_are_opened_once(ctx: WorkerContext, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    toks = [hf_token() for _ in range(4)]
    for i in range(40):
        body = f"K = '{toks[i // 10]}'\n" if i % 10 == 9 else "x = 1\n"
        (tmp_path / f"f{i:02}.py").write_bytes(body.encode() + b"#" * 300)
    (tmp_path / "big.log").write_bytes(b"y" * 5000 + f"\nT = '{toks[0]}'\n".encode())
    monkeypatch.setattr(worker, "BATCH_BYTES", 2000)  # cut after ~6 files; big.log deferred to its own task
    src = FileSource([str(tmp_path)], default_excludes=False)
    shards = [it for it in src.items_sharded(64, 1 << 20, 0) if isinstance(it, Item)]
    assert [it.kind for it in shards] == ["dir"]
    opened: list[str] = []
    real_open = os.open

    def counting(path: Any, flags: int, *a: Any, **k: Any) -> int:
        fd = real_open(path, flags, *a, **k)
        where = os.readlink(f"/proc/self/fd/{fd}")
        if not flags & getattr(os, "O_DIRECTORY", 0) and where.startswith(str(tmp_path)):
            opened.append(os.path.basename(where))
        return fd

    monkeypatch.setattr(os, "open", counting)
    before = _open_fds()
    n, found = _run_all(ctx, [shards])
    assert _open_fds() == before
    assert n == 41
    assert sorted(f.secret for f in found) == sorted([*toks, toks[0]])
    regular = [x for x in opened if x != "big.log"]
    assert sorted(regular) == sorted(set(regular)) and len(regular) == 40  # each small file opened once


def test_limit_ends_with_release(tmp_path: Path) -> None:
    for i in range(6):
        (tmp_path / f"f{i}").write_bytes(b"a" * 100)
    reader = FileReader()
    reader.limit(250)
    sts = [reader.probe(str(tmp_path / f"f{i}")) for i in range(6)]
    assert all(st.st_size == 100 for st in sts)
    assert len(reader._probed) == 3  # held while the files held had fewer than 250 bytes
    reader.release()
    for i in range(6):
        reader.probe(str(tmp_path / f"f{i}"))
    assert len(reader._probed) == 6  # no limit after ``release``
    reader.release()


def test_a_file_as_big_as_the_limit_does_not_use_it_up(tmp_path: Path) -> None:
    """A file of the limit's size or more goes to a task of its own: the small files after it are still held."""
    (tmp_path / "a_big").write_bytes(b"b" * 1000)
    for i in range(4):
        (tmp_path / f"s{i}").write_bytes(b"a" * 10)
    reader = FileReader()
    reader.limit(500)
    for name in ["a_big", "s0", "s1", "s2", "s3"]:
        reader.probe(str(tmp_path / name))
    assert len(reader._probed) == 5
    reader.release()


@pytest.mark.parametrize("follow", [False, True])
def test_fast_file_items_equal_items(follow: bool) -> None:
    for key, path, size, dev, ino in [("/a/b.py", "b.py", 10, 1, 2), ("/x/\udcff", "\\xff", 0, 0, 0)]:
        fast = fs.file_item(key, path, size, dev, ino, follow)
        want = Item("file", key, path, size, dev=dev, ino=ino, follow=follow)
        assert type(fast) is Item
        assert dataclasses.astuple(fast) == dataclasses.astuple(want) and fast == want
        assert hash(fast) == hash(want) and pickle.loads(pickle.dumps(fast)) == want
        assert dataclasses.replace(fast, span=(0, 1, 2, 3)).span == (0, 1, 2, 3)
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.size = 3  # type: ignore[misc]


def test_expanded_shards_equal_the_listing(tmp_path: Path) -> None:
    """``expand_shard``'s items (built fast) are those ``FileSource.items`` lists, field for field."""
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text("x" * i)
    (tmp_path / "é.txt").write_text("not ASCII")
    with open(os.path.join(os.fsencode(tmp_path), b"\xff\xfe.txt"), "wb") as fh:  # not UTF-8: shown escaped
        fh.write(b"undecodable name")
    want = [it for it in FileSource([str(tmp_path)], default_excludes=False).items() if isinstance(it, Item)]
    for stat_first in (0, 100):  # names only (stat-ed by the worker), and sizes known (stat-ed while listed)
        src = FileSource([str(tmp_path)], default_excludes=False)
        got = [f for sh in src.items_sharded(64, 1 << 20, stat_first) if isinstance(sh, Item)
               for f in fs.expand_shard(sh)[0]]
        assert [dataclasses.astuple(x) for x in got] == [dataclasses.astuple(x) for x in want]
    assert {"é.txt", "\\xff\\xfe.txt"} <= {it.path for it in want}


class _Tracked(bytes):
    alive = 0
    most = 0

    def __new__(cls, data: bytes) -> _Tracked:
        cls.alive += 1
        cls.most = max(cls.most, cls.alive)
        return super().__new__(cls, data)

    def __del__(self) -> None:
        type(self).alive -= 1


class _TrackedFile(LargeFile):
    def pread(self, offset: int, n: int) -> bytes:
        data = super().pread(offset, n)
        return _Tracked(data) if n > 4096 else data  # window reads only (not the 4 KiB head)


class _HoldingScan:
    """An item scan that keeps the buffer it finished (as ``ItemScan`` keeps it for line and column)."""

    def __init__(self, ctx: Any, item: Item) -> None:
        self.errors: list[Any] = []
        self.keep = (0, 0)
        self.buf: Any = None

    def finish(self, data: Any) -> list[Any]:
        self.buf = data
        return []


class _NoDetectors:
    def scan_buffer(self, data: Any, item: Item, scan: Any, skip: Any = (), head: Any = None) -> None:
        assert len(data) > 4096


def test_one_window_of_file_bytes_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buffers, "WINDOW", 64 << 10)
    monkeypatch.setattr(buffers, "OVERLAP", 4 << 10)
    p = tmp_path / "big.bin"
    p.write_bytes(os.urandom(1 << 20))
    fd = os.open(p, os.O_RDONLY)
    big = _TrackedFile(fd, os.fstat(fd))
    item = Item("file", str(p), "big.bin", big.size)
    _Tracked.alive = _Tracked.most = 0
    try:
        out = windows.scan_windows(_NoDetectors(), big, item, _HoldingScan(None, item))  # type: ignore[arg-type]
    finally:
        assert big.close() is None
    assert out == []
    assert _Tracked.most == 1  # the next window is read only once the last one (and its scan) is gone
    assert _Tracked.alive == 0
