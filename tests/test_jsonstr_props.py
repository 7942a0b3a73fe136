"""Property-based tests (hypothesis) for matching on decoded JSON strings in notebooks: whatever json.dumps does
to a string (escapes, ``ensure_ascii``, indentation, splitting into list items), the token inside is found
with the exact secret, line and column of the decoded text."""

from __future__ import annotations

import json
import random
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veritensor_fast.findings import Finding, Item
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

ALNUM = string.ascii_letters + string.digits
HF = "huggingface.user-token"
CTX = WorkerContext(ScanOptions())

#: characters that end a token on either side: quotes, backslashes, whitespace, controls, non-ASCII
separators = st.sampled_from(['"', "\\", "\n", "\t", " ", "'", "\x00", "\x07", "é", "\u2028", "😀", "=", "/", ":"])
texts = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x1b"), max_size=60)


def make_token(seed: int) -> str:
    rng = random.Random(seed)
    return "hf_" + "".join(rng.choice(ALNUM) for _ in range(34))


tokens = st.integers(0, 2**32).map(make_token)


def scan_doc(doc: Any, ensure_ascii: bool, indent: int | None, name: str = "p.ipynb") -> list[Finding]:
    raw = json.dumps(doc, ensure_ascii=ensure_ascii, indent=indent).encode()
    item = Item("file", name, name, len(raw))
    scan = ItemScan(CTX, item)
    CTX.scan_buffer(raw, item, scan)
    assert scan.errors == []
    return scan.finish(raw)


def cell(source: Any, outputs: list[Any] | None = None) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": None, "id": "p", "metadata": {}, "outputs": outputs or [],
            "source": source}


def nb(cells: list[Any]) -> dict[str, Any]:
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def expect(findings: list[Finding], tok: str, text: str) -> None:
    assert {f.secret for f in findings} == {tok}
    f = next(f for f in findings if f.rule_id == HF)
    i = text.index(tok)
    assert f.line == text.count("\n", 0, i) + 1
    assert f.column == i - (text.rfind("\n", 0, i) + 1) + 1


def splits(text: str, cuts: list[int]) -> list[str]:
    idx = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(idx, idx[1:], strict=False)]


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(texts, separators, tokens, separators, texts, st.booleans(), st.sampled_from([None, 1, 2]))
def test_source_string(pre: str, s1: str, tok: str, s2: str, post: str, ascii_: bool, indent: int | None) -> None:
    text = pre + s1 + tok + s2 + post
    expect(scan_doc(nb([cell(text)]), ascii_, indent), tok, text)


@SETTINGS
@given(texts, separators, tokens, separators, texts, st.booleans(), st.lists(st.integers(0, 200), max_size=6))
def test_source_list_split_anywhere(pre: str, s1: str, tok: str, s2: str, post: str, ascii_: bool,
                                    cuts: list[int]) -> None:
    text = pre + s1 + tok + s2 + post
    expect(scan_doc(nb([cell(splits(text, cuts))]), ascii_, 1), tok, text)


@SETTINGS
@given(texts, separators, tokens, separators, texts, st.booleans(), st.lists(st.integers(0, 200), max_size=4))
def test_stream_output_text(pre: str, s1: str, tok: str, s2: str, post: str, ascii_: bool, cuts: list[int]) -> None:
    text = pre + s1 + tok + s2 + post
    out = {"name": "stdout", "output_type": "stream", "text": splits(text, cuts)}
    findings = scan_doc(nb([cell("x", [out])]), ascii_, None)
    expect(findings, tok, text)
    assert all((f.location or {}).get("part") == "output" for f in findings)


@SETTINGS
@given(texts, separators, tokens, separators, texts, st.booleans())
def test_json_object_value(pre: str, s1: str, tok: str, s2: str, post: str, ascii_: bool) -> None:
    text = pre + s1 + tok + s2 + post
    out = {"data": {"application/json": {"k": [1, {"deep": text}], "other": pre}}, "metadata": {},
           "output_type": "display_data"}
    findings = scan_doc(nb([cell("x", [out])]), ascii_, 1)
    expect(findings, tok, text)
    assert all((f.location or {}).get("key") == "k[1].deep" for f in findings)


@pytest.mark.parametrize("ascii_", [True, False])
def test_every_token_char_escaped(ascii_: bool) -> None:
    """Each character of the token written as a \\uXXXX escape still decodes to the token."""
    tok = make_token(11)
    raw = json.dumps(nb([cell(f"t = '{tok}'")]), ensure_ascii=ascii_)
    raw = raw.replace(tok, "".join(f"\\u{ord(c):04x}" for c in tok))
    assert tok not in raw
    item = Item("file", "e.ipynb", "e.ipynb", len(raw))
    scan = ItemScan(CTX, item)
    CTX.scan_buffer(raw.encode(), item, scan)
    (f,) = scan.finish(raw.encode())
    assert f.secret == tok and f.column == 6
