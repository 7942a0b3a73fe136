"""What an HDF5 reader sees that a byte search does not: a superblock after a user block, and filtered heaps.

Two places where a Keras ``.h5``'s ``model_config`` attribute is read by ``h5py`` but is not in the file's bytes as
text, both found with real files:

- **A user block.** ``h5py.File(..., userblock_size=512)`` (or ``h5jam``) puts the superblock at 512, 1024, 2048...
  and the HDF5 library looks for it at 0 and at every power of two from 512 on (``H5FD_locate_signature``), so
  the file can begin with any bytes. :func:`veritensor_fast.models.sniff.hdf5_superblock` finds it the same way.
- **A fractal heap with I/O filters.** Attributes beyond the object header's room (more than eight, or one over
  64 KiB) live in "dense storage": a fractal heap (``FRHP``) indexed by a v2 B-tree. Without filters its objects are
  plain bytes of the file (the byte search sees them); the heap header may name a filter pipeline, though, and then
  every direct block (and every huge object) is stored compressed, and the library decompresses it on read.
  :func:`filtered_heaps` finds every heap header by its signature and checksum (the library verifies both), walks
  its direct blocks (root direct block, or indirect blocks to any depth, bounded) and undoes ``deflate``,
  ``shuffle`` and ``fletcher32``; the decoded blocks are searched like the file's own bytes. Anything it cannot
  decode (another filter such as h5py's LZF, huge objects in a filtered heap, a damaged block, the budget) is
  reported as a problem: the caller fails closed.

Every offset read is checked against the buffer; nothing outside the file is followed.
"""

from __future__ import annotations

import json
import mmap
import re
from typing import Any

from veritensor_fast import decompress
from veritensor_fast.decompress import BudgetExhausted, LimitExceeded

