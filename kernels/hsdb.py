"""One Hyperscan (Vectorscan) block-mode database holding every signature.

The database reports *end offsets only* (no start-of-match flag: it costs speed and refuses some bounded
repeats). Callers confirm each candidate with the rule's Python regex in a bounded window.

Two bugs of the ``hyperscan`` package are designed around here:
- buffers over 4 GiB are silently truncated, so big buffers are scanned in overlapping chunks;
- a loaded database needs its own ``Scratch`` before scanning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import hyperscan

from veritensor_fast.kernels.diskcache import cache_dir, cache_file, cache_load, cache_store

__all__ = ["CHUNK", "OVERLAP", "DatabaseError", "Scanner", "cache_dir", "cache_store", "cached_only",
           "compile_cached", "compile_patterns"]

#: Largest buffer handed to a single Hyperscan call. Well under the 4 GiB truncation limit.
CHUNK = 1 << 30
#: Overlap between chunks; must exceed the longest candidate a pattern can match.
OVERLAP = 1 << 16
#: what the binding raises for HS_NOMEM (a database or scratch that could not be allocated; not in its stubs)
_HS_NOMEM: type[BaseException] = getattr(hyperscan, "NoMemoryError", MemoryError)


class DatabaseError(Exception):
    """A pattern set could not be compiled or a serialised database could not be loaded."""


class DatabaseNoMemory(DatabaseError, MemoryError):
    """Hyperscan could not allocate a database (compile, load) or its scratch: at start-up a ``DatabaseError``
    (the CLI's exit 2), during a scan a ``MemoryError`` (the item's out-of-memory error, the scan goes on)."""


def compile_patterns(patterns: Sequence[bytes], flags: Sequence[int] | None = None,
                     ids: Sequence[int] | None = None) -> bytes:
    """Compile every pattern into one block-mode database and return it serialised. ``ids``: each pattern's
    match id (default: its index; several patterns may share one, their matches then report it)."""
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    ids = list(ids) if ids is not None else list(range(len(patterns)))
    fl = list(flags) if flags is not None else [0] * len(patterns)
    try:
        db.compile(expressions=list(patterns), ids=ids, elements=len(patterns), flags=fl)
    except hyperscan.error as exc:  # pragma: no cover - message depends on the pattern
        if isinstance(exc, _HS_NOMEM) or "allocate memory" in str(exc):  # "Unable to allocate memory."
            raise DatabaseNoMemory(f"Hyperscan compile failed: out of memory ({exc})") from exc
        raise DatabaseError(f"Hyperscan compile failed: {exc}") from exc
    blob: bytes = hyperscan.dumpb(db)
    return blob


#: Databases :func:`compile_cached` just loaded to validate a cached file, by the id of its bytes: the
#: :class:`Scanner` built from those same bytes takes it instead of loading them a second time (start-up cost).
#: The entry holds the bytes, so their id cannot be reused while it is here; at most ``_LOADED_MAX`` are kept.
_LOADED: dict[int, tuple[bytes, hyperscan.Database]] = {}
_LOADED_MAX = 8


def compile_cached(patterns: Sequence[bytes], flags: Sequence[int] | None = None, *, key: bytes = b"",
                   more: Callable[[], Sequence[bytes]] | None = None, ids: Sequence[int] | None = None) -> bytes:
    """Like :func:`compile_patterns`, memoised on disk by a hash of the patterns and library version. A cache
    file that cannot be read or loaded (truncated, corrupt) is ignored and rewritten.

    ``more`` (with ``key`` naming what it derives from ``patterns``) appends patterns that are costly to
    derive: it is called only when the cache misses (flags 0, ids from one past the largest of ``ids``).
    ``ids`` as :func:`compile_patterns`'s."""
    blob = _cached(patterns, flags, key, more, ids, False)
    assert blob is not None
    return blob


def cached_only(patterns: Sequence[bytes], flags: Sequence[int] | None = None, *, key: bytes = b"",
                more: Callable[[], Sequence[bytes]] | None = None, ids: Sequence[int] | None = None) -> bytes | None:
    """The database :func:`compile_cached` would return for the same arguments when the on-disk cache holds it,
    else None (nothing compiled): for a database worth compiling only once its cost is known to pay back."""
    return _cached(patterns, flags, key, more, ids, True)


