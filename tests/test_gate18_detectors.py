"""Issue 16 (gate18): each detector answers for itself whether it can report anything for an item whose bytes
have no hit of the rules database (``quiet_test()``), so the batch gate names no detector class.

Ground truth for each answer: that detector's own ``scan`` over the item alone finds nothing and records no
error whenever its ``quiet`` says so (random batches of shapes every detector claims, binary ones included)."""

from __future__ import annotations

import base64
import gzip
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veritensor_fast import batch_gate
from veritensor_fast.findings import Item
from veritensor_fast.kernels import BACKEND
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

from conftest import hf_token, zip_bytes

pytestmark = pytest.mark.skipif(BACKEND != "hyperscan", reason="the gate needs the Hyperscan database")

_CTX: list[WorkerContext] = []


def _ctx() -> WorkerContext:
    if not _CTX:
        _CTX.append(WorkerContext(ScanOptions()))
    return _CTX[0]


_FRAGS = st.sampled_from(["plain words ", "\n", "x = 1\n", "'", '"', "hf_", "aGZf", "H4sI", "eJ", "=", " + ",
                          "Secret", "kind: ", "dockercfg", "\x00", "\x00\x00\x00\x00", "PK\x03\x04", "\x80\x04",
                          "cos\nsystem\n", "(S'", "{\"cells\": [], \"nbformat\": 4}", "\xff\xfe", "\x1f\x8b",
                          "\x7fELF", "ustar", "GGUF", "\x93NUMPY"])
_NAMES = st.sampled_from(["a.txt", "b.py", "c.md", "d", "e.cfg", "f.json", "g.yaml", "h.ipynb", "i.pkl", "j.bin",
                          "k.pt", "l.pyc", "m.gz", "n.safetensors"])


def pieces(frags: Any, names: Any, kinds: int = 6, noise: int = 64) -> Any:
    """A strategy of (name, bytes) items: tokens, base64 of tokens at any alignment, random bytes (at most
    ``noise``) and ``frags``, under a name from ``names``; kinds 3 to ``kinds`` draw a fragment."""
    @st.composite
    def piece(draw: Any) -> tuple[str, bytes]:
        rng = random.Random(draw(st.integers(0, 2**32)))
        parts: list[bytes] = []
        for _ in range(draw(st.integers(0, 8))):
            kind = draw(st.integers(0, kinds))
            if kind == 0:
                parts.append(hf_token(rng).encode())
            elif kind == 1:
                parts.append(base64.b64encode(("tok " + hf_token(rng)).encode())[draw(st.integers(0, 3)):])
            elif kind == 2:
                parts.append(bytes(rng.randrange(256) for _ in range(draw(st.integers(1, noise)))))
            else:
                parts.append(draw(frags).encode("latin-1"))
        return draw(names), b"".join(parts)

    return piece()


_piece = pieces(_FRAGS, _NAMES)


def _claimed(tok: bytes) -> list[tuple[str, bytes]]:
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": ["h = 1\n"], "outputs": []}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return [("nb.ipynb", json.dumps(nb).encode()), ("arch.bin", zip_bytes({"a.txt": b"plain"})),
            ("x.gz", gzip.compress(b"plain", mtime=0)), ("u16.txt", "plain words\n".encode("utf-16-le")),
            ("evil.txt", b"cos\nsystem\n(S'echo hi'\ntR."), ("m.pkl", b"(lp0\n."),
            ("v.yaml", b"kind: Secret\ndata: {}\n"), ("b.yml", b"k: " + base64.b64encode(b"plain bytes" * 4) + b"\n"),
            ("bin.dat", b"\x00" + base64.b64encode(b"plain bytes, long enough" * 3)),
            ("ast.py", b'P = "' + tok[:3] + b'"\nK = P + "' + tok[3:] + b'"\n')]


def _alone(ctx: WorkerContext, det: Any, item: Item, data: bytes) -> tuple[list[Any], list[Any]]:
    sc = ItemScan(ctx, item)
    det.scan(data, item, data[:4096], sc)
    return sc.findings + sc.finished, sc.errors


