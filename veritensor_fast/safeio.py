"""Reading small trusted-by-name files (config, rules, baseline) safely: only regular files, never blocking on
a FIFO or device, never more than a size limit (``/dev/zero`` named as a rules file is an error, not a hang)."""

from __future__ import annotations

import os
import re
import stat

#: Largest baseline file read (a baseline of 100,000 findings is about 20 MB).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: Largest config file read: a ``pyproject.toml`` is a few KB; one of 60 MB in a scanned checkout (the config
#: of the directory the scan is run in applies) took 57 s and 612 MB to parse.
MAX_CONFIG_BYTES = 1 << 20
#: Largest user rules file read (gitleaks' whole rule set is about 100 KB).
MAX_RULES_BYTES = 4 << 20


class SmallFileError(Exception):
    """The file is missing, unreadable, not a regular file or larger than the limit (message names it)."""


def read_regular_file(path: str | os.PathLike[str], what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes (symbolic links are followed,
    the opened file is checked, not the name)."""
    p = os.fspath(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise SmallFileError(f"cannot read {what} {p}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SmallFileError(f"{what} {p} is not a regular file")
        if st.st_size > limit:
            raise SmallFileError(f"{what} {p} is larger than {limit} bytes")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise SmallFileError(f"{what} {p} is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise SmallFileError(f"cannot read {what} {p}: {exc.strerror}") from None
    finally:
        os.close(fd)


#: Character devices a report may be written into: ``/dev/null``'s major (1, with its minor checked by
#: identity), terminals (4, 5: ``/dev/tty``, consoles) and pseudo-terminals (136-143).
_TTY_MAJORS = frozenset({4, 5, *range(136, 144)})


def in_place_ok(p: str, st: os.stat_result, regular: bool = False) -> bool:
    """A special file a report may be written into: a FIFO, a socket, a terminal or ``/dev/null`` (or, with
    ``regular``, a regular file: an open descriptor's); never a disk or another device (a symbolic link to ``/dev/sda`` planted at a report's name in a scanned checkout, run
    as root, would have had the report written over the disk)."""
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode) or (regular and stat.S_ISREG(st.st_mode)):
        return True
    if not stat.S_ISCHR(st.st_mode):
        return False
    if os.major(st.st_rdev) in _TTY_MAJORS:
        return True
    try:
        return os.path.samefile(p, os.devnull)
    except OSError:
        return False


#: ``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``: a name for one of this process's open descriptors.
_FD_NAME = re.compile(r"/(?:dev|proc/(?:self|thread-self|(\d+)))/fd/(\d+)")

#: How long a report waits for a reader to open a FIFO (``mkfifo r; scan -o r & cat r``), in seconds.
FIFO_WAIT = 2.0
#: How long a report written to a FIFO waits, each time the pipe is full, for its reader to take more, in
#: seconds: a reader that opened the FIFO and stopped reading (one planted in a shared workspace, a stuck
#: consumer) would otherwise block the command forever once the pipe buffer (64 KiB) fills.
FIFO_STALL = 30.0


def fd_name(path: str | os.PathLike[str]) -> int | None:
    """The descriptor ``path`` names if it is (or is a chain of symbolic links to) ``/dev/stdout``,
    ``/dev/fd/N`` or ``/proc/self/fd/N`` of this process (``-o /dev/stdout``, ``-o >(jq .)``), else ``None``.
    Such a name is written through the descriptor: replacing it by rename replaced the ``/dev/stdout`` link
    itself (run as root, every later ``> /dev/stdout`` on the machine wrote to a regular file), and the report
    never reached the redirected standard output."""
    p = os.path.abspath(os.fspath(path))
    for _ in range(40):
        m = _FD_NAME.fullmatch(p)
        if m is not None and (m.group(1) is None or int(m.group(1)) == os.getpid()):
            return int(m.group(2))
        try:
            target = os.readlink(p)
        except OSError:
            return None
        p = os.path.normpath(os.path.join(os.path.dirname(p), target))
    return None


def _open_special(p: str) -> int:
    """A FIFO, terminal or ``/dev/null`` opened for writing without ever blocking: a FIFO with no reader
    within ``FIFO_WAIT`` seconds (one planted at the report's name in a shared workspace) is ``OSError``
    (ENXIO), not a hang. What was opened is checked again (the name may have been swapped since ``stat``).
    A FIFO's descriptor is left non-blocking (written by ``_write_bounded``); any other is made blocking."""
    import errno
    import fcntl
    import time

    deadline = time.monotonic() + FIFO_WAIT
    while True:
        try:
            fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() >= deadline:
                if exc.errno == errno.ENXIO:
                    raise OSError(errno.ENXIO, "nobody reads it (a FIFO with no reader): not written") from None
                raise
            time.sleep(0.05)
    try:
        if not in_place_ok(p, os.fstat(fd)):
            raise OSError(errno.EPERM, "a device other than a terminal or /dev/null: not written")
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):  # a FIFO stays non-blocking: ``_write_bounded``
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _fileno(stream: object) -> int | None:
    try:
        return int(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None


def _write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd``, waiting while a pipe left non-blocking by another program is full."""
    import select

    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [])


def _write_bounded(fd: int, data: bytes, stall: float) -> None:
    """All of ``data`` to the non-blocking ``fd`` (a FIFO); ``OSError`` (ETIMEDOUT) once the reader has taken
    nothing for ``stall`` seconds while the pipe is full. A reader that closes gives EPIPE."""
    import errno
    import select

    view = memoryview(data)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while view:
        try:
            view = view[os.write(fd, view):]
            continue
        except BlockingIOError:
            pass
        if not poller.poll(int(stall * 1000)):
            raise OSError(errno.ETIMEDOUT, f"its reader took nothing for {stall:g} s (a FIFO whose reader does "
                          "not read): report not completely written")


def write_text_replacing(path: str | os.PathLike[str], text: str, newline: str | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: to a temporary file beside it, then renamed over it, so a
    reader sees the old file or the whole new one. A ``path`` that exists and is not a regular file (``/dev/null``,
    a FIFO, a terminal) is written in place instead: renaming over it would replace the device itself (run as
    root, ``/dev/null`` became a regular file and every later redirection to it wrote there). Any other device
    (a disk, ``/dev/mem``) is refused with ``OSError``. A FIFO is opened without blocking: one with no reader
    is an ``OSError`` after ``FIFO_WAIT`` seconds, one whose reader stops reading after ``FIFO_STALL``. A name of one of this process's descriptors
    (``/dev/stdout``, ``/dev/fd/63``) is written through that descriptor (:func:`fd_name`). The temporary
    file gets a random name and is created exclusively, never through a symbolic link planted at its name."""
    import errno

    p = os.fspath(path)
    fdn = fd_name(p)
    if fdn is not None:
        data = text.encode("utf-8") if newline is None else text.replace("\n", newline).encode("utf-8")
        if not in_place_ok(p, os.fstat(fdn), regular=True):
            raise OSError(errno.EPERM, "a device other than a terminal or /dev/null: not written")
        import sys

        for stream in (sys.stdout, sys.stderr):  # what the program printed comes first
            if stream is not None and _fileno(stream) == fdn:
                stream.flush()
        _write_all(fdn, data)
        return
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        if not in_place_ok(p, st):
            raise OSError(errno.EPERM, "a device other than a terminal or /dev/null: not written")
        fd = _open_special(p)
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            try:
                _write_bounded(fd, text.encode("utf-8") if newline is None
                               else text.replace("\n", newline).encode("utf-8"), FIFO_STALL)
            finally:
                os.close(fd)
            return
        with open(fd, "w", encoding="utf-8", newline=newline) as fh:
            fh.write(text)
        return
    replace_file(p, text, newline)


def replace_file(path: str | os.PathLike[str], text: str, newline: str | None = None) -> None:
    """Write ``text`` (UTF-8) to a new file that then replaces ``path`` by rename, whatever ``path`` is now (a
    FIFO planted at a shard file's name is replaced, never opened): the temporary file gets a random name and is
    created exclusively, never through a symbolic link planted at its name."""
    import secrets

    p = os.fspath(path)
    tmp = f"{p}.tmp{os.getpid()}.{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        with open(fd, "w", encoding="utf-8", newline=newline) as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        if os.path.lexists(tmp) and not os.path.isdir(tmp):
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise
