"""Property tests (hypothesis) for the base64 decoder: any bytes around a token, encoded as base64 or
base64url, padded or not, MIME-wrapped at 76 or not, embedded in random text, are found with the exact secret
at the blob's line."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from veritensor_fast.detectors.b64_scan import B64Decoder, decode
from veritensor_fast.findings import Item
from veritensor_fast.matcher import is_match
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

_CTX: WorkerContext | None = None


def ctx() -> WorkerContext:
    global _CTX
    if _CTX is None:
        _CTX = WorkerContext(ScanOptions())
    return _CTX


ALNUM = string.ascii_letters + string.digits
#: Text around the blob: anything but the base64 alphabets (so the blob's edges are unambiguous) and NUL (a NUL
#: in the first 4 KiB makes a file binary, as for git, and binary files are not decoded).
FILLER = st.text(alphabet=st.characters(blacklist_characters=ALNUM + "+/_-=\x00", blacklist_categories=("Cs",)),
                 max_size=60)


def encode(raw: bytes, url: bool, pad: bool, wrap: bool) -> str:
    enc = (base64.urlsafe_b64encode(raw) if url else base64.b64encode(raw)).decode()
    if not pad:
        enc = enc.rstrip("=")
    if wrap:
        enc = "\n".join(enc[i:i + 76] for i in range(0, len(enc), 76))
    return enc


@given(raw=st.binary(max_size=300), url=st.booleans(), pad=st.booleans())
@settings(max_examples=200, deadline=None)
def test_decode_roundtrip(raw: bytes, url: bool, pad: bool) -> None:
    assert decode(encode(raw, url, pad, False).encode()) == raw


@given(body=st.text(alphabet=ALNUM, min_size=34, max_size=34), before=st.binary(max_size=120),
       after=st.binary(max_size=120), url=st.booleans(), pad=st.booleans(), wrap=st.booleans(),
       head=FILLER, tail=FILLER, lines=st.integers(0, 3))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_token_in_any_bytes_is_found(body: str, before: bytes, after: bytes, url: bool, pad: bool, wrap: bool,
                                     head: str, tail: str, lines: int) -> None:
    token = "hf_" + body
    assume(is_match(ctx().matcher, f" {token} ", "huggingface.user-token"))
    raw = before + b" " + token.encode() + b" " + after
    blob = encode(raw, url, pad, wrap)
    text = "\n" * lines + head + " " + blob + " " + tail + "\n"
    buf = text.encode("utf-8")
    item = Item("file", "blob.txt", "blob.txt", len(buf))
    s = ItemScan(ctx(), item)
    ctx().scan_buffer(buf, item, s)
    fs = [f for f in s.finish(buf) if f.secret == token]
    assert fs, "token not found"
    f = fs[0]
    assert f.rule_id == "huggingface.user-token" and f.decoded == "base64"
    assert f.line == text[: text.index(blob)].count("\n") + 1


def test_binary_file_decoded_within_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Base64 inside a binary file is decoded (issue 13); binaries over ``BINARY_MAX`` are not searched."""
    from veritensor_fast.detectors import encoded

    token = "hf_" + "Qm7Rz2Lk9XwP4vTb8NcY3hJd6FgS1aKe5U"
    buf = b"\x00\x01\x02 " + base64.b64encode(f" {token} ".encode()) + b" \x00"
    item = Item("file", "m.bin", "m.bin", len(buf))
    s = ItemScan(ctx(), item)
    ctx().scan_buffer(buf, item, s)
    assert [(f.secret, f.decoded, (f.location or {}).get("offset")) for f in s.finish(buf)] == [
        (token, "base64", 4)]
    monkeypatch.setattr(encoded, "BINARY_MAX", len(buf) - 1)
    s = ItemScan(ctx(), item)
    ctx().scan_buffer(buf, item, s)
    assert s.finish(buf) == []


@pytest.mark.parametrize("url", [False, True])
def test_depth_two_nested_property_example(url: bool) -> None:
    token = "hf_" + "Qm7Rz2Lk9XwP4vTb8NcY3hJd6FgS1aKe5U"
    inner = encode(f"tok={token}\n".encode(), url, True, False)
    outer = encode(f"config: {inner}\n".encode(), url, False, True)
    buf = f"# x\n{outer}\n".encode()
    item = Item("file", "a.txt", "a.txt", len(buf))
    s = ItemScan(ctx(), item)
    ctx().scan_buffer(buf, item, s)
    assert [(f.secret, f.line, f.decoded) for f in s.finish(buf)] == [(token, 2, "base64 → base64")]


def decoder() -> B64Decoder:
    enc = next(d for d in ctx().detectors if d.name == "encoded")
    dec = enc.decoder  # type: ignore[attr-defined]
    assert isinstance(dec, B64Decoder)
    return dec


@given(text=st.text(alphabet="aqzBQZ0179+/_-=\n \t.", max_size=400))
@settings(max_examples=300, deadline=None)
def test_possible_filter_never_hides_a_candidate(text: str) -> None:
    """``possible`` (the cheap whole-buffer check) is False only where no candidate exists."""
    buf = text.encode()
    raw = list(decoder().raw_candidates(buf))
    assert list(decoder().candidates(buf)) == raw
    if raw:
        assert decoder().possible(buf)


def test_possible_filter_examples() -> None:
    d = decoder()
    log = b"2024-09-15 15:40:34,856 INFO job_tokenizer_gradient: step=18366 loss=0.1706 lr=8.89e-04\n" * 50
    csv = b"id,score,label\n10192,0.514676,loss\n" * 50
    assert not d.possible(log) and not d.possible(csv)
    token = "hf_" + "Qm7Rz2Lk9XwP4vTb8NcY3hJd6FgS1aKe5U"
    blob = base64.b64encode(f"k={token}\n".encode())
    assert d.possible(log + blob + b"\n" + csv)
    # letters of both cases only on different lines of a wrapped blob whose first line has no letter
    wrapped = b"x = " + b"0123456789+/" * 4 + b"\n" + b"abcdefghijklmnopqrstuvwxyz0123456789+/abcdefghij" + b"\nABCD\n"
    assert [len(c.data) for c in d.raw_candidates(wrapped)] == [100] and d.possible(wrapped)
    assert [c.data for c in d.candidates(wrapped)] == [c.data for c in d.raw_candidates(wrapped)]
