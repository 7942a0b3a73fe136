"""Issue 16 (gatebatch18): the batch gate asks each detector once per batch (``quiet_batch(items, datas, heads)``),
not once per item; a detector without it still answers item by item (``quiet_test()``), one with neither turns the
gate off.

Ground truth for each batch answer: the same detector's per-item answer (``quiet_test()``), which
``tests/test_gate18_detectors.py`` checks against the detector's own ``scan``. Shapes: random pieces, and
adversarial heads (every first byte before each magic's tail, ``ustar`` at 257, ``{`` at 8, BOMs and white space
before a notebook, names in mixed case)."""

from __future__ import annotations

import base64
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_gate18_detectors import _ctx, pieces

from veritensor_fast import batch_gate
from veritensor_fast.findings import Item
from veritensor_fast.kernels import BACKEND
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

pytestmark = pytest.mark.skipif(BACKEND != "hyperscan", reason="the gate needs the Hyperscan database")

_NAMES = ["a.txt", "b.py", "B.PY", "c.pyi", "d", "f.json", "g.yaml", "G.YML", "t.tpl", "h.ipynb", "H.IpYnB",
          "i.pkl", "j.bin", "k.PT", "l.pyc", "m.gz", "x.tar.gz", "n.safetensors", "N.SafeTensors", "o.npz", "p.h5",
          "dir.pkl/readme", "commit 0123"]
_TAILS = [b"", b"K\x03\x04", b"K\x05\x06", b"\x04", b"z\xbc\xaf\x27\x1c", b"NUMPY", b"GUF", b"HDF\r\n\x1a\n",
          b"\x8b\x08\x00", b"Zh91AY&SY", b"7zXZ\x00", b"\xb5\x2f\xfd", b"\x22\x4d\x18", b"\x9c",
          b"\x00\x00\x01\x00" + b"\xff" * 8, b"os\nsystem\n(S'x'\ntR.", b"p0\n.", b"mport os\n",
          b'"cells": [], "nbformat": 4}', b"\xbb\xbf{\"cells\": [], \"nbformat\": 4}", b"\x00" * 8 + b"{}"]
_PREFIXES = [b"", b"\xef\xbb\xbf", b"\xff\xfe", b" \n\t{", b"\x7fELF", b"MZ", b"\xa7\r\r\n"]


def _adversarial() -> list[tuple[str, bytes]]:
    rng = random.Random(18)
    out: list[tuple[str, bytes]] = []
    for b in range(256):
        for tail in _TAILS:
            for pad in (b"", b"\x00" * 12 + b"abc\n"):
                out.append(("a.txt", bytes([b]) + tail + pad))
                out.append((rng.choice(_NAMES), bytes([b]) + tail + pad))
    for pre in _PREFIXES:
        for tail in _TAILS:
            out.append((rng.choice(_NAMES), pre + tail))
    for name in _NAMES:
        out.append((name, b""))
        out.append((name, b"x" * 257 + b"ustar\x00" + b"\x00" * 300))
        out.append((name, (10).to_bytes(8, "little") + b'{"a": 1}  ' + b"\x00" * 8))
        out.append((name, b"k: " + base64.b64encode(b"plain bytes, long enough" * 3) + b"\n"))
        out.append((name, b"kind: Secret\ndata: {}\n"))
        out.append((name, b"P = 'abc'\nK = P + 'def'\n"))
        out.append((name, b"\x00" + base64.b64encode(b"plain bytes, long enough" * 3)))
        out.append((name, b"plain text\n" + b"PK\x05\x06" + b"\x00" * 18))
    return out


def _columns(named: list[tuple[str, bytes]]) -> tuple[list[Item], list[bytes], list[bytes]]:
    items = [Item("blob", "0" * 40, p, len(b)) for p, b in named]
    return items, [b for _p, b in named], [b[:4096] for _p, b in named]


def _same_answers(named: list[tuple[str, bytes]]) -> None:
    items, datas, heads = _columns(named)
    for det in _ctx().detectors:
        test = det.quiet_test()  # type: ignore[attr-defined]
        want = [test(it, d, h) for it, d, h in zip(items, datas, heads, strict=True)]
        got = det.quiet_batch(items, datas, heads)  # type: ignore[attr-defined]
        assert type(got) is list and len(got) == len(items), det.name
        diff = [(items[k].path, datas[k][:40]) for k in range(len(items)) if got[k] != want[k]]
        assert not diff, (det.name, diff[:5])


def test_every_detector_answers_a_batch_as_it_answers_each_item_on_adversarial_heads() -> None:
    _same_answers(_adversarial())


