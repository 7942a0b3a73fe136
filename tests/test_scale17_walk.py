"""The walk off the parent (issue 16, scaling): with a pool, the parent lists only the first files (enough to
decide that a scan is small) and hands what is left of its walk to the workers as ``tree`` items; each worker
walks about one batch of files (``sources.fs.walk_tree``), scans them and hands the rest back in parts, so the
listing runs in every worker and the parent, one process for all of them, only hands out batches.

What is listed is exactly what one walk in one process lists: the same files under the same report paths, the
same errors, the same directories skipped by default (virtualenvs, ``node_modules``...), the same ``--exclude``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from veritensor_fast import engine, worker
from veritensor_fast.batching import expand_items, expand_trees
from veritensor_fast.findings import Item, ScanError
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions


def _tree(root: Path, token: str) -> None:
    """Nested directories, files at every level, default-excluded directories at depth, a virtualenv, an
    excluded directory, a FIFO, a symlink, names that need escaping, and a secret deep down."""
    for a in range(4):
        for b in range(3):
            d = root / f"pkg{a}" / f"sub{b}"
            d.mkdir(parents=True)
            for i in range(7):
                (d / f"m{i}.py").write_text(f"x = {i}\n")
            (d / "node_modules").mkdir()
            (d / "node_modules" / "dep.js").write_text(f"var t = '{token}';\n")  # skipped by default
        (root / f"pkg{a}" / "top.txt").write_text("top\n")
    venv = root / "pkg2" / "sub1" / "env"
    (venv / "lib").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr\n")
    (venv / "lib" / "s.py").write_text(f"k = '{token}'\n")
    (root / "pkg3" / "gen").mkdir()
    (root / "pkg3" / "gen" / "out.txt").write_text(f"k = '{token}'\n")  # --exclude
    os.mkfifo(root / "pkg1" / "sub2" / "pipe")
    (root / "pkg0" / "link.py").symlink_to(root / "pkg0" / "top.txt")
    (root / "pkg1" / "weird\udcff.txt").write_bytes(b"w\n")  # an undecodable byte in a name
    (root / "pkg3" / "sub2" / "deep").mkdir()
    (root / "pkg3" / "sub2" / "deep" / "cfg.py").write_text(f"TOKEN = '{token}'\n")
    (root / "root.txt").write_text("r\n")


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 4 files: the parent lists 16 files, then hands off; a worker walks ~4 files a task."""
    monkeypatch.setattr(engine, "BATCH_ITEMS", 4)
    monkeypatch.setattr(worker, "BATCH_ITEMS", 4)
    monkeypatch.setattr(engine, "SMALL_SCAN_BYTES", 0)


def _listing(items: list[Item | ScanError]) -> tuple[list[tuple[str, str]], list[ScanError]]:
    files, errors = expand_items([it for it in items if isinstance(it, Item)])[:2]
    return (sorted((f.key, f.path) for f in files),
            sorted([e for e in items if isinstance(e, ScanError)] + errors, key=lambda e: (e.path, e.reason)))


@pytest.mark.parametrize("excludes", [(), ("gen", "*.txt")])
def test_tree_items_list_what_one_walk_lists(tmp_path: Path, token: str, excludes: tuple[str, ...]) -> None:
    _tree(tmp_path, token)
    one = FileSource([str(tmp_path)], excludes=excludes)
    want = _listing(list(one.items_sharded(4, 1 << 20)))

    src = FileSource([str(tmp_path)], excludes=excludes)
    got: list[Item | ScanError] = list(src.items_sharded(4, 1 << 20, stat_first=6, trees=True))
    trees = [it for it in got if isinstance(it, Item) and it.kind == "tree"]
    assert len(trees) == 1  # the parent listed a few files, then handed the rest of its walk off
    assert sum(len(it.entries) for it in got if isinstance(it, Item) and it.kind == "dir") < 20
    skipped = list(src.skipped_dirs)
    todo = [[t] for t in trees]
    tasks = 0
    while todo:  # as the pool runs them: a task walks ~4 files and hands the rest back in parts
        batch = todo.pop(0)
        tasks += 1
        items, errors, sk, rest = expand_trees(batch, 4, 1 << 20, 4)
        got += items + errors
        skipped += sk
        todo += rest
    assert tasks > 5
    assert _listing([it for it in got if not (isinstance(it, Item) and it.kind == "tree")]) == want
    assert sorted(skipped) == sorted(one.skipped_dirs) and len(skipped) == 13  # 12 node_modules, 1 virtualenv


