"""Notebook guards: a bound on JSON nesting before any parser sees the bytes, and the raw-bytes pass that
leaves a notebook no hiding place.

- :func:`nesting_exceeds`: maximum bracket depth outside strings, in 1 MiB chunks with numpy (strings and
  escapes skipped exactly). The streaming parser's memory grows with the square of the depth (100,000 levels
  drove it past 23 GB), so a notebook nested deeper than :data:`MAX_DEPTH` is never parsed.
- :func:`raw_findings`: the plain text pass over a notebook's raw bytes, minus what the structured pass
  already reported. A token in a field the parser skips (a cell ``id``, an output ``name``, the first of two
  duplicate keys, a file that merely looks like a notebook) is reported at its raw line and column.
"""

from __future__ import annotations

import mmap
import re
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from veritensor_fast import memroom
from veritensor_fast.buffers import can_release, release_pages
from veritensor_fast.detectors.nb_rawline import LiteralFinder
from veritensor_fast.matcher import SecretMatch

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan

#: Deepest JSON nesting a notebook may have to be parsed (orjson's own limit is 1024; real notebooks, widget
#: state included, stay under 50). At this depth the streaming parser needs a few MB.
MAX_DEPTH = 1000
_CHUNK = 256 << 10
_RELEASE_EVERY = 4 << 20
_NOT_B64 = re.compile(rb"[^A-Za-z0-9+/=]+")
_JSON_ESC = re.compile(rb"\\(?:u[0-9a-fA-F]{4}|.)", re.DOTALL)


def nesting_exceeds(buf: Any, limit: int = MAX_DEPTH) -> bool:
    """True when ``buf`` (JSON text) nests ``[``/``{`` deeper than ``limit`` outside strings.

    Vectorised per chunk: a quote is escaped when an odd run of backslashes precedes it (runs carried across
    chunks), string state is the parity of unescaped quotes, depth the running sum of brackets outside
    strings. Cost is a fixed number of numpy passes per byte whatever the content.
    """
    np = memroom.numpy()  # MemoryError (an out-of-memory error) where its import would end the process

    n = len(buf)
    depth = 0
    in_string = 0
    bs_run = 0  # backslashes ending the previous chunk
    release = can_release(buf) and n > _RELEASE_EVERY
    dropped = 0
    for a in range(0, n, _CHUNK):
        raw = bytes(buf[a:min(n, a + _CHUNK)])
        if release and a - dropped >= _RELEASE_EVERY:  # whole 2 MiB folios only (see find_windowed)
            release_pages(buf, dropped, a)
            dropped = a
        if not any(c in raw for c in (b"[", b"{", b"]", b"}", b'"')):
            bs_run = bs_run + len(raw) if raw.count(b"\\") == len(raw) else len(raw) - len(raw.rstrip(b"\\"))
            continue
        arr = np.frombuffer(raw, dtype=np.uint8)
        m = len(arr)
        quote = arr == 0x22
        has_bs = b"\\" in raw
        if has_bs or bs_run:
            is_bs = arr == 0x5C
            cand = np.flatnonzero(quote[1:] & is_bs[:-1]) + 1  # quotes right after a backslash
            if (bs_run and raw[:1] == b'"') or len(cand):
                # index of the last non-backslash at or before each position (-1 - carry when none yet)
                idx = np.arange(m, dtype=np.int32)
                last = np.maximum.accumulate(np.where(is_bs, np.int32(-1 - bs_run), idx))
                qpos = np.concatenate(([0], cand)) if raw[:1] == b'"' and bs_run else cand
                prev_last = np.where(qpos > 0, last[np.maximum(qpos - 1, 0)], np.int32(-1 - bs_run))
                escaped = (((qpos - 1) - prev_last) & 1) == 1
                quote[qpos[escaped]] = False
        quotes = np.cumsum(quote, dtype=np.int32)
        outside = ((quotes + in_string) & 1) == 0
        delta = (((arr == 0x5B) | (arr == 0x7B)).astype(np.int32)
                 - ((arr == 0x5D) | (arr == 0x7D)).astype(np.int32)) * outside
        run = np.cumsum(delta, dtype=np.int32)
        if depth + int(run.max()) > limit:
            return True
        depth += int(run[-1])
        in_string = (in_string + int(quotes[-1])) & 1
        bs_run = (bs_run + m if raw.count(b"\\") == m else m - len(raw.rstrip(b"\\"))) if raw[-1:] == b"\\" else 0
    return False


