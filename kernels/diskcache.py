"""The on-disk cache of derived data (Hyperscan databases, the parsed built-in rules, the rules' alternation split,
the AST prefilter plan): never anything a scan found.

What is cached decides what a scan looks for, so a cache file is used only when no other user could have
written it: the directory must be owned by this user with no group or other write permission, and so must the
file (opened without following a symlink, relative to the checked directory's descriptor). Anything else
(another user's directory, a world-writable one such as a shared ``$XDG_CACHE_HOME`` in ``/tmp``) means no
cache this time: the data is derived afresh and nothing is written there. A directory the cache creates is
``0700``; files are written ``0600`` under a temporary name and renamed, so a reader sees a whole file or none.

The cache is bounded: a file read from it is touched (its mtime is its last use), and a write that finds the
directory over ``MAX_CACHE_BYTES`` removes the least recently used files until it holds half that. Every
custom rule set, ``--strict-secrets`` and ``--allow-secret`` choice has databases of its own, so without a bound
the directory grew with every rule edit (a test suite's random rule sets had left 2.5 GB in 4,579 files).
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

#: A cache file larger than this is not read (the biggest, a rules database, is about 1 MiB).
MAX_CACHE_FILE = 64 << 20
#: The directory's size at which a write prunes the least recently used files (down to half of it).
MAX_CACHE_BYTES = 256 << 20

_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH
#: A claim (:func:`cache_claim`) older than this was left by a process that died holding it: it is taken over.
CLAIM_STALE_S = 600


def cache_dir() -> Path | None:
    """Where derived data is cached on disk (databases, parsed rules, the AST prefilter plan): never anything
    found. None when there is no such place: no cache directory set and no home directory (``$HOME`` unset and
    no password entry, as for a container's arbitrary user id), where ``Path.home()`` raises."""
    base = os.environ.get("VERITENSOR_FAST_CACHE") or os.environ.get("XDG_CACHE_HOME")
    if base:
        return Path(base) / "veritensor-fast"
    try:
        return Path.home() / ".cache" / "veritensor-fast"
    except (RuntimeError, KeyError, OSError):
        return None


def cache_file(name: str) -> Path | None:
    """The path of cache file ``name`` (None: no cache directory, see :func:`cache_dir`)."""
    d = cache_dir()
    return None if d is None else d / name


def _ours(st: os.stat_result) -> bool:
    return st.st_uid == os.geteuid() and not st.st_mode & _WRITABLE_BY_OTHERS


def _open_dir(d: Path, create: bool) -> int | None:
    """A descriptor of directory ``d`` if only this user can write it (created ``0700`` when missing and
    ``create``), else None."""
    flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(d, flags)
    except FileNotFoundError:
        if not create:
            return None
        try:
            os.makedirs(d, mode=0o700, exist_ok=True)
            fd = os.open(d, flags)
        except OSError:
            return None
    except OSError:
        return None
    try:
        if _ours(os.fstat(fd)):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def cache_load(path: Path | None) -> bytes | None:
    """The bytes of cache file ``path``, or None when there is none (``path`` None), it is missing, unreadable, too big, or could have been
    written by another user (see the module docstring). A cache never fails a scan: any error reads as None."""
    try:
        return None if path is None else _load(path)
    except Exception:
        return None


def _load(path: Path) -> bytes | None:
    dfd = _open_dir(path.parent, create=False)
    if dfd is None:
        return None
    try:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0),
                     dir_fd=dfd)  # O_NONBLOCK: a FIFO at the name is opened, refused below, never waited on
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _ours(st) or st.st_size > MAX_CACHE_FILE:
            return None
        with open(fd, "rb", closefd=False) as f:
            data = f.read(st.st_size + 1)  # not MAX_CACHE_FILE: read() would allocate that much up front
        if len(data) > MAX_CACHE_FILE:
            return None
        try:
            os.utime(fd)  # its last use: pruning removes the least recently used files first
        except OSError:
            pass
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def cache_store(path: Path | None, data: bytes) -> None:
    """Write cache file ``path`` atomically (a reader sees the old file or the whole new one); best effort: a
    cache that cannot be written, or whose directory another user could write, is simply not there next time."""
    try:
        if path is not None:
            _store(path, data)
    except Exception:
        pass


def _store(path: Path, data: bytes) -> None:
    dfd = _open_dir(path.parent, create=True)
    if dfd is None:
        return
    tmp = f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                     0o600, dir_fd=dfd)
        try:
            with open(fd, "wb", closefd=False) as f:
                f.write(data)
        finally:
            os.close(fd)
        os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
        _prune(dfd, keep=path.name)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
    finally:
        os.close(dfd)


def _prune(dfd: int, keep: str) -> None:
    """When the directory holds more than ``MAX_CACHE_BYTES`` in regular files, remove the least recently used
    (oldest mtime) until it holds at most half that; ``keep`` (the file just written) stays."""
    files: list[tuple[float, int, str]] = []
    total = 0
    with os.scandir(dfd) as it:
        for e in it:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
                if e.name != keep:
                    files.append((st.st_mtime, st.st_size, e.name))
    if total <= MAX_CACHE_BYTES:
        return
    files.sort()
    for _mtime, size, name in files:
        if total <= MAX_CACHE_BYTES // 2:
            break
        try:
            os.unlink(name, dir_fd=dfd)
            total -= size
        except OSError:
            pass


@contextlib.contextmanager
def cache_claim(name: str) -> Iterator[bool]:
    """Whether this process may derive cache file ``name`` now: True for one process of the machine at a time (a
    ``name.claim`` file created exclusively in the cache directory, removed when the block ends; one older than
    :data:`CLAIM_STALE_S` is taken over). False while another process holds it, and when there is no trusted cache
    directory: what is derived could not be kept, so every process would derive it again."""
    d = cache_dir()
    dfd = None if d is None else _open_dir(d, True)
    if dfd is None:
        yield False
        return
    claim, mine = name + ".claim", False
    try:
        for _ in range(2):
            try:
                os.close(os.open(claim, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600,
                                 dir_fd=dfd))
                mine = True
                break
            except FileExistsError:
                try:
                    if time.time() - os.stat(claim, dir_fd=dfd, follow_symlinks=False).st_mtime < CLAIM_STALE_S:
                        break
                    os.unlink(claim, dir_fd=dfd)  # its holder died: take it over
                except FileNotFoundError:
                    continue  # released meanwhile: claim it
                except OSError:
                    break
            except OSError:
                break
        yield mine
    finally:
        if mine:
            with contextlib.suppress(OSError):
                os.unlink(claim, dir_fd=dfd)
        os.close(dfd)
