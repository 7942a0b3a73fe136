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
ones in the layout Jupyter writes are cut at their cell boundaries and each cell is parsed by ``orjson``
(:mod:`nb_cells`, exact or not taken); the others are streamed cell by cell with ``ijson`` (yajl2_c) through a
1 MiB read buffer (from a
``randread.PreadView`` for a file over 16 MiB: ``pread``, so a truncation mid-parse raises ``FileChanged``,
never SIGBUS), so memory is bounded by the largest single cell, not by the notebook. Findings are committed
only when the whole notebook parsed; otherwise a ``parse`` error is recorded and the plain text pass scans the
raw bytes instead. A notebook nested deeper than ``nb_guard.MAX_DEPTH`` is never parsed (a ``limit`` error; the text pass scans it). After a successful parse
the raw bytes are scanned as text too and findings the structured pass did not make are added
(``location.part == "raw"``), so a field the parser skips cannot hide a token.

Modules: this one claims the file and drives the pass; :mod:`nb_parse` parses (orjson / ijson), :mod:`nb_walk`
walks the parsed values and scans each string, :mod:`nb_rawline` commits findings with their raw lines, and
:mod:`nb_guard` bounds nesting and runs the raw-bytes pass.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from veritensor_fast import jsonload
from veritensor_fast.detectors.nb_cells import parse_cells
from veritensor_fast.detectors.nb_guard import MAX_DEPTH, find_windowed, nesting_exceeds, raw_findings
from veritensor_fast.detectors.nb_parse import (
    NotebookParseError,
    bom_length,
    parse_small,
    parse_streamed,
    walk_tail,
)
from veritensor_fast.detectors.nb_rawline import (  # noqa: F401 - re-exported
    LiteralFinder,
    commit,
    raw_occurrences,
    wanted,
)
from veritensor_fast.detectors.nb_walk import (  # noqa: F401 - re-exported
    QuietSources,
    Record,
    Walker,
    is_binary_mime,
    iter_strings,
    join_text,
    strip_ansi,
)
from veritensor_fast.detectors.text import utf16_encoding
from veritensor_fast.findings import Item

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan, WorkerContext

#: Notebooks up to this size are parsed whole by orjson; larger ones are streamed by ijson (measured: orjson
#: 1.4-1.9 GB/s below 1 MB, ijson overtakes it near 8 MB and orjson needs ~3x the file size in memory).
ORJSON_MAX = 8 << 20
#: A UTF-16 notebook up to this size is decoded whole and parsed as a notebook; a bigger one is scanned as UTF-16
#: text (decoded chunk by chunk) with a ``limit`` error.
UTF16_MAX = 8 << 20

_Walker = Walker  # old private name (tests use it)
# The tunables of the moved code (``nb_parse.DROP_EVERY`` / ``IJSON_BUF``, ``nb_rawline.RAW_WINDOW`` /
# ``RAW_LINE_MAX``) are deliberately not re-exported: setting a copy here would silently change nothing.


def looks_like_notebook(path: str, head: bytes, buf: Any) -> bool:
    """``.ipynb`` by extension, or a JSON object that has ``"cells"`` and ``"nbformat"`` keys."""
    if path[-6:].lower().endswith(".ipynb"):  # == path.lower().endswith(...): lowering never shortens a character
        return True
    h = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not h.startswith(b"{") or b'"cells"' not in head and b'"worksheets"' not in head:
        return False
    if b'"nbformat"' in head:
        return True
    n = len(buf)
    return b'"nbformat"' in bytes(buf[max(0, n - 4096):n])


def _ignore() -> Any:
    """The inline-ignore module, or None where it is not installed (the worker runs without it then)."""
    try:
        from veritensor_fast import ignore
    except ModuleNotFoundError as exc:  # pragma: no cover - as in WorkerContext
        if exc.name != "veritensor_fast.ignore":
            raise
        return None
    return ignore


#: The bytes a notebook's head may start with: ``{``, or one ``looks_like_notebook`` strips before it.
_NB_FIRST = frozenset(b"{\xef\xbb\xbf \t\r\n")


