"""Scaling of ``--jobs N`` (issue 16): what the workers of a pool do that one process does once, and batches
that one worker holds while the others wait.

Ground truth for the findings is the plain in-process scan of the same tree with the default batch sizes; the
scans run in a fresh interpreter (patched batch sizes reach forked workers only through ``fork``, and a test
process that already runs threads would start them with ``forkserver``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from veritensor_fast.findings import Item
from veritensor_fast.worker import expand_capped, expand_items

from conftest import hf_token

CHILD = r"""
import gc, json, os, sys
from veritensor_fast import engine, executors_local, executors_tasks, worker
from veritensor_fast.sources.fs import FileSource

root, jobs, small = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "small"
if small:  # tiny batches: a shard of names only holds more bytes than a batch may
    engine.BATCH_ITEMS = worker.BATCH_ITEMS = 8
    engine.BATCH_BYTES = worker.BATCH_BYTES = 4096
engine.SMALL_SCAN_BYTES = 1  # a pool even for a small tree
batches = []
real = worker.WorkerContext.run_batch


def spy(self, batch):
    r = real(self, batch)
    batches.append({"pid": os.getpid(), "bytes": r.bytes, "items": r.items, "modules": sorted(sys.modules),
                    "gc": list(gc.get_threshold())})
    return r


worker.WorkerContext.run_batch = spy
log = []
if jobs > 1:
    real_map = executors_local.PoolExecutor.map

    def pool_map(self, b):
        log.append(sorted(sys.modules))
        for r in real_map(self, b):
            log.append(r.findings and None)
            yield r

    executors_local.PoolExecutor.map = pool_map
    # the batches' records come back from the workers through a file each
    real_run = worker.run_batch

    def run_batch(batch):
        r = real_run(batch)
        with open(os.path.join(sys.argv[4], f"{os.getpid()}.jsonl"), "a") as f:
            f.write(json.dumps(batches[-1]) + "\n")
        return r

    run_batch.__module__, run_batch.__qualname__ = "veritensor_fast.worker", "run_batch"
    worker.run_batch = executors_tasks.run_batch = run_batch
before = (gc.get_threshold(), gc.get_freeze_count())
res = engine.scan(FileSource([root]), worker.ScanOptions(), jobs=jobs)
if jobs > 1:
    batches = [json.loads(ln) for n in os.listdir(sys.argv[4]) for ln in open(os.path.join(sys.argv[4], n))]
