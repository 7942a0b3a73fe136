"""The walk off the critical path: the parent lists directory shards, the workers build the per-file items,
and forked workers adopt the worker state the parent built once.

Ground truth for the shards is the plain listing (``FileSource.items``): a sharded listing, expanded, must give
exactly the items and errors it gives, on every root shape. Nothing here times anything.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import engine, executors_local, worker
from veritensor_fast.findings import Item, ScanError
from veritensor_fast.sources.fs import FileSource, expand_shard
from veritensor_fast.worker import ScanOptions, expand_items

from conftest import hf_token


def make_tree(root: Path, files: int = 40) -> list[str]:
    """Nested directories, a root-level file, an undecodable name, a FIFO, a symlink, a file over the size
    limit, default-excluded directories and a virtualenv; returns the tokens planted."""
    toks = []
    for sub in ("", "a", "a/b", "a/b/c", "z"):
        d = root / sub
        d.mkdir(parents=True, exist_ok=True)
        for i in range(files):
            if i % 13 == 0:
                toks.append(hf_token())
                (d / f"f{i:03}.py").write_text(f"T = '{toks[-1]}'\n")
            else:
                (d / f"f{i:03}.txt").write_text("nothing here\n" * (i % 5))
    (root / "a" / "big.log").write_bytes(b"x" * 5000)  # over the test's shard byte limit: its own item
    with open(os.fsencode(root / "a") + b"/bad\xffname.txt", "wb") as f:
        f.write(f"k = '{hf_token()}'\n".encode())
    os.mkfifo(root / "a" / "b" / "pipe")
    os.symlink(root / "z" / "f001.txt", root / "a" / "link.txt")
    (root / "z" / "huge.bin").write_bytes(b"\0" * 3000)
    (root / "node_modules").mkdir()
    (root / "node_modules" / "x.js").write_text("x\n")
    (root / "venv").mkdir()
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (root / "skipme").mkdir()
    (root / "skipme" / "s.txt").write_text("s\n")
    return toks


def key(it: Item | ScanError) -> tuple[Any, ...]:
    if isinstance(it, ScanError):
        return ("error", it.path, it.kind, it.reason)
    return (it.kind, it.key, it.path, it.size, it.dev, it.ino, it.follow)


def listing(src: FileSource, sharded: bool, max_files: int = 7, max_bytes: int = 4096) -> list[Item | ScanError]:
    out: list[Item | ScanError] = []
    for it in (src.items_sharded(max_files, max_bytes) if sharded else src.items()):
        out.extend(expand_shard(it) if isinstance(it, Item) and it.kind == "dir" else [it])
    return out


@pytest.mark.parametrize("shape", ["plain", "trailing-slash", "dot", "multi-root"])
def test_sharded_listing_expands_to_exactly_the_plain_listing(tmp_path: Path, shape: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "t"
    make_tree(root)
    if shape == "plain":
        roots = [str(root)]
    elif shape == "trailing-slash":
        roots = [str(root) + "/"]
    elif shape == "dot":
        monkeypatch.chdir(root)
        roots = ["."]
    else:
        roots = [str(root / "a"), str(root / "z"), str(root / "f000.py")]
    mk = dict(excludes=("skipme",), max_file_size=2500)
    plain_src, shard_src = FileSource(roots, **mk), FileSource(roots, **mk)  # type: ignore[arg-type]
    plain = listing(plain_src, False)
    sharded = listing(shard_src, True)
    assert sorted(map(key, sharded)) == sorted(map(key, plain))
    assert len(plain) > 100
    assert plain_src.stats() == shard_src.stats()
    # the parent built shards, not one item per file: at most 7 files per shard
    raw = list(FileSource(roots, **mk).items_sharded(7, 4096))  # type: ignore[arg-type]
    shards = [it for it in raw if isinstance(it, Item) and it.kind == "dir"]
    assert shards and all(1 <= len(s.entries) <= 7 for s in shards)
    assert sum(len(s.entries) for s in shards) > 0.9 * sum(isinstance(i, Item) for i in plain)
    # the FIFO, the over-limit file and the big file are decided by the listing, never shards
    in_shards = {e[0] for s in shards for e in s.entries}
    assert not in_shards & {"pipe", "huge.bin", "big.log"}
    if shape != "multi-root":
        assert any(key(e)[:3] == ("error", "a/b/pipe", "not-regular") for e in sharded)


def test_batches_count_a_shard_as_its_files() -> None:
    shard = Item("dir", "/d", "d", 300, entries=tuple((f"n{i}", 1, 0, 0) for i in range(300)))
    small = [Item("file", f"/f{i}", f"f{i}", 1) for i in range(10)]
    out = list(engine.make_batches([shard, *small], [], max_items=256, max_bytes=1 << 20))
    assert out[0] == [shard]  # 300 files: the batch is full at once
    assert out[1] == small


def flat(res: Any) -> tuple[list[Any], list[Any], dict[str, Any]]:
    stats = {k: v for k, v in res.stats.items() if k not in ("seconds", "mb_per_s", "jobs")}
    return ([(f.path, f.line, f.column, f.rule_id, f.fingerprint) for f in res.findings],
            [(e.path, e.kind, e.reason) for e in res.errors], stats)


def test_pool_gets_directory_shards_and_finds_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--jobs 2``: what is pickled to the workers is one ``dir`` item per directory shard, not an ``Item``
    per file; the result is identical to ``--jobs 1``'s."""
    root = tmp_path / "t"
    toks = make_tree(root, files=200)
    sent: list[list[Item]] = []
    real = executors_local.PoolExecutor._submit

    def spy(self: Any, inflight: Any, unit: Any) -> bool:
        sent.append(unit[0])
        return bool(real(self, inflight, unit))

    monkeypatch.setattr(executors_local.PoolExecutor, "_submit", spy)
    two = engine.scan(FileSource([str(root)]), ScanOptions(), jobs=2)
    one = engine.scan(FileSource([str(root)]), ScanOptions(), jobs=1)
    assert flat(two) == flat(one)
    assert {t for t in toks} <= {f.secret for f in two.findings}
    assert two.stats["jobs"] == 2 and two.stats["files"] == 1004  # 5 x 200, big.log, bad name, huge.bin, skipme
    planned = [it for b in sent for it in b]
    assert sum(len(it.entries) for it in planned if it.kind == "dir") >= 1000
    assert len(planned) < 20  # 1,004 files in a handful of pickled references


