"""Per-file dispatch (issue 16, perfile17): work a file without candidates no longer pays for.

- Hyperscan's ``Database.scan`` is called positionally (keywords cost ~0.6 us a call in the ``hyperscan``
  package), so the pure-Python fallback must take the same positional order: ``(data, handler, flags, context)``;
- a text file whose one scan met no base64 needle is not handed to the base64 decoder at all;
- the findings stay those of the full path (a base64-encoded token is still found next to a plain one);
- UTF-16 detection rejects binary heads (compiled Python) from their first 512 bytes, with the answer of the
  full counts.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fast16_perfile import _reference as _utf16_reference  # the detection as written before

from veritensor_fast.detectors.text import utf16_encoding
from veritensor_fast.findings import Item
from veritensor_fast.kernels import BACKEND, hs_python
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


@pytest.mark.skipif(BACKEND == "python", reason="the fallback matcher finds needles in each run, not in the scan")
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


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["utf-16-le", "utf-16-be"]), st.integers(0, 90), st.integers(0, 4095), st.integers(0, 4096),
       st.booleans())
def test_utf16_prefix_check_decides_as_the_full_counts(enc: str, nuls: int, where: int, size: int,
                                                       pyc: bool) -> None:
    """Full 4 KiB heads (the detector's), UTF-16 text with NULs sprinkled into its low bytes around the 2%
    threshold, in the first 512 bytes or after them, and compiled-Python-like heads."""
    if pyc:
        head = bytes((i * 7) % 5 and (i * 13) % 251 for i in range(size))
    else:
        head = bytearray(("hello world, plain text\n" * 200).encode(enc)[:size])
        rng = random.Random(where * 131 + nuls)
        for _ in range(nuls):
            i = rng.randrange(0, max(1, len(head)))
            if head:
                head[i] = 0
        head = bytes(head)
    assert utf16_encoding(head) == _utf16_reference(head)