def _canon(secret: bytes) -> bytes:
    """A secret with JSON escapes and layout removed, so the raw and the decoded form compare equal."""
    return _NOT_B64.sub(b"", _JSON_ESC.sub(b"", secret))


#: The raw pass over a memory-mapped notebook goes window by window, releasing each window's pages, so it
#: never makes the file resident (the notebook memory bound holds). Context kept on each side of a window:
_RAW_WINDOW = 2 << 20
_LEFT_CONTEXT = 256
_RIGHT_CONTEXT = 64 << 10  # > the longest secret (a private key block is read up to 32 KiB)


_CONT = bytes(range(0x80, 0xC0))  # UTF-8 continuation bytes


def _chars(b: bytes) -> int:
    """Characters in UTF-8 bytes (continuation bytes do not start one)."""
    return len(b) if b.isascii() else len(b.translate(None, _CONT))


def _newlines(b: bytes, start: int, stop: int) -> int:
    """``b.count(b"\\n", start, stop)``: a ``find`` (memchr) loop while newlines are sparse, as in a notebook
    whose outputs are long lines (several times faster there than ``count``), then ``count``."""
    k = 0
    p = b.find(b"\n", start, stop)
    while p >= 0:
        k += 1
        if k == 64:
            return k + b.count(b"\n", p + 1, stop)
        p = b.find(b"\n", p + 1, stop)
    return k


def _chars_between(buf: Any, start: int, stop: int) -> int:
    """:func:`_chars` of ``buf[start:stop]``, read in bounded blocks."""
    return sum(_chars(bytes(buf[x:min(stop, x + _RAW_WINDOW)])) for x in range(start, stop, _RAW_WINDOW))


Occurrences = dict[bytes, list[tuple[int, int]]]