def _cached(patterns: Sequence[bytes], flags: Sequence[int] | None, key: bytes,
            more: Callable[[], Sequence[bytes]] | None, ids: Sequence[int] | None, only: bool) -> bytes | None:
    h = hashlib.sha256(str(getattr(hyperscan, "__version__", "?")).encode())
    for p, f in zip(patterns, flags or [0] * len(patterns), strict=True):
        h.update(len(p).to_bytes(4, "little") + p + f.to_bytes(4, "little"))
    if ids is not None:
        h.update(b"\x00ids\x00" + b"".join(i.to_bytes(4, "little") for i in ids))
    if more is not None:
        h.update(b"\x00more\x00" + key)
    path = cache_file(f"hsdb-{h.hexdigest()[:32]}.bin")
    cached = cache_load(path)  # None: missing, or not trusted (``diskcache``)
    if cached is not None:
        try:
            db = hyperscan.loadb(cached, hyperscan.HS_MODE_BLOCK)  # validates the serialised database
        except Exception:  # unreadable or corrupt (or built for another CPU): compile afresh
            pass
        else:
            while len(_LOADED) >= _LOADED_MAX:
                del _LOADED[next(iter(_LOADED))]
            _LOADED[id(cached)] = (cached, db)
            return cached
    if only:
        return None
    if more is not None:
        extra = list(more())
        first = max(ids, default=-1) + 1 if ids is not None else len(patterns)
        ids = (list(ids) if ids is not None else list(range(first))) + list(range(first, first + len(extra)))
        patterns = list(patterns) + extra
        flags = list(flags or [0] * (len(patterns) - len(extra))) + [0] * len(extra)
    blob = compile_patterns(patterns, flags, ids)
    cache_store(path, blob)
    return blob


def _on_match(pid: int, _from: int, to: int, _flags: int, hits: Any) -> None:
    hits.append((pid, to))  # ``hits``: the scan's context, a list


class Scanner:
    """A loaded database plus its scratch; one per process (scratch is not shareable)."""

    __slots__ = ("_db",)

    def __init__(self, serialised: bytes) -> None:
        loaded = _LOADED.pop(id(serialised), None)
        try:
            if loaded is not None and loaded[0] is serialised:
                db = loaded[1]  # just validated from the cache: not loaded twice
            else:
                db = hyperscan.loadb(serialised, hyperscan.HS_MODE_BLOCK)
            db.scratch = hyperscan.Scratch(db)
        except Exception as exc:  # hyperscan raises its own error type
            if isinstance(exc, MemoryError | _HS_NOMEM):
                raise DatabaseNoMemory("cannot load Hyperscan database: out of memory") from exc
            raise DatabaseError(f"cannot load Hyperscan database: {exc}") from exc
        self._db = db

    def scan(self, buf: Any) -> list[tuple[int, int]]:
        """Return ``(pattern_id, end_offset)`` for every candidate in ``buf`` (bytes, mmap, memoryview)."""
        hits: list[tuple[int, int]] = []
        n = len(buf)
        if n <= CHUNK:
            if n:  # the list rides in the scan's context: no closure built per call (most files have no hit)
                self._db.scan(buf, _on_match, 0, hits)
            return hits
        # Overlapping chunks; a candidate seen by two chunks is the same (pattern, end) pair.
        view = memoryview(buf)
        found: set[tuple[int, int]] = set()
        add = found.add
        start = 0
        try:
            while True:
                stop = min(n, start + CHUNK)
                base = start

                def on_chunk(pid: int, _f: int, to: int, _fl: int, _c: object, _b: int = base) -> None:
                    add((pid, to + _b))

                self._db.scan(view[start:stop], match_event_handler=on_chunk)  # type: ignore[type-var]
                if stop == n:
                    break
                start = stop - OVERLAP
        finally:
            view.release()
        return sorted(found)