def _check(named: list[tuple[str, bytes]]) -> int:
    ctx = _ctx()
    said = 0
    for p, data in named:
        if ctx.matcher.hit_ends(data):
            continue  # the gate asks only for items without a hit
        item = Item("blob", "0" * 40, p, len(data))
        for det in ctx.detectors:
            if det.quiet_test()(item, data, data[:4096]):  # type: ignore[attr-defined]
                said += 1
                assert _alone(ctx, det, item, data) == ([], []), (det.name, p, data[:200])
    return said


@settings(max_examples=150, deadline=None)
@given(st.lists(_piece, min_size=1, max_size=6))
def test_each_detectors_quiet_means_its_scan_reports_nothing(named: list[tuple[str, bytes]]) -> None:
    _check(named)


def test_claimed_shapes_are_not_quiet_for_the_detector_that_claims_them() -> None:
    """Every shape some detector works on is refused by that detector's own answer (and by the gate)."""
    ctx = _ctx()
    named = _claimed(hf_token().encode())
    _check(named)
    gate = batch_gate.Gate(ctx)
    items = [Item("blob", "0" * 40, p, len(b)) for p, b in named]
    assert gate.quiet(items, [(b, lambda: None) for _p, b in named]) == set()
    # binary files are no longer refused as such: a compiled module or a shared library (the encoded pass does
    # not decode them) without a hit is quiet (every detector says so, and scans nothing in it); other binary data
    # is not (its every base64 run is decoded), nor is text under a model's name that may be a pickle
    assert gate.quiet([Item("blob", "0" * 40, "z.dat", 66)], [(b"\x00" * 64 + b"ab", lambda: None)]) == set()
    assert gate.quiet([Item("blob", "0" * 40, "w.bin", 6)], [(b"(lp0\n.", lambda: None)]) == set()
    plain = [("m.pyc", b"\xa7\r\r\n\x00\x00\x00\x00\xe3" + bytes(range(1, 120))),
             ("lib.so", b"\x7fELF\x02\x01\x01" + b"\x00" * 60 + b"ab"),
             ("w.bin", b"# text under a model's name\n")]
    items = [Item("blob", "0" * 40, p, len(b)) for p, b in plain]
    assert gate.quiet(items, [(b, lambda: None) for _p, b in plain]) == {0, 1, 2}
    assert _check(plain) == 3 * len(ctx.detectors)


class _Special:
    """A detector the gate has never heard of, which claims ``*.special`` files."""

    name = "special"

    def quiet_test(self) -> Any:
        return lambda item, data, head: not item.path.endswith(".special")

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        if item.path.endswith(".special"):
            scan.error("special file", "parse")


def test_a_new_detector_takes_part_through_its_own_answer() -> None:
    """No class list: a detector with a ``quiet_test`` keeps the gate on, and its answer is asked."""
    ctx = WorkerContext(ScanOptions())
    ctx.detectors = [*ctx.detectors, _Special()]
    gate = batch_gate.Gate(ctx)
    assert gate.enabled
    named = [("a.txt", b"same words\n"), ("a.special", b"same words\n")]
    items = [Item("blob", "0" * 40, p, len(b)) for p, b in named]
    assert gate.quiet(items, [(b, lambda: None) for _p, b in named]) == {0}


def test_a_detector_that_cannot_answer_turns_the_gate_off() -> None:
    class Unsure(_Special):
        def quiet_test(self) -> Any:
            return None

    ctx = WorkerContext(ScanOptions())
    ctx.detectors = [*ctx.detectors, Unsure()]
    assert not batch_gate.Gate(ctx).enabled
    ctx = WorkerContext(ScanOptions(base64_depth=3))  # the encoded pass then decodes every run of text files
    enc = next(d for d in ctx.detectors if d.name == "encoded")
    assert enc.quiet_test() is None  # type: ignore[attr-defined]
