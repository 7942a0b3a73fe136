"""Random access to a large file without a memory map: a file truncated during the scan is never a SIGBUS.

A memory-mapped file that another process truncates kills the reader with SIGBUS on the next access to a page
past the new end (Python cannot catch it). The structured detectors that need random access to a file bigger
than ``READ_MAX`` (model analysis, archive members) therefore read it through ``PreadView``: a read-only,
sliceable view (``len``, ``view[a:b]``, ``view[i]``, ``find``, ``rfind``) whose reads are ``pread`` calls into
a small cache of 1 MiB blocks (8 MiB at most per file). A read that comes back short (the file shrank) raises
``FileChanged``; the reader's closer then reports the file as ``changed``, and nothing is lost but that file's
analysis. Plain-text detectors read the same file in bounded ``pread`` windows (``worker.scan_windows``).

Text-like structured files (notebooks, JSON, UTF-16 text) over ``READ_MAX`` are read the same way
(``scan_text_like``): the notebook parser streams them from a ``PreadView`` (1 MiB reads, so memory stays far
below the file's size), its nesting pre-pass and raw-text pass read bounded slices of it, UTF-16 text is decoded
from it chunk by chunk, and every other text-level detector reads windows. No file is ever memory-mapped.
"""

from __future__ import annotations

import mmap
import struct
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from veritensor_fast.findings import OUT_OF_MEMORY

if TYPE_CHECKING:
    from veritensor_fast.buffers import LargeFile
    from veritensor_fast.findings import Finding, Item
    from veritensor_fast.worker import ItemScan, WorkerContext

_BLOCK = 1 << 20
_CACHE_BLOCKS = 8
#: Reads bigger than this bypass the block cache (one ``pread`` of exactly what was asked).
_DIRECT = 4 << 20
#: Detectors that get random access through a ``PreadView`` (the rest read windows).
RANDOM_ACCESS_DETECTORS = ("model", "archive")


class FileChanged(Exception):
    """The file is shorter than when it was opened (truncated while it was being analysed)."""


class PreadView:
    """Read-only random access to ``big`` (a ``LargeFile``) by ``pread``; see the module docstring."""

    __slots__ = ("_big", "_n", "_cache", "_blocks")

    def __init__(self, big: LargeFile, cache_blocks: int = _CACHE_BLOCKS) -> None:
        self._big = big
        self._n = big.size
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._blocks = max(1, cache_blocks)

    def __len__(self) -> int:
        return self._n

    def _pread(self, a: int, n: int) -> bytes:
        data = self._big.pread(a, n)
        if len(data) < n:
            raise FileChanged(f"file shrank while it was analysed (read {len(data)} of {n} bytes at {a})")
        return data

    def _blockdata(self, k: int) -> bytes:
        b = self._cache.get(k)
        if b is not None:
            self._cache.move_to_end(k)
            return b
        a = k * _BLOCK
        b = self._pread(a, min(_BLOCK, self._n - a))
        self._cache[k] = b
        if len(self._cache) > self._blocks:
            self._cache.popitem(last=False)
        return b

    def peek(self, a: int, n: int) -> bytes:
        """``n`` bytes at ``a`` (clamped to the file) read directly, without loading or evicting a cached block:
        for a probe of a few bytes far apart (an HDF5 signature at 512, 1024, 2048, ...)."""
        a, b = max(0, a), min(a + n, self._n)
        return self._pread(a, b - a) if b > a else b""

    def read(self, a: int, b: int) -> bytes:
        """Bytes ``[a, b)`` (clamped to the file as opened)."""
        a, b = max(0, a), min(b, self._n)
        if b <= a:
            return b""
        if b - a > _DIRECT:
            return self._pread(a, b - a)
        k0, k1 = a // _BLOCK, (b - 1) // _BLOCK
        if k0 == k1:
            off = k0 * _BLOCK
            return self._blockdata(k0)[a - off:b - off]
        parts = []
        for k in range(k0, k1 + 1):
            off = k * _BLOCK
            parts.append(self._blockdata(k)[max(a, off) - off:min(b, off + _BLOCK) - off])
        return b"".join(parts)

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, slice):
            a, b, step = key.indices(self._n)
            if step != 1:
                return self.read(0, self._n)[key]  # never used by the detectors; correct, not cheap
            return self.read(a, b)
        i = key + self._n if key < 0 else key
        if not 0 <= i < self._n:
            raise IndexError("PreadView index out of range")
        return self.read(i, i + 1)[0]

    def __bytes__(self) -> bytes:
        return self.read(0, self._n)

    def _bounds(self, start: int | None, end: int | None) -> tuple[int, int]:
        a, b, _ = slice(start, end).indices(self._n)
        return a, b

    def find(self, sub: bytes, start: int | None = None, end: int | None = None) -> int:
        a, b = self._bounds(start, end)
        m = len(sub)
        pos = a
        while pos + m <= b:
            hi = min(b, pos + _BLOCK + m)
            i = self.read(pos, hi).find(sub)
            if i >= 0:
                return pos + i
            if hi >= b:
                break
            pos = hi - m + 1 if m else hi
        return -1

    def rfind(self, sub: bytes, start: int | None = None, end: int | None = None) -> int:
        a, b = self._bounds(start, end)
        m = len(sub)
        hi = b
        while hi - a >= m:
            lo = max(a, hi - _BLOCK - m)
            i = self.read(lo, hi).rfind(sub)
            if i >= 0:
                return lo + i
            if lo <= a:
                break
            hi = lo + m - 1 if m else lo
        return -1


