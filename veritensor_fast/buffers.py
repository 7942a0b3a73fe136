"""Helpers for scanned buffers (bytes or read-only memory maps) that must stay cheap on giant files.

- ``count_newlines``: newlines in a range, in 1 MiB blocks, so counting across a 10 GB file never allocates
  more than a block;
- ``release_pages``: tell the kernel this process is done with a range of a memory map (the pages stay in the
  page cache), so a pass over a giant file never makes the whole file resident.
"""

from __future__ import annotations

import mmap
from typing import Any

_BLOCK = 1 << 20


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