_FRAGS = st.sampled_from(["plain words ", "\n", "x = 1\n", "'", "hf_", "aGZf", "H4sI", "=", "Secret", "kind: ",
                          "\x00", "PK\x03\x04", "PK\x05\x06", "\x80\x04", "cos\nsystem\n", "(S'", "(lp0\n.",
                          "{\"cells\": [], \"nbformat\": 4}", "\xef\xbb\xbf", "\xff\xfe", "\x1f\x8b\x08", "\x7fELF",
                          "ustar", "GGUF", "\x93NUMPY", "BZh91AY&SY", "\xfd7zXZ\x00", "x\x9c", "]\x00\x00\x80\x00"])


_piece = pieces(_FRAGS, st.sampled_from(_NAMES), kinds=5, noise=300)


@settings(max_examples=200, deadline=None)
@given(st.lists(_piece, min_size=0, max_size=8))
def test_every_detector_answers_a_random_batch_as_it_answers_each_item(named: list[tuple[str, bytes]]) -> None:
    _same_answers(named)


@settings(max_examples=60, deadline=None)
@given(st.lists(_piece, min_size=1, max_size=8))
def test_the_gate_with_batch_answers_calls_the_same_items_quiet_as_item_by_item(named: list[tuple[str, bytes]]) -> None:
    ctx = _ctx()
    named = named + _adversarial()[::97]
    items = [Item("blob", "0" * 40, p, len(b)) for p, b in named]
    got = [(b, lambda: None) for _p, b in named]
    gate = batch_gate.Gate(ctx)
    one_by_one = batch_gate.Gate(ctx)
    one_by_one.cheap = [batch_gate._per_item(t) for t in (d.quiet_test() for d in ctx.detectors  # type: ignore
                                                           if not getattr(d, "quiet_cost", 0))]
    one_by_one.costly = [batch_gate._per_item(t) for t in (d.quiet_test() for d in ctx.detectors  # type: ignore
                                                            if getattr(d, "quiet_cost", 0))]
    assert gate.quiet(items, got) == one_by_one.quiet(items, got)


class _Counted:
    """A detector that claims ``*.special`` files and counts how often the gate asks it."""

    name = "special"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def quiet_batch(self, items: list[Item], datas: list[bytes], heads: list[bytes]) -> list[bool]:
        self.batches.append(len(items))
        return [not it.path.endswith(".special") for it in items]

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        if item.path.endswith(".special"):
            scan.error("special file", "parse")


def _batch(n: int) -> tuple[list[Item], list[Any]]:
    named = [(f"f{k}.special" if k % 3 == 0 else f"f{k}.txt", b"same words %d\n" % k) for k in range(n)]
    return [Item("blob", "0" * 40, p, len(b)) for p, b in named], [(b, lambda: None) for _p, b in named]


def test_the_gate_asks_each_detector_once_per_batch() -> None:
    ctx = WorkerContext(ScanOptions())
    special = _Counted()
    ctx.detectors = [*ctx.detectors, special]
    asked: dict[str, int] = {}
    for det in ctx.detectors[:-1]:
        def per_item(*_a: Any, _name: str = det.name) -> Any:
            asked[_name] = asked.get(_name, 0) + 1
            raise AssertionError("asked item by item")
        det.quiet_test = lambda _f=per_item: _f  # type: ignore[attr-defined]
    gate = batch_gate.Gate(ctx)
    assert gate.enabled
    items, got = _batch(30)
    assert gate.quiet(items, got) == {k for k in range(30) if k % 3}
    assert special.batches == [30] and asked == {}


def test_a_detector_with_only_a_batch_answer_keeps_the_gate_on_and_one_with_neither_turns_it_off() -> None:
    ctx = WorkerContext(ScanOptions())
    ctx.detectors = [*ctx.detectors, _Counted()]
    assert batch_gate.Gate(ctx).enabled

    class Mute:
        name = "mute"

        def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
            scan.error("always", "parse")

    ctx = WorkerContext(ScanOptions())
    ctx.detectors = [*ctx.detectors, Mute()]
    assert not batch_gate.Gate(ctx).enabled


def test_a_batch_answer_of_the_wrong_length_calls_nothing_quiet() -> None:
    class Short(_Counted):
        def quiet_batch(self, items: list[Item], datas: list[bytes], heads: list[bytes]) -> list[bool]:
            return [True] * (len(items) - 1)

    ctx = WorkerContext(ScanOptions())
    ctx.detectors = [*ctx.detectors, Short()]
    items, got = _batch(6)
    assert batch_gate.Gate(ctx).quiet(items, got) == set()
