"""The structured walk of a parsed notebook: cell sources, outputs, attachments and metadata, each decoded
JSON string scanned by the matcher and recorded with its location (cell, part, key path, MIME type).

Secrets are matched on *decoded* string values, so ``\\"``, ``\\n`` and ``\\u00XX`` escapes never hide or
break a token, and ``source``/``text`` lists are joined first, so a token split across list items is found.
Binary payloads (``image/png`` and other non-text MIME types, base64) are never scanned as text. Parsing is
:mod:`nb_parse`'s job, the raw-line lookup and committing :mod:`nb_rawline`'s.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from veritensor_fast.buffers import LineColumn
from veritensor_fast.matcher import SecretMatch

if TYPE_CHECKING:
    from veritensor_fast.worker import WorkerContext

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_BINARY_PREFIXES = ("image/", "audio/", "video/", "font/")
_BINARY_TYPES = frozenset({"application/pdf", "application/octet-stream", "application/zip",
                           "application/x-tar", "application/gzip"})
_TEXT_IMAGES = frozenset({"image/svg+xml"})
#: nbformat 3 output keys that hold base64 binary data.
_V3_BINARY_KEYS = frozenset({"png", "jpeg", "pdf"})
_SEP = "\x00"  # joins separate JSON strings of one part: not whitespace, not a word character
_SEP_B = _SEP.encode()
#: Cell and output keys that hold no text to scan.
_CELL_SKIP = frozenset({"cell_type", "id", "execution_count", "prompt_number", "language", "level"})
_OUTPUT_SKIP = frozenset({"output_type", "execution_count", "prompt_number", "name"})
#: The walk queues the strings it scans and matches them together once this many bytes are queued (and at the
#: end): one Hyperscan scan of their concatenation picks the strings that hold a candidate, the rest are not
#: matched at all. Memory stays bounded on a streamed notebook.
BATCH_BYTES = 1 << 20
#: :class:`QuietSources` keeps code cell sources up to this many bytes in all (each counted as its UTF-8 length, at
#: least the string's characters, plus 128 for the string's header and its set slot).
QUIET_BYTES = 2 << 20


class QuietSources:
    """Code cell sources known to give nothing (no match in their text, not wanted by the Python-AST helper), kept
    by one notebook detector across notebooks: a git history holds the same cells in every version of a notebook
    (81 % of the code cells of a 6k-commit history's 4,076 notebook blobs), each then neither matched nor asked
    about again. Exact: both answers depend on the source's bytes alone. Bounded by :data:`QUIET_BYTES` (emptied
    when full)."""

    __slots__ = ("known", "size")

    def __init__(self) -> None:
        self.known: set[str] = set()
        self.size = 0

    def add(self, src: str, nbytes: int) -> None:
        """Keeps ``src`` (``nbytes``: its UTF-8 length)."""
        n = nbytes + 128
        if self.size + n > QUIET_BYTES:
            self.known.clear()
            self.size = 0
            if n > QUIET_BYTES:
                return
        self.known.add(src)
        self.size += n


@functools.lru_cache(maxsize=256)
def is_binary_mime(mime: str) -> bool:
    m = mime.lower().split(";", 1)[0].strip()
    if m in _TEXT_IMAGES:
        return False
    return m.startswith(_BINARY_PREFIXES) or m in _BINARY_TYPES


def join_text(v: Any) -> str | None:
    """A ``source``/``text`` value as one string (lists are joined as is), or None when it is not text."""
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        try:
            return "".join(v)  # C speed; raises TypeError on a non-string item
        except TypeError:
            return None
    return None


def strip_ansi(s: str) -> str:
    return _ANSI.sub("", s) if "\x1b" in s else s


def iter_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string value inside a JSON value, with a dotted key path (``a.b[3].c``); iterative."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        v, p = stack.pop()
        if isinstance(v, str):
            yield p, v
        elif isinstance(v, dict):
            stack.extend((v[k], f"{p}.{k}" if p else str(k)) for k in reversed(list(v)))
        elif isinstance(v, list):
            stack.extend((v[i], f"{p}[{i}]") for i in range(len(v) - 1, -1, -1))


def _string_items(value: Any, path: str) -> list[tuple[str, str]]:
    """``list(iter_strings(value, path))``, without the generator for the usual shapes: nothing (an empty or
    non-string scalar), one string, or an object whose values are all strings (output metadata, kernelspec)."""
    if not value:
        return [(path, value)] if isinstance(value, str) else []
    if isinstance(value, str):
        return [(path, value)]
    if type(value) is dict and all(type(v) is str for v in value.values()):
        return [(f"{path}.{k}" if path else str(k), v) for k, v in value.items()]
    if not isinstance(value, dict | list):
        return []
    return list(iter_strings(value, path))


Record = tuple[SecretMatch, int, int, dict[str, Any]]
Handler = Callable[[list[SecretMatch]], None]


class Walker:
    """Turns one notebook's JSON values into scanned parts; collects findings as records."""

    def __init__(self, ctx: WorkerContext, include_outputs: bool, py_hook: Any = None,
                 quiet: QuietSources | None = None) -> None:
        self.find = ctx.matcher.find
        self.ctx = ctx
        self.include_outputs = include_outputs
        self.py_hook = py_hook
        #: code cell sources that give nothing (with this helper); None: not kept
        self.quiet = quiet if py_hook is not None else None
        #: ``limit`` errors for the notebook (a code cell too dense for the AST pass's memory budget)
        self.notes: list[str] = []
        self.records: list[Record] = []
        #: ``(bytes, handler, source)``: a handler of the matches, or None for a code cell's source that the
        #: Python-AST helper reads too; then ``source`` is ``(text, cell location)`` (:meth:`_source_found`)
        self.pending: list[tuple[bytes, Handler | None, Any]] = []
        self.pending_bytes = 0

    # -- scanning primitives -------------------------------------------------------------------------------

    def queue(self, b: bytes, handler: Handler | None, source: Any = None) -> None:
        """``handler(matches of b)`` at the next :meth:`flush`, or ``_source_found(b, matches, *source)`` with
        no handler; they run in the order they were queued. A handler given no match does nothing (so
        :meth:`flush` does not call it then); a code cell's source may still give the Python-AST helper a secret."""
        if len(b) >= BATCH_BYTES:  # alone: a big string is never copied into a concatenation
            self.flush()
            if handler is None:
                self._source_found(b, self.find(b), *source)
            else:
                handler(self.find(b))
            return
        self.pending.append((b, handler, source))
        self.pending_bytes += len(b) + 1
        if self.pending_bytes >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Matches the queued strings and runs their handlers, in order. The findings are exactly those of one
        ``find`` per string: a string none of whose candidates the concatenation shows has none alone either
        (``SecretMatcher.candidate_ends``), and the others are matched alone, as before."""
        pending, self.pending, self.pending_bytes = self.pending, [], 0
        if not pending:
            return
        flagged: set[int] | None = None
        if len(pending) > 1:
            ends = self.ctx.matcher.candidate_ends(_SEP_B.join([b for b, _, _ in pending]))
            if ends is not None and not ends:  # the usual notebook: no candidate anywhere, nothing is matched
                self._quiet_sources(pending)
                return
            if ends is not None:
                starts, stops, pos = [], [], 0
                for b, _, _ in pending:
                    starts.append(pos)
                    stops.append(pos + len(b))
                    pos += len(b) + 1
                flagged = set()
                for e in ends:
                    i = bisect.bisect_right(starts, e - 1) - 1
                    if i >= 0 and e <= stops[i]:  # not a match that ends on a separator
                        flagged.add(i)
        for i, (b, handler, source) in enumerate(pending):
            ms = self.find(b) if b and (flagged is None or i in flagged) else []
            if handler is None:
                self._source_found(b, ms, *source)
            elif ms:
                handler(ms)

    def _quiet_sources(self, pending: list[tuple[bytes, Handler | None, Any]]) -> None:
        """A batch with no candidate: only code cells' sources can still give a finding (the Python-AST helper);
        none can when the helper's prefilter admits none of them (one scan for all)."""
        py = [(b, source) for b, handler, source in pending if handler is None]
        if not py:
            return
        if self.py_hook.none_wanted([b for b, _ in py]):
            if self.quiet is not None:
                for b, (src, _base) in py:
                    self.quiet.add(src, len(b))
            return
        for b, source in py:
            self._source_found(b, [], *source)

    def text(self, s: str, loc: dict[str, Any]) -> None:
        """Scan one decoded string; ``line``/``column`` are relative to it."""
        if s:
            b = s.encode("utf-8", "surrogatepass")
            self.queue(b, lambda ms: self._text_records(b, ms, loc))

    def _text_records(self, b: bytes, ms: list[SecretMatch], loc: dict[str, Any]) -> None:
        if ms:
            lc = LineColumn(b)  # linear over the sorted matches, however long the string's lines
            for m in ms:
                line, col = lc.at(m.start)
                self.records.append((m, line, col, loc))

    def strings(self, value: Any, path: str, loc: dict[str, Any]) -> None:
        """Scan every string inside a JSON value in one matcher call; each finding gets its ``key`` path."""
        items = _string_items(value, path)
        if not items:
            return
        if len(items) == 1:
            p, s = items[0]
            self.text(s, {**loc, "key": p} if p else loc)
            return
        starts: list[int] = []
        chunks: list[bytes] = []
        pos = 0
        for _, s in items:
            eb = s.encode("utf-8", "surrogatepass")
            starts.append(pos)
            chunks.append(eb)
            pos += len(eb) + 1
        b = _SEP_B.join(chunks)
        self.queue(b, lambda ms: self._strings_records(b, ms, starts, items, loc))

    def _strings_records(self, b: bytes, ms: list[SecretMatch], starts: list[int], items: list[tuple[str, str]],
                         loc: dict[str, Any]) -> None:
        if not ms:
            return
        lc, cur, lb, cb = LineColumn(b), -1, 1, 1
        for m in ms:
            i = bisect.bisect_right(starts, m.start) - 1
            if i != cur:  # matches come sorted: each string's start is passed once, in order
                cur, (lb, cb) = i, lc.at(starts[i])
            line, col = lc.at(m.start)
            line, col = line - lb + 1, (col - cb + 1) if line == lb else col
            p = items[i][0]
            self.records.append((m, line, col, {**loc, "key": p} if p else dict(loc)))

    # -- notebook structure --------------------------------------------------------------------------------

    def cell(self, idx: int, cell: Any) -> None:
        if not isinstance(cell, dict):
            self.strings(cell, "", {"cell": idx, "cell_id": None, "part": "other"})
            return
        base: dict[str, Any] | None = None
        for key, val in cell.items():  # document order, so raw_line lookups move forward
            if not val or key in _CELL_SKIP:  # a falsy value ({}, [], "", null, 0) holds no string to scan
                continue
            if base is None:
                cid = cell.get("id")
                base = {"cell": idx, "cell_id": cid if isinstance(cid, str) else None}
            if key == "source" or key == "input":
                if type(val) is list:  # join_text's usual case, inline
                    try:
                        src: str | None = "".join(val)
                    except TypeError:
                        src = None
                else:
                    src = join_text(val)
                if src is None:
                    self.strings(val, key, {**base, "part": "source"})
                    continue
                if self.py_hook is not None and cell.get("cell_type", "code") == "code":
                    if src and (self.quiet is None or src not in self.quiet.known):
                        # its text, then what the Python-AST helper adds (at flush, in order)
                        b = src.encode("utf-8", "surrogatepass")
                        if self.pending_bytes + len(b) + 1 < BATCH_BYTES:  # queue's usual case, inline
                            self.pending.append((b, None, (src, base)))
                            self.pending_bytes += len(b) + 1
                        else:
                            self.queue(b, None, (src, base))
                else:
                    self.text(src, {**base, "part": "source"})
            elif key == "outputs":
                if self.include_outputs and isinstance(val, list):
                    for n, out in enumerate(val):
                        self.output(n, out, base)
            elif key == "attachments":
                self.attachments(val, base)
            elif key == "metadata":
                self.strings(val, "", {**base, "part": "metadata"})
            else:
                self.strings(val, key, {**base, "part": "metadata"})

    def output(self, n: int, out: Any, base: dict[str, Any]) -> None:
        if not isinstance(out, dict):
            self.strings(out, "", {**base, "part": "output", "output": n, "output_type": None, "mime": None})
            return
        ot = out.get("output_type")
        ot = ot if isinstance(ot, str) else None
        loc = {**base, "part": "output", "output": n, "output_type": ot}
        for key, val in out.items():
            if key in _OUTPUT_SKIP or not val:  # a falsy value holds no string to scan
                continue
            if key == "text":
                t = join_text(val)
                if t is not None:
                    self.text(strip_ansi(t), {**loc, "mime": "text/plain"})
                else:
                    self.strings(val, "text", {**loc, "mime": "text/plain"})
            elif key == "data" and isinstance(val, dict):
                for mime, v in val.items():
                    self.mime_value(str(mime), v, loc)
            elif key == "traceback":
                tb = None
                if isinstance(val, list):
                    try:
                        tb = "\n".join(val)
                    except TypeError:
                        tb = None
                if tb is not None:
                    self.text(strip_ansi(tb), {**loc, "mime": None, "field": "traceback"})
                else:
                    self.strings(val, "traceback", {**loc, "mime": None, "field": "traceback"})
            elif key in ("evalue", "ename") and isinstance(val, str):
                self.text(strip_ansi(val), {**loc, "mime": None, "field": key})
            elif key in _V3_BINARY_KEYS:
                continue
            elif key == "metadata":
                self.strings(val, "", {**loc, "mime": None, "field": "metadata"})
            else:  # nbformat 3 ("html", "latex", "json", ...) and anything unknown: scan its strings
                t = join_text(val)
                if t is not None:
                    self.text(strip_ansi(t), {**loc, "mime": None, "field": key})
                else:
                    self.strings(val, "", {**loc, "mime": None, "field": key})

    def mime_value(self, mime: str, v: Any, loc: dict[str, Any]) -> None:
        if is_binary_mime(mime):
            return
        t = join_text(v)
        if t is not None:
            self.text(t, {**loc, "mime": mime})
        else:  # application/json and friends: a JSON object, scan its string values
            self.strings(v, "", {**loc, "mime": mime})

    def attachments(self, val: Any, base: dict[str, Any]) -> None:
        if not isinstance(val, dict):
            return
        for name, bundle in val.items():
            if not isinstance(bundle, dict):
                continue
            for mime, v in bundle.items():
                loc = {**base, "part": "attachment", "attachment": str(name), "mime": str(mime)}
                if is_binary_mime(str(mime)):
                    continue
                t = join_text(v)
                if t is None:
                    self.strings(v, "", loc)
                    continue
                try:
                    raw = base64.b64decode("".join(t.split()), validate=True)
                except (binascii.Error, ValueError):
                    self.text(t, loc)  # not base64: scan as given
                    continue
                self.text(raw.decode("utf-8", "replace"), {**loc, "decoded": "base64"})

    def _source_found(self, b: bytes, ms: list[SecretMatch], src: str, base: dict[str, Any]) -> None:
        """A code cell's source ``src`` (``b`` encoded), its matches ``ms``: its text's records, then what the
        Python-AST helper adds. The location is built only when there is something to say."""
        wanted = self.py_hook.wanted(b)
        if not ms and not wanted:
            if self.quiet is not None:
                self.quiet.add(src, len(b))
            return
        loc = {**base, "part": "source"}
        first = len(self.records)
        self._text_records(b, ms, loc)
        if wanted:
            self._python(src, b, loc, first)

    def _python(self, src: str, b: bytes, loc: dict[str, Any], first: int) -> None:
        """Secrets the Python-AST helper reassembles from a code cell (``"a" + "b"``, f-strings, sink kwargs)
        that the text of the cell did not already show (``py_hook.wanted(b)`` is true)."""
        from veritensor_fast.detectors.pyast import scan_python_bounded

        hits, why = scan_python_bounded(src, self.ctx.matcher)  # a dense cell: in pieces (``pyast_budget``)
        if why is not None:  # not parsed: the cell's text was matched; the notebook reports it
            self.notes.append(f"code cell {loc.get('cell', '?')}: {why}")
            return
        if not hits:
            return
        seen = {(r[0].rule.id, r[0].secret) for r in self.records[first:]}
        lines = b.split(b"\n")
        for h in hits:
            key = (h.match.rule.id, h.match.secret)
            if key in seen:
                continue
            seen.add(key)
            lb = lines[h.line - 1] if 0 < h.line <= len(lines) else b""
            col = len(lb[:h.col].decode("utf-8", "replace")) + 1
            self.records.append((h.match, h.line, col, {**loc, "decoded": "python-ast"}))

    def top(self, key: str, val: Any) -> None:
        if key in ("cells", "nbformat", "nbformat_minor"):
            return
        if key == "worksheets" and isinstance(val, list):  # nbformat 3
            idx = 0
            for ws in val:
                cells = ws.get("cells") if isinstance(ws, dict) else None
                if isinstance(cells, list):
                    for c in cells:
                        self.cell(idx, c)
                        idx += 1
            return
        self.strings(val, "" if key == "metadata" else key, {"cell": None, "cell_id": None, "part": "metadata"})
