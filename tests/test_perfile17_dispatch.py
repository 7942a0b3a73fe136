"""Per-file dispatch (issue 16, perfile17): work a file without candidates no longer pays for.

- Hyperscan's ``Database.scan`` is called positionally (keywords cost ~0.6 us a call in the ``hyperscan``
  package), so the pure-Python fallback must take the same positional order: ``(data, handler, flags, context)``;
- a text file whose one scan met no base64 needle is not handed to the base64 decoder at all;
- the findings stay those of the full path (a base64-encoded token is still found next to a plain one).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast.findings import Item
from veritensor_fast.kernels import hs_python
from veritensor_fast.matcher import compile_ruleset
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

from conftest import hf_token


def test_fallback_scan_takes_hyperscans_positional_order() -> None:
    db = hs_python.Database()
    db.compile(expressions=[rb"hf_"], ids=[7], elements=1, flags=[0])
    got: list[Any] = []
    db.scan(b"xx hf_ yy", lambda pid, _f, to, _fl, ctx: ctx.append((pid, to)), 0, got)  # as hsdb calls it
    assert got == [(7, 6)]


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    opts = ScanOptions()
    rs = opts.ruleset()
    return WorkerContext(opts, compile_ruleset(rs), rs)


def _scan(ctx: WorkerContext, data: bytes, path: str = "a/notes.txt") -> ItemScan:
    item = Item("file", path, path, len(data))
    sc = ItemScan(ctx, item)
    ctx.scan_buffer(data, item, sc)
    return sc


def test_text_without_needles_skips_the_decoder(ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = next(d for d in ctx.detectors if d.name == "encoded")
    calls: list[int] = []
    monkeypatch.setattr(enc.decoder, "scan_buffer", lambda *a, **k: calls.append(1))  # type: ignore[attr-defined]
    sc = _scan(ctx, b"import os\nprint('hello world')\n" * 20)
    assert calls == [] and sc.b64_hits is not None and sc.b64_hits[1] == []
    _scan(ctx, b"key: aGZfYWJj\n", "values.yaml")  # YAML: the generic layer still runs
    assert calls == [1]


def test_encoded_and_plain_tokens_still_found(ctx: WorkerContext, tmp_path: Path) -> None:
    tok, tok2 = hf_token(), hf_token()
    blob = base64.b64encode(f"token={tok2}".encode()).decode()
    data = f"a = '{tok}'\nb = '{blob}'\n".encode()
    sc = _scan(ctx, data)
    got = sorted((f.secret, f.line, f.decoded is not None) for f in sc.finish(data))
    assert got == sorted([(tok, 1, False), (tok2, 2, True)])
