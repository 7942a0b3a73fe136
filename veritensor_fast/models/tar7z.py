"""Tar (stdlib ``tarfile``) and 7z (``py7zr``) members, read the way model loaders read them.

Plain tars are sliced without copies; compressed tars and 7z members stream through the shared bounded
decompression layer (``veritensor_fast.decompress``), so a bomb hits a limit instead of memory. The zip reader is
``containers``, which re-exports these names.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from typing import Any

from veritensor_fast import decompress
from veritensor_fast.decompress import ArchiveError, LimitExceeded
from veritensor_fast.models.base import ModelLimits

# ---- tar ---------------------------------------------------------------------------------------------------

class _BufFile(io.RawIOBase):
    """A read-only, seekable file over a buffer (mmap, bytes) without copying it."""

    def __init__(self, buf: Any) -> None:
        self._b = buf  # sliced per read: no exported memoryview keeps an mmap from closing
        self._p = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), len(self._b) - self._p))
        b[:n] = bytes(self._b[self._p:self._p + n])
        self._p += n
        return n

    def seek(self, off: int, whence: int = 0) -> int:
        p = off if whence == 0 else self._p + off if whence == 1 else len(self._b) + off
        if p < 0:  # as a real file does (a crafted tar header can ask for this)
            raise OSError(22, "negative seek position")
        self._p = p
        return self._p

    def tell(self) -> int:
        return self._p


def tar_entries(buf: Any, limits: ModelLimits) -> Iterator[tuple[str, int, bytes, Callable[..., Any]]]:
    """Yield (name, size, head bytes, reader) for regular members of a plain or compressed tar.

    A compressed tar (any codec of ``decompress``, recognised by content) is read as a stream through the shared
    bounded layer; a plain one is sliced without copies. ``reader(limit)`` returns the whole content or raises
    ``LimitExceeded``; ``reader(limit, partial=True)`` returns at most ``limit`` bytes. A cut-off or corrupt
    archive raises ``ArchiveError`` after the members before the damage were yielded.
    """
    codec = decompress.codec_of(bytes(buf[:16]))
    plain = codec is None
    try:
        if plain:
            tf = tarfile.open(fileobj=_BufFile(buf), mode="r:")  # noqa: SIM115
        else:
            assert codec is not None
            tf = tarfile.open(fileobj=decompress.Reader(buf, codec), mode="r|")  # noqa: SIM115
    except (LimitExceeded, ArchiveError):
        raise
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise ArchiveError(f"unreadable tar ({type(exc).__name__})") from exc
    count = 0
    with tf:
        while True:
            try:
                ti = tf.next()
            except (LimitExceeded, ArchiveError):
                raise
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                raise ArchiveError(f"corrupt tar after {count} members ({type(exc).__name__})") from exc
            if ti is None:
                return
            count += 1
            if count > limits.max_members:
                raise LimitExceeded(f"more than {limits.max_members} tar members")
            if not ti.isfile():
                continue
            if plain:
                a, size = ti.offset_data, ti.size
                yield ti.name, size, bytes(buf[a:a + min(size, 4096)]), (
                    lambda lim, partial=False, a=a, size=size: _limited(buf, a, size, lim, partial))
            else:
                f = tf.extractfile(ti)
                if f is None:
                    continue
                try:
                    head = f.read(min(ti.size, 4096))
                except (LimitExceeded, ArchiveError) as exc:
                    setattr(exc, "member", ti.name)  # noqa: B010  # what was being read when it stopped
                    raise
                except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                    raise ArchiveError(f"corrupt tar in member {ti.name!r} ({type(exc).__name__})") from exc

                def rd(lim: int, partial: bool = False, f: Any = f, head: bytes = head, size: int = ti.size) -> Any:
                    if size > lim and not partial:
                        raise LimitExceeded(f"tar member larger than {lim} bytes")
                    try:
                        return head[:lim] + f.read(max(0, min(size, lim) - len(head)))
                    except (LimitExceeded, ArchiveError):
                        raise
                    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                        raise ArchiveError(f"corrupt tar member ({type(exc).__name__})") from exc

                yield ti.name, ti.size, head, rd


def tar_members(buf: Any, limits: ModelLimits) -> Iterator[tuple[str, Any, Any]]:
    """Yield (name, head bytes, reader) for regular members; reader(limit) returns the full content."""
    for name, _size, head, rd in tar_entries(buf, limits):
        yield name, head, rd


def _limited(buf: Any, a: int, size: int, lim: int, partial: bool = False) -> Any:
    if size > lim:
        if partial:
            return buf[a:a + lim]
        raise LimitExceeded(f"member larger than {lim} bytes")
    return buf[a:a + size]


# ---- 7z ----------------------------------------------------------------------------------------------------

def sevenzip_walk(buf: Any, limits: ModelLimits, on_member: Callable[[str, bytes, int], None],
                  member_cap: int | None = None, keep: Callable[[str, bytes], bool] | None = None) -> None:
    """Stream the members of a 7z archive to ``on_member(name, data, size)`` one at a time.

    Only one member is held at a time, and of it at most ``member_cap`` bytes (``data`` shorter than ``size``
    means it was cut there), or only its first 4 KiB when ``keep(name, head)`` says the rest is not wanted; every
    byte py7zr produces is charged to the file's decompression budget, so a 7z bomb stops at the budget
    (``BudgetExhausted``) after the members before it were delivered.
    """
    import py7zr
    from py7zr.io import Py7zIO, WriterFactory

    cap = limits.max_member_bytes if member_cap is None else member_cap
    budget = decompress.current()

    class _Cap(Py7zIO):
        def __init__(self, name: str) -> None:
            self.name = name
            self.buf = bytearray()
            self.n = 0
            self.done = False
            self.cap: int | None = None if keep is not None else cap

        def write(self, s: bytes | bytearray) -> int:
            budget.charge(len(s))
            self.n += len(s)
            room = (self.cap if self.cap is not None else cap) - len(self.buf)
            if room > 0:
                self.buf += s[:room]
            if self.cap is None and keep is not None and len(self.buf) >= 4096:
                self.cap = cap if keep(self.name, bytes(self.buf[:4096])) else 4096
                del self.buf[self.cap:]
            return len(s)

        def read(self, size: int | None = None) -> bytes:
            return b""

        def seek(self, offset: int, whence: int = 0) -> int:
            return 0

        def flush(self) -> None:
            return None

        def size(self) -> int:
            return self.n

        def close(self) -> None:
            if not self.done:
                self.done = True
                data, self.buf = bytes(self.buf), bytearray()
                on_member(self.name, data, self.n)

    class _Factory(WriterFactory):
        def create(self, filename: str) -> Py7zIO:
            return _Cap(filename)

    try:
        with py7zr.SevenZipFile(_BufFile(buf), mode="r") as z:  # type: ignore[arg-type]
            infos = z.list()
            if len(infos) > limits.max_members:
                raise LimitExceeded(f"more than {limits.max_members} 7z members")
            z.extractall(factory=_Factory())
    except (LimitExceeded, ArchiveError, MemoryError):  # out of memory is not a corrupt archive
        raise
    except Exception as exc:  # py7zr raises many types for corrupt input
        budget.check()  # a limit hit inside py7zr's own code may come back wrapped
        raise ArchiveError(f"unreadable 7z ({type(exc).__name__})") from exc