def unpack_at(fmt: str, buf: Any, off: int) -> tuple[Any, ...]:
    """``struct.unpack_from(fmt, buf, off)`` that also reads a ``PreadView`` (raises ``struct.error`` alike)."""
    try:
        return struct.unpack_from(fmt, buf, off)
    except TypeError:
        if isinstance(buf, bytes | bytearray | memoryview | mmap.mmap):
            raise
        size = struct.calcsize(fmt)
        if off < 0:
            raise struct.error("offset out of range") from None
        return struct.unpack(fmt, buf[off:off + size])


def text_like(head: bytes, item: Item) -> bool:
    """Whether a large structured file is text parsed whole (notebook/JSON, UTF-16 text, Python source)."""
    from veritensor_fast.detectors.text import utf16_encoding

    return (utf16_encoding(head) is not None or head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] in (b"{", b"[")
            or item.path.lower().endswith((".py", ".pyw", ".pyi")))


def scan_random_access(ctx: WorkerContext, big: LargeFile, item: Item, scan: ItemScan) -> list[Finding]:
    """Scan a large binary structured file (model, archive, compressed stream) without mapping it.

    The model and archive detectors read it through a ``PreadView``; the text-level detectors read it in
    windows. A truncation during the scan stops the analysis of that file (``FileChanged``); the reader's
    closer reports it as ``changed``.
    """
    from veritensor_fast.worker import scan_windows

    view = PreadView(big)
    try:
        head = view[:4096]
    except FileChanged:
        return []
    _run_detectors(ctx, RANDOM_ACCESS_DETECTORS, view, item, head, scan)
    seen: set[tuple[str, int, str]] = set()
    out: list[Finding] = []
    for f in scan.findings:  # duplicates dropped as ``ItemScan.finish`` does (no text here for inline markers)
        key = (f.fingerprint, f.line, repr(sorted(f.location.items())) if f.location else "")
        if key not in seen:
            seen.add(key)
            out.append(f)
    out += scan.finished
    if not big.short:
        out += scan_windows(ctx, big, item, scan)  # secrets in the raw bytes, as for any file
    return out


#: Detectors that read a large text-like file through a ``PreadView`` (the text pass too for UTF-16 text, which
#: it decodes chunk by chunk; otherwise it reads windows like every other text-level detector).
TEXT_LIKE_DETECTORS = (*RANDOM_ACCESS_DETECTORS, "notebook")
#: Cache of a text-like file's view: its passes read forward (or backward) in pieces of at most a few blocks.
TEXT_CACHE_BLOCKS = 3


def _run_detectors(ctx: WorkerContext, names: tuple[str, ...], view: PreadView, item: Item, head: bytes,
                   scan: ItemScan) -> None:
    """Run the detectors named in ``names`` over ``view``, as ``WorkerContext.scan_buffer`` does, except that a
    truncation (``FileChanged``) stops the file's scan: ``big.short`` is set and the closer reports ``changed``."""
    for det in ctx.detectors:
        if det.name not in names:
            continue
        try:
            det.scan(view, item, head, scan)
        except FileChanged:
            return
        except MemoryError:
            scan.error(f"detector {det.name}: {OUT_OF_MEMORY}; item only partly scanned", "limit")
        except Exception as exc:  # a bug in a detector must not lose the rest of the scan
            scan.error(f"detector {det.name} failed: {type(exc).__name__}", "internal")


def scan_text_like(ctx: WorkerContext, big: LargeFile, item: Item, scan: ItemScan) -> list[Finding]:
    """Scan a large notebook, JSON or UTF-16 text file without mapping it.

    The notebook detector (and the model and archive detectors, for a polyglot) read it through a
    ``PreadView``; UTF-16 text is decoded from the view; unless the notebook parse covered the file's text, the
    other text-level detectors read it in windows. A truncation during the scan ends the scan of that file
    (``FileChanged``, or a short window); the reader's closer reports it as ``changed``.
    """
    from veritensor_fast.detectors.text import utf16_encoding
    from veritensor_fast.worker import WHOLE_FILE_DETECTORS, scan_windows

    view = PreadView(big, TEXT_CACHE_BLOCKS)
    try:
        head = view[:4096]
    except FileChanged:
        return []
    utf16 = utf16_encoding(head) is not None
    names = (*TEXT_LIKE_DETECTORS, "text") if utf16 else TEXT_LIKE_DETECTORS
    _run_detectors(ctx, names, view, item, head, scan)
    try:
        out = scan.finish(view)
    except FileChanged:
        out = scan.findings + scan.finished  # inline markers could not be read: nothing dropped
    if not big.short and not scan.text_done:
        skip = (*WHOLE_FILE_DETECTORS, "text") if utf16 else WHOLE_FILE_DETECTORS
        out += scan_windows(ctx, big, item, scan, skip=skip)  # the text passes, as for any large file
    return out
