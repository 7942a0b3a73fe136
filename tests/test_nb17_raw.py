"""Issue 16, giant notebook: the raw-bytes pass and the ``raw_line`` lookup share one read of the file
(``nb_guard.find_windowed(scan, buf, want)``), newlines are counted by a ``find`` loop while they are sparse,
and a column whose line started windows earlier is counted only for a finding. The inline-ignore needles ride
in the same scan (``LiteralFinder(..., needles)``), so the marker pass does not read the notebook again.

Checked against references computed on the whole buffer: the verbatim occurrences (first k, overlapping ones
count, across window edges, early stop) and every raw finding's line and character column (long lines over
several windows, multi-byte characters, findings on the first line, at window edges, at the end); the needle
hits against ``ignore._search`` (across window edges, past ``MAX_MARKERS``); a notebook's findings with markers
against the marker pass's own search.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import test_notebook
from hypothesis import given, settings
from hypothesis import strategies as st

from veritensor_fast import ignore
from veritensor_fast.detectors import nb_guard
from veritensor_fast.detectors import notebook as nbmod
from veritensor_fast.detectors.nb_rawline import LiteralFinder
from veritensor_fast.findings import Item
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import hf_token

_occurrences_reference = test_notebook._occurrences_reference


@pytest.fixture(scope="module")
def scan() -> SimpleNamespace:
    return SimpleNamespace(ctx=WorkerContext(ScanOptions()))


@pytest.mark.parametrize("seed", range(6))
def test_occurrences_equal_reference(scan: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.setattr(nb_guard, "_RAW_WINDOW", 4096)
    rng = random.Random(seed)
    buf = bytes(rng.choice(b"ab\n") for _ in range(50_000))
    want = {bytes(rng.choice(b"ab\n") for _ in range(rng.randint(1, 9))): rng.randint(1, 5) for _ in range(12)}
    want[b"zzz"] = 2  # absent
    want[buf[-7:]] = 3  # at the very end
    for k in range(1, 12):  # secrets straddling window edges
        cut = 4096 * k + rng.randint(-20, 0)
        want[buf[cut:cut + rng.randint(21, 40)]] = rng.randint(1, 3)
    _, occ = nb_guard.find_windowed(scan, buf, want)  # type: ignore[arg-type]
    assert occ == _occurrences_reference(buf, want)


def test_occurrences_longer_than_the_context_are_left_to_the_caller(scan: SimpleNamespace,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nb_guard, "_RIGHT_CONTEXT", 8)
    assert nb_guard.find_windowed(scan, b"x" * 100, {b"x" * 20: 1})[1] is None  # type: ignore[arg-type]
    assert nb_guard.find_windowed(scan, b"x" * 100, {})[1] == {}  # type: ignore[arg-type]
    assert nb_guard.find_windowed(scan, b"x" * 100)[1] is None  # type: ignore[arg-type]


def _line_col(buf: bytes, off: int) -> tuple[int, int]:
    line = buf.count(b"\n", 0, off) + 1
    start = buf.rfind(b"\n", 0, off) + 1
    return line, len(buf[start:off].decode("utf-8", "replace")) + 1


@pytest.mark.parametrize("seed", range(4))
def test_raw_lines_and_columns_equal_reference(scan: SimpleNamespace, monkeypatch: pytest.MonkeyPatch,
                                                seed: int) -> None:
    monkeypatch.setattr(nb_guard, "_RAW_WINDOW", 1 << 12)
    rng = random.Random(seed)
    parts: list[bytes] = []
    toks: list[bytes] = []
    for i in range(24):
        kind = rng.randrange(4)
        if kind == 0:  # a line longer than a window or several, multi-byte characters in it
            parts.append(("é" * rng.randint(500, 3000) + "x" * rng.randint(0, 5000)).encode())
        elif kind == 1:
            parts.append(b"\n" * rng.randint(1, 3))
        elif kind == 2:
            parts.append(bytes(rng.choice(b"abc \n") for _ in range(rng.randint(10, 3000))))
        tok = hf_token(rng).encode()
        toks.append(tok)
        parts.append(b" " + tok + b" " if i % 3 else b"\n" + tok + b"\n")
    buf = b"".join(parts)
    found, _ = nb_guard.find_windowed(scan, buf)  # type: ignore[arg-type]
    got = [(m.secret, line, col) for m, line, col in found]
    want = [(m.secret, *_line_col(buf, m.start)) for m, _, _ in found]
    assert got == want
    assert sorted(m.secret for m, _, _ in found) == sorted(toks)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400).map(lambda b: bytes(b"\na"[x % 2] if x % 5 else 10 for x in b)),
       st.integers(0, 50), st.integers(0, 400))
def test_newlines_equal_count(data: bytes, start: int, stop: int) -> None:
    assert nb_guard._newlines(data, start, stop) == data.count(b"\n", start, stop)


@pytest.mark.parametrize("seed", range(4))
def test_needle_hits_equal_marker_search(scan: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    monkeypatch.setattr(nb_guard, "_RAW_WINDOW", 4096)
    rng = random.Random(seed)
    words = [b"veritensor-fast:", b"gitleaks:allow", b"allowlist", b"ALLOWLIST", b"x", b"\n", b"allowlis"]
    parts = [rng.choice(words) + bytes(rng.choice(b"ab \n") for _ in range(rng.randint(0, 900))) for _ in range(60)]
    buf = b"".join(parts)
    want = {buf[100:120]: 2}
    cap = 3 if seed == 3 else ignore.MAX_MARKERS  # past the cap: both give up (None)
    monkeypatch.setattr(ignore, "MAX_MARKERS", cap)
    lit = LiteralFinder(want, ignore.NEEDLES, cap)
    _, occ = nb_guard.find_windowed(scan, buf, want, lit)  # type: ignore[arg-type]
    assert occ == _occurrences_reference(buf, want)
    ref = ignore._search(buf)
    assert lit.needle_hits == ref and lit.needles_over is (ref is None)
    assert (ref is None) is (seed == 3)


def test_notebook_markers_without_a_second_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big notebook with inline markers (same line, line before, rule-scoped, in metadata): the findings the
    marker pass's own search gives, with no search of its own."""
    toks = [hf_token() for _ in range(7)]
    src = [f"a = '{toks[0]}'  # veritensor-fast: ignore\n", "# veritensor-fast: ignore\n", f"b = '{toks[1]}'\n",
           f"c = '{toks[2]}'  # gitleaks:allow\n", f"d = '{toks[3]}'  # veritensor-fast: ignore[openai]\n",
           f"e = '{toks[4]}'\n"]
    cells = [test_notebook.code(src, cid="c0"), test_notebook.code([f"f = '{toks[5]}'  # pragma: allowlist secret\n"],
                                                                    cid="c1")]
    doc = test_notebook.nb(cells, {"kernelspec": {"name": "python3"}, "w": f"{toks[6]} veritensor-fast: ignore"})
    raw = json.dumps(doc, indent=1).encode()
    p = tmp_path / "m.ipynb"
    p.write_bytes(raw)
    monkeypatch.setattr(nbmod, "ORJSON_MAX", 16)
    ctx = WorkerContext(ScanOptions())

    def run() -> list[tuple[str, int, str]]:
        res = ctx.run_batch([Item("file", str(p), "m.ipynb", len(raw))])
        assert res.errors == []
        return sorted((f.secret or "", f.line, json.dumps(f.location, sort_keys=True)) for f in res.findings)

    reference = None
    with monkeypatch.context() as m:
        m.setattr(ignore, "remember_needles", lambda buf, hits: None)
        reference = run()
    searched: list[int] = []
    real = ignore._needle_db
    monkeypatch.setattr(ignore, "_needle_db", lambda: searched.append(1) or real())
    assert run() == reference
    assert searched == []  # the marker pass took the raw pass's needle hits
    assert sorted(s for s, _, _ in reference) == sorted([toks[3], toks[4]])
