"""``ShardSource`` (the part of a tree one Dask shard lists): what each shard yields, and the errors for a root
or a top-level directory that cannot be entered. Checked in-process, without a cluster."""

from __future__ import annotations

from pathlib import Path

from veritensor_fast.findings import Item, ScanError
from veritensor_fast.shards import Shard, ShardSource, plan


def _paths(shard: Shard) -> tuple[list[str], list[ScanError]]:
    out = list(ShardSource(shard).items())
    return sorted(i.path for i in out if isinstance(i, Item)), [e for e in out if isinstance(e, ScanError)]


def test_each_shard_lists_its_part_and_together_they_cover_the_tree(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.py").write_text("x = 1\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "y.txt").write_text("y\n")
    (tmp_path / "top.txt").write_text("t\n")
    shards = plan([str(tmp_path)])
    assert sorted(s.sub or "" for s in shards) == ["", "a", "b"]
    listed = {s.sub: _paths(s) for s in shards}
    assert listed[""] == (["top.txt"], [])
    assert listed["a"] == (["a/x.py"], [])
    assert listed["b"] == (["b/y.txt"], [])


def test_a_vanished_top_level_directory_is_an_unreadable_error(tmp_path: Path) -> None:
    items, errors = _paths(Shard(str(tmp_path), "gone", False))
    assert items == []
    assert [(e.kind, e.reason.split(":")[0]) for e in errors] == [("unreadable", "cannot stat")]
    assert errors[0].path == "gone"


def test_a_missing_root_is_an_unreadable_error(tmp_path: Path) -> None:
    for sub in ("", "a"):
        items, errors = _paths(Shard(str(tmp_path / "nope"), sub, False))
        assert items == []
        assert [(e.kind, e.reason.split(":")[0]) for e in errors] == [("unreadable", "cannot access")]
