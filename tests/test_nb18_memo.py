"""Model analysis and the archive secret scan share the decompressed reads of one top-level file
(``decompress.Memo``): a ``.bz2`` stream or an ``.npz`` member is decoded once, not once per detector, while each
detector's budget is charged exactly as before, so findings, errors and both budgets' spending are identical
(checked against the memo switched off, over a sweep of budgets down to ones that stop each detector midway).
"""

from __future__ import annotations

import bz2
import io
import pickle
import zipfile
from collections import Counter
from typing import Any

import pytest

from veritensor_fast import decompress
from veritensor_fast.config import ScanOptions
from veritensor_fast.findings import Item
from veritensor_fast.worker import ItemScan, WorkerContext

from conftest import hf_token


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    return WorkerContext(ScanOptions())


def _npy(payload: bytes) -> bytes:
    """A ``.npy`` of a byte-string array (dtype ``|S``), written by hand as numpy does."""
    header = f"{{'descr': '|S{len(payload)}', 'fortran_order': False, 'shape': (1,), }}"
    pad = 64 - (10 + len(header) + 1) % 64
    h = (header + " " * pad + "\n").encode()
    return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + payload


def _files(tok: str) -> dict[str, bytes]:
    plain = pickle.dumps({"note": f"token={tok}", "xs": list(range(2000))}, protocol=4)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.npy", _npy(f"HF_TOKEN={tok} ".encode() * 40))
        z.writestr("b.npy", _npy(b"x" * 5000))
        z.writestr("meta.pkl", plain)
    return {"graph.gpickle.bz2": bz2.compress(plain), "arrays.npz": zbuf.getvalue(),
            "big.pkl.bz2": bz2.compress(plain * 30)}


def _scan(ctx: WorkerContext, name: str, data: bytes) -> tuple[Any, ...]:
    item = Item("file", name, name, len(data))
    scan = ItemScan(ctx, item)
    ctx.scan_buffer(data, item, scan)
    found = scan.finish(data)
    spent = {k: b.spent for k, b in scan.budgets.items() if isinstance(b, decompress.Budget)}
    return (sorted((f.rule_id, f.line, f.column, f.fingerprint, repr(sorted((f.location or {}).items())))
                   for f in found),
            sorted((e.kind, e.reason) for e in scan.errors), spent)


def _decodes(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, int, Any]]:
    """Counts of streams decoded, by (codec, start offset, input step: a 4 KiB head read or a whole read)."""
    calls: Counter[tuple[str, int, Any]] = Counter()
    real = decompress.stream

    def counting(buf: Any, codec: str, start: int = 0, *a: Any, **k: Any) -> Any:
        calls[(codec, start, k.get("in_chunk"))] += 1
        return real(buf, codec, start, *a, **k)

    monkeypatch.setattr(decompress, "stream", counting)
    return calls


@pytest.mark.parametrize("name", ["graph.gpickle.bz2", "arrays.npz", "big.pkl.bz2"])
def test_each_stream_is_decoded_once_per_file(ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch,
                                              name: str) -> None:
    tok = hf_token()
    data = _files(tok)[name]
    calls = _decodes(monkeypatch)
    with_memo = _scan(ctx, name, data)
    full = [k for k, n in calls.items() if n > 1]
    assert full == [], calls  # before: model analysis and the archive pass each decoded every stream
    monkeypatch.setattr(decompress, "MEMO_ENTRY", -1)  # the memo off: every read decodes
    calls.clear()
    assert _scan(ctx, name, data) == with_memo
    assert max(calls.values()) == 2
    assert any(f[0].startswith("huggingface") for f in with_memo[0])  # the archive pass found the token


@pytest.mark.parametrize("name", ["graph.gpickle.bz2", "arrays.npz", "big.pkl.bz2"])
def test_findings_errors_and_budgets_identical_over_a_budget_sweep(ctx: WorkerContext,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   name: str) -> None:
    data = _files(hf_token())[name]
    monkeypatch.setattr(decompress, "MEMO_ENTRY", -1)
    free = _scan(ctx, name, data)[2]
    top = max(free.values())
    assert top > 0
    # every budget from "stops at the first read" to "enough for both", through each consumer's own spending
    budgets = sorted({1, 4096, 70_000, top // 3, top // 2, top - 1, top, top + 1, *free.values(), 2 * top})
    for total in budgets:
        monkeypatch.setattr(decompress, "default_budget", lambda total=total: total)
        monkeypatch.setattr(decompress, "MEMO_ENTRY", -1)
        off = _scan(ctx, name, data)
        monkeypatch.setattr(decompress, "MEMO_ENTRY", 8 << 20)
        on = _scan(ctx, name, data)
        assert on == off, total


def test_a_kept_read_is_bounded_and_never_a_nested_buffer(ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    tok = hf_token()
    inner = bz2.compress(f"HF_TOKEN={tok}\n".encode() * 100)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner.txt.bz2", inner)  # decoded from the member's bytes: another buffer, never kept
        z.writestr("model.pkl", pickle.dumps({"k": 1}))
    data = zbuf.getvalue()
    kept: list[int] = []
    real = decompress.Memo.keep

    def spy(self: decompress.Memo, key: Any, limit: int, partial: bool, d: bytes, problem: Any, charged: int
            ) -> None:
        real(self, key, limit, partial, d, problem, charged)
        kept.append(self.size)

    monkeypatch.setattr(decompress.Memo, "keep", spy)
    monkeypatch.setattr(decompress, "MEMO_TOTAL", 300)
    got = _scan(ctx, "x.zip", data)
    assert kept and max(kept) <= 300
    monkeypatch.setattr(decompress, "MEMO_ENTRY", -1)
    assert _scan(ctx, "x.zip", data) == got
    assert any(f[0].startswith("huggingface") for f in got[0])


def test_library_budget_outside_a_scan_has_no_memo() -> None:
    data = bz2.compress(b"abc" * 1000)
    b = decompress.Budget()
    assert decompress.read(data, "bz2", 1 << 20, budget=b) == (b"abc" * 1000, None)
    assert b.memo is None and b.spent > 0
