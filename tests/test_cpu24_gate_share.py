"""cpu24: the batch gate's joined scan also answers for the AST prefilter, and binary data is scanned with the
active rules alone.

Small ``.py`` files (up to the gate's 16 KiB) were scanned twice: once joined with the batch (the rules and the
base64 needles) and once each by the AST prefilter's first database, for the files without a rules hit. With the
shared database (``pyast_shared``: the rules, the needles and the prefilter's first stage) the gate now scans the
batch's Python files joined with that one database; a file without a hit of its own there is quiet for the AST
pass and is not scanned again. The prefilter's patterns are compiled in it to report every hit (``Shared.once``):
a single-match pattern reports its first hit in the whole concatenation only, so a second file holding it would
look quiet. ``find_shared`` keeps each such pattern's first hit, which is what the single match reports.

The claims checked here:

- a batch of quiet Python files costs one Hyperscan scan, not one more per file (fails on 378526f: 1 + one per
  file);
- findings and errors are those of the scan without the gate, for every placement of every long-anchor fold in a
  small file: alone, in the first, middle or last file of a batch, at a file's first and last byte, twice in one
  batch (the second file's hits are those a single match would have hidden), in files of exactly 16 KiB and one
  byte more;
- the scanner of binary data holds only the active rules (fails on 378526f: the strict-only rule's candidates
  were found and dropped), and ``--strict-secrets`` still finds that rule in binary data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_ast22_needles import body, forms
from test_hist17_gate import counting_gate

from veritensor_fast import batch_gate, engine
from veritensor_fast.detectors import pyast_shared
from veritensor_fast.findings import Item
from veritensor_fast.kernels import BACKEND, hsdb
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions, WorkerContext

pytestmark = pytest.mark.skipif(BACKEND != "hyperscan", reason="the gate needs the Hyperscan database")

SMALL = batch_gate.SMALL


def python_ast(ctx: WorkerContext) -> Any:
    return next(d for d in ctx.detectors if d.name == "python-ast")


@pytest.fixture()
def sharing_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared database from the first Python byte (normally after megabytes of Python source)."""
    monkeypatch.setattr(pyast_shared, "LOOK_AFTER", 0)
    monkeypatch.setattr(pyast_shared, "COMPILE_AFTER", 0)


def counted_settles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many items the joined scan proved quiet for the AST pass (0 on code without that proof)."""
    got = [0]
    real = getattr(batch_gate, "_unsettled", None)
    if real is not None:
        def counting(answer: Any, done: set[int], idx: list[int], *rest: Any) -> list[bool]:
            got[0] += sum(i in done for i in idx)
            return real(answer, done, idx, *rest)
        monkeypatch.setattr(batch_gate, "_unsettled", counting)
    return got


def test_a_batch_of_quiet_python_files_is_scanned_once(sharing_now: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = WorkerContext(ScanOptions())
    det = python_ast(ctx)
    assert det._pre is not None
    srcs = [f'import os\nNAME_{i} = "value {i}"\nprint(NAME_{i})\n'.encode() for i in range(40)]
    items = [Item("file", f"m{i}.py", f"m{i}.py", len(s)) for i, s in enumerate(srcs)]
    assert det._sharing.get(0) is not None  # the shared database is in use (compiled into the test cache)
    gate = batch_gate.Gate(ctx)
    calls: list[int] = []
    real = hsdb.Scanner.scan

    def counting(self: hsdb.Scanner, data: Any) -> list[tuple[int, int]]:
        calls.append(len(data))
        return real(self, data)

    monkeypatch.setattr(hsdb.Scanner, "scan", counting)
    assert gate.quiet(items, [(s, None) for s in srcs]) == set(range(len(srcs)))
    assert calls == [sum(map(len, srcs)) + len(srcs) - 1]  # the joined scan alone


def test_an_answer_of_the_wrong_length_leaves_nothing_quiet(sharing_now: None,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The items the joined scan settled are not asked; an answer about the others of the wrong length still turns
    the whole batch loud (as for any detector's batch answer)."""
    ctx = WorkerContext(ScanOptions())
    det = python_ast(ctx)
    srcs = [b'import os\nX = "quiet"\n'] * 5 + [b"plain text, no quote\n"] * 2
    items = [Item("file", f"m{i}{'.py' if i < 5 else '.txt'}", f"m{i}{'.py' if i < 5 else '.txt'}", len(s))
             for i, s in enumerate(srcs)]
    assert batch_gate.Gate(ctx).quiet(items, [(s, None) for s in srcs]) == set(range(7))
    asked: list[int] = []

    def short(its: list[Item], datas: list[bytes], heads: list[bytes]) -> list[bool]:
        asked.append(len(its))
        return [True] * (len(its) - 1)

    monkeypatch.setattr(det, "quiet_batch", short)
    assert batch_gate.Gate(ctx).quiet(items, [(s, None) for s in srcs]) == set()
    assert asked == [2]  # the two text files only: the Python files were settled by the joined scan


def placements() -> list[bytes]:
    """Every fold the AST pass reassembles of each long anchor's token, cut at every third offset (the prefilter's
    first and second stages, needles included)."""
    plan = python_ast(WorkerContext(ScanOptions()))._pre[2]
    out: list[bytes] = []
    for anchor, cls, need, _ci, _word in plan.groups:
        if len(anchor) < 8:
            continue
        tok = anchor + body(cls, max(need, 24))
        for k in range(1, len(anchor) + 1, 5):
            out += [src.encode() for src in forms(tok[:k], tok[k:])]
    return out


QUIET = b'import os\nX = "a quiet string"\n'