class NotebookDetector:
    """Claims ``.ipynb`` files (and extension-less blobs that sniff as notebooks) from the plain text pass."""

    name = "notebook"

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.include_outputs = bool(getattr(ctx.options, "include_outputs", True))
        self.inline_ignores = bool(getattr(ctx.options, "inline_ignores", False))
        self._py: Any = False
        self._quiet = QuietSources()  # code cells seen before that gave nothing (``nb_walk.QuietSources``)

    def quiet_test(self) -> Any:
        """The batch gate's question (``batch_gate``): :meth:`quiet`."""
        return self.quiet

    @staticmethod
    def quiet(item: Item, data: bytes, head: bytes) -> bool:
        """True when ``data`` is no notebook (:meth:`scan` returns at once)."""
        return not looks_like_notebook(item.path, head, data)

    @staticmethod
    def quiet_batch(items: list[Item], datas: list[bytes], heads: list[bytes]) -> list[bool]:
        """:meth:`quiet` for each item of a batch, in one call (``batch_gate``): a head that cannot start a JSON
        object (after a BOM or white space) under a name other than ``.ipynb`` is no notebook."""
        first = _NB_FIRST
        return [(not h or h[0] not in first) and not it.path[-6:].lower().endswith(".ipynb")
                or not looks_like_notebook(it.path, h, d) for it, d, h in zip(items, datas, heads, strict=True)]

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        if not looks_like_notebook(item.path, head, buf):
            return
        py = self._py
        if py is False:  # looked up on the first notebook: the detector list is built after this detector
            py = self._py = next((d for d in self.ctx.detectors if d.name == "python-ast" and hasattr(d, "wanted")),
                                 None)
        # Outputs are always walked: with outputs excluded their findings are not reported, but they still
        # tell the raw-text pass which of its findings are output tokens to leave out.
        u16 = utf16_encoding(head)
        if u16 is not None:  # UTF-16 (PowerShell's Out-File writes it): parsed from its UTF-8 form, if small
            buf = utf16_as_utf8(buf, u16, scan)
            if buf is None:
                return  # an error is recorded; the text pass decodes and scans it as UTF-16 text
            head = buf[:4096]
        start = bom_length(head)
        walker = Walker(self.ctx, True, py if getattr(py, "enabled", False) else None, self._quiet)
        try:
            if len(buf) <= ORJSON_MAX and jsonload.has_room(len(buf)):  # else cell by cell: less memory
                parse_small(buf, walker, start)
            elif parse_cells(buf, walker) is not None:  # the usual layout: cells cut apart, orjson each
                walk_tail(buf, walker, False, start)
            else:
                walker = Walker(self.ctx, True, py if getattr(py, "enabled", False) else None, self._quiet)
                if nesting_exceeds(buf, MAX_DEPTH):  # before ijson, whose memory grows with depth squared
                    scan.error(f"notebook nests JSON deeper than {MAX_DEPTH} levels: not parsed as a notebook, "
                               "scanned as plain text", "limit")
                    return
                parse_streamed(buf, walker, head, start)
        except NotebookParseError as exc:
            kind = "limit" if "deeper than" in str(exc) else "parse"
            scan.error(f"notebook is not valid JSON / truncated: {exc}; scanned as plain text", kind)
            return
        first = len(scan.findings)
        walker.flush()
        for note in walker.notes:
            scan.error(note, "limit")
        records, hidden = walker.records, []
        if not self.include_outputs:
            hidden = [(r[0], None) for r in records if r[3].get("part") == "output"]
            records = [r for r in records if r[3].get("part") != "output"]
        # The raw bytes always go through the text pass too: nothing the parser skips can hide a token. The same
        # windows give the verbatim occurrences that place each structured finding on its raw line.
        # The inline-ignore needles ride in the occurrences' database: the marker pass (which runs when there are
        # findings) then does not read the file again.
        want = wanted(records)
        # UTF-16: the marker pass reads the file itself (as for UTF-16 text), never these decoded offsets
        marks = _ignore() if want and self.inline_ignores and u16 is None else None
        lit = LiteralFinder(want, marks.NEEDLES, marks.MAX_MARKERS) if marks is not None else None
        found, occ = find_windowed(scan, buf, want, lit)
        if marks is not None and lit is not None and occ is not None and (lit.needle_hits is not None
                                                                          or lit.needles_over):
            marks.remember_needles(buf, lit.needle_hits)
        structured = commit(buf, records, scan, occ) + hidden
        raw_findings(buf, scan, structured, found)
        if u16 is not None:  # lines and columns are the decoded text's, as the UTF-16 text pass gives them
            scan.findings[first:] = [replace(f, location={**(f.location or {}), "encoding": u16[0]})
                                     for f in scan.findings[first:]]
        scan.text_done = True


def utf16_as_utf8(buf: Any, u16: tuple[str, int], scan: ItemScan) -> bytes | None:
    """A UTF-16 notebook of at most :data:`UTF16_MAX` bytes as UTF-8 bytes (its BOM dropped), or None with an
    error recorded (too big, or not valid UTF-16): then the text pass scans it as UTF-16 text, as before."""
    if len(buf) > UTF16_MAX:
        scan.error(f"UTF-16 notebook over {UTF16_MAX >> 20} MiB: not parsed as a notebook, scanned as UTF-16 text",
                   "limit")
        return None
    try:
        return bytes(buf[u16[1]:]).decode(u16[0]).encode("utf-8")
    except UnicodeError:
        scan.error("notebook is not valid UTF-16: scanned as UTF-16 text", "parse")
        return None
