"""A large file scanned in windows is split across pool tasks (issue 16, scaling): ``worker.split_file`` hands
its later parts back as tasks of their own, each part scans the windows whose start it owns, and the parent
merges the parts (``batching.merge_spans``) as ``scan_windows`` merges windows. The findings are exactly those of
a scan of the whole file in one task: same line, column, fingerprint, message, location; a match in the overlap
of two windows of different parts is reported once; the file's name is judged once; the file counts once.

Sizes are scaled down (windows of 8 KiB) so a file of a few hundred KB has dozens of windows and several parts.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest

from tests.conftest import hf_token
from veritensor_fast import buffers, engine, worker
from veritensor_fast.batching import merge_spans
from veritensor_fast.findings import Finding, Item
from veritensor_fast.matcher import compile_ruleset
from veritensor_fast.sources import fs_read
from veritensor_fast.worker import ScanOptions, WorkerContext

WIN, OVER = 8192, 1024
SPAN = 3 * WIN


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs_read, "READ_MAX", 4096)
    monkeypatch.setattr(buffers, "WINDOW", WIN)
    monkeypatch.setattr(buffers, "OVERLAP", OVER)
    monkeypatch.setattr(worker, "SPAN_BYTES", SPAN)
    monkeypatch.setattr(engine, "SMALL_SCAN_BYTES", 0)  # a pool even for a scan this small


def _content(rng: random.Random) -> tuple[bytes, list[str]]:
    """Text with tokens everywhere: at window edges (inside the overlap two windows of two parts share), after
    multi-byte characters (columns count characters), on a line longer than a part, and base64-encoded."""
    toks: list[str] = []
    out = bytearray()
    while len(out) < 40 * WIN:
        r = rng.random()
        if r < 0.5:
            out += b"filler line %06d with nothing secret in it\n" % len(out)
        elif r < 0.6:
            edge = (len(out) // WIN + 1) * WIN  # put the token across the next window edge
            out += b"x" * max(0, edge - len(out) - rng.randrange(1, 30))
            t = hf_token(rng)
            toks.append(t)
            out += b"key = '" + t.encode() + b"'\n"
        elif r < 0.7:
            t = hf_token(rng)
            toks.append(t)
            out += "é€ ünïcode before ".encode() * rng.randrange(1, 4) + t.encode() + b"\n"
        elif r < 0.75:
            t = hf_token(rng)
            toks.append(t)  # encoded: found by the base64 layer, near an edge too
            edge = (len(out) // WIN + 1) * WIN
            out += b"y" * max(0, edge - len(out) - rng.randrange(10, 60))
            out += b"blob: " + base64.b64encode(t.encode()) + b"\n"
        elif r < 0.76:
            t = hf_token(rng)
            toks.append(t)  # a line longer than a part, the token at its end
            out += b"z" * (SPAN + 100) + b" " + t.encode() + b"\n"
    return bytes(out), toks


def _context() -> WorkerContext:
    opts = ScanOptions()
    rs = opts.ruleset()
    return WorkerContext(opts, compile_ruleset(rs), rs)


def _item(f: Path, shown: str) -> Item:
    st = f.stat()
    return Item("file", str(f), shown, st.st_size, dev=st.st_dev, ino=st.st_ino)


def _where(data: bytes, off: int) -> tuple[int, int]:
    ls = data.rfind(b"\n", 0, off) + 1
    return data.count(b"\n", 0, off) + 1, len(data[ls:off].decode()) + 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_parts_of_a_split_file_find_what_the_whole_file_finds(tmp_path: Path, small_windows: None,
                                                              seed: int) -> None:
    data, toks = _content(random.Random(seed))
    name_tok = hf_token(random.Random(seed + 100))
    f = tmp_path / f"{name_tok}.log"  # a secret in the name: reported once, not once per part
    f.write_bytes(data)
    item = _item(f, f.name)
    ctx = _context()
    whole = ctx.run_batch([item])
    assert not whole.more and not whole.errors

    ctx.span_bytes = worker.SPAN_BYTES  # as in a pool worker (init_worker)
    first = ctx.run_batch([item])
    parts = first.more
    assert len(parts) == -(-len(data) // SPAN) - 1 >= 8  # the file went out in parts, a task each
    results = [first] + [ctx.run_batch([p]) for p in reversed(parts)]  # any order
    merged, errors = merge_spans([s for r in results for s in r.spans])
    found = sorted(merged + [x for r in results for x in r.findings], key=Finding.sort_key)
    assert found == sorted(whole.findings, key=Finding.sort_key)
    assert errors == [] and not any(r.errors or r.more for r in results[1:])
    assert sum(r.items for r in results) == 1 and sum(r.bytes for r in results) == len(data) == whole.bytes

    # ground truth: every planted token once, at its line and (character) column
    plain = sorted(_where(data, data.index(t.encode())) for t in toks if t.encode() in data)
    got = sorted((x.line, x.column) for x in found if x.decoded is None and x.location is None)
    assert got == plain
    assert sum(1 for x in found if x.decoded) == sum(1 for t in toks if t.encode() not in data) > 0
    assert [x.location for x in found if x.location] == [{"in": "path"}]


def test_windows_of_a_span_are_the_windows_of_the_whole_file(tmp_path: Path, small_windows: None) -> None:
    data = bytes(random.Random(5).randrange(256) for _ in range(10 * WIN + 77))
    f = tmp_path / "b.bin"
    f.write_bytes(data)
    big = buffers.LargeFile(__import__("os").open(f, __import__("os").O_RDONLY), f.stat())
    try:
        whole = list(big.windows())
        spans = [(0, 3 * WIN), (3 * WIN, 6 * WIN), (6 * WIN, len(data))]
        pieces = [list(big.windows(s)) for s in spans]
    finally:
        big.close()
    read = [w for p in pieces for w in p if not isinstance(w[3], int)]
    assert read == whole  # each window read by exactly one part, with the same bytes
    for (a, _b), p in zip(spans, pieces, strict=True):  # the windows before a part: their place and length
        assert [(s, lo, hi, n) for s, lo, hi, n in p if isinstance(n, int)] == \
               [(s, lo, hi, len(d)) for s, lo, hi, d in whole if lo < a]


POOLED = r"""
import json, random, sys
from veritensor_fast import buffers, engine, worker
from veritensor_fast.sources import fs, fs_read
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions

