"""A directory swapped for a symlink while a scan runs is not followed (docs/untrusted.md, "Nothing outside the
tree is read"). With ``--jobs`` over 1 most directories are listed by workers and most small files are stat-ed by
them by name, long after the parent saw the directory: each directory is now opened with ``O_NOFOLLOW``, checked
against the (device, inode) its listing recorded, and listed and stat-ed relative to that descriptor. Both tests
read a secret outside the tree on the code before this change."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from veritensor_fast.findings import Item, ScanError
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import hf_token


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    tree, outside = tmp_path / "tree", tmp_path / "outside"
    (tree / "sub").mkdir(parents=True)
    outside.mkdir()
    (tree / "sub" / "a.txt").write_text("nothing here\n")
    (tree / "z.txt").write_text("nothing here either\n")
    (outside / "a.txt").write_text(f"HF_TOKEN={hf_token()}\n")  # what the swap would expose
    return tree, outside


def _swap(tree: Path, outside: Path) -> None:
    shutil.rmtree(tree / "sub")
    os.symlink(outside, tree / "sub")


def test_a_directory_swapped_after_its_shard_was_listed_is_not_read(tmp_path: Path) -> None:
    tree, outside = _tree(tmp_path)
    listed = [it for it in FileSource([str(tree)], ()).items_sharded(256, 4 << 20, 0) if isinstance(it, Item)]
    assert {it.path for it in listed} == {"sub", ""} and all(e[1] == -1 for it in listed for e in it.entries)
    _swap(tree, outside)  # after the listing, before a worker stats the shard's files by name
    res = WorkerContext(ScanOptions()).run_batch(listed)
    assert res.findings == []
    assert [(e.path, e.kind) for e in res.errors] == [("sub", "changed")]
    assert "after it was listed" in res.errors[0].reason and "HF_TOKEN" not in res.errors[0].reason
    assert res.items == 1  # z.txt, in the directory that did not change


def test_a_directory_swapped_before_the_walk_enters_it_is_not_walked(tmp_path: Path) -> None:
    tree, outside = _tree(tmp_path)
    walk = FileSource([str(tree)], ()).items()
    first = next(walk)  # z.txt: the top is listed and sub recorded (entries go by name), not entered yet
    assert isinstance(first, Item) and first.path == "z.txt"
    _swap(tree, outside)
    rest = list(walk)
    assert not [it for it in rest if isinstance(it, Item)]  # outside/a.txt is not listed as sub/a.txt
    assert [(e.path, e.kind) for e in rest if isinstance(e, ScanError)] == [("sub", "changed")]


def test_a_walk_that_follows_symlinks_still_follows_them(tmp_path: Path) -> None:
    tree, outside = _tree(tmp_path)
    walk = FileSource([str(tree)], (), follow_symlinks=True).items()
    assert isinstance(next(walk), Item)
    _swap(tree, outside)  # asked for: a symlink is followed wherever it points (loops are still reported)
    assert sorted(it.path for it in walk if isinstance(it, Item)) == ["sub/a.txt"]


def test_a_directory_swapped_before_a_worker_walks_it_is_not_walked(tmp_path: Path) -> None:
    from veritensor_fast.sources.fs import walk_tree

    tree, outside = _tree(tmp_path)
    listed = list(FileSource([str(tree)], ()).items_sharded(256, 4 << 20, 0, trees=True))
    (top,) = [it for it in listed if isinstance(it, Item) and it.kind == "tree"]  # the whole walk, to the workers
    items, errors, _skipped, more = walk_tree(top, 256, 4 << 20, 1)  # one worker lists the top, hands sub back
    assert [e[0] for it in items for e in it.entries] == ["z.txt"] and not errors
    (left,) = more
    assert [e[0] for e in left.entries] == [str(tree / "sub")] and left.entries[0][3]  # with its inode
    _swap(tree, outside)
    items, errors, _skipped, more = walk_tree(left, 256, 4 << 20, -1)  # another worker, after the swap
    assert items == [] and more == []
    assert [(e.path, e.kind) for e in errors] == [("sub", "changed")]
