"""Inline ignore markers, applied per item in the worker after detection (``InlineIgnores``).

Markers (in any comment syntax; the text is matched, not the comment leader):

- ``veritensor-fast: ignore`` on the finding's line, or alone on the line before it (nothing but whitespace,
  quotes and comment characters before the marker). ``veritensor-fast: ignore[rule.id, other.id]`` limits it
  to those rules; an id also matches its sub-ids (``ignore[huggingface]`` covers ``huggingface.user-token``).
- ``gitleaks:allow`` on the finding's line (gitleaks' own semantics).
- ``pragma: allowlist secret`` on the finding's line, ``pragma: allowlist nextline secret`` on the line before
  (detect-secrets' semantics).

Model-file findings (``kind == "model"``) are never ignored inline unless the scan sets
``ignore_model_findings_inline`` (config key of the same name): a pickle cannot vouch for itself.

The line of a finding is ``location["raw_line"]`` when a detector gives one (e.g. the line in the raw notebook
JSON), else ``Finding.line``. For raw-line findings (inside JSON strings) a raw line holding several logical
lines (escaped ``\n``, as in a minified notebook) is split, so a marker covers only its own logical line (or,
alone, the next one). In any other file that is one long line (minified JS) a marker covers the whole line.

Cost: nothing unless an item has findings; then one Hyperscan pass for all marker needles over the buffer
(GB/s, GIL released) and, only for the rare marker hits, a newline count and a regex over one line.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from veritensor_fast.buffers import COPY_WINDOW, can_release, count_newlines, is_buffer, release_pages, span
from veritensor_fast.findings import Finding, Item

#: Substrings searched for in the buffer; a line is parsed only around a hit.
NEEDLES = (b"veritensor-fast:", b"gitleaks:allow", b"allowlist")
_OWN = re.compile(rb"veritensor-fast:\s*ignore\b(?:\[([^\]\r\n]*)\])?")
_GITLEAKS = re.compile(rb"gitleaks:allow")
_PRAGMA = re.compile(rb"pragma:\s*allowlist[ -]?(nextline[ -]?)?secret", re.IGNORECASE)
#: What may precede a marker for it to count as "alone on its line" (applies to the next line).
_ALONE_PREFIX = re.compile(rb"[\s\"'#/*;%<!,\[\-]*")
#: A JSON-escaped newline (``\n`` not preceded by an escaped backslash): ends a logical line in raw JSON.
_ESC_NL = re.compile(rb"(?<!\\)(?:\\\\)*\\n")
#: Give up on parsing markers past this many hits in one item (keep the findings: fail closed).
MAX_MARKERS = 10_000
#: Bytes searched per window when looking for markers in a memory map (pages released after each window).
_WINDOW = 16 << 20


@dataclass(frozen=True)
class Marker:
    """An ignore marker found on ``line``: it covers ``line`` and/or ``line + 1`` for ``rules`` (None = all)."""

    line: int
    same_line: bool
    next_line: bool
    rules: tuple[str, ...] | None
    start: int = 0  # byte range of the marker's line in the buffer
    end: int = 0


def _rules(group: bytes | None) -> tuple[str, ...] | None:
    if group is None:
        return None
    ids = tuple(r.strip() for r in group.decode("utf-8", "replace").split(",") if r.strip())
    return ids or None


def parse_line(text: bytes, line: int, start: int = 0, end: int = 0) -> list[Marker]:
    """All markers on one line of text (``line`` is its 1-based number, ``start:end`` its bytes)."""
    out: list[Marker] = []
    for m in _OWN.finditer(text):
        alone = _ALONE_PREFIX.fullmatch(text, 0, m.start()) is not None
        out.append(Marker(line, True, alone, _rules(m.group(1)), start, end))
    if _GITLEAKS.search(text):
        out.append(Marker(line, True, False, None, start, end))
    for m in _PRAGMA.finditer(text):
        nextline = m.group(1) is not None
        out.append(Marker(line, not nextline, nextline, None, start, end))
    return out


def json_segments(text: bytes, secret: bytes) -> tuple[bytes, bytes | None] | None:
    """In a raw JSON line, the logical line (between escaped newlines) holding ``secret`` and the logical line
    before it on the same raw line (None if it is the first); None if ``secret`` is not on the line verbatim."""
    i = text.find(secret) if secret else -1
    if i < 0:
        return None
    seg_start, prev = 0, None
    seg_end = len(text)
    for m in _ESC_NL.finditer(text):
        if m.end() <= i:
            prev = text[seg_start:m.end()]
            seg_start = m.end()
        else:
            seg_end = m.end()
            break
    return text[seg_start:seg_end], prev


#: One database per thread: a database carries its Hyperscan scratch, which two threads must not share (a Dask
#: worker runs several scans at once; sharing fails with ``ScratchInUseError``).
_LOCAL = threading.local()


def _needle_db() -> Any:
    """The Hyperscan database of :data:`NEEDLES` (three literals; compiled once per thread, in < 1 ms)."""
    db = getattr(_LOCAL, "db", None)
    if db is None:
        import hyperscan

        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(expressions=[re.escape(x) for x in NEEDLES], ids=list(range(len(NEEDLES))),
                   elements=len(NEEDLES), flags=[0] * len(NEEDLES))
        _LOCAL.db = db
    return db


def remember_needles(buf: Any, hits: set[int] | None) -> None:
    """What :func:`_search` returns for ``buf``, found by a pass that read ``buf`` anyway (a notebook's raw-text
    pass): the next search of this very object in this thread takes it instead of reading the file again."""
    _LOCAL.known = (buf, hits)


def _search(buf: Any) -> set[int] | None:
    """Start offsets of every needle in ``buf`` (one Hyperscan pass for all of them); None past MAX_MARKERS."""
    known = getattr(_LOCAL, "known", None)
    if known is not None:
        _LOCAL.known = None
        if known[0] is buf:
            return known[1]
    import hyperscan

    db = _needle_db()
    n = len(buf)
    # A memory map bigger than one window is searched window by window and each window's pages are dropped
    # from this process afterwards (once), so a giant file never becomes resident because of one finding.
    drop = can_release(buf) and n > _WINDOW
    lens = [len(x) for x in NEEDLES]
    hits: set[int] = set()
    base = 0

    def on_match(pid: int, _from: int, to: int, _flags: int, _ctx: object) -> bool | None:
        hits.add(base + to - lens[pid])
        return True if len(hits) > MAX_MARKERS else None  # True stops the scan

    overlap = max(lens) - 1
    step = _WINDOW if is_buffer(buf) else COPY_WINDOW
    while base < n:
        hi = min(n, base + step + overlap)
        with span(buf, base, hi) as window:  # a memoryview, or a bounded copy of a PreadView's slice
            try:
                db.scan(window, match_event_handler=on_match)
            except hyperscan.ScanTerminated:
                return None
        if drop:
            release_pages(buf, base, min(n, base + step))
        base += step
    return hits  # a needle in the overlap is seen twice at the same start: a set


def _count_lines(buf: Any, start: int, stop: int) -> int:
    """Newlines in ``buf[start:stop]`` in 1 MiB blocks (bounded temporary memory), releasing a memory map's
    pages behind it when the file is bigger than one search window."""
    if isinstance(buf, bytes | bytearray):
        return buf.count(b"\n", start, stop)
    drop = can_release(buf) and len(buf) > _WINDOW
    total = 0
    for x in range(start, stop, 1 << 20):
        y = min(stop, x + (1 << 20))
        total += count_newlines(buf, x, y)
        if drop:
            release_pages(buf, x, y)
    return total


def find_markers(buf: Any) -> dict[int, list[Marker]] | None:
    """Markers by the line they apply to; ``{}`` when there are none, ``None`` when there are too many."""
    hits = _search(buf)
    if hits is None:
        return None
    if not hits:
        return {}
    by_line: dict[int, list[Marker]] = {}
    done_starts: set[int] = set()
    line, counted_to = 1, 0
    for pos in sorted(hits):
        start = buf.rfind(b"\n", 0, pos) + 1
        if start in done_starts:
            continue
        done_starts.add(start)
        line += _count_lines(buf, counted_to, start)
        counted_to = start
        end = buf.find(b"\n", pos)
        text = bytes(buf[start:end if end >= 0 else len(buf)])
        for mk in parse_line(text, line, start, start + len(text)):
            if mk.same_line:
                by_line.setdefault(line, []).append(mk)
            if mk.next_line:
                by_line.setdefault(line + 1, []).append(mk)
    return by_line


def _covers(rules: Sequence[str] | None, rule_id: str) -> bool:
    if rules is None:
        return True
    return any(rule_id == r or rule_id.startswith(r + ".") for r in rules)


def finding_line(f: Finding) -> int:
    """The line in the raw buffer an ignore marker must be on (or before)."""
    if f.location:
        raw = f.location.get("raw_line")
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
    return f.line


class InlineIgnores:
    """Worker post-processor: ``post(findings, buf, item) -> findings`` without the inline-ignored ones."""

    #: It only takes findings away (``batch_gate``: an item without findings needs no post-processing).
    removes_only = True

    def __init__(self, options: Any = None) -> None:
        self.models = bool(getattr(options, "ignore_model_findings_inline", False))

    def __call__(self, findings: list[Finding], buf: Any, item: Item) -> list[Finding]:
        try:
            return self._filter(findings, buf)
        finally:
            _LOCAL.known = None  # what ``remember_needles`` kept for this item: never past it

    def _filter(self, findings: list[Finding], buf: Any) -> list[Finding]:
        if not findings or not any(f.kind != "model" or self.models for f in findings):
            return findings
        if not hasattr(buf, "find"):  # e.g. a memoryview
            buf = bytes(buf)
        markers = find_markers(buf)
        if not markers:
            return findings
        out = []
        for f in findings:
            if f.kind != "model" or self.models:
                line = finding_line(f)
                mks = markers.get(line, ())
                if mks and f.location and "raw_line" in f.location:
                    mks = _structured(mks, line, f, buf)
                if any(_covers(mk.rules, f.rule_id) for mk in mks):
                    continue
            out.append(f)
        return out


def _structured(mks: Sequence[Marker], line: int, f: Finding, buf: Any) -> list[Marker]:
    """Markers that apply to a finding inside a JSON string (notebook cell): in a raw line holding several
    logical lines (a minified notebook), only markers on the secret's logical line, or alone on the logical line
    before it, count; not every marker anywhere on the raw line."""
    same = [mk for mk in mks if mk.line == line]
    before = [mk for mk in mks if mk.line != line]
    if not same:
        return before
    if f.secret is None:
        return list(mks)
    text = bytes(buf[same[0].start:same[0].end])
    segs = json_segments(text, f.secret.encode("utf-8", "surrogateescape"))
    if segs is None:
        return list(mks)
    seg, prev = segs
    out = [mk for mk in parse_line(seg, line) if mk.same_line]
    if prev is None:
        return out + before
    return out + [mk for mk in parse_line(prev, line - 1) if mk.next_line]