def find_windowed(scan: ItemScan, buf: Any, want: dict[bytes, int] | None = None,
                  lit: LiteralFinder | None = None) -> tuple[list[tuple[SecretMatch, int, int]], Occurrences | None]:
    """``(match, line, column)`` for every secret in ``buf``, window by window: lines and columns are counted
    in each window's bounded copy, and a memory-mapped file's pages are released behind the pass.

    With ``want`` it also returns what ``nb_rawline.raw_occurrences(buf, want)`` returns, found in the same
    windows (one read and one newline count of the file for both), or None when a wanted secret is longer
    than the windows' right context (the caller looks them up in a pass of their own). ``lit``: the
    ``LiteralFinder`` of ``want`` to use (one that also collects the inline-ignore needles)."""
    n = len(buf)
    find = scan.ctx.matcher.find
    release = can_release(buf)
    if lit is None and want:
        lit = LiteralFinder(want)
    if lit is not None and lit.maxlen - 1 > _RIGHT_CONTEXT:
        lit = None
    occ = lit.found if lit is not None else ({} if want is not None and not want else None)
    out: list[tuple[SecretMatch, int, int]] = []
    line, line_start = 1, 0  # line at the window start, and the offset where that line starts
    for a in range(0, n, _RAW_WINDOW):
        b = min(n, a + _RAW_WINDOW)
        lo, hi = max(0, a - _LEFT_CONTEXT), min(n, b + _RIGHT_CONTEXT)
        chunk = buf if lo == 0 and hi == n and isinstance(buf, bytes) else bytes(buf[lo:hi])
        events: list[tuple[int, int, Any]] = []  # (start in chunk, kind, payload): 0 = rule match, 1 = literal
        for m in find(chunk):
            if a <= lo + m.start < b:
                events.append((m.start, 0, m))
        if lit is not None and lit.active:
            with memoryview(chunk) as view, view[a - lo:min(hi, b + lit.maxlen - 1) - lo] as window:
                events += [(s - lo, 1, lit.secrets[pid]) for s, pid in lit.scan(window, a, b)]
            events.sort(key=lambda e: (e[0], e[1]))
        pos, pos_line = a - lo, line
        for s, kind, what in events:
            pos_line += _newlines(chunk, pos, s)
            pos = s
            if kind == 1:
                occ[what].append((lo + s, pos_line))  # type: ignore[index]  # occ is lit.found here
                continue
            nl = chunk.rfind(b"\n", a - lo, s)
            if nl >= 0:
                col = _chars(chunk[nl + 1:s]) + 1
            else:  # the line started before this window: count its characters up to here only now
                col = _chars_between(buf, line_start, a) + _chars(chunk[a - lo:s]) + 1
            out.append((SecretMatch(what.rule, lo + s, lo + what.end, what.secret), pos_line, col))
        if b < n:  # the next window's start line (the last window's is never used)
            line = pos_line + _newlines(chunk, pos, b - lo)
            r = chunk.rfind(b"\n", a - lo, b - lo)
            if r >= 0:
                line_start = lo + r + 1
        if release:  # from the page holding ``lo``: touching it again maps a whole large folio back
            release_pages(buf, lo // mmap.PAGESIZE * mmap.PAGESIZE, b)
    return out, occ


_U_ESC = re.compile(rb"\\u([0-9a-fA-F]{4})")


def _escaped_word_next(buf: Any, m: SecretMatch) -> bool:
    """The raw token is followed by a ``\\uXXXX`` escape of a character its rule's right boundary forbids: the
    decoded string holds a longer word, not this token (the structured pass decides such cases)."""
    e = _U_ESC.match(bytes(buf[m.end:m.end + 6]))
    if e is None or m.rule.right != "word":
        return False
    return re.fullmatch(f"[{m.rule.right_chars}]", chr(int(e.group(1), 16))) is not None


def raw_findings(buf: Any, scan: ItemScan, structured: list[tuple[SecretMatch, int | None]],
                 found: list[tuple[SecretMatch, int, int]] | None = None) -> None:
    """Add the raw-text findings of ``buf`` (``found``, or looked up here) not already among ``structured``
    ((match, raw line or None)).

    A raw finding is a duplicate when the structured pass reported the same rule and secret (compared without
    escapes, so an escaped private key matches its decoded form); when the raw text holds more occurrences
    than the structured pass reported, the extra ones are kept, preferring lines no structured finding has.
    """
    budget: Counter[tuple[str, bytes]] = Counter()
    claimed: dict[tuple[str, bytes], set[int]] = defaultdict(set)
    for m, raw_line in structured:
        k = (m.rule.id, _canon(m.secret))
        budget[k] += 1
        if raw_line is not None:
            claimed[k].add(raw_line)
    by_key: dict[tuple[str, bytes], list[tuple[SecretMatch, int, int]]] = defaultdict(list)
    order: list[tuple[str, bytes]] = []
    for m, line, col in find_windowed(scan, buf)[0] if found is None else found:
        if _escaped_word_next(buf, m):
            continue
        k = (m.rule.id, _canon(m.secret))
        if k not in by_key:
            order.append(k)
        by_key[k].append((m, line, col))
    for k in order:
        hits = by_key[k]
        extra = len(hits) - budget[k]
        if extra <= 0:
            continue
        hits = sorted(hits, key=lambda h: h[1] in claimed[k])[:extra]
        for m, line, col in sorted(hits, key=lambda h: h[0].start):
            scan.add_secret(m, line=line, column=col, location={"part": "raw"})