_M = 0xFFFFFFFF
#: Filtered heap headers looked at, blocks decoded, and decoded bytes kept per file at most.
MAX_HEAPS = 256
#: Heap signatures (``FRHP``, maybe in data) looked at per file at most.
MAX_HITS = 1_000_000
MAX_BLOCKS = 4096
MAX_DECODED = 64 << 20
#: Bytes of candidate heap headers checksummed (pure-Python lookup3, ~3 MB/s) and indirect-block entries read per
#: file at most; a real header with its filter pipeline is a few hundred bytes.
MAX_CHECKED = 1 << 20
MAX_ENTRIES = 1 << 16


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' ``hashlittle`` (lookup3), the checksum of HDF5's version 2 metadata (``H5_checksum_lookup3``)."""
    n = len(data)
    a = b = c = (0xDEADBEEF + n + initval) & _M
    i = 0
    while n - i > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & _M
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & _M
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & _M
        a = ((a - c) & _M) ^ _rot(c, 4)
        c = (c + b) & _M
        b = ((b - a) & _M) ^ _rot(a, 6)
        a = (a + c) & _M
        c = ((c - b) & _M) ^ _rot(b, 8)
        b = (b + a) & _M
        a = ((a - c) & _M) ^ _rot(c, 16)
        c = (c + b) & _M
        b = ((b - a) & _M) ^ _rot(a, 19)
        a = (a + c) & _M
        c = ((c - b) & _M) ^ _rot(b, 4)
        b = (b + a) & _M
        i += 12
    if n == i:
        return c
    tail = data[i:] + b"\x00" * (12 - (n - i))
    a = (a + int.from_bytes(tail[0:4], "little")) & _M
    b = (b + int.from_bytes(tail[4:8], "little")) & _M
    c = (c + int.from_bytes(tail[8:12], "little")) & _M
    c = ((c ^ b) - _rot(b, 14)) & _M
    a = ((a ^ c) - _rot(c, 11)) & _M
    b = ((b ^ a) - _rot(a, 25)) & _M
    c = ((c ^ b) - _rot(b, 16)) & _M
    a = ((a ^ c) - _rot(c, 4)) & _M
    b = ((b ^ a) - _rot(a, 14)) & _M
    c = ((c ^ b) - _rot(b, 24)) & _M
    return c


class _Bad(Exception):
    pass


class _Spent(Exception):
    pass


def sizes(buf: Any, sb: int) -> tuple[int, int]:
    """(size of offsets, size of lengths) from the superblock at ``sb``. Addresses count from ``sb`` itself: the
    library takes the superblock's own position as the base address whatever the stored one says
    (``H5F__super_read``), so a user block prepended later (``h5jam``) moves every address with it."""
    if len(buf) < sb + 32:
        raise _Bad("superblock truncated")
    version = buf[sb + 8]
    if version in (0, 1):
        osz, lsz = buf[sb + 13], buf[sb + 14]
    elif version in (2, 3):
        osz, lsz = buf[sb + 9], buf[sb + 10]
    else:
        raise _Bad(f"superblock version {version}")
    if osz not in (2, 4, 8) or lsz not in (2, 4, 8):
        raise _Bad("superblock sizes")
    return osz, lsz


def _pipeline(raw: bytes) -> list[tuple[int, int, list[int]]]:
    """A filter pipeline message: [(filter id, flags, client values)]."""
    if len(raw) < 2 or raw[0] not in (1, 2):
        raise _Bad("filter pipeline version")
    version, count = raw[0], raw[1]
    pos = 8 if version == 1 else 2
    out = []
    for _ in range(count):
        if pos + 8 > len(raw) and not (version == 2 and pos + 6 <= len(raw)):
            raise _Bad("filter pipeline truncated")
        fid = int.from_bytes(raw[pos:pos + 2], "little")
        if version == 1 or fid >= 256:
            name_len = int.from_bytes(raw[pos + 2:pos + 4], "little")
            flags = int.from_bytes(raw[pos + 4:pos + 6], "little")
            nvals = int.from_bytes(raw[pos + 6:pos + 8], "little")
            pos += 8 + ((name_len + 7) & ~7 if version == 1 else name_len)
        else:
            flags = int.from_bytes(raw[pos + 2:pos + 4], "little")
            nvals = int.from_bytes(raw[pos + 4:pos + 6], "little")
            pos += 6
        if pos + 4 * nvals > len(raw):
            raise _Bad("filter pipeline truncated")
        vals = [int.from_bytes(raw[pos + 4 * k:pos + 4 * k + 4], "little") for k in range(nvals)]
        pos += 4 * nvals + (4 if version == 1 and nvals % 2 else 0)
        if pos > len(raw):
            raise _Bad("filter pipeline truncated")
        out.append((fid, flags, vals))
    return out


def _unfilter(buf: Any, start: int, size: int, limit: int, filters: list[tuple[int, int, list[int]]],
              mask: int) -> bytes:
    """The bytes of a filtered block: the pipeline undone in reverse order (deflate, shuffle, fletcher32)."""
    if start < 0 or size < 0 or start + size > len(buf):
        raise _Bad("a filtered block lies outside the file")
    data: bytes = bytes(buf[start:start + size])
    for k in range(len(filters) - 1, -1, -1):
        if mask & (1 << k):
            continue
        fid, _, vals = filters[k]
        if fid == 1:  # deflate: a zlib stream
            data, problem = decompress.read(data, "zlib", limit, partial=True)
            if problem is not None:
                raise _Bad(f"deflate block {problem}")
        elif fid == 2:  # shuffle: bytes of each element position stored together
            width = vals[0] if vals else 1
            if width > 4096:  # a datatype's size; larger would cost a Python loop per byte position
                raise _Bad(f"shuffle element size {width}")
            if width > 1 and len(data) >= width:
                count = len(data) // width
                body = bytearray(count * width)
                for j in range(width):
                    body[j::width] = data[j * count:(j + 1) * count]
                data = bytes(body) + data[count * width:]
        elif fid == 3:  # fletcher32: a 4-byte checksum appended
            data = data[:-4]
        else:
            raise _Bad(f"filter {fid} is not one this reader can undo")
    return data


def filtered_heaps(buf: Any, sb: int) -> tuple[list[bytes], list[str]]:
    """The decoded direct blocks of every fractal heap with I/O filters, and what could not be decoded."""
    try:
        osz, lsz = sizes(buf, sb)
    except _Bad:
        return [], []  # no superblock the library reads: it opens nothing in this file
    blocks: list[bytes] = []
    problems: list[str] = []
    state = {"blocks": 0, "bytes": 0, "heaps": 0, "checked": 0, "entries": 0}
    pos, hits = sb, 0
    while (at := buf.find(b"FRHP", pos)) >= 0:
        pos = at + 4
        hits += 1
        if hits > MAX_HITS or state["heaps"] > MAX_HEAPS:
            problems.append(f"file holds more than {MAX_HEAPS} filtered fractal heaps or {MAX_HITS} heap signatures")
            break
        try:
            _heap(buf, at, osz, lsz, sb, blocks, state)
        except _Spent as exc:
            problems.append(f"file holds more than {exc} bytes of filtered heap headers to verify")
            break
        except (_Bad, BudgetExhausted, LimitExceeded) as exc:
            problems.append(f"fractal heap at {at}: {exc}")
    return blocks, problems


def _heap(buf: Any, at: int, osz: int, lsz: int, base: int, blocks: list[bytes], state: dict[str, int]) -> None:
    """Decode one heap's direct blocks into ``blocks`` when its header (checksum verified) names filters."""
    fixed = 4 + 1 + 2 + 2 + 1 + 4 + lsz + osz + lsz + osz + 8 * lsz + 2 + lsz + lsz + 2 + 2 + osz + 2
    if at + fixed + 4 > len(buf) or buf[at + 4] != 0:
        return  # not a heap header the library reads (version 0 only)
    rd = bytes(buf[at:at + fixed])

    def num(o: int, k: int) -> int:
        return int.from_bytes(rd[o:o + k], "little")

    filter_len = num(7, 2)
    o = 4 + 1 + 2 + 2 + 1 + 4 + lsz  # past the max managed size and the next huge id
    o += osz + lsz + osz + 4 * lsz  # huge B-tree address .. direct-block iterator offset and managed count
    o += lsz  # size of huge objects
    n_huge = num(o, lsz)
    o += lsz + 2 * lsz  # number of huge objects, tiny size and count
    width = num(o, 2)
    start_size = num(o + 2, lsz)
    max_direct = num(o + 2 + lsz, lsz)
    max_bits = num(o + 2 + 2 * lsz, 2)
    o += 2 + 2 * lsz + 2 + 2
    root = num(o, osz)
    root_rows = num(o + osz, 2)
    if not (width and start_size and max_direct and start_size <= max_direct <= 1 << 32 and 0 < max_bits <= 64
            and width & (width - 1) == 0 and start_size & (start_size - 1) == 0):
        return  # no doubling table the library accepts: a chance "FRHP" (checked before the checksum: cheap)
    if not filter_len:
        return  # unfiltered (every heap the library writes): its objects are plain bytes of the file, searched
    end = at + fixed + lsz + 4 + filter_len
    if end + 4 > len(buf):
        return
    state["checked"] += end - at
    if state["checked"] > MAX_CHECKED:
        raise _Spent(MAX_CHECKED)
    if lookup3(bytes(buf[at:end])) != int.from_bytes(bytes(buf[end:end + 4]), "little"):
        return  # its checksum fails: the library would not read this heap either
    state["heaps"] += 1
    tail = bytes(buf[at + fixed:end])
    root_filtered = int.from_bytes(tail[:lsz], "little")
    root_mask = int.from_bytes(tail[lsz:lsz + 4], "little")
    filters = _pipeline(tail[lsz + 4:])
    if n_huge:
        raise _Bad(f"{n_huge} huge objects stored through its filters (not decoded)")
    if root == (1 << (8 * osz)) - 1:
        return  # an empty heap
    ctx = (buf, osz, lsz, base, filters, (max_bits + 7) // 8, width, start_size, max_direct, blocks, state)
    if root_rows == 0:
        _direct(ctx, base + root, root_filtered, root_mask, start_size)
    else:
        _indirect(ctx, base + root, root_rows, 0)


def _row_size(start_size: int, row: int) -> int:
    return start_size if row == 0 else start_size << (row - 1)


def _direct(ctx: tuple[Any, ...], addr: int, size: int, mask: int, block_size: int) -> None:
    buf, blocks, state = ctx[0], ctx[9], ctx[10]
    state["blocks"] += 1
    if state["blocks"] > MAX_BLOCKS or state["bytes"] > MAX_DECODED:
        raise _Bad(f"more than {MAX_BLOCKS} blocks or {MAX_DECODED} decoded bytes")
    data = _unfilter(buf, addr, size, min(block_size, MAX_DECODED), ctx[4], mask)
    if data[:4] != b"FHDB":
        raise _Bad(f"the block at {addr} does not decode to a direct block")
    state["bytes"] += len(data)
    blocks.append(data)


def _indirect(ctx: tuple[Any, ...], addr: int, rows: int, depth: int) -> None:
    buf, osz, lsz, _, _, off_bytes, width, start_size, max_direct = ctx[:9]
    base = ctx[3]
    state = ctx[10]
    state["blocks"] += 1
    if depth > 16 or rows > 64 or state["blocks"] > MAX_BLOCKS:
        raise _Bad(f"indirect blocks nested too deep, or more than {MAX_BLOCKS} blocks")
    head = 4 + 1 + osz + off_bytes
    max_direct_rows = (max_direct // start_size).bit_length() + 1
    entry_direct = osz + lsz + 4
    n_direct = min(rows, max_direct_rows) * width
    n_indirect = max(0, rows - max_direct_rows) * width
    state["entries"] += n_direct + n_indirect
    if n_direct + n_indirect > MAX_BLOCKS or state["entries"] > MAX_ENTRIES:
        raise _Bad(f"an indirect block of more than {MAX_BLOCKS} entries, or more than {MAX_ENTRIES} in all")
    need = head + n_direct * entry_direct + n_indirect * osz
    if addr < 0 or addr + need > len(buf) or bytes(buf[addr:addr + 4]) != b"FHIB":
        raise _Bad(f"no indirect block at {addr}")
    raw = bytes(buf[addr:addr + need])
    undefined = (1 << (8 * osz)) - 1
    p = head
    for k in range(n_direct):
        child = int.from_bytes(raw[p:p + osz], "little")
        size = int.from_bytes(raw[p + osz:p + osz + lsz], "little")
        mask = int.from_bytes(raw[p + osz + lsz:p + entry_direct], "little")
        p += entry_direct
        if child != undefined:
            _direct(ctx, base + child, size, mask, _row_size(start_size, k // width))
    first_row_bits = (start_size * width).bit_length() - 1
    for k in range(n_indirect):
        child = int.from_bytes(raw[p:p + osz], "little")
        p += osz
        if child != undefined:
            span = _row_size(start_size, max_direct_rows + k // width)
            _indirect(ctx, base + child, (span.bit_length() - 1) - first_row_bits + 1, depth + 1)


# ---- the JSON objects in an HDF5 file's bytes (``formats.hdf5_check``) ---------------------------------------

#: Where a JSON object may start: ``{``, optional whitespace, a first key (escapes allowed), a colon.
_JSON_START = re.compile(rb'\{[ \t\r\n]*"(?:[^"\\\x00-\x1f]|\\.){0,256}"[ \t\r\n]*:')
#: Bytes of candidate JSON text decoded, and candidates tried, per HDF5 file at most.
_H5_JSON_BUDGET = 128 << 20
_H5_JSON_TRIES = 100_000


def json_objects(buf: Any, limit: int) -> tuple[list[Any], bool]:
    """The JSON objects stored in an HDF5 file's bytes: Keras writes ``model_config`` and ``training_config`` as
    string attributes, each one contiguous and NUL-terminated or NUL-padded. Keras ``json.loads`` them, escapes and
    spacing included, so a byte search for ``"class_name": "Lambda"`` misses ``"\\u004cambda"``. The flag says
    whether every candidate was tried within the budget."""
    found: list[Any] = []
    budget, tries = _H5_JSON_BUDGET, _H5_JSON_TRIES
    dec = json.JSONDecoder()
    pos = 0
    while (start := _next_start(buf, pos)) >= 0:
        if budget <= 0 or tries <= 0:
            return found, False
        nul = buf.find(b"\x00", start, start + limit)
        end = nul if nul >= 0 else min(len(buf), start + limit)
        budget -= end - start
        tries -= 1
        text = bytes(buf[start:end]).decode("utf-8", "surrogateescape")
        try:
            obj, used = dec.raw_decode(text)
        except (ValueError, RecursionError):
            pos = start + 1
            continue
        if isinstance(obj, dict):
            found.append(obj)
        pos = start + max(1, len(text[:used].encode("utf-8", "surrogateescape")))
    return found, True


#: A large file's view (``randread.PreadView``, no buffer for ``re``) is searched in windows of this size, each
#: overlapping the next by :data:`_OVERLAP` (a candidate's ``{`` to its ``:`` is shorter unless its whitespace is not)
_WINDOW = 8 << 20
_OVERLAP = 1 << 20


def _next_start(buf: Any, pos: int) -> int:
    """Where the next :data:`_JSON_START` match at or after ``pos`` starts, or -1. A model file over 16 MiB is
    read through a view (a Keras ``.h5`` with its weights often is): searched a window at a time."""
    if isinstance(buf, bytes | bytearray | memoryview | mmap.mmap):
        m = _JSON_START.search(buf, pos)
        return -1 if m is None else m.start()
    n = len(buf)
    while pos < n:
        m = _JSON_START.search(buf[pos:pos + _WINDOW + _OVERLAP])
        if m is not None and (m.start() < _WINDOW or pos + _WINDOW + _OVERLAP >= n):
            return pos + m.start()
        pos += _WINDOW
    return -1