fs_read.READ_MAX, buffers.WINDOW, buffers.OVERLAP, worker.SPAN_BYTES = 4096, WIN, OVER, SPAN  # before the fork
engine.SMALL_SCAN_BYTES = 0  # a pool even for a scan this small
pooled = []
two = engine.scan(FileSource([sys.argv[1]]), ScanOptions(), jobs=2, on_progress=pooled.append)
one = engine.scan(FileSource([sys.argv[1]]), ScanOptions(), jobs=1)
print(json.dumps({"jobs": two.stats["jobs"], "parts": sum(len(r.spans) for r in pooled),
                  "same": two.findings == one.findings and two.errors == one.errors, "n": len(one.findings),
                  "counts": [[r.stats["files"], r.stats["bytes"]] for r in (two, one)]}))
""".replace("WIN, OVER, SPAN", f"{WIN}, {OVER}, {SPAN}")


def test_pool_scan_splits_a_big_file_and_reports_as_one_task(tmp_path: Path) -> None:
    """End to end in a fresh process (its pool forks with the small windows set)."""
    import json
    import subprocess
    import sys

    data, toks = _content(random.Random(7))
    (tmp_path / "big.log").write_bytes(data)
    small = f"tok = '{toks[0]}'\n".encode()
    (tmp_path / "small.txt").write_bytes(small)
    p = subprocess.run([sys.executable, "-c", POOLED, str(tmp_path)], capture_output=True, text=True, timeout=120,
                       check=True)
    got = json.loads(p.stdout)
    assert got["jobs"] == 2 and got["parts"] == -(-len(data) // SPAN) >= 8  # every part a task's
    assert got["same"] and got["n"] == len(toks) + 1
    assert got["counts"] == [[2, len(data) + len(small)]] * 2
