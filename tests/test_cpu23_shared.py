"""cpu23: one Hyperscan scan of a Python source serves the text pass and the AST prefilter (``pyast_shared``).

A ``.py`` file the AST detector may parse was scanned twice (the rules and base64 needles, then the prefilter's
first database); the text pass now scans it once with a database holding both, and the AST detector takes the
prefilter's hits from that scan. The claims checked here:

- a Python source is scanned once (fails on 6aef5ba: two scans of the file's buffer), and its findings are the
  same as with two scans (every split, fold and needle form of the long anchors, and this package's own sources);
- the hits of the shared scan are exactly the two scans' (secrets, base64 needle ends, prefilter hits with the
  second stage), hit for hit and in order;
- the shared database is looked up in the on-disk cache only after ``LOOK_AFTER`` bytes of Python scanned twice
  (a small scan pays nothing) and compiled only after ``COMPILE_AFTER``; a database that fails to build leaves the
  two scans, and is not tried again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_ast22_needles import body, forms

from veritensor_fast.detectors import pyast_shared
from veritensor_fast.detectors.pyast_prefilter import first_stage
from veritensor_fast.findings import Finding, Item
from veritensor_fast.kernels import BACKEND, hsdb
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

pytestmark = pytest.mark.skipif(BACKEND != "hyperscan", reason="the fallback matcher scans no database")

PACKAGE = Path(__file__).resolve().parent.parent / "veritensor_fast"


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    return WorkerContext(ScanOptions())


def python_ast(ctx: WorkerContext) -> Any:
    return next(d for d in ctx.detectors if d.name == "python-ast")


def sources() -> list[bytes]:
    """Long-anchor tokens split at every offset by every fold the AST pass reassembles (needles, second stage),
    and real Python: this package's own modules."""
    ctx0 = WorkerContext(ScanOptions())
    plan = python_ast(ctx0)._pre[2]
    out = [p.read_bytes() for p in sorted(PACKAGE.rglob("*.py"))]
    for anchor, cls, need, _ci, _word in plan.groups:
        if len(anchor) < 8:
            continue
        tok = anchor + body(cls, max(need, 24))
        for k in range(1, len(anchor) + 1, 3):
            out += [("import os\n" + src).encode() for src in forms(tok[:k], tok[k:])]
    return out


def scan_file(ctx: WorkerContext, buf: bytes) -> list[Finding]:
    item = Item("file", "app.py", "app.py", len(buf))
    s = ItemScan(ctx, item)
    ctx.scan_buffer(buf, item, s)
    return s.finish(buf)


def test_shared_scan_gives_the_two_scans_hits(ctx: WorkerContext) -> None:
    db, _shapes, plan = python_ast(ctx)._pre
    shared = ctx.matcher.shared(*first_stage(plan), compile_it=True)
    assert shared is not None
    bufs = sources()
    assert len(bufs) > 1000
    needled = 0
    for buf in bufs:
        found, hits = ctx.matcher.find_with_hits(buf)
        found2, hits2, more = ctx.matcher.find_shared(buf, shared)
        assert [(m.rule.id, m.start, m.end, m.secret) for m in found2] == \
            [(m.rule.id, m.start, m.end, m.secret) for m in found]
        assert hits2 == hits

        class Held:
            shared = (buf, more)
        assert pyast_shared.prefilter_hits(db, buf, Held()) == db.scan(buf)  # type: ignore[arg-type]
        needled += any(p >= db.needle_base for p, _e in more)
    assert needled > 100  # the second stage was reached through the shared hits


