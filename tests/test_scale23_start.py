"""The serial start of a ``--jobs N`` scan imports only what the pool uses (``executors_pool``'s own ``Future``).

``concurrent.futures`` (and with it ``logging``, ``queue`` and ``multiprocessing.queues``) cost every pool scan
~2e7 instructions (~5 ms) before the fork, serial, for the two names ``LeanPool`` used from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import veritensor_fast

from conftest import hf_token

CHILD = r"""
import json, sys
from veritensor_fast import engine, worker
from veritensor_fast.sources.fs import FileSource
engine.SMALL_SCAN_BYTES = 0  # a pool even for these few files
res = engine.scan(FileSource([sys.argv[1]]), worker.ScanOptions(), jobs=2)
print(json.dumps({"jobs": res.stats["jobs"], "files": res.stats["files"], "paths": sorted(f.path for f in res.findings),
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("concurrent", "logging", "queue")
                                    or m == "multiprocessing.queues")}))
"""


def test_a_pool_scan_starts_without_concurrent_futures(tmp_path: Path) -> None:
    root = tmp_path / "t"
    for d in range(3):
        (root / f"d{d}").mkdir(parents=True)
        for i in range(30):
            (root / f"d{d}" / f"f{i:02}.py").write_text(f"T = '{hf_token()}'\n" if i == 4 else "x = 1\n")
    tree = str(Path(veritensor_fast.__file__).resolve().parents[1])  # the tree under test, not an installed one
    p = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True, text=True, timeout=300,
                       check=False, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=tree))
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    assert out["jobs"] == 2 and out["files"] == 90
    assert out["paths"] == ["d0/f04.py", "d1/f04.py", "d2/f04.py"]
    assert out["modules"] == []  # before: concurrent.futures, its process module, logging, queue, mp queues
