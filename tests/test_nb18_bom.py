"""Notebooks saved with a byte-order mark are scanned as notebooks, cell by cell, with no error.

Windows editors save "UTF-8 with BOM"; Windows PowerShell 5.1 redirects text as UTF-16 LE with a BOM. Before,
both failed the JSON parse: the file was reported with a ``parse`` error and scanned as plain text, so findings
had no cell locations, and in the UTF-16 one the token in a base64 attachment was lost. Now:

- a UTF-8 BOM is skipped by every parser (orjson whole, the cell cutter, the ijson stream and its metadata
  pass), and a large BOM notebook is recognised as JSON (``windows.wants_whole_file``, ``randread.text_like``);
- a UTF-16 notebook up to ``notebook.UTF16_MAX`` is parsed from its UTF-8 form (findings carry
  ``encoding``); a bigger one is scanned as UTF-16 text with a ``limit`` error, as before but said plainly.

Fixtures: ``tests/fixtures/real_notebooks`` (``nbformat.write`` into a file opened as ``utf-8-sig`` / ``utf-16``;
``expected.json`` records that ``nbformat.read`` itself refuses both).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import test_notebook
from test_nb17_cells import _cells, _doc, _key, both

from veritensor_fast.detectors import notebook as nbmod
from veritensor_fast.findings import Finding
from veritensor_fast.worker import WorkerContext

from conftest import hf_token

ctx, scan, code, nb = test_notebook.ctx, test_notebook.scan_bytes, test_notebook.code, test_notebook.nb
HERE = Path(__file__).parent / "fixtures" / "real_notebooks"
BOM = b"\xef\xbb\xbf"


def _tokens() -> set[str]:
    return {e["token"] for e in json.loads((HERE / "expected.json").read_text())["tokens.ipynb"]}


def _with_encoding(fs: list[Finding], enc: str) -> list[Finding]:
    from dataclasses import replace

    return [replace(f, location={**(f.location or {}), "encoding": enc}) for f in fs]


def _cells_of(fs: list[Finding]) -> set[Any]:
    return {(f.location or {}).get("cell") for f in fs}


def test_the_fixtures_are_the_same_notebook() -> None:
    plain = (HERE / "tokens.ipynb").read_bytes()
    assert (HERE / "tokens-bom.ipynb").read_bytes() == BOM + plain
    u16 = (HERE / "tokens-utf16.ipynb").read_bytes()
    assert u16[:2] == b"\xff\xfe" and u16[2:].decode("utf-16-le").replace("\r\n", "\n").encode() == plain


def test_utf8_bom_notebook_nbformat_wrote_is_scanned_cell_by_cell(ctx: WorkerContext, tmp_path: Path) -> None:
    plain = scan(ctx, tmp_path, (HERE / "tokens.ipynb").read_bytes(), "plain.ipynb")
    fs, errs = scan(ctx, tmp_path, (HERE / "tokens-bom.ipynb").read_bytes(), "bom.ipynb")
    assert errs == []
    assert _key(fs, errs) == _key(*plain)  # same rule, secret, line, column and cell location
    assert _tokens() <= {f.secret for f in fs}
    assert {0, 1, 2, 3, 4} <= _cells_of(fs)


def test_utf16_notebook_is_scanned_cell_by_cell_and_keeps_the_attachment(ctx: WorkerContext,
                                                                         tmp_path: Path) -> None:
    plain = scan(ctx, tmp_path, (HERE / "tokens.ipynb").read_bytes(), "plain.ipynb")
    fs, errs = scan(ctx, tmp_path, (HERE / "tokens-utf16.ipynb").read_bytes(), "u16.ipynb")
    assert errs == []
    assert _key(fs, errs) == _key(_with_encoding(plain[0], "utf-16-le"), [])
    attachment = [f for f in fs if (f.location or {}).get("part") == "attachment"]
    assert len(attachment) == 1 and attachment[0].secret in _tokens()  # lost by the UTF-16 text pass before
    assert _tokens() <= {f.secret for f in fs}


@pytest.mark.parametrize("enc", ["utf-16-le", "utf-16-be"])
def test_utf16_without_bom_and_big_endian(ctx: WorkerContext, tmp_path: Path, enc: str) -> None:
    plain = (HERE / "tokens.ipynb").read_bytes()
    fs, errs = scan(ctx, tmp_path, plain.decode().encode(enc), "u.ipynb")
    assert errs == []
    assert _key(fs, errs) == _key(_with_encoding(scan(ctx, tmp_path, plain, "p.ipynb")[0], enc), [])


def test_utf16_notebook_over_the_bound_is_scanned_as_utf16_text(ctx: WorkerContext, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nbmod, "UTF16_MAX", 1024)
    fs, errs = scan(ctx, tmp_path, (HERE / "tokens-utf16.ipynb").read_bytes(), "u16.ipynb")
    assert [e.kind for e in errs] == ["limit"] and "UTF-16" in errs[0].reason
    assert len(_tokens() & {f.secret for f in fs}) == 6  # the text pass: all but the base64 attachment
    assert all(f.location == {"encoding": "utf-16-le"} for f in fs)


def test_invalid_utf16_notebook_is_a_parse_error_and_scanned_as_text(ctx: WorkerContext, tmp_path: Path) -> None:
    tok = hf_token()
    raw = json.dumps(nb([code([f'k = "{tok}"\n'])])).encode("utf-16-le")
    bad = b"\xff\xfe" + raw[:20] + b"\x00\xd8" + raw[20:]  # a lone high surrogate
    fs, errs = scan(ctx, tmp_path, bad, "bad.ipynb")
    assert [e.kind for e in errs] == ["parse"]
    assert [f.secret for f in fs] == [tok]


def _layout(toks: list[str], layout: str) -> bytes:
    if layout == "column0":  # ``corpora.gen_notebook``'s: cells at column 0, their contents indented
        return ('{"cells": [\n' + ",\n".join(json.dumps(c, indent=1) for c in _cells(toks))
                + '\n], "metadata": ' + json.dumps({"widgets": {"s": toks[4]}}, indent=1)
                + ', "nbformat": 4, "nbformat_minor": 5}').encode()
    raw = json.dumps(_doc(toks), indent=2 if layout == "indent2" else 1).encode()
    return raw.replace(b"\n", b"\r\n") if layout == "crlf" else raw


@pytest.mark.parametrize("layout", ["indent1", "indent2", "crlf", "column0"])
def test_bom_on_the_cell_cut_path(ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  layout: str) -> None:
    toks = [hf_token() for _ in range(5)]
    raw = _layout(toks, layout)
    fast, slow, calls = both(ctx, tmp_path, BOM + raw, monkeypatch)
    assert calls and calls[0] is not None  # the BOM does not push it off the fast path
    assert fast == slow
    assert fast[1] == []
    assert fast == both(ctx, tmp_path, raw, monkeypatch)[0]  # as without the BOM
    assert set(toks) <= {f[1] for f in fast[0]}


def test_bom_on_the_streamed_path_with_metadata_first(ctx: WorkerContext, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Metadata before the cells: the cutter declines, ijson streams the cells and a second pass reads the
    metadata, both from past the BOM."""
    toks = [hf_token() for _ in range(5)]
    doc = _doc(toks)
    raw = json.dumps({"metadata": doc["metadata"], "nbformat": 4, "nbformat_minor": 5, "cells": doc["cells"]},
                     indent=1).encode()
    fast, slow, calls = both(ctx, tmp_path, BOM + raw, monkeypatch)
    assert calls == [None] and fast == slow
    assert fast[1] == []
    assert fast == both(ctx, tmp_path, raw, monkeypatch)[1]
    assert set(toks) <= {f[1] for f in fast[0]}
    assert any((json.loads(f[4]) or {}).get("part") == "metadata" and f[1] == toks[4] for f in fast[0])


