"""Jupyter notebook detector: scans every decoded JSON string of an ``.ipynb`` and says where each secret is.

What is scanned (secrets are matched on *decoded* string values, so ``\\"``, ``\\n`` and ``\\u00XX`` escapes
never hide or break a token, and ``source``/``text`` lists are joined first, so a token split across list
items is found):

- cell sources (code, markdown, raw; nbformat 3 ``input`` too);
- outputs (reported unless ``ScanOptions.include_outputs`` is off): ``stream`` text, every text-like MIME type of
  ``execute_result`` / ``display_data`` (a JSON object value is walked string by string), ``error``
  ``ename`` / ``evalue`` / ``traceback`` with ANSI escape codes stripped, output metadata;
- cell attachments, base64-decoded when their MIME type is text-like;
- cell metadata and notebook metadata (widget state etc.), every string value, with its key path.

Binary payloads (``image/png`` and other non-text MIME types, base64) are never scanned as text.

Parsing: notebooks up to :data:`ORJSON_MAX` bytes are loaded with ``orjson`` (fastest at that size); bigger
ones are streamed cell by cell with ``ijson`` (yajl2_c) through a 1 MiB read buffer (from a
``randread.PreadView`` for a file over 16 MiB: ``pread``, so a truncation mid-parse raises ``FileChanged``,
never SIGBUS), so memory is bounded by the largest single cell, not by the notebook. Findings are committed only when the whole notebook parsed; otherwise a ``parse`` error is
recorded and the plain text pass scans the raw bytes instead. A notebook nested deeper than
``nb_guard.MAX_DEPTH`` is never parsed (a ``limit`` error; the text pass scans it). After a successful parse
the raw bytes are scanned as text too and findings the structured pass did not make are added
(``location.part == "raw"``), so a field the parser skips cannot hide a token.
"""

from __future__ import annotations

import base64
import binascii
import mmap
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import ijson
import orjson

from veritensor_fast.buffers import (
    COPY_WINDOW,
    LineColumn,
    can_release,
    count_newlines,
    is_buffer,
    release_pages,
    span,
)
from veritensor_fast.detectors.nb_guard import MAX_DEPTH, nesting_exceeds, raw_findings
from veritensor_fast.findings import Item
from veritensor_fast.matcher import SecretMatch

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan, WorkerContext

#: Notebooks up to this size are parsed whole by orjson; larger ones are streamed by ijson (measured: orjson
#: 1.4-1.9 GB/s below 1 MB, ijson overtakes it near 8 MB and orjson needs ~3x the file size in memory).
ORJSON_MAX = 8 << 20
#: ijson read size. 64 KiB (the default) runs at ~220 MB/s on image-heavy notebooks, 1 MiB at ~1.1 GB/s.
IJSON_BUF = 1 << 20
#: Release consumed pages of a memory-mapped notebook every this many bytes.
DROP_EVERY = 4 << 20
#: Findings beyond this many do not get a ``raw_line``.
RAW_LINE_MAX = 1000
#: Window of the ``raw_line`` pass over a memory-mapped notebook (pages released after each window).
RAW_WINDOW = 8 << 20

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_BINARY_PREFIXES = ("image/", "audio/", "video/", "font/")
_BINARY_TYPES = frozenset({"application/pdf", "application/octet-stream", "application/zip",
                           "application/x-tar", "application/gzip"})
_TEXT_IMAGES = frozenset({"image/svg+xml"})
#: nbformat 3 output keys that hold base64 binary data.
_V3_BINARY_KEYS = frozenset({"png", "jpeg", "pdf"})
_SEP = "\x00"  # joins separate JSON strings of one part: not whitespace, not a word character


class NotebookParseError(Exception):
    """The notebook is not valid JSON (or not a notebook). The message never holds notebook content."""


def is_binary_mime(mime: str) -> bool:
    m = mime.lower().split(";", 1)[0].strip()
    if m in _TEXT_IMAGES:
        return False
    return m.startswith(_BINARY_PREFIXES) or m in _BINARY_TYPES


