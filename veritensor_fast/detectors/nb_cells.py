"""The fast path for a big notebook in the layout every Jupyter front end writes (``"cells"`` first, one cell per
indented block): the cells array is cut at its cell boundaries and each cell is parsed by ``orjson``, several
times faster than streaming the file through ``ijson`` and without the nesting pre-pass.

Why a cut is exact: a raw newline can only stand outside a JSON string, so in ``NL + indent + "}," + NL + indent
+ "{"`` (the separator the first cell's indentation predicts) every bracket and comma is structural. A cut at a
structural comma that is not between two elements of the cells array leaves a piece with an unclosed bracket
or two values side by side, which ``orjson`` rejects. So when every piece parses as one value, and the document
with the cells replaced by a placeholder (the prefix ``{"cells": [`` and everything after the last cell) parses
too, the file is valid JSON and the pieces are exactly the cells array's elements, as ``ijson`` would give them.
A UTF-8 byte-order mark before the ``{`` is skipped (the cutter starts at the first cell). Anything else (another
layout, a parse error, a second top-level ``"cells"`` key, a tail over :data:`TAIL_MAX`) returns False and the
caller runs the streamed path from the start with a fresh walker, so behaviour on such files is unchanged.

Nesting: ``orjson`` refuses documents deeper than 1024 levels, so each piece is parsed inside
``1024 - (MAX_DEPTH - 2)`` extra arrays and the placeholder document inside ``1024 - MAX_DEPTH``: a notebook
deeper than ``MAX_DEPTH`` fails here, and the streamed path's pre-pass reports it (``limit``), exactly as before.
Memory: the current cell, the read chunk and one parsed cell (a cell spanning chunks is read in growing chunks).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from veritensor_fast import jsonload
from veritensor_fast.buffers import can_release, release_pages
from veritensor_fast.detectors.nb_guard import MAX_DEPTH
from veritensor_fast.detectors.nb_walk import Walker

#: Read size of the cell cutter (a cell larger than this is read in doubling chunks).
CHUNK = (4 << 20) + (64 << 10)  # over randread._DIRECT: one pread, no block-cache copy
#: The part of the file after the last cell is parsed whole; beyond this the streamed path runs instead.
TAIL_MAX = 64 << 20
_DENSE_STRETCH = 256 << 10
_ORJSON_DEPTH = 1024  # orjson accepts this many levels and refuses one more
_CELL_WRAP = _ORJSON_DEPTH - (MAX_DEPTH - 2)  # a cell sits 2 levels deep (object, cells array)
_DOC_WRAP = _ORJSON_DEPTH - MAX_DEPTH
_WS = rb"[ \t\r\n]"
_HEAD = re.compile(rb"\A(?:\xef\xbb\xbf)?" + _WS + rb"*\{" + _WS + rb'*"cells"' + _WS + rb"*:" + _WS + rb"*\["
                   + _WS + rb"*?(\r?\n)([ \t]*)\{")


def _loads(piece: Any, wrap: int) -> Any:
    """``orjson.loads(piece)`` inside ``wrap`` arrays (so the depth limit is ``1024 - wrap``); raises
    ``JSONDecodeError`` on an error, and also when ``piece`` is not exactly one value (``a, b`` parses inside
    the arrays: then an array has more than one element)."""
    doc = jsonload.loads(b"".join((b"[" * wrap, piece, b"]" * wrap)))
    for _ in range(wrap):
        if len(doc) != 1:
            raise orjson.JSONDecodeError("not one value", "", 0)
        doc = doc[0]
    return doc


def parse_cells(buf: Any, w: Walker) -> int | None:
    """Hands every cell of the top-level cells array to ``w`` (``w.cell(i, cell)``) and returns the offset just
    past the array's last cell, or returns None (nothing reliable handed over: the caller starts again with a
    fresh walker) when the file is not in the expected layout or is not valid JSON there."""
    n = len(buf)
    m = _HEAD.match(bytes(buf[:4096]))
    if m is None:
        return None
    nl, ind = m.group(1), m.group(2)
    close = nl + ind + b"}"
    sep = close + b"," + nl + ind + b"{"
    # the next cell boundary (group 1) or the array's end
    bound = re.compile(re.escape(close) + rb"(?:(" + re.escape(sep[len(close):]) + rb")|" + _WS + rb"*\])")
    back = len(nl) - 1
    close_at = re.compile(re.escape(close))

    def search(data: bytes, i: int) -> re.Match[bytes] | None:
        """``bound.search(data, i)``. Where lines are long (outputs, images) each newline is found by ``find``
        (memchr) and tried in place, several times faster than a regex scan; where they are dense (source text,
        one JSON line per source line) a regex finds the boundary's first bytes in a stretch of
        :data:`_DENSE_STRETCH` bytes, then the newline walk goes on."""
        pos = i
        while True:
            k = 0
            p = first = data.find(b"\n", pos)
            while p >= 0:
                e = bound.match(data, p - back)
                if e is not None:
                    return e
                k += 1
                if k >= 8 and p - first < k << 12:  # more than one newline per 4 KiB
                    break
                p = data.find(b"\n", p + 1)
            if p < 0:
                return None
            to = min(len(data), p + _DENSE_STRETCH)
            for c in close_at.finditer(data, p + 1 - back, to + len(close) - 1):  # every start before ``to``
                e = bound.match(data, c.start())
                if e is not None:
                    return e
            if to >= len(data):
                return None
            pos = to + back  # the next candidate starts at ``to`` or later

    release = can_release(buf)
    pstart = base = rd = m.end() - 1  # the current cell's "{" (absolute); data is buf[base:rd]
    data = b""
    idx = 0
    try:
        while True:
            i = pstart - base
            e = search(data, i)
            if e is None:
                if rd >= n:
                    return None  # the cells array never closes in this layout
                # the current cell's bytes read so far are read again with the next chunk: one copy (a pread),
                # where joining them to the chunk would be two
                rd = min(n, rd + max(CHUNK, len(data) - i))
                data, base = bytes(buf[pstart:rd]), pstart
                if release:
                    release_pages(buf, 0, base)
                continue
            stop = e.start() + len(close)
            with memoryview(data) as view, view[i:stop] as piece:
                cell = _loads(piece, _CELL_WRAP)
            w.cell(idx, cell)
            idx += 1
            if e.group(1) is None:  # the array's end
                end = base + stop
                break
            pstart = base + e.end() - 1
        del data
        if n - end > TAIL_MAX:
            return None
        tail = bytes(buf[end:n])
        for mark in (b"0", b"1"):  # the placeholder must be what "cells" holds: no later "cells" key wins
            doc = _loads(b'{"cells": [' + mark + tail, _DOC_WRAP)
            if not isinstance(doc, dict) or doc.get("cells") != [int(mark)]:
                return None
            if b"cells" not in tail and b"\\u" not in tail:
                break  # no other key can be "cells" (escaped or not): one check is enough
    except orjson.JSONDecodeError:
        return None
    return end