print(json.dumps({
    "findings": sorted([f.path, f.line, f.column, f.rule_id, f.fingerprint] for f in res.findings),
    "errors": len(res.errors), "files": res.stats["files"], "jobs": res.stats["jobs"],
    "batches": [{k: v for k, v in b.items() if k != "modules"} for b in batches],
    "worker_new_modules": sorted({m for b in batches for m in b["modules"]} - set(log[0])) if jobs > 1 else [],
    "caller_gc": [list(before[0]), before[1], list(gc.get_threshold()), gc.get_freeze_count()],
}))
"""


def run(root: Path, jobs: int, tmp: Path, small: bool = True) -> dict:
    out = tmp / f"log{jobs}{small}"
    out.mkdir()
    p = subprocess.run([sys.executable, "-c", CHILD, str(root), str(jobs), "small" if small else "default", str(out)],
                       capture_output=True, text=True, timeout=300, check=False, cwd=tmp)  # PYTHONPATH decides
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout)


def corpus(tmp_path: Path) -> tuple[Path, int, int]:
    """Directories of 1 KB files (more than the 32 files the listing stats itself with 8-file batches) with a
    token in some of them; a notebook and a pickle so the workers need what the parent can import for them."""
    root = tmp_path / "t"
    n = 0
    biggest = 0
    for d in range(6):
        sub = root / f"d{d}"
        sub.mkdir(parents=True)
        for i in range(12):
            body = f"# file {d}/{i}\n" + "x = 1\n" * 160
            if i % 5 == 0:
                body += f"TOKEN = '{hf_token()}'\n"
            (sub / f"f{i:02}.py").write_text(body)
            biggest = max(biggest, len(body))
            n += 1
    nb = {"cells": [{"cell_type": "code", "source": [f"t = '{hf_token()}'\n"], "metadata": {}, "outputs": []}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (root / "d5" / "n.ipynb").write_text(json.dumps(nb))
    (root / "d5" / "m.pkl").write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.")
    return root, n + 2, biggest


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_shard_of_names_is_cut_at_the_batch_bytes_and_nothing_is_lost(tmp_path: Path, jobs: int) -> None:
    """Past the files the listing stats itself, a shard holds names only; the worker learns the sizes. A
    batch then stops at ``BATCH_BYTES`` plus one file, and the rest runs as a batch of its own: every file is
    scanned exactly once, with the same findings as the default batches in one process."""
    root, n, biggest = corpus(tmp_path)
    truth = run(root, 1, tmp_path, small=False)
    got = run(root, jobs, tmp_path)
    assert got["jobs"] == jobs
    assert got["files"] == truth["files"] == n and got["errors"] == truth["errors"] == 0
    assert got["findings"] == truth["findings"] and len(truth["findings"]) >= 15
    assert sum(b["items"] for b in got["batches"]) == n
    assert max(b["bytes"] for b in got["batches"]) < 4096 + biggest


def test_a_batch_stops_at_its_bytes_where_the_parent_would_have_cut_it(tmp_path: Path) -> None:
    """A file is taken while the batch holds less than the limit, as ``engine.make_batches`` fills a batch. The
    rest comes back as batches: the shard's remaining files (sizes known: no second ``stat``) in shards filled
    the same way, so none is cut again and they run in parallel, then the batch's other items. Together they
    expand to exactly the files that were left out. A batch without shards is never cut."""
    sizes = [1000, 3000, 500, 5000, 10, 10]
    d = tmp_path / "d"
    d.mkdir()
    for i, n in enumerate(sizes):
        (d / f"f{i}").write_bytes(b"x" * n)
    shard = Item("dir", str(d), "d", -1, entries=tuple((f"f{i}", -1, 0, 0) for i in range(len(sizes))))
    other = Item("file", str(d / "f0"), "other", 1000)
    full, _, _ = expand_items([shard, other])
    items, errors, deferred, rest = expand_capped([shard, other], 0, 4096)
    assert items == full[:3] and not errors and not deferred  # 1000 + 3000 + 500: the third one passes 4096
    assert [[it.kind for it in b] for b in rest] == [["dir"], ["dir"], ["file"]] and rest[2] == [other]
    assert [[e[1] for e in b[0].entries] for b in rest[:2]] == [[5000], [10, 10]]
    assert expand_capped(rest[0], 0, 4096) == ([full[3]], [], [], [])
    assert expand_capped(rest[1], 0, 4096) == (full[4:6], [], [], [])
    assert expand_capped([shard], 0, 4096)[3] == rest[:2]  # nothing after the shard: no empty batch
    plain = full[3:]
    assert expand_capped(plain, 0, 10) == (plain, [], [], [])


def test_forked_workers_share_the_parents_imports_and_run_with_the_scan_gc_thresholds(tmp_path: Path) -> None:
    """Workers forked from the parent import nothing the parent could have imported once for all of them (numpy
    for the entropy kernel and the notebook guard, the model analyser) and run with the scan's collector
    thresholds. The caller's collector settings are the same after the scan, with ``--jobs 1`` and ``2``."""
    from veritensor_fast.worker import SCAN_GC_THRESHOLD

    root, _, _ = corpus(tmp_path)
    got = run(root, 2, tmp_path, small=False)
    assert got["jobs"] == 2 and len(got["batches"]) >= 1
    new = got["worker_new_modules"]
    assert not [m for m in new if m.split(".")[0] == "numpy" or m.startswith("veritensor_fast.models")], new
    assert all(b["gc"] == list(SCAN_GC_THRESHOLD) for b in got["batches"])
    for jobs in (1, 2):
        (tmp_path / str(jobs)).mkdir()
        before_th, before_frozen, after_th, after_frozen = run(root, jobs, tmp_path / str(jobs), small=False)[
            "caller_gc"]
        # the interpreter's own defaults (700 or 2000 since 3.13; 3.12 starts with objects frozen), not the scan's
        assert (after_th, after_frozen) == (before_th, before_frozen)
        assert before_th != list(SCAN_GC_THRESHOLD)


def test_overlapping_in_process_scans_give_back_the_callers_gc_thresholds() -> None:
    """Scans in several threads of one process (a Dask worker runs shards in-process): the scan thresholds hold
    while any of them runs, and the caller's come back when the last one ends, whatever the order."""
    import gc

    from veritensor_fast.engine import InProcessExecutor
    from veritensor_fast.matcher import compile_ruleset
    from veritensor_fast.worker import SCAN_GC_THRESHOLD, ScanOptions

    opts = ScanOptions()
    rs = opts.ruleset()
    db = compile_ruleset(rs)
    old = gc.get_threshold()
    try:
        gc.set_threshold(1234, 5, 6)
        a = InProcessExecutor(opts, db, rs)
        b = InProcessExecutor(opts, db, rs)
        assert gc.get_threshold() == SCAN_GC_THRESHOLD
        a.close()
        assert gc.get_threshold() == SCAN_GC_THRESHOLD  # b still runs
        b.close()
        b.close()  # closing twice gives back nothing more
        assert gc.get_threshold() == (1234, 5, 6)
    finally:
        gc.set_threshold(*old)