def test_pool_scan_with_walking_workers_equals_one_process(tmp_path: Path, token: str,
                                                          small_batches: None) -> None:
    _tree(tmp_path, token)
    for kw in ({}, {"excludes": ("gen",)}, {"default_excludes": False}):
        two = engine.scan(FileSource([str(tmp_path)], **kw), ScanOptions(), jobs=2)  # type: ignore[arg-type]
        one = engine.scan(FileSource([str(tmp_path)], **kw), ScanOptions(), jobs=1)  # type: ignore[arg-type]
        assert two.stats["jobs"] == 2
        assert two.findings == one.findings and two.errors == one.errors
        for k in ("files", "bytes", "skipped_dirs"):
            assert two.stats.get(k) == one.stats.get(k), k
    assert {f.path for f in two.findings} >= {"pkg3/sub2/deep/cfg.py", "pkg2/sub1/env/lib/s.py"}


def test_several_roots_keep_their_report_paths(tmp_path: Path, token: str, small_batches: None) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for r in (a, b):
        r.mkdir()
        _tree(r, token)
    two = engine.scan(FileSource([str(a), str(b)]), ScanOptions(), jobs=2)
    one = engine.scan(FileSource([str(a), str(b)]), ScanOptions(), jobs=1)
    assert two.findings == one.findings and two.errors == one.errors and two.stats["files"] == one.stats["files"]
    assert {f.path.split("/pkg")[0] for f in two.findings} == {os.path.normpath(a), os.path.normpath(b)}


@pytest.mark.parametrize("kw", [{"follow_symlinks": True}, {"max_file_size": 10}])
def test_no_hand_off_when_the_walk_must_stay_in_one_process(tmp_path: Path, token: str,
                                                            kw: dict[str, object]) -> None:
    """Following symlinks, a loop is found against every directory walked so far; with ``--max-file-size``
    every file is stat-ed by the listing: the parent walks it all, as before."""
    _tree(tmp_path, token)
    os.unlink(tmp_path / "pkg1" / "sub2" / "pipe")
    got = list(FileSource([str(tmp_path)], **kw).items_sharded(4, 1 << 20, stat_first=6,  # type: ignore[arg-type]
                                                                trees=True))
    assert not [it for it in got if isinstance(it, Item) and it.kind == "tree"]


def test_a_directory_that_loops_back_is_walked_once(tmp_path: Path) -> None:
    """``walk_tree`` knows the directories it was given and those above them: a directory met again (a bind
    mount that loops back; here the tree item names a directory and one below it) is not walked twice."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.txt").write_text("f\n")
    (tmp_path / "a" / "g.txt").write_text("g\n")
    src = FileSource([str(tmp_path)])
    tree = src._tree_item(str(tmp_path), str(tmp_path), [str(tmp_path / "a" / "b"), str(tmp_path / "a")])
    items, errors, _, rest = expand_trees([tree], 4, 1 << 20, -1)
    assert not errors and not rest
    assert sorted(f.path for f in expand_items(items)[0]) == ["a/b/f.txt", "a/g.txt"]


@pytest.mark.parametrize("fault,kind", [("SIGKILL", "crash"), ("raise", "internal")])
def test_a_file_that_kills_its_worker_inside_a_walked_tree_is_the_only_loss(tmp_path: Path, fault: str,
                                                                             kind: str) -> None:
    """A tree task whose worker dies (or whose task raises) is retried as the files it walked, one by one, and
    the rest of its walk as tree items: only the file that kills its worker is lost, nothing is listed twice,
    and the directories skipped by default are still reported. (A guard for the walk in workers: not a bug of
    the code before it.)"""
    import json
    import subprocess
    import sys

    from tests.conftest import hf_token

    harness = str(Path(__file__).with_name("faulty_worker.py"))
    root = tmp_path / "t"
    toks = [hf_token() for _ in range(3)]
    for d in range(30):  # 1,500 files in 30 directories: past the parent's first 1,024 the workers walk
        sub = root / f"d{d:02}"
        (sub / "node_modules").mkdir(parents=True)
        for i in range(50):
            (sub / f"f{i:02}.txt").write_text(f"T = '{toks[d % 3]}'\n" if i == 7 and d in (25, 28, 29) else "x\n")
    (root / "d27" / "poison.txt").write_text("harmless\n")
    p = subprocess.run([sys.executable, harness, "scan", str(root), "--jobs", "2", "--format", "json",
                        "--no-progress", "--no-config"], capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "FAULT": fault})
    rep = json.loads(p.stdout)
    assert [(e["path"], e["kind"]) for e in rep["errors"]] == [("d27/poison.txt", kind)]
    assert rep["stats"]["files"] == 1500
    assert sorted(f["path"] for f in rep["findings"]) == ["d25/f07.txt", "d28/f07.txt", "d29/f07.txt"]
    assert rep["stats"]["skipped_dirs"] == [f"d{d:02}/node_modules" for d in range(30)]