def test_a_python_source_is_scanned_once_with_the_same_findings(ctx: WorkerContext,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    tok = "hf_" + body("", 34)
    pad = "".join(f'NAME_{i} = "value {i}"\n' for i in range(1500))  # over the batch gate's 16 KiB
    buf = (f'import os\nA = "{tok[:9]}" + "{tok[9:]}"\n' + pad + f'B = "hf_{body("", 34)}"\n').encode()
    assert len(buf) > 16 << 10
    det = python_ast(ctx)
    assert det._pre is not None and det._sharing is not None

    sizes: list[int] = []
    real = hsdb.Scanner.scan

    def counting(self: hsdb.Scanner, data: Any) -> list[tuple[int, int]]:
        sizes.append(len(data))
        return real(self, data)

    monkeypatch.setattr(hsdb.Scanner, "scan", counting)
    monkeypatch.setattr(det, "_sharing", None)  # the two scans
    two = scan_file(ctx, buf)
    assert sizes.count(len(buf)) == 2
    sizes.clear()
    monkeypatch.setattr(pyast_shared, "LOOK_AFTER", 0)
    monkeypatch.setattr(pyast_shared, "COMPILE_AFTER", 0)
    monkeypatch.setattr(det, "_sharing", pyast_shared.Sharing(ctx.matcher, det._pre[2]))
    one = scan_file(ctx, buf)
    assert sizes.count(len(buf)) == 1
    assert {(f.rule_id, f.line, f.column, f.decoded) for f in one} == \
        {(f.rule_id, f.line, f.column, f.decoded) for f in two}
    assert {f.decoded for f in one} == {None, "python-ast"}  # the text pass's and the AST pass's findings


class StubMatcher:
    def __init__(self, fail: bool = False) -> None:
        self.asked: list[bool] = []
        self.fail = fail

    def shared(self, *_a: Any, compile_it: bool) -> Any:
        self.asked.append(compile_it)
        if self.fail:
            raise hsdb.DatabaseError("no")
        return "db" if compile_it else None


def test_compiled_only_after_enough_python(ctx: WorkerContext) -> None:
    plan = python_ast(ctx)._pre[2]
    m = StubMatcher()
    s = pyast_shared.Sharing(m, plan)  # type: ignore[arg-type]
    look = pyast_shared.LOOK_AFTER
    assert s.get(look - 1) is None and m.asked == []  # a small scan: not even looked up (start-up cost)
    assert s.get(1) is None and m.asked == [False]  # looked up in the cache once, not compiled
    assert s.get(pyast_shared.COMPILE_AFTER - look - 1) is None and m.asked == [False]
    assert s.get(1) == "db" and m.asked == [False, True]
    assert s.get(10) == "db" and m.asked == [False, True]


def test_a_cached_database_is_used_once_enough_python_is_seen(ctx: WorkerContext) -> None:
    plan = python_ast(ctx)._pre[2]
    m = StubMatcher()
    m.shared = lambda *_a, compile_it: "cached"  # type: ignore[method-assign]
    s = pyast_shared.Sharing(m, plan)  # type: ignore[arg-type]
    assert s.get(10) is None
    assert s.get(pyast_shared.LOOK_AFTER) == "cached"


def test_a_failing_database_leaves_the_two_scans(ctx: WorkerContext) -> None:
    plan = python_ast(ctx)._pre[2]
    m = StubMatcher(fail=True)
    s = pyast_shared.Sharing(m, plan)  # type: ignore[arg-type]
    assert s.get(pyast_shared.COMPILE_AFTER) is None
    assert s.get(pyast_shared.COMPILE_AFTER) is None and m.asked == [False]  # not tried again


def test_one_process_compiles_the_others_look_in_the_cache_again(ctx: WorkerContext, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the process holding the claim compiles (both workers of a cold ``--jobs 2`` scan did: 4.3 -> 6.2 s on
    the real tree); another scans twice and finds the database in the cache later. A claim left by a process that
    died is taken over; without a trusted cache directory nothing is compiled (nowhere to keep it)."""
    from veritensor_fast.kernels import diskcache

    monkeypatch.setenv("VERITENSOR_FAST_CACHE", str(tmp_path))
    plan = python_ast(ctx)._pre[2]
    held = tmp_path / "veritensor-fast" / (pyast_shared.CLAIM + ".claim")
    held.parent.mkdir(mode=0o700)
    held.touch()  # another worker is compiling
    m = StubMatcher()
    s = pyast_shared.Sharing(m, plan)  # type: ignore[arg-type]
    assert s.get(pyast_shared.COMPILE_AFTER) is None and m.asked == [False]  # looked up, not compiled
    assert s.get(pyast_shared.RELOOK - 1) is None and m.asked == [False]
    m.shared = lambda *_a, compile_it: None if compile_it else "cached"  # type: ignore[method-assign]
    assert s.get(1) == "cached"  # the other process stored it
    assert held.exists()  # not this process's claim: left alone

    old = diskcache.time.time() - diskcache.CLAIM_STALE_S - 5
    import os

    os.utime(held, (old, old))  # its holder died long ago
    m2 = StubMatcher()
    assert pyast_shared.Sharing(m2, plan).get(pyast_shared.COMPILE_AFTER) == "db"  # type: ignore[arg-type]
    assert m2.asked == [False, True] and not held.exists()  # taken over, compiled, released

    monkeypatch.setenv("VERITENSOR_FAST_CACHE", str(tmp_path / "shared"))
    (tmp_path / "shared" / "veritensor-fast").mkdir(parents=True, mode=0o777)
    os.chmod(tmp_path / "shared" / "veritensor-fast", 0o777)  # writable by others: not trusted, never used
    m3 = StubMatcher()
    assert pyast_shared.Sharing(m3, plan).get(pyast_shared.COMPILE_AFTER) is None  # type: ignore[arg-type]
    assert m3.asked == [False]
