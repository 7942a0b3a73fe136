"""Escaped secrets: a token spelled with JSON/JavaScript escapes, URL percent-encoding, quoted-printable or in hex
in a text file.

``{"token": "\\u0068f_..."}``, ``"\\x68\\x66\\x5f..."`` and ``?t=hf%5F...`` are read back as the token by every
JSON parser, interpreter and web server, but the plain pass sees no ``hf_``. Notebooks decode their JSON
escapes themselves (``nb_parse``); this covers every other text file (``.json``, ``.js``, logs, HAR files...).

Real serializers never escape a letter, a digit, ``_`` or ``-``, so such an escape is rare in real text: the
secrets database carries one needle per form (:data:`NEEDLES`, ids past the rules like the base64 needles), and
only the run of token characters and escapes around a hit is decoded, then matched. A match is reported only
when it covers a decoded escape (the plain pass reports the rest), at the escaped text's own line and column.

Quoted-printable (mail, MIME parts) cuts every line longer than 76 columns with a soft line break (``=`` at
the end of the line), token included, and header encoded-words write ``_`` as ``=5F``: around such a hit the
lines the soft breaks join are decoded (``decoded: quoted-printable``).

A line continuation (a backslash ending a line) cuts a token that shells, Dockerfiles, C and JavaScript read
whole: around such a hit the lines the continuations join are decoded (``decoded: line-continuation``).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

from veritensor_fast.matcher import SecretMatch, SecretMatcher

#: what a run may hold: token characters and the escapes' own characters
_RUN = re.compile(rb"(?:\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}|%[0-9A-Fa-f]{2}|\\/|[A-Za-z0-9_\-+/=.:])+")
_ESC = re.compile(rb"\\u([0-9A-Fa-f]{4})|\\x([0-9A-Fa-f]{2})|%([0-9A-Fa-f]{2})|\\(/)")
_HEX_TAIL = re.compile(rb"[0-9A-Fa-f]{6}")
_HEX_DIGITS = b"0123456789abcdefABCDEF"
#: every byte a ``_RUN`` can hold: a run lies inside a stretch of these (found with C-speed ``rstrip``)
_RUN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.:\\%"
#: a hex run shorter than this many bytes decoded holds no secret
MIN_HEX_BYTES = 8
#: bytes looked at on each side of a hit for the run (a token is far shorter)
REACH = 512
#: At most this many hits looked at (each decodes at most one run of ~1 KB) per buffer; past it the rest of the
#: buffer is not decoded and the caller reports a ``limit`` error (a hostile file cannot hide a token after
#: many escapes silently). Real text has none or a few: at most 279 (certifi's cacert.pem) on the real tree and the
#: monorepo, whose hits are nearly all base64 needles that decode nothing here.
MAX_RUNS = 65536
#: At most this many bytes of runs and joined lines decoded per buffer (decoding runs at ~2 MB/s in Python: a file
#: dense with ``=5F`` or ``%5F`` costs ~2 s here); past it, as past ``MAX_RUNS``, a ``limit`` error.
MAX_RUN_BYTES = 4 << 20
#: Both bounds grow with the buffer (a hit looked at per ``RUN_SPACING`` bytes, ``RUN_BYTES_PER_BYTE`` bytes decoded
#: per byte): a real mailbox is quoted-printable throughout (a 13 MB ``mailbox.mbox`` written by Python's ``email``
#: spends ~2 bytes per byte: 4 MiB stopped it at a quarter, exit 3), and the cost stays linear in the file's size.
RUN_SPACING = 128
RUN_BYTES_PER_BYTE = 2


def caps(n: int) -> tuple[int, int]:
    """(hits looked at, bytes of runs decoded) at most in a buffer of ``n`` bytes."""
    return max(MAX_RUNS, n // RUN_SPACING), max(MAX_RUN_BYTES, RUN_BYTES_PER_BYTE * n)
#: runs decoded before they are matched (each holds a list of offsets: up to ~40 KB)
_BATCH = 64
#: A quoted-printable hit: the needle's end (``b64_needles.QP_NEEDLES``): a soft line break and the next line's
#: first character, or an encoded ``_``/``-``.
_QP_TAIL = re.compile(rb"(?:=\r?\n[^\n]|=5F|=2D|\n[ \t]=\?)\Z")
#: an encoded word's end folded onto the next line's (RFC 2047: the space between two words is no text), a soft
#: line break, an escape
_QP_ESC = re.compile(rb"\?=\r?\n[ \t]+=\?[^?\s]{1,40}\?[qQ]\?|=(?:\r?\n|([0-9A-F]{2}))")
#: an encoded word's text (``=?utf-8?q?...?=``), where ``_`` stands for a space
_QP_WORD = re.compile(rb"=\?[^?\s]{1,40}\?[qQ]\?([^?\s]*)\?=")
#: A line continuation hit (``b64_needles.CONT_NEEDLES``' end): a backslash ending a line (LF or CRLF) and the next
#: line's first character
_CONT_TAIL = re.compile(rb"\\\r?\n[^\n]\Z")
#: backslashes ending a line: an odd number is a continuation (``\\`` is an escaped backslash)
#: (from a run's first backslash only: from each one, a long run not ending a line cost its length squared)
_CONT = re.compile(rb"(?<!\\)(\\+)\r?\n")
#: A soft line break is one only on a line this long (``=`` included): encoders fill lines up to RFC 2045's 76
#: columns (Python's ``email`` policies up to 78) and break early only before an escape that does not fit.
QP_LINE = (50, 78)

Emit = Callable[[SecretMatch, int, str], None]


def decode_run(run: bytes) -> tuple[bytes, list[int]] | None:
    """``run`` with its escapes decoded, and for each decoded byte its offset in ``run``; None without an
    escape of an ASCII character."""
    out = bytearray()
    pos: list[int] = []
    i = 0
    escaped = False
    for m in _ESC.finditer(run):
        if m.start() > i:
            out += run[i:m.start()]
            pos.extend(range(i, m.start()))
        u, x, p, slash = m.groups()
        code = ord("/") if slash else int(u or x or p, 16)
        if code > 0x7F:  # a non-ASCII character is no part of a token: keep the escape as written
            out += m.group()
            pos.extend(range(m.start(), m.end()))
        else:
            out.append(code)
            pos.append(m.start())
            escaped = escaped or not slash
        i = m.end()
    if not escaped:
        return None
    _rest(out, pos, run, i)
    return bytes(out), pos


def _rest(out: bytearray, pos: list[int], src: bytes, i: int) -> None:
    """Copy ``src[i:]`` unchanged and close the offset map (its last entry is ``len(src)``: a match's end)."""
    out += src[i:]
    pos.extend(range(i, len(src)))
    pos.append(len(src))


def decode_qp(region: bytes) -> tuple[bytes, list[int]] | None:
    """``region`` (whole lines) with its quoted-printable soft line breaks removed and its ``=XX`` escapes of
    ASCII characters decoded, and for each decoded byte its offset in ``region``; None when nothing was."""
    out = bytearray()
    pos: list[int] = []
    i = 0
    lo, hi = QP_LINE
    for m in _QP_ESC.finditer(region):
        a = m.start()
        if region[a] == 0x3F:  # ``?``: two folded encoded words
            keep = False
        elif m.group(1) is None:  # a soft line break: only at the end of a long line
            keep = not lo <= a + 1 - (region.rfind(b"\n", 0, a) + 1) <= hi
        else:
            keep = int(m.group(1), 16) > 0x7F
        if keep:
            continue
        out += region[i:a]
        pos.extend(range(i, a))
        if m.group(1) is not None:
            out.append(int(m.group(1), 16))
            pos.append(a)
        i = m.end()
    if not i:
        return None
    _rest(out, pos, region, i)
    for w in _QP_WORD.finditer(region):  # ``_`` written in an encoded word is a space
        for j in range(bisect_left(pos, w.start(1)), bisect_left(pos, w.end(1))):
            if out[j] == 0x5F and region[pos[j]] == 0x5F:
                out[j] = 0x20
    return bytes(out), pos


def decode_continuations(region: bytes) -> tuple[bytes, list[int]] | None:
    """``region`` (whole lines) with its line continuations (a backslash ending a line, LF or CRLF) removed, as
    shells, C, JavaScript, Python and Dockerfiles join them, and for each byte left its offset in ``region``;
    None when there was none."""
    out = bytearray()
    pos: list[int] = []
    i = 0
    for m in _CONT.finditer(region):
        if len(m.group(1)) % 2 == 0:  # an escaped backslash ends the line: no continuation
            continue
        a = m.end(1) - 1
        out += region[i:a]
        pos.extend(range(i, a))
        i = m.end()
    if not i:
        return None
    _rest(out, pos, region, i)
    return bytes(out), pos


def _qp_region(window: bytes, q: int, mark: bytes = b"=") -> tuple[int, int]:
    """The lines of ``window`` around offset ``q`` that soft line breaks (``mark`` ending a line: ``=``, or a
    backslash for a line continuation) join: (start, end)."""
    lf, crlf = mark + b"\n", mark + b"\r\n"
    a = window.rfind(b"\n", 0, q) + 1
    while a >= 2 and window[a - 2:a] == lf or a >= 3 and window[a - 3:a] == crlf:
        a = window.rfind(b"\n", 0, a - 1) + 1
    b = window.find(b"\n", q)
    while b > 0 and (window[b - 1:b] == mark or window[b - 2:b] == mark + b"\r"):
        b = window.find(b"\n", b + 1)
    return a, len(window) if b < 0 else b


def _hex_runs(run: bytes, start: int) -> list[tuple[int, bytes, list[int]]]:
    """A run of hex digits decoded at both alignments: (offset in the buffer, bytes, offsets in the run)."""
    out = []
    for a in (0, 1):
        even = run[a:a + (len(run) - a) // 2 * 2]
        if len(even) >= 2 * MIN_HEX_BYTES:
            out.append((start + a, bytes.fromhex(even.decode("ascii")), list(range(0, len(even) + 1, 2))))
    return out


def scan_hits(matcher: SecretMatcher, buf: Any, hits: list[int], emit: Emit, escapes: bool = True) -> int | None:
    """Decode the runs around escape and hex hits (end offsets, sorted) and ``emit(match, offset, kind)`` each
    secret that covers a decoded escape or stands in hex, ``offset`` being where it starts in ``buf``. ``escapes=False``:
    hex and quoted-printable runs only (Python sources, whose literals' escapes and continuations the AST pass
    reads). Returns None, or the offset of the first hit not looked at when :func:`caps` hits or bytes were (the
    caller reports the limit)."""
    done_to = -1
    looked = spent = 0
    runs: list[tuple[int, bytes, list[int], str]] = []
    n = len(buf)
    max_runs, max_bytes = caps(n)
    for end in hits:
        if end <= done_to:
            continue
        before = bytes(buf[max(0, end - 8):end])  # the needle's end tells its kind: a base64 one is none here
        k = len(before)
        # a continuation in a Python source is the AST pass's: it reads its literals as Python joins them
        cont = escapes and _CONT_TAIL.search(before, max(0, k - 4)) is not None
        hexy = _HEX_TAIL.fullmatch(before, max(0, k - 6)) is not None
        if not (cont or hexy or b"=" in before or escapes and (b"\\" in before or b"%" in before)):
            continue  # costs a few bytes, not a window
        if looked >= max_runs or spent >= max_bytes:
            _match(matcher, runs, emit)
            return end
        looked += 1
        lo = max(0, end - REACH)
        window = bytes(buf[lo:min(n, end + REACH)])
        rel = end - lo
        if cont:
            a, b = _qp_region(window, window.rfind(b"\\", 0, rel), b"\\")
            done_to = lo + b
            spent += b - a
            dec = decode_continuations(window[a:b])
            if dec is not None:
                runs.append((lo + a, dec[0], dec[1], "line-continuation"))
        elif _QP_TAIL.search(window, max(0, rel - 4), rel):  # Python sources too: a mail kept in a string
            a, b = _qp_region(window, window.rfind(b"=", 0, rel))
            done_to = lo + b
            spent += b - a
            dec = decode_qp(window[a:b])
            if dec is not None:
                runs.append((lo + a, dec[0], dec[1], "quoted-printable"))
        elif b"\\" in before or b"%" in before:
            if not escapes:
                continue
            # the run holding the hit lies in the stretch of run bytes around it: look from its start only
            for m in _RUN.finditer(window, len(window[:rel].rstrip(_RUN_BYTES))):
                if m.start() < rel <= m.end() or m.start() <= rel - 1 < m.end():
                    done_to = lo + m.end()
                    spent += m.end() - m.start()
                    dec = decode_run(m.group())
                    if dec is not None:
                        runs.append((lo + m.start(), dec[0], dec[1], "escapes"))
                    break
        elif hexy:
            a = len(window[:rel].rstrip(_HEX_DIGITS))
            b = len(window) - len(window[rel:].lstrip(_HEX_DIGITS))
            done_to = lo + b
            spent += b - a
            runs.extend((*r, "hex") for r in _hex_runs(window[a:b], lo + a))
        if len(runs) >= _BATCH:  # matched as they come: memory follows a batch, not MAX_RUNS runs
            _match(matcher, runs, emit)
    _match(matcher, runs, emit)
    return None


#: joins a batch's decoded runs for one matcher call: no rule spans a NUL and two line breaks (``b64_scan._SEP``)
_SEP = b"\n\x00\n"


def _match(matcher: SecretMatcher, runs: list[tuple[int, bytes, list[int], str]], emit: Emit) -> None:
    """Match a batch of decoded runs in one call and emit each match that covers an escape or is hex."""
    if not runs:
        return
    starts = []
    at = 0
    for r in runs:
        starts.append(at)
        at += len(r[1]) + len(_SEP)
    for sm in matcher.find(_SEP.join(r[1] for r in runs)):
        i = bisect_right(starts, sm.start) - 1
        start, data, pos, kind = runs[i]
        s, e = sm.start - starts[i], sm.end - starts[i]
        if e > len(data):
            continue
        a, b = pos[s], pos[e]
        if b - a != e - s:  # the match covers an escape or is hex
            emit(SecretMatch(sm.rule, s, e, sm.secret), start + a, kind)
    runs.clear()
