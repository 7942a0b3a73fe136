"""Parsing a notebook for the structured walk: whole with ``orjson`` (small files) or streamed cell by cell with
``ijson`` (big ones), handing every cell and top-level value to a :class:`nb_walk.Walker`.

The streamed path reads through a 1 MiB buffer (from a ``randread.PreadView`` for a file over 16 MiB: ``pread``,
so a truncation mid-parse raises ``FileChanged``, never SIGBUS), releasing consumed pages of a memory-mapped
notebook, so memory is bounded by the largest single cell, not by the notebook. Every failure is a
:class:`NotebookParseError` whose message never holds notebook content.
"""

from __future__ import annotations

import mmap
from typing import Any

import orjson

from veritensor_fast import jsonload
from veritensor_fast.buffers import can_release, release_pages
from veritensor_fast.detectors.nb_guard import MAX_DEPTH
from veritensor_fast.detectors.nb_walk import Walker

#: ijson read size. 64 KiB (the default) runs at ~220 MB/s on image-heavy notebooks, 1 MiB at ~1.1 GB/s.
IJSON_BUF = 1 << 20
#: The UTF-8 byte-order mark.
BOM = b"\xef\xbb\xbf"
#: Release consumed pages of a memory-mapped notebook every this many bytes.
DROP_EVERY = 4 << 20


class NotebookParseError(Exception):
    """The notebook is not valid JSON (or not a notebook). The message never holds notebook content."""


class _Reader:
    """File-like view of a buffer for ijson: reads by slicing, releases consumed pages of an mmap."""

    def __init__(self, buf: Any, start: int = 0) -> None:
        self.buf = buf
        self.pos = start
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


def bom_length(head: bytes) -> int:
    """3 when ``head`` starts with a UTF-8 byte-order mark (Windows editors write one), else 0: the parsers
    start after it (JSON text may not begin with one, and neither orjson nor yajl skips it)."""
    return 3 if head[:3] == BOM else 0


def parse_small(buf: Any, w: Walker, start: int = 0) -> None:
    """The whole notebook with orjson (from byte ``start``: past a BOM), every cell and top-level value handed
    to ``w``."""
    data = buf if isinstance(buf, bytes | bytearray | memoryview) else bytes(buf)
    try:
        doc = jsonload.loads(memoryview(data)[start:] if start else data)
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


def parse_streamed(buf: Any, w: Walker, head: bytes, start: int = 0) -> None:
    """Cells one at a time (memory: one cell), then the other top-level values from the tail. ``start``: the
    offset of the JSON text (past a BOM)."""
    import ijson  # only big notebooks are streamed: ijson (and the decimal module it loads) is start-up cost

    v3 = b'"worksheets"' in head and b'"cells"' not in head[:head.find(b'"worksheets"')]
    prefix = "worksheets.item.cells.item" if v3 else "cells.item"
    ncells = 0
    try:
        for ncells, c in enumerate(ijson.items(_Reader(buf, start), prefix, buf_size=IJSON_BUF), 1):
            w.cell(ncells - 1, c)
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        # ijson's message quotes the input around the error; it must not reach the report.
        raise NotebookParseError(f"{type(exc).__name__} after {ncells} cells") from None
    if ncells == 0 and not v3 and b'"cells"' not in head:
        raise NotebookParseError("not a Jupyter notebook (no cells list)")
    walk_tail(buf, w, v3, start)


def walk_tail(buf: Any, w: Walker, v3: bool = False, start: int = 0) -> None:
    """The top-level values other than the cells, after the cells (from the raw tail, or a second streamed
    pass for the notebook metadata when the tail does not parse alone)."""
    tail = None if v3 else top_level_tail(buf)
    if tail is None:  # rare layout (metadata before the cells): a second streamed pass for it
        import ijson

        try:
            for val in ijson.items(_Reader(buf, start), "metadata", buf_size=IJSON_BUF):
                w.top("metadata", val)
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise NotebookParseError(f"{type(exc).__name__} in notebook metadata") from None
        return
    for key, val in tail.items():
        w.top(key, val)


def top_level_tail(buf: Any) -> dict[str, Any] | None:
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
            doc = jsonload.loads(b"{" + bytes(buf[o:n]))
        except orjson.JSONDecodeError:
            continue
        return doc if isinstance(doc, dict) else None
    return None