def looks_like_notebook(path: str, head: bytes, buf: Any) -> bool:
    """``.ipynb`` by extension, or a JSON object that has ``"cells"`` and ``"nbformat"`` keys."""
    if path.lower().endswith(".ipynb"):
        return True
    h = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not h.startswith(b"{") or b'"cells"' not in head and b'"worksheets"' not in head:
        return False
    if b'"nbformat"' in head:
        return True
    n = len(buf)
    return b'"nbformat"' in bytes(buf[max(0, n - 4096):n])


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


class _Reader:
    """File-like view of a buffer for ijson: reads by slicing, releases consumed pages of an mmap."""

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.pos = 0
        self.n = len(buf)
        self.dropped = 0
        self.is_mmap = can_release(buf)

    def read(self, size: int = -1) -> bytes:
        end = self.n if size is None or size < 0 else min(self.n, self.pos + size)
        out = bytes(self.buf[self.pos:end])
        self.pos = end
        if self.is_mmap and self.pos - self.dropped >= DROP_EVERY:
            upto = (self.pos - IJSON_BUF) // mmap.PAGESIZE * mmap.PAGESIZE
            if upto > self.dropped:
                release_pages(self.buf, self.dropped, upto)
                self.dropped = upto
        return out


Record = tuple[SecretMatch, int, int, dict[str, Any]]


class _Walker:
    """Turns one notebook's JSON values into scanned parts; collects findings as records."""

    def __init__(self, ctx: WorkerContext, include_outputs: bool, py_hook: Any = None) -> None:
        self.find = ctx.matcher.find
        self.ctx = ctx
        self.include_outputs = include_outputs
        self.py_hook = py_hook
        self.records: list[Record] = []

    # -- scanning primitives -------------------------------------------------------------------------------

    def text(self, s: str, loc: dict[str, Any]) -> None:
        """Scan one decoded string; ``line``/``column`` are relative to it."""
        if not s:
            return
        b = s.encode("utf-8", "surrogatepass")
        lc = LineColumn(b)  # linear over the sorted matches, however long the string's lines
        for m in self.find(b):
            line, col = lc.at(m.start)
            self.records.append((m, line, col, loc))

    def strings(self, value: Any, path: str, loc: dict[str, Any]) -> None:
        """Scan every string inside a JSON value in one matcher call; each finding gets its ``key`` path."""
        items = list(iter_strings(value, path))
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
        b = _SEP.encode().join(chunks)
        import bisect

        lc, cur, lb, cb = LineColumn(b), -1, 1, 1
        for m in self.find(b):
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
        cid = cell.get("id")
        base = {"cell": idx, "cell_id": cid if isinstance(cid, str) else None}
        for key, val in cell.items():  # document order, so raw_line lookups move forward
            if key in ("source", "input"):
                src = join_text(val)
                if src is None:
                    self.strings(val, key, {**base, "part": "source"})
                    continue
                first = len(self.records)
                self.text(src, {**base, "part": "source"})
                if self.py_hook is not None and cell.get("cell_type", "code") == "code":
                    self._python(src, {**base, "part": "source"}, first)
            elif key == "outputs":
                if self.include_outputs and isinstance(val, list):
                    for n, out in enumerate(val):
                        self.output(n, out, base)
            elif key == "attachments":
                self.attachments(val, base)
            elif key == "metadata":
                self.strings(val, "", {**base, "part": "metadata"})
            elif key in ("cell_type", "id", "execution_count", "prompt_number", "language", "level"):
                continue
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
            if key in ("output_type", "execution_count", "prompt_number", "name"):
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

    def _python(self, src: str, loc: dict[str, Any], first: int) -> None:
        """Secrets the Python-AST helper reassembles from a code cell (``"a" + "b"``, f-strings, sink kwargs)
        that the text of the cell did not already show."""
        det = self.py_hook
        b = src.encode("utf-8", "surrogatepass")
        if not det.wanted(b):
            return
        from veritensor_fast.detectors.pyast import scan_python_source

        hits = scan_python_source(src, self.ctx.matcher)
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


