"""The worker-side reader of ``file`` items (``FileReader``), and ``InputError`` for an item that cannot be read.
Split from ``sources.fs`` (the walk), which re-exports both.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

from veritensor_fast.buffers import READ_MAX, LargeFile
from veritensor_fast.findings import Item


class InputError(Exception):
    """An item could not be read. ``kind`` matches ``ScanError.kind``; the message never holds file content."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class FileReader:
    """Worker-side reader for ``file`` items.

    Opening never blocks and never follows a symlink the walk did not follow: ``O_NONBLOCK`` (a FIFO swapped
    in after the listing cannot hang the scan) and ``O_NOFOLLOW`` (unless ``--follow-symlinks``); the opened
    descriptor must be a regular file and, when the listing recorded one, the same (device, inode) as listed.

    Files up to ``READ_MAX`` are read into memory (a file truncated meanwhile is a short read, reported as
    changed; no memory map, so no SIGBUS). Bigger files are a ``LargeFile``: read in bounded windows with
    ``pread`` for the text passes; model files and archives are read at random through ``randread.PreadView``
    (``pread``, no map: a truncation is ``changed``, never SIGBUS), and so are large notebooks, JSON and UTF-16
    text for their whole-file parse (``randread.scan_text_like``). No file is ever memory-mapped.
    The closer returns a reason when the file changed while it was scanned (size or mtime), else None.

    ``probe`` stats a file for ``expand_shard`` by opening it (the same flags) and ``fstat``-ing the descriptor,
    which ``open`` then takes over: one path lookup and one ``fstat`` per file instead of ``stat`` + ``open`` +
    ``fstat`` (measured: ~3 us of ~21 us per small file). ``release`` closes what was probed and not opened
    (a file deferred to its own task, a batch cut short); ``run_batch`` calls it when the batch ends.
    """

    #: Descriptors ``probe`` holds at most (and a quarter of the process's limit); past that it is a plain
    #: ``os.stat`` (a batch of many shards of empty files).
    PROBE_MAX = 512

    def __init__(self) -> None:
        self._probed: dict[tuple[str, bool], tuple[int, os.stat_result]] = {}
        self._probe_max = min(self.PROBE_MAX, _fd_limit() // 4)
        self._limit = self._room = _NO_LIMIT  # bytes of files ``probe`` may still hold open (``limit``)

    def limit(self, nbytes: int) -> None:
        """Hold files open only while those held have fewer than ``nbytes`` bytes (until ``release``): the worker's
        batch takes files up to about that many bytes (``batching.expand_capped``) and hands the rest on to
        another task, which opens them again. Past the limit ``probe`` is a plain ``os.stat``: one system call
        instead of an ``open``, an ``fstat`` and a ``close`` for a file this task does not read (1.2k of the
        real tree's 35k files were opened twice before). A file of ``nbytes`` or more is not counted: a shard
        of several files defers it to a task of its own (``expand_shard``'s ``big``)."""
        self._limit = self._room = nbytes if nbytes > 0 else _NO_LIMIT

    def probe(self, path: str, follow_symlinks: bool = False, at: tuple[int, str] | None = None) -> os.stat_result:
        """``os.stat(path, follow_symlinks=...)`` for a file the listing named, keeping it open for ``open``.
        Anything but an opened regular file is answered by ``os.stat`` itself (its result, its errors), so
        ``expand_shard`` reports exactly what it reported before: a symlink now (``O_NOFOLLOW``), a socket, a
        file that vanished or cannot be read. ``at``: ``(directory descriptor, name)``, the file opened relative
        to a directory ``expand_shard`` checked against its listing (``fs._open_dir``)."""
        probed = self._probed
        n = len(probed)
        if n >= self._probe_max or n >= self.PROBE_MAX or self._room <= 0:
            return _stat_at(path, follow_symlinks, at)
        flags = _OPEN_FOLLOW if follow_symlinks else _OPEN_NOFOLLOW
        try:
            fd = os.open(path, flags) if at is None else os.open(at[1], flags, dir_fd=at[0])
        except OSError:
            return _stat_at(path, follow_symlinks, at)
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            return _stat_at(path, follow_symlinks, at)
        if not _S_ISREG(st.st_mode):
            os.close(fd)
            return st
        key = (path, follow_symlinks)
        old = probed.pop(key, None)
        if old is not None:
            os.close(old[0])
        probed[key] = (fd, st)
        if st.st_size < self._limit:
            self._room -= st.st_size
        return st

    def release(self) -> None:
        """Close every descriptor ``probe`` opened that ``open`` did not take; ``limit`` ends."""
        probed, self._probed = self._probed, {}
        self._limit = self._room = _NO_LIMIT
        for fd, _st in probed.values():
            os.close(fd)

    close = release  # the worker closes its readers at exit

    def open(self, item: Item) -> tuple[Any, Any]:
        """Return ``(buffer, closer)``; call ``closer()`` when done. Raises ``InputError``."""
        pre = self._probed.pop((item.key, item.follow), None) if self._probed else None
        if pre is not None:
            return self._read(pre[0], item, pre[1])
        try:
            fd = os.open(item.key, _OPEN_FOLLOW if item.follow else _OPEN_NOFOLLOW)
        except FileNotFoundError:
            raise InputError("vanished", "file vanished before it could be read") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP and not item.follow:
                raise InputError("changed", "replaced by a symlink after it was listed; not followed "
                                 "(use --follow-symlinks)") from None
            if exc.errno == errno.ENXIO:  # a socket swapped in
                raise InputError("not-regular", "not a regular file (replaced after it was listed); skipped") \
                    from None
            raise InputError("unreadable", f"cannot open: {exc.strerror}") from None
        return self._read(fd, item, None)

    def _read(self, fd: int, item: Item, st: os.stat_result | None) -> tuple[Any, Any]:
        """``open``'s checks and read of the opened ``fd`` (its ``fstat`` result ``st`` when known); closes ``fd``
        unless a ``LargeFile`` keeps it."""
        keep = False
        try:
            if st is None:
                st = os.fstat(fd)
            if not _S_ISREG(st.st_mode):
                raise InputError("not-regular", "not a regular file (replaced after it was listed); skipped")
            if item.ino and (st.st_ino != item.ino or st.st_dev != item.dev):
                raise InputError("changed", "replaced by another file after it was listed; skipped")
            size = st.st_size
            if size > READ_MAX:
                big = LargeFile(fd, st)
                keep = True
                return big, big.close
            data = _read_all(fd, size)
            if len(data) < size:
                return data, _changed(f"truncated while it was read ({len(data)} of {size} bytes); "
                                      "scanned what was read")
            return data, _noop
        except OSError as exc:
            raise InputError("unreadable", f"read failed: {exc.strerror}") from None
        finally:
            if not keep:
                os.close(fd)


#: ``FileReader.open`` flags: never blocks (a FIFO swapped in), never inherited, no symlink unless followed.
_OPEN_FOLLOW = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_OPEN_NOFOLLOW = _OPEN_FOLLOW | getattr(os, "O_NOFOLLOW", 0)


_NO_LIMIT = 1 << 62
_S_ISREG = stat.S_ISREG


def _stat_at(path: str, follow_symlinks: bool, at: tuple[int, str] | None) -> os.stat_result:
    """``os.stat`` of ``path``, or of ``at``'s name relative to its directory descriptor."""
    if at is None:
        return os.stat(path, follow_symlinks=follow_symlinks)
    return os.stat(at[1], dir_fd=at[0], follow_symlinks=follow_symlinks)


def _fd_limit() -> int:
    """The soft limit on open descriptors (4096 where it cannot be read)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 4096
    return soft if 0 < soft < 1 << 20 else 1 << 20


def _read_all(fd: int, size: int) -> bytes:
    """The file from offset 0 to its end (at most ``READ_MAX`` bytes past ``size``): one ``read`` of
    ``size + 1`` bytes proves the end for the usual unchanged file; a short read reads on until end of file."""
    first = os.read(fd, size + 1)
    if len(first) == size:
        return first
    chunks, total = [first], len(first)
    while total < size + READ_MAX and (b := os.read(fd, 1 << 20)):
        chunks.append(b)
        total += len(b)
    return b"".join(chunks)


def _changed(reason: str) -> Any:
    return lambda: reason


def _noop() -> None:
    return None
