"""The progress line's total and time left with a pool (docs/cli.md: "once the listing is done it shows the total
and an estimate of the time left"). With a pool the parent lists only the first 1,024 files and the workers walk
the rest (``tree`` items), so the parent's listing alone does not know the total: each task reports what its
tree walks listed (``BatchResult.walked``) and the total is shown once no tree item is left to walk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from veritensor_fast.cli_output import Progress
from veritensor_fast.worker import BatchResult

_POOL_SCAN = r"""
import json, sys
from veritensor_fast import engine
from veritensor_fast.cli_output import Progress
from veritensor_fast.findings import Item
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions

root = sys.argv[1]
kinds = {it.kind for it in FileSource([root]).items_sharded(engine.BATCH_ITEMS, engine.BATCH_BYTES, trees=True)
         if isinstance(it, Item)}
prog = Progress(True)
res = engine.scan(prog.counting(FileSource([root])), ScanOptions(), jobs=2, on_progress=prog)
print(json.dumps({"kinds": sorted(kinds), "total": prog.total_files, "scanned": prog.files,
                  "line": prog.line(prog._t0 + 5), "findings": len(res.findings)}))
"""


def test_a_pool_scan_of_a_walked_tree_knows_its_total(tmp_path: Path) -> None:
    root = tmp_path / "t"
    n = 0
    for a in range(12):
        for b in range(4):
            d = root / f"p{a}" / f"s{b}"
            d.mkdir(parents=True)
            for i in range(35):
                (d / f"m{i}.py").write_text(f"x = {i}\n")
                n += 1
        (root / f"p{a}" / "node_modules").mkdir()  # skipped by default: not counted
        (root / f"p{a}" / "node_modules" / "dep.js").write_text("x\n")
    assert n == 1680
    p = subprocess.run([sys.executable, "-c", _POOL_SCAN, str(root)], capture_output=True, text=True, timeout=120,
                       check=True)
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert "tree" in got["kinds"]  # the workers walked part of it
    assert got["scanned"] == n
    assert got["total"] == n
    assert f"scanned {n}/{n} files" in got["line"]


def test_the_total_waits_for_every_tree_item() -> None:
    """The parent listed 1,024 files and handed out one tree item; a task walks it (256 files) and hands back 3;
    the total shows only when those 3 are walked too, and then the line carries it and a time left."""
    prog = Progress(False)
    prog._walking()
    prog.listed(1024, -1, trees=1)
    assert prog.total_files is None
    prog(BatchResult(items=256, bytes=256, walked=(256, 2)))  # took 1, handed back 3
    assert prog.total_files is None
    prog(BatchResult(items=200, bytes=200, walked=(300, -1)))
    prog(BatchResult(items=200, bytes=200, walked=(100, -1)))
    assert prog.total_files is None
    prog(BatchResult(items=200, bytes=200, walked=(20, -1)))
    assert prog.total_files == 1024 + 256 + 300 + 100 + 20
    line = prog.line(prog._t0 + 10)
    assert f"scanned 856/{prog.total_files} files" in line and "left" in line


def test_tree_walks_finished_before_the_listing_ends_count_too() -> None:
    """Results can come back while the parent still lists (several roots): the walked files are kept."""
    prog = Progress(False)
    prog._walking()
    prog(BatchResult(items=10, bytes=10, walked=(256, -1)))
    assert prog.total_files is None
    prog.listed(1030, -1, trees=1)
    assert prog.total_files == 1030 + 256


def test_a_worker_killed_inside_a_walked_tree_still_gives_the_total(tmp_path: Path) -> None:
    """A tree task whose worker dies is walked again by the parent (about one batch, the rest as tree items): what
    that walk lists counts, so the total still comes, and it counts the file that killed the worker."""
    import os

    root = tmp_path / "t"
    n = 0
    for a in range(10):
        for b in range(4):
            d = root / f"p{a}" / f"s{b}"
            d.mkdir(parents=True)
            for i in range(40):
                (d / f"m{i}.py").write_text(f"x = {i}\n")
                n += 1
    (root / "p9" / "s3" / "poison.txt").write_text("harmless\n")  # listed by a worker's walk
    n += 1
    harness = Path(__file__).with_name("faulty_worker.py")
    script = f"import runpy; runpy.run_path({str(harness)!r})\n" + _POOL_SCAN
    p = subprocess.run([sys.executable, "-c", script, str(root)], capture_output=True, text=True, timeout=120,
                       check=True, env={**os.environ, "FAULT": "SIGKILL"})
    got = json.loads(p.stdout.strip().splitlines()[-1])
    assert "tree" in got["kinds"]
    assert got["scanned"] == n - 1  # the killer is not scanned
    assert got["total"] == n