class NotebookDetector:
    """Claims ``.ipynb`` files (and extension-less blobs that sniff as notebooks) from the plain text pass."""

    name = "notebook"

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.include_outputs = bool(getattr(ctx.options, "include_outputs", True))

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        if not looks_like_notebook(item.path, head, buf):
            return
        py = next((d for d in self.ctx.detectors if d.name == "python-ast" and hasattr(d, "wanted")), None)
        # Outputs are always walked: with outputs excluded their findings are not reported, but they still
        # tell the raw-text pass which of its findings are output tokens to leave out.
        walker = _Walker(self.ctx, True, py if getattr(py, "enabled", False) else None)
        try:
            if len(buf) <= ORJSON_MAX:
                self._small(buf, walker)
            else:
                if nesting_exceeds(buf, MAX_DEPTH):  # before ijson, whose memory grows with depth squared
                    scan.error(f"notebook nests JSON deeper than {MAX_DEPTH} levels: not parsed as a notebook, "
                               "scanned as plain text", "limit")
                    return
                self._streamed(buf, walker, head)
        except NotebookParseError as exc:
            kind = "limit" if "deeper than" in str(exc) else "parse"
            scan.error(f"notebook is not valid JSON / truncated: {exc}; scanned as plain text", kind)
            return
        records, hidden = walker.records, []
        if not self.include_outputs:
            hidden = [(r[0], None) for r in records if r[3].get("part") == "output"]
            records = [r for r in records if r[3].get("part") != "output"]
        structured = self._commit(buf, records, scan) + hidden
        # The raw bytes always go through the text pass too: nothing the parser skips can hide a token.
        raw_findings(buf, scan, structured)
        scan.text_done = True

    def _small(self, buf: Any, w: _Walker) -> None:
        try:
            doc = orjson.loads(buf if isinstance(buf, bytes | bytearray | memoryview | str) else bytes(buf))
        except orjson.JSONDecodeError as exc:
            if "depth" in exc.msg:
                raise NotebookParseError(f"nests JSON deeper than {MAX_DEPTH} levels") from None
            raise NotebookParseError(f"line {exc.lineno} column {exc.colno}") from None
        if not isinstance(doc, dict) or not (isinstance(doc.get("cells"), list) or "worksheets" in doc):
            raise NotebookParseError("not a Jupyter notebook (no cells list)")
        for key, val in doc.items():
            if key == "cells":
                for i, c in enumerate(val):
                    w.cell(i, c)
            else:
                w.top(key, val)

    def _streamed(self, buf: Any, w: _Walker, head: bytes) -> None:
        """Cells one at a time (memory: one cell), then the other top-level values from the tail."""
        v3 = b'"worksheets"' in head and b'"cells"' not in head[:head.find(b'"worksheets"')]
        prefix = "worksheets.item.cells.item" if v3 else "cells.item"
        ncells = 0
        try:
            for ncells, c in enumerate(ijson.items(_Reader(buf), prefix, buf_size=IJSON_BUF), 1):
                w.cell(ncells - 1, c)
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            # ijson's message quotes the input around the error; it must not reach the report.
            raise NotebookParseError(f"{type(exc).__name__} after {ncells} cells") from None
        if ncells == 0 and not v3 and b'"cells"' not in head:
            raise NotebookParseError("not a Jupyter notebook (no cells list)")
        tail = None if v3 else self._top_level_tail(buf)
        if tail is None:  # rare layout (metadata before the cells): a second streamed pass for it
            try:
                for val in ijson.items(_Reader(buf), "metadata", buf_size=IJSON_BUF):
                    w.top("metadata", val)
            except (ijson.JSONError, UnicodeDecodeError) as exc:
                raise NotebookParseError(f"{type(exc).__name__} in notebook metadata") from None
            return
        for key, val in tail.items():
            w.top(key, val)

    @staticmethod
    def _top_level_tail(buf: Any) -> dict[str, Any] | None:
        """The top-level members after ``"cells"``, parsed from the raw tail, or None if not found.

        A member key at offset ``o`` is top-level exactly when ``{`` + ``buf[o:]`` is one valid JSON object:
        from a key nested at depth d > 1 the rest of the file closes d containers, which cannot parse. Keys
        inside strings are impossible here because their quotes would be escaped (checked by parity).
        """
        n = len(buf)
        tail_start = max(0, n - (64 << 20))
        pos = n
        for _ in range(16):
            o = buf.rfind(b'"metadata"', tail_start, pos)
            if o < 0:
                return None
            pos = o
            k = o - 1
            while k >= 0 and buf[k] == 0x5C:  # backslash
                k -= 1
            if (o - 1 - k) % 2:
                continue
            j = k
            while j >= 0 and buf[j] in (0x20, 0x09, 0x0A, 0x0D):
                j -= 1
            if j < 0 or buf[j] != 0x2C:  # a top-level key after "cells" follows a comma
                continue
            try:
                doc = orjson.loads(b"{" + bytes(buf[o:n]))
            except orjson.JSONDecodeError:
                continue
            return doc if isinstance(doc, dict) else None
        return None

    def _commit(self, buf: Any, records: list[Record], scan: ItemScan) -> list[tuple[SecretMatch, int | None]]:
        # The k-th record (in document order) of a secret gets the k-th verbatim occurrence of that secret in
        # the raw file as its ``raw_line``; all secrets are looked up together in one pass.
        want: dict[bytes, int] = {}
        for m, _, _, _ in records[:RAW_LINE_MAX]:
            want[m.secret] = want.get(m.secret, 0) + 1
        occ = raw_occurrences(buf, want) if want else {}
        taken: dict[bytes, int] = {}
        out: list[tuple[SecretMatch, int | None]] = []
        for i, (m, line, col, loc) in enumerate(records):
            loc = dict(loc)
            if i < RAW_LINE_MAX:
                k = taken.get(m.secret, 0)
                hits = occ.get(m.secret, ())
                if k < len(hits):
                    loc["raw_line"] = hits[k][1]
                    taken[m.secret] = k + 1
            decoded = loc.pop("decoded", None)
            scan.add_secret(m, line=line, column=col, location=loc, decoded=decoded)
            out.append((m, loc.get("raw_line")))
        return out


