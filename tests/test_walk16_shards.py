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


def listing(src: FileSource, sharded: bool, max_files: int = 7, max_bytes: int = 4096,
            stat_first: int = -1) -> list[Item | ScanError]:
    out: list[Item | ScanError] = []
    for it in (src.items_sharded(max_files, max_bytes, stat_first) if sharded else src.items()):
        if isinstance(it, Item) and it.kind == "dir":
            items, errors, deferred = expand_shard(it, max_bytes)
            out.extend([*items, *errors, *deferred])
        else:
            out.append(it)
    return out


@pytest.mark.parametrize("stat_first", [-1, 0, 50])
@pytest.mark.parametrize("shape", ["plain", "trailing-slash", "dot", "multi-root"])
def test_sharded_listing_expands_to_exactly_the_plain_listing(tmp_path: Path, shape: str, stat_first: int,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The listing stats the first files (``-1``: 4 x 7 of them, ``50``) and lists the rest by name, or lists
    every file by name (``0``); either way the expanded listing is the plain one."""
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
    sharded = listing(shard_src, True, stat_first=stat_first)
    assert sorted(map(key, sharded)) == sorted(map(key, plain))
    assert len(plain) > 100
    assert plain_src.stats() == shard_src.stats()
    # the parent built shards, not one item per file: at most 7 files per shard
    raw = list(FileSource(roots, **mk).items_sharded(7, 4096, stat_first))  # type: ignore[arg-type]
    shards = [it for it in raw if isinstance(it, Item) and it.kind == "dir"]
    assert shards and all(1 <= len(s.entries) <= 7 for s in shards)
    assert sum(len(s.entries) for s in shards) > 0.9 * sum(isinstance(i, Item) for i in plain)
    # the FIFO (its directory entry's type) and, with --max-file-size, every file are decided by the listing
    in_shards = {e[0] for s in shards for e in s.entries}
    assert "pipe" not in in_shards and "huge.bin" not in in_shards
    if shape != "multi-root":
        assert any(key(e)[:3] == ("error", "a/b/pipe", "not-regular") for e in sharded)
    without_limit = list(FileSource(roots, excludes=("skipme",)).items_sharded(7, 4096, stat_first))
    entries = [e for s in without_limit if isinstance(s, Item) for e in s.entries]
    names_only = [e for e in entries if e[1] < 0]
    assert len(names_only) > 100
    assert (len(names_only) == len(entries)) == (stat_first == 0)


def test_a_big_file_listed_by_name_is_handed_back_as_its_own_task(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    for i in range(5):
        (d / f"s{i}.txt").write_text("small\n")
    (d / "big.bin").write_bytes(b"\0" * 5000)
    (shard,) = FileSource([str(d)]).items_sharded(256, 4096, stat_first=0)
    assert isinstance(shard, Item) and all(e[1] == -1 for e in shard.entries)
    items, errors, deferred = expand_items([shard], 4096)
    assert [it.path for it in deferred] == ["big.bin"] and deferred[0].size == 5000
    assert sorted(it.path for it in items) == [f"s{i}.txt" for i in range(5)] and not errors
    alone = Item("dir", str(d), "", 0, entries=(("big.bin", -1, 0, 0),))
    assert [it.path for it in expand_items([alone], 4096)[0]] == ["big.bin"]  # a shard of one keeps it
    (d / "s0.txt").unlink()  # vanished after the listing: the worker's stat reports it
    (d / "s1.txt").unlink()
    (d / "s1.txt").symlink_to(d / "s2.txt")  # replaced by a symlink: not followed
    (d / "s3.txt").unlink()
    os.mkfifo(d / "s3.txt")  # replaced by a FIFO
    items, errors, deferred = expand_items([shard], 4096)
    assert sorted((e.path, e.kind) for e in errors) == [("s0.txt", "vanished"), ("s1.txt", "changed"),
                                                        ("s3.txt", "not-regular")]
    assert sorted(it.path for it in items) == ["s2.txt", "s4.txt"]


HANDED_BACK = """
import sys
from veritensor_fast import engine, executors_local, worker
from veritensor_fast.sources.fs import FileSource
jobs = int(sys.argv[2])
engine.BATCH_BYTES = worker.BATCH_BYTES = 4096
engine.SMALL_SCAN_BYTES = 1
handed = []
target = engine.InProcessExecutor if jobs == 1 else executors_local.PoolExecutor
real_map = target.map
def spy(self, batches):
    for r in real_map(self, batches):
        handed.append(len(r.more))
        yield r
target.map = spy
res = engine.scan(FileSource([sys.argv[1]]), worker.ScanOptions(), jobs=jobs)
print(res.stats["files"], len(res.errors), sum(handed), res.stats["jobs"])
for f in sorted(x.secret for x in res.findings):
    print(f)
"""


@pytest.mark.parametrize("jobs", [1, 2])
def test_executors_run_the_big_files_a_shard_hands_back(tmp_path: Path, jobs: int) -> None:
    """Past the first files (stat-ed by the listing), big files are found by the worker and each runs as a
    task of its own, with ``--jobs 1`` and ``--jobs 2``; nothing is lost or scanned twice. Run in a fresh
    interpreter: the patched batch size reaches the workers only through ``fork``, and a test process that
    already runs threads (an earlier Dask test) would start them with ``forkserver``."""
    import subprocess

    root = tmp_path / "t"
    toks = []
    for sub in range(12):
        d = root / f"d{sub:02}"
        d.mkdir(parents=True)
        for i in range(100):
            (d / f"f{i:03}.txt").write_text("x\n")
        toks.append(hf_token())
        (d / "big.py").write_text(f"T = '{toks[-1]}'\n" + "# pad\n" * 1200)  # ~7 KB
    p = subprocess.run([sys.executable, "-c", HANDED_BACK, str(root), str(jobs)], capture_output=True, text=True,
                       timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    head, *secrets = p.stdout.split("\n")
    files, errors, handed, used = (int(x) for x in head.split())
    assert files == 1212 and errors == 0 and used == jobs
    assert [s for s in secrets if s] == sorted(toks)  # each found once
    assert handed >= 1  # past the stat-ed head, big files came back from the workers


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
    files = expand_items([shard])[0]
    assert [f.path for f in files] == ["a.txt", "b.txt", "c.txt"]
    assert all(f.kind == "file" and stat.S_ISREG(os.stat(f.key).st_mode) for f in files)
    assert expand_items(files)[0] is files  # plain batches pass through untouched


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


def test_a_file_listed_by_name_that_kills_its_worker_is_the_only_crash(tmp_path: Path) -> None:
    """Past the stat-ed head the listing sends names only; a shard whose worker dies is expanded (and its
    files stat-ed) by the supervisor and retried file by file: only the killer is lost."""
    import json
    import subprocess

    harness = str(Path(__file__).with_name("faulty_worker.py"))
    root = tmp_path / "t"
    root.mkdir()
    toks = [hf_token() for _ in range(3)]
    for i in range(1500):
        (root / f"f{i:04}.txt").write_text(f"T = '{toks[i % 3]}'\n" if i in (1100, 1300, 1499) else "x\n")
    (root / "poison.txt").write_text("harmless\n")  # sorts after every f*.txt: listed by name only
    p = subprocess.run([sys.executable, harness, "scan", str(root), "--jobs", "2", "--format", "json",
                        "--no-progress"], capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "FAULT": "SIGKILL"})
    rep = json.loads(p.stdout)
    assert [(e["path"], e["kind"]) for e in rep["errors"]] == [("poison.txt", "crash")]
    assert rep["stats"]["files"] == 1500
    assert sorted(f["path"] for f in rep["findings"]) == ["f1100.txt", "f1300.txt", "f1499.txt"]
