"""Base64 decoding and what a decoded blob may be: standard or URL-safe base64 decoded tolerantly, a cheap
plausibility check, text or binary, a gzip or zlib stream (inflated within a bound), a JSON document's strings.

Split from ``b64_scan`` (which finds the candidates and matches them), which re-exports these names.
"""

from __future__ import annotations

import binascii

#: JSON documents larger than this are not parsed (their raw bytes are still matched and searched).
MAX_JSON = 4 << 20
_URL2STD = bytes.maketrans(b"-_", b"+/")
_PRINTABLE = bytes(range(0x20, 0x7F)) + b"\t\n\r"
_ASCII = bytes(range(0x80))


def decode(encoded: bytes) -> bytes | None:
    """Decode standard or URL-safe base64, padded or not; ``None`` when it cannot be base64."""
    core = encoded.rstrip(b"=")
    url = b"-" in core or b"_" in core
    if url:
        if b"+" in core or b"/" in core:
            return None
        core = core.translate(_URL2STD)
    r = len(core) % 4
    if r == 1:
        core = core[:-1]
    elif r:
        core += b"=" * (4 - r)
    try:
        return binascii.a2b_base64(core)
    except binascii.Error:  # pragma: no cover - input is alphabet-only and padded, so this cannot happen
        return None


def plausible(encoded: bytes) -> bool:
    """Cheap filter before decoding: real base64 of >= 18 bytes has upper- and lower-case letters and does
    not mix the standard and URL-safe alphabets (checked by :func:`decode`)."""
    return encoded.lower() != encoded and encoded.upper() != encoded


def mostly_text(data: bytes) -> bool:
    """True when ``data`` is (nearly all) printable text: ASCII or valid UTF-8, few control bytes."""
    if not data:
        return False
    rest = data.translate(None, _PRINTABLE)
    if not rest:
        return True
    allowed = 2 + len(data) // 20
    if len(rest) <= allowed:
        return True
    ctrl = len(rest) - len(rest.translate(None, _ASCII))  # the control bytes: ASCII but not printable
    if ctrl > allowed:
        return False
    bad = data.decode("utf-8", "replace").count("\ufffd")
    return ctrl + bad <= allowed


#: A compressed stream inside base64 is inflated to at most this many bytes (and within the buffer's budget).
MAX_INFLATED = 8 << 20


def compressed_kind(data: bytes) -> str | None:
    """``"gzip"`` or ``"zlib"`` when ``data`` starts like such a stream, else None."""
    if data[:3] == b"\x1f\x8b\x08":
        return "gzip"
    if len(data) >= 2 and data[0] == 0x78 and data[1] in (0x01, 0x5E, 0x9C, 0xDA) and (data[0] * 256 + data[1]) % 31 == 0:
        return "zlib"
    return None


def inflate(data: bytes, kind: str, limit: int) -> bytes:
    """Decompress at most ``limit`` bytes (a bomb costs ``limit``, never more); b"" when it is not valid."""
    return inflate_bounded(data, kind, limit)[0]


def inflate_bounded(data: bytes, kind: str, limit: int) -> tuple[bytes, bool]:
    """:func:`inflate`, and whether the stream holds more than ``limit`` bytes (the rest was not inflated)."""
    import zlib

    if limit <= 0:
        return b"", True
    d = zlib.decompressobj(31 if kind == "gzip" else 15)
    try:
        out = d.decompress(data, limit)
        if d.eof or not d.unconsumed_tail and len(out) < limit:
            return out, False
        return out, bool(d.decompress(d.unconsumed_tail, 1))  # one byte more: is there any?
    except zlib.error:
        return b"", False


def json_strings(text: bytes) -> list[str] | None:
    """All string values (and keys) of ``text`` if it is a JSON object or array, else ``None``."""
    head = text.lstrip()[:1]
    if head not in (b"{", b"[") or len(text) > MAX_JSON:
        return None
    try:
        from veritensor_fast import jsonload

        doc = jsonload.loads(text)
    except MemoryError:
        raise  # reported as out of memory by the worker, not taken for text that is not JSON
    except Exception:
        return None
    out: list[str] = []
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                out.append(k)
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)
    out.reverse()
    return out