def test_extensionless_bom_notebook_is_parsed(ctx: WorkerContext, tmp_path: Path) -> None:
    raw = (HERE / "tokens.ipynb").read_bytes()
    fs, errs = scan(ctx, tmp_path, BOM + raw, "blob")
    assert errs == []
    assert _key(fs, errs) == _key(*scan(ctx, tmp_path, raw, "blob2"))


def test_large_bom_notebook_read_by_pread_is_parsed(ctx: WorkerContext, tmp_path: Path) -> None:
    """Over ``buffers.READ_MAX`` a file is only parsed when its head looks like JSON: the BOM must not hide it."""
    from veritensor_fast.buffers import READ_MAX

    toks = [hf_token() for _ in range(2)]
    cells = [code([f'a = "{toks[0]}"\n'], cid="c0"),
             code(["x = 1\n"], cid="c1", outputs=[{"output_type": "stream", "name": "stdout",
                                                    "text": ["y" * (READ_MAX + (1 << 20)) + "\n", toks[1]]}])]
    raw = BOM + json.dumps(nb(cells), indent=1).encode()
    assert len(raw) > READ_MAX
    fs, errs = scan(ctx, tmp_path, raw, "big.ipynb")
    assert errs == []
    got = {f.secret: f.location or {} for f in fs}
    assert got[toks[0]]["cell"] == 0 and got[toks[0]]["part"] == "source"
    assert got[toks[1]]["cell"] == 1 and got[toks[1]]["part"] == "output"


def test_errors_of_a_broken_bom_notebook_are_unchanged(ctx: WorkerContext, tmp_path: Path) -> None:
    raw = (HERE / "tokens-bom.ipynb").read_bytes()[:-40]  # truncated
    fs, errs = scan(ctx, tmp_path, raw, "t.ipynb")
    assert [e.kind for e in errs] == ["parse"]
    assert _tokens() - {f.secret for f in fs} <= set(_attachment_tokens())


def _attachment_tokens() -> list[str]:
    return [e["token"] for e in json.loads((HERE / "expected.json").read_text())["tokens.ipynb"]
            if e["where"] == "attachment"]
