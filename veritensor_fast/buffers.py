"""Helpers for scanned buffers (bytes or read-only memory maps) that must stay cheap on giant files.

- ``count_newlines``: newlines in a range, in 1 MiB blocks, so counting across a 10 GB file never allocates
  more than a block;
- ``count_chars``: characters (UTF-8, undecodable bytes as ``decode(..., "replace")`` counts them) in a range,
  in 1 MiB blocks;
- ``LineColumn``: line and column of increasing offsets in one pass over the buffer (each byte is looked at
  a bounded number of times however many findings share one long line, and the line is never copied);
- ``LineCarry``: the line and column where each window of a ``LargeFile`` starts, counted only for a window
  that has findings;
- ``LargeFile``: a file too big to read whole (over ``READ_MAX``), read in bounded ``pread`` windows (never
  memory-mapped, so a file truncated during the scan is a short read, never a SIGBUS); the structured
  detectors that need random access read it through ``randread.PreadView`` (``pread`` too);
- ``span``: a zero-copy slice of a buffer that supports the buffer protocol, or a bounded copy of a slice of
  one that does not (a ``PreadView``), for the Hyperscan passes that scan a big buffer window by window;
- ``release_pages``: tell the kernel this process is done with a range of a memory map (the pages stay in the
  page cache), so a pass over a giant file never makes the whole file resident.
"""

from __future__ import annotations

import codecs
import errno
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_BLOCK = 1 << 20

#: Files up to this size (one window) are read into memory whole; bigger ones are ``LargeFile`` windows.
READ_MAX = 16 << 20
#: Bytes of a large file scanned per window, and the context read on each side of it (longer than any token
#: or base64 run a rule can match, so a match that crosses a window edge is seen whole in one window).
WINDOW = 16 << 20
OVERLAP = 64 << 10


def count_newlines(buf: Any, start: int, stop: int) -> int:
    """Number of ``\\n`` bytes in ``buf[start:stop]``."""
    if stop <= start:
        return 0
    if isinstance(buf, bytes | bytearray):
        return buf.count(b"\n", start, stop)
    total = 0
    for a in range(start, stop, _BLOCK):
        # one bounded copy per block; bytes.count is memchr-speed
        total += bytes(buf[a:min(stop, a + _BLOCK)]).count(b"\n")
    return total


#: Window of a Hyperscan pass over a buffer read by copies (a ``PreadView``): small, so the copy stays cheap.
COPY_WINDOW = 2 << 20


def is_buffer(buf: Any) -> bool:
    """Whether ``buf`` supports the buffer protocol (slices without a copy), unlike a ``PreadView``."""
    return isinstance(buf, bytes | bytearray | memoryview | mmap.mmap)


@contextmanager
def span(buf: Any, start: int, stop: int) -> Iterator[Any]:
    """``buf[start:stop]``: a memoryview (released on exit) of bytes, bytearray, mmap or memoryview; a copy of
    the slice for any other sliceable buffer (``randread.PreadView``: a read that may raise ``FileChanged``)."""
    if is_buffer(buf):
        with memoryview(buf) as view, view[start:stop] as window:
            yield window
    else:
        yield bytes(buf[start:stop])


def can_release(buf: Any) -> bool:
    return isinstance(buf, mmap.mmap) and hasattr(buf, "madvise")


def release_pages(buf: Any, start: int, stop: int) -> None:
    """Drop this process's pages of ``buf[start:stop]`` (rounded inward to pages). Advisory; never raises."""
    a = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE if start else 0
    b = stop // mmap.PAGESIZE * mmap.PAGESIZE
    if b > a and can_release(buf):
        try:
            buf.madvise(mmap.MADV_DONTNEED, a, b - a)
        except (OSError, ValueError):  # pragma: no cover - advisory only
            pass


def count_chars(buf: Any, start: int, stop: int) -> int:
    """Characters in ``buf[start:stop]`` decoded as UTF-8 with replacement (the same count as
    ``len(bytes(buf[start:stop]).decode("utf-8", "replace"))``), never copying more than a block at a time."""
    if stop <= start:
        return 0
    if stop - start <= _BLOCK:
        return len(bytes(buf[start:stop]).decode("utf-8", "replace"))
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    total = 0
    for a in range(start, stop, _BLOCK):
        b = min(stop, a + _BLOCK)
        total += len(dec.decode(bytes(buf[a:b]), b == stop))
    return total


def _rfind_nl(buf: Any, start: int, stop: int) -> int:
    if hasattr(buf, "rfind"):
        i: int = buf.rfind(b"\n", start, stop)
        return i
    for b in range(stop, start, -_BLOCK):
        a = max(start, b - _BLOCK)
        i = bytes(buf[a:b]).rfind(b"\n")
        if i >= 0:
            return a + i
    return -1


class LineColumn:
    """1-based line and (character) column of byte offsets in one buffer.

    Offsets given in increasing order cost one pass over the buffer in total: the newline count and the
    column carry over from the previous offset, so a thousand findings on one 27 MB line do not rescan (or
    copy) the line a thousand times. A smaller offset than the last one starts again from the beginning."""

    __slots__ = ("buf", "pos", "line", "col")

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.pos = 0
        self.line = 1
        self.col = 0  # characters between the start of the current line and ``pos``

    def at(self, offset: int) -> tuple[int, int]:
        if offset < self.pos:
            self.pos, self.line, self.col = 0, 1, 0
        buf, a = self.buf, self.pos
        k = count_newlines(buf, a, offset)
        if k:
            self.line += k
            self.col = count_chars(buf, _rfind_nl(buf, a, offset) + 1, offset)
        else:
            self.col += count_chars(buf, a, offset)
        self.pos = offset
        return self.line, self.col + 1