def _fill(src: bytes, size: int, at_start: bool) -> bytes:
    """``src`` padded with quiet Python lines to exactly ``size`` bytes, before or after it."""
    pad = size - len(src)
    assert pad >= 2
    filler = (b"#" * (pad - 1) + b"\n") if pad < 64 else (b"q = 'x'\n" * (pad // 8))[: pad - 1].ljust(pad - 1, b" ") + b"\n"
    return src + b"\n" + filler[:-1] if at_start else filler + src


def _tree(root: Path, srcs: list[bytes]) -> None:
    """The sources in batches of small files: each among quiet ones, first, middle and last, at a file's first
    and last byte, twice in a row, and padded to exactly 16 KiB and to one byte more."""
    root.mkdir()
    n = 0

    def put(data: bytes, ext: str = ".py") -> None:
        nonlocal n
        (root / f"f{n:06d}{ext}").write_bytes(data)
        n += 1

    for i, src in enumerate(srcs):
        shape = i % 6
        if shape == 0:
            put(src)
            put(QUIET)
        elif shape == 1:
            put(QUIET)
            put(src.rstrip(b"\n"))  # the last byte of the file is the token's
            put(src)  # the same patterns again, in the next file
        elif shape == 2:
            put(_fill(src, SMALL, at_start=False))
            put(QUIET)
        elif shape == 3:
            put(_fill(src, SMALL + 1, at_start=True))
            put(QUIET)
        elif shape == 4:
            put(QUIET + src)
            put(src, ".txt")  # text beside the Python files, scanned with the rules alone
        else:
            put(_fill(src, SMALL, at_start=True))
            put(src)


def _scan(root: Path, gate: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any], int]:
    with counting_gate(monkeypatch, gate) as calls:
        r = engine.scan(FileSource([str(root)], default_excludes=False), ScanOptions(), jobs=1)
    found = sorted((f.rule_id, f.path, f.line, f.column, f.fingerprint, f.decoded or "",
                    json.dumps(f.location, sort_keys=True)) for f in r.findings)
    return found, sorted((e.path, e.kind, e.reason) for e in r.errors), calls[0]


def test_every_placement_is_found_as_without_the_gate(tmp_path: Path, sharing_now: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    srcs = placements()[::10]  # every fold and shape, at a sample of cuts (all of them: three minutes)
    assert len(srcs) > 200
    _tree(tmp_path / "t", srcs)
    settles = counted_settles(monkeypatch)
    on, on_errors, quiet = _scan(tmp_path / "t", True, monkeypatch)
    off, off_errors, none = _scan(tmp_path / "t", False, monkeypatch)
    assert none == 0 and quiet > 100  # the gate ran, and called the quiet files quiet
    assert settles[0] > 100  # and the joined scan proved them quiet for the AST pass
    assert on == off and on_errors == off_errors
    assert sum(1 for f in on if f[5] == "python-ast") > 40  # the split tokens, found by the AST pass


def test_the_same_pattern_in_two_files_of_one_batch(tmp_path: Path, sharing_now: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A single-match pattern compiled as such reports its first hit in the whole concatenation only: the second
    file's split token must still reach the AST pass."""
    root = tmp_path / "t"
    root.mkdir()
    tok = "hf_" + body("", 34)
    for i in range(30):
        name = "a" if i in (3, 17, 29) else "q"
        data = f'P = "{tok[:5]}"\nK = P + "{tok[5:]}"\n' if name == "a" else 'x = "quiet"\n'
        (root / f"{i:03d}_{name}.py").write_text(data)
    on, _e, quiet = _scan(root, True, monkeypatch)
    assert quiet >= 20
    assert sorted(f[1].rsplit("/", 1)[-1] for f in on if f[5] == "python-ast") == ["003_a.py", "017_a.py", "029_a.py"]


def test_find_shared_keeps_a_single_match_patterns_first_hit(sharing_now: None) -> None:
    ctx = WorkerContext(ScanOptions())
    det = python_ast(ctx)
    db = det._pre[0]
    shared = det._sharing.get(0)
    assert shared is not None and shared.once
    tok = "hf_" + body("", 34)
    one = f'P = "{tok[:5]}"\nK = P + "{tok[5:]}"\n'
    for buf in (one.encode(), (one * 3).encode(), ('x = "q"\n' + one * 2 + "y = 1\n").encode()):
        _found, _hits, more = ctx.matcher.find_shared(buf, shared)
        first = db.first.scan(buf) if hasattr(db, "first") else db.scan(buf)
        assert more == first  # the single-match database's hits, in order
        got = ctx.matcher.shared_ends(buf, shared)
        assert got is not None and len(got[1]) >= len(more)  # every hit for the gate


SECRET_ASSIGNMENT = b'db_password = "AuGGYUxfmolF6jwaYHPb_9WY0/exIAYJ"'


def test_binary_data_is_scanned_with_the_active_rules_only() -> None:
    buf = b"\x00\x01\x02ELF\x00" + SECRET_ASSIGNMENT + b"\x00\xff"
    lax = WorkerContext(ScanOptions())
    rules = lax.ruleset.rules
    pid = next(i for i, r in enumerate(rules) if r.id == "generic.secret-assignment")
    assert rules[pid].strict_only
    assert pid not in {p for p, _e in lax.matcher._rules_scanner().scan(buf)}
    assert pid in {p for p, _e in lax.matcher._scanner.scan(buf)}  # the text database keeps every rule
    assert lax.matcher.find(buf) == []
    strict = WorkerContext(ScanOptions(strict_secrets=True))
    assert [m.rule.id for m in strict.matcher.find(buf)] == ["generic.secret-assignment"]
    assert strict.matcher.candidate_ends(buf)
