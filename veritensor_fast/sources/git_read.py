"""Worker side of git sources: reading objects with persistent ``git cat-file --batch`` processes.

``BlobReader`` (items of kind ``blob``) and ``CommitReader`` (kind ``commit``: the commit's author, committer and
message, or an annotated tag's name, tagger and message) keep one ``git cat-file --batch`` per repository; ``prefetch`` sends a whole batch of object ids at once
so git streams them back to back. A corrupt object makes git exit mid-object: the reader reports that object as
``corrupt`` and restarts git for the rest. Every object read is checked against its id (git does not verify
on read): content that does not hash to its id is reported ``corrupt``, never scanned as if it were the object. A reader keeps at most ``MAX_OPEN`` processes and closes those of
repositories idle for ``IDLE_CLOSE_S`` (a long-lived worker sweeps many repositories).
"""

from __future__ import annotations

import collections
import subprocess
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from veritensor_fast import gitcmd
from veritensor_fast.findings import Item
from veritensor_fast.gitcmd import GitError
from veritensor_fast.sources.fs import InputError
from veritensor_fast.sources.git_objects import commit_text, object_matches


def _noop() -> None:
    return None


class _CatFile:
    """One ``git cat-file --batch`` child for one repository, with the ids requested but not yet read."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.pending: collections.deque[str] = collections.deque()
        self.last_used = time.monotonic()
        self._writer: threading.Thread | None = None
        try:
            self.proc = gitcmd.popen(repo, ["cat-file", "--batch"], stdin=subprocess.PIPE)
        except GitError as exc:
            raise InputError("unreadable", f"cannot start git cat-file: {exc}") from None
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout

    def request(self, oids: Sequence[str]) -> None:
        """Ask git for ``oids``; large requests are written from a thread so the pipes cannot deadlock."""
        if not oids:
            return
        self.join_writer()
        self.pending.extend(oids)
        payload = ("\n".join(oids) + "\n").encode("ascii")
        if len(payload) <= 16384:  # fits in the pipe buffer: a plain write cannot block on our own reads
            self._write(payload)
        else:
            self._writer = threading.Thread(target=self._write, args=(payload,), daemon=True)
            self._writer.start()

    def _write(self, payload: bytes) -> None:
        try:
            self.stdin.write(payload)
            self.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # git died; the reader notices the missing responses

    def join_writer(self) -> None:
        if self._writer is not None:
            self._writer.join()
            self._writer = None

    def read_one(self, oid: str) -> tuple[str, bytes | None]:
        """Read the response for ``oid`` (the next one). Returns (type, content) or ("missing", None).

        Raises ``EOFError`` when git died before or while sending it (a corrupt object kills cat-file).
        """
        header = self.stdout.readline()
        if not header.endswith(b"\n"):
            raise EOFError
        parts = header.split()
        if len(parts) == 2 or len(parts) < 3:
            return (parts[1].decode("ascii", "replace") if len(parts) == 2 else "missing"), None
        otype = parts[1].decode("ascii", "replace")
        size = int(parts[2])
        data = self.stdout.read(size)  # then the newline: no copy of the content to drop it
        if len(data) != size or self.stdout.read(1) != b"\n":
            raise EOFError
        return otype, data

    def close(self) -> None:
        try:
            self.stdin.close()
        except OSError:
            pass
        self.join_writer()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            self.stdout.close()
        except OSError:
            pass


class BlobReader:
    """Worker-side reader for ``blob`` items (``key`` = object id, ``origin`` = repository directory).

    One persistent ``git cat-file --batch`` per origin; never a process per object. ``prefetch`` sends a
    batch's ids in one write; ``open`` reads the responses in order. Raises ``InputError`` for missing,
    corrupt or non-blob objects; the message holds the object id only, never content.
    """

    OBJECT_TYPE = "blob"
    #: other object types this reader reads (``CommitReader``: annotated tags)
    ALSO_TYPES: tuple[str, ...] = ()
    #: At most this many ``git cat-file`` processes per reader; others idle this long are closed.
    MAX_OPEN = 2
    IDLE_CLOSE_S = 30.0

    def __init__(self) -> None:
        self._procs: dict[str, _CatFile] = {}

    def _content(self, data: bytes) -> bytes:
        return data

    def _proc(self, origin: str) -> _CatFile:
        cf = self._procs.get(origin)
        if cf is None or cf.proc.poll() is not None:
            if cf is not None:
                cf.close()
            cf = _CatFile(origin or ".")
            self._procs[origin] = cf
        cf.last_used = time.monotonic()
        self._release_idle(origin, cf.last_used)
        return cf

    def _release_idle(self, keep: str, now: float) -> None:
        """Close the readers of other repositories that are done: idle for ``IDLE_CLOSE_S`` seconds, or beyond
        ``MAX_OPEN`` (least recently used first). A reader with prefetched objects still to read is kept.
        (A long-lived worker, e.g. a Dask thread, sweeps many repositories with one reader.)"""
        others = sorted((c.last_used, o) for o, c in self._procs.items() if o != keep and not c.pending)
        excess = len(self._procs) - self.MAX_OPEN
        for last, o in others:
            if excess > 0 or now - last > self.IDLE_CLOSE_S:
                self._procs.pop(o).close()
                excess -= 1

    def close_origin(self, origin: str) -> None:
        """Close the reader of one repository (its sweep is done)."""
        cf = self._procs.pop(origin, None)
        if cf is not None:
            cf.close()

    def prefetch(self, items: Sequence[Item]) -> None:
        by_origin: dict[str, list[str]] = {}
        for it in items:
            by_origin.setdefault(it.origin, []).append(it.key)
        for origin, oids in by_origin.items():
            self._proc(origin).request(oids)

    def open(self, item: Item) -> tuple[Any, Any]:
        """Return ``(bytes, closer)`` for the blob ``item.key`` in repository ``item.origin``."""
        cf = self._procs.get(item.origin)
        if cf is None or not cf.pending or cf.pending[0] != item.key:  # not the next prefetched object
            cf = self._proc(item.origin)  # (``prefetch`` checked that git still runs; a dead one answers EOF)
        if item.key not in cf.pending:
            cf.request([item.key])
        while cf.pending:
            oid = cf.pending.popleft()
            try:
                otype, data = cf.read_one(oid)
            except EOFError:
                # git exited while sending ``oid``: that object is corrupt. Restart git for the rest.
                rest = list(cf.pending)
                cf.pending.clear()
                cf.close()
                del self._procs[item.origin]
                if rest:
                    self._proc(item.origin).request(rest)
                if oid == item.key:
                    raise InputError("corrupt", f"git object {oid} is corrupt (git cat-file failed reading it)") \
                        from None
                cf = self._proc(item.origin)
                continue
            if oid != item.key:
                continue  # a prefetched object that was never opened
            if data is None:
                raise InputError("corrupt", f"git object {oid} is {otype} (missing or corrupt in the repository)")
            if otype != self.OBJECT_TYPE and otype not in self.ALSO_TYPES:
                raise InputError("unreadable", f"git object {oid} is a {otype}, not a {self.OBJECT_TYPE}")
            if not object_matches(oid, otype, data):
                raise InputError("corrupt", f"git object {oid}: content does not hash to its id (a tampered or "
                                 "damaged object file or pack index); not scanned")
            return self._content(data), _noop
        raise InputError("internal", f"no response from git for object {item.key}")  # pragma: no cover

    def close(self) -> None:
        for cf in self._procs.values():
            cf.close()
        self._procs.clear()


class CommitReader(BlobReader):
    """Worker-side reader for ``commit`` items: what is scanned is the commit's author and committer lines and
    its message (``git_objects.commit_text``), never tree/parent ids. An annotated tag object is read the same
    way (its name, tagger, message, then its signature): the history source lists tags as
    ``commit`` items at ``tag:<id>`` (``git_objects.tag_path``)."""

    OBJECT_TYPE = "commit"
    ALSO_TYPES = ("tag",)

    def _content(self, data: bytes) -> bytes:
        return commit_text(data)[0]