def _literal(s: bytes) -> bytes:
    """A Hyperscan expression matching exactly the bytes ``s``."""
    return "".join(f"\\x{c:02x}" for c in s).encode()


def raw_occurrences(buf: Any, want: dict[bytes, int]) -> dict[bytes, list[tuple[int, int]]]:
    """For each secret, its first ``want[secret]`` verbatim occurrences in ``buf`` (overlapping ones count), as
    ``(offset, line)``, in order.

    One Hyperscan pass for all secrets together (a literal database compiled here and never written to disk),
    window by window with the newlines counted while the window is resident; it stops as soon as every secret
    has enough occurrences. A memory-mapped file larger than one window has each window's pages released once
    it is done, so the pass faults every page in once and never makes the file resident.
    """
    secrets = [s for s in want if s]
    found: dict[bytes, list[tuple[int, int]]] = {s: [] for s in secrets}
    if not secrets:
        return found
    import hyperscan

    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=[_literal(s) for s in secrets], ids=list(range(len(secrets))),
                   elements=len(secrets),
                   flags=[hyperscan.HS_FLAG_SINGLEMATCH if want[s] == 1 else 0 for s in secrets])
    except hyperscan.error:  # pragma: no cover - literals always compile; then no raw_line, findings kept
        return found
    lens = [len(s) for s in secrets]
    need = [want[s] for s in secrets]
    pending = len(secrets)
    overlap = max(lens) - 1
    n = len(buf)
    drop = can_release(buf) and n > RAW_WINDOW
    hits: list[tuple[int, int]] = []
    a, b, line_base = 0, 0, 1

    def on_match(pid: int, _from: int, to: int, _flags: int, _ctx: object) -> bool | None:
        nonlocal pending
        start = a + to - lens[pid]
        if start < b and need[pid] > 0:  # a match starting in the overlap belongs to the next window
            need[pid] -= 1
            hits.append((start, pid))
            if need[pid] == 0:
                pending -= 1
                if pending == 0:
                    return True  # stop scanning
        return None

    step = RAW_WINDOW if is_buffer(buf) else COPY_WINDOW
    while a < n and pending:
        b = min(n, a + step)
        hi = min(n, b + overlap)
        hits.clear()
        with span(buf, a, hi) as window:
            try:
                db.scan(window, match_event_handler=on_match)
            except hyperscan.ScanTerminated:
                pass
        pos, line = a, line_base
        for start, pid in sorted(hits):
            line += count_newlines(buf, pos, start)
            pos = start
            found[secrets[pid]].append((start, line))
        if pending:
            line_base = line + count_newlines(buf, pos, b)
        if drop:
            release_pages(buf, a, b if pending else hi)
        a = b
    return found