class LineCarry:
    """Line and column at the start of each window of a ``LargeFile``, counted only when asked.

    ``window(start, data)`` records each window in order; ``at()`` returns ``(line, chars)`` at the start of
    the latest one: its line (1-based) and the characters between that line's start and the window's start.
    Counting the newlines of a 434 MB binary cost ~0.14 CPU-s a scan, spent on files with no finding at all;
    here the earlier windows' bytes are read again (``pread``) only when a window has a finding, and counted
    exactly as they were delimited (same segments, holes of a sparse file count as characters)."""

    __slots__ = ("big", "line", "chars", "pos", "prev_len", "pending")

    def __init__(self, big: LargeFile) -> None:
        self.big = big
        self.line, self.chars = 1, 0  # at file offset ``pos`` once ``pending`` is counted
        self.pos = 0
        self.prev_len = 0
        self.pending: list[tuple[int, int, int]] = []  # (offset, bytes of the previous window, hole after them)

    def window(self, start: int, length: int) -> None:
        """The next window starts at ``start`` and holds ``length`` bytes (read, or skipped: another task's)."""
        if start > self.pos:
            upto = min(start - self.pos, self.prev_len)
            self.pending.append((self.pos, upto, start - self.pos - upto))
            self.pos = start
        self.prev_len = length

    def at(self) -> tuple[int, int]:
        for off, upto, hole in self.pending:
            dl, dc = LineColumn(self.big.pread(off, upto)).at(upto)  # short at a new end: close() reports it
            self.line, self.chars = self.line + dl - 1, (self.chars + dc - 1) if dl == 1 else dc - 1
            self.chars += hole
        self.pending.clear()
        return self.line, self.chars


class LargeFile:
    """An open regular file bigger than ``READ_MAX``. Owns ``fd`` (``close()`` closes it).

    ``windows()`` yields ``(start, lo, hi, data)``: ``data`` is the file's bytes from ``start``; matches that
    start in ``[lo, hi)`` (file offsets) belong to this window, the rest of ``data`` is context. A short read
    (the file was truncated meanwhile) ends the windows and sets ``short``; ``close()`` then says so."""

    def __init__(self, fd: int, st: os.stat_result) -> None:
        self.fd = fd
        self.size = st.st_size
        self._mtime = st.st_mtime_ns
        self.short = False

    def __len__(self) -> int:
        return self.size

    @property
    def version(self) -> tuple[int, int]:
        """``(size, mtime_ns)`` when opened: the file version a scan of it read."""
        return self.size, self._mtime

    def pread(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``offset``; fewer only at (a possibly new) end of file."""
        n = max(0, min(n, self.size - offset))
        data = os.pread(self.fd, n, offset)
        while len(data) < n:
            more = os.pread(self.fd, n - len(data), offset + len(data))
            if not more:
                self.short = True
                break
            data += more
        return data

    def windows(self, span: tuple[int, ...] = ()) -> Iterator[tuple[int, int, int, bytes | int]]:
        """Windows over the file's data. Holes of a sparse file (zeros the file system does not store) are
        skipped: no rule matches NUL bytes, and the caller counts a hole as characters of the current line.

        ``span`` ``(a, b)``: only the windows whose ``lo`` is in ``[a, b)`` (one part of a file split across
        tasks, ``worker.SPAN_BYTES``); each window before ``a`` comes unread, its length in place of its data (for
        the line carry, which reads it only if a later window has a finding), so every window has the place it
        has in a scan of the whole file."""
        first, stop = (span[0], span[1]) if span else (0, self.size)
        window, overlap = WINDOW, OVERLAP
        lo = 0
        while lo < self.size and not self.short:
            try:
                lo = max(lo, os.lseek(self.fd, lo, os.SEEK_DATA))
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole up to the end of the file
                    return
            except AttributeError:  # pragma: no cover - no SEEK_DATA on this platform
                pass
            if lo >= self.size or lo >= stop:
                return
            hi = min(self.size, lo + window)
            # a short last window reaches back, so every window's data is at least a full window (whole-file
            # size limits of detectors, such as the YAML and Python parsers', never see a small piece)
            start = max(0, min(lo - overlap, self.size - window - overlap))
            n = min(self.size, hi + overlap) - start
            yield start, lo, hi, self.pread(start, n) if lo >= first else n
            lo = hi

    def close(self) -> str | None:
        """Release the file; return why the scan of it is incomplete when it changed meanwhile, else None."""
        why = None
        try:
            st = os.fstat(self.fd)
            if self.short or st.st_size != self.size or st.st_mtime_ns != self._mtime:
                why = (f"changed while it was scanned ({self.size} bytes when opened, {st.st_size} now); "
                       "findings are from what could be read")
        except OSError:  # pragma: no cover - fstat of an open descriptor
            pass
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        return why