COUNT_CONTEXTS = """
import os, sys
from veritensor_fast import engine, worker
from veritensor_fast.sources.fs import FileSource
log = sys.argv[2]
real = worker.WorkerContext.__init__
def counted(self, *a, **kw):
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\\n")
    real(self, *a, **kw)
worker.WorkerContext.__init__ = counted
res = engine.scan(FileSource([sys.argv[1]]), worker.ScanOptions(), jobs=2)
print(os.getpid(), res.stats["jobs"], len(res.findings))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_forked_workers_adopt_the_parents_worker_state(tmp_path: Path) -> None:
    """Rules, detectors and Hyperscan databases are built once, in the parent, not again in every worker
    (each worker used to build its own: ~0.07 CPU-s with the database cache warm, ~1 s when one compiles)."""
    import subprocess

    root = tmp_path / "t"
    toks = make_tree(root, files=200)
    log = tmp_path / "ctx.log"
    p = subprocess.run([sys.executable, "-c", COUNT_CONTEXTS, str(root), str(log)], capture_output=True,
                       text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    pid, jobs, found = p.stdout.split()
    assert jobs == "2" and int(found) >= len(toks)
    assert log.read_text().split() == [pid]  # one context, built in the parent


def test_a_failed_shard_is_retried_file_by_file(tmp_path: Path) -> None:
    """The supervisor expands a shard whose task failed into its files, so one bad file costs only itself."""
    d = tmp_path / "d"
    d.mkdir()
    for n in ("a.txt", "b.txt", "c.txt"):
        (d / n).write_text(n)
    shard = next(iter(FileSource([str(d)]).items_sharded(256, 1 << 20)))
    assert isinstance(shard, Item) and shard.kind == "dir"
    files = expand_items([shard])
    assert [f.path for f in files] == ["a.txt", "b.txt", "c.txt"]
    assert all(f.kind == "file" and stat.S_ISREG(os.stat(f.key).st_mode) for f in files)
    assert expand_items(files) is files  # plain batches pass through untouched


def test_a_context_with_other_options_is_not_adopted() -> None:
    o = ScanOptions()
    db = engine.compile_ruleset(o.ruleset())
    ctx = worker.WorkerContext(o, db)
    try:
        worker.prebuild(ctx, db)
        worker.init_worker(o, db)
        assert worker._CTX is ctx
        worker.init_worker(ScanOptions(python_ast=False), db)
        assert worker._CTX is not ctx
    finally:
        worker.prebuild(None)
        worker._CTX = None
