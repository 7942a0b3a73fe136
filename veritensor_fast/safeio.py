"""Reading small trusted-by-name files (config, rules, baseline) safely: only regular files, never blocking on
a FIFO or device, never more than a size limit (``/dev/zero`` named as a rules file is an error, not a hang)."""

from __future__ import annotations

import os
import stat

#: Largest config, rules or baseline file read (a baseline of 100,000 findings is about 20 MB).
MAX_FILE_BYTES = 64 * 1024 * 1024


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


def in_place_ok(p: str, st: os.stat_result) -> bool:
    """A special file a report may be written into: a FIFO, a socket, a terminal or ``/dev/null``; never a disk
    or another device (a symbolic link to ``/dev/sda`` planted at a report's name in a scanned checkout, run
    as root, would have had the report written over the disk)."""
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        return True
    if not stat.S_ISCHR(st.st_mode):
        return False
    if os.major(st.st_rdev) in _TTY_MAJORS:
        return True
    try:
        return os.path.samefile(p, os.devnull)
    except OSError:
        return False


def write_text_replacing(path: str | os.PathLike[str], text: str, newline: str | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically: to a temporary file beside it, then renamed over it, so a
    reader sees the old file or the whole new one. A ``path`` that exists and is not a regular file (``/dev/null``,
    a FIFO, a terminal) is written in place instead: renaming over it would replace the device itself (run as
    root, ``/dev/null`` became a regular file and every later redirection to it wrote there). Any other device
    (a disk, ``/dev/mem``) is refused with ``OSError``. The temporary file gets a random name and is created
    exclusively, never through a symbolic link planted at its name."""
    import errno
    import secrets

    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
        if not in_place_ok(p, st):
            raise OSError(errno.EPERM, "a device other than a terminal or /dev/null: not written")
        with open(p, "w", encoding="utf-8", newline=newline) as fh:
            fh.write(text)
        return
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
