"""What a pooled scan sends back from its workers (issue 16, scaling): ``BatchResult.scanned`` (one path per file
read) travels only when the source reads it (``on_batch``: the git history datastore); a plain directory scan
gets its findings, errors and counts without 35k paths pickled and unpickled on the real tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast import engine
from veritensor_fast.findings import Item
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import BatchResult, ScanOptions


def _tree(root: Path, token: str) -> None:
    for d in range(3):
        sub = root / f"d{d}"
        sub.mkdir()
        for i in range(40):
            (sub / f"f{i}.txt").write_text(f"line {i}\n" * 50)
    (root / "d1" / "cfg.py").write_text(f"TOKEN = '{token}'\n")


class _Observed(FileSource):
    """A source that records per-item results, as the git history source does."""

    def __init__(self, roots: list[str]) -> None:
        super().__init__(roots)
        self.seen: list[tuple[str, int, bool]] = []

    def on_batch(self, res: BatchResult) -> None:
        self.seen.extend(res.scanned)


@pytest.fixture
def pooled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "SMALL_SCAN_BYTES", 0)  # a pool even for a scan this small
    monkeypatch.setattr(engine, "SMALL_SCAN_BATCHES", 0)


def test_plain_pooled_scan_sends_no_per_file_paths(tmp_path: Path, token: str, pooled: None) -> None:
    _tree(tmp_path, token)
    got: list[BatchResult] = []
    res = engine.scan(FileSource([str(tmp_path)]), ScanOptions(), jobs=2, on_progress=got.append)
    assert res.stats["jobs"] == 2 and res.stats["files"] == 121
    assert [f.path for f in res.findings] == ["d1/cfg.py"]
    assert sum(r.items for r in got) == 121 and all(r.scanned == [] for r in got)


def test_a_source_that_reads_per_file_results_still_gets_them(tmp_path: Path, token: str, pooled: None) -> None:
    _tree(tmp_path, token)
    src = _Observed([str(tmp_path)])
    res = engine.scan(src, ScanOptions(), jobs=2)
    assert res.stats["jobs"] == 2
    assert len(src.seen) == 121 and {k for k, n, _ in src.seen if n} == {str(tmp_path / "d1" / "cfg.py")}


def test_pickled_item_keeps_every_field() -> None:
    import pickle

    it = Item("file", "/a/b", "b", 10, origin="o", dev=1, ino=2, follow=True, entries=(("x", 1, 2, 3),),
              span=(0, 64))
    assert pickle.loads(pickle.dumps(it)) == it
