"""Git history source: every blob reachable from every ref (or a commit range), each scanned exactly once.

Parent side (``GitHistorySource``):
- lists the reachable blobs and one path for each with ``git rev-list --objects`` (blobs only), then orders
  them in pack order with ``git cat-file --batch-all-objects --batch-check --unordered`` (which also gives the
  sizes); ``--all-objects`` adds blobs that no ref reaches. Each object id is yielded once, as an
  ``Item(kind="blob", key=<oid>, path=<a path it appears at>, size=..., origin=<repo>)``;
- skips blobs the incremental datastore has already scanned under the same rules and options, and merges
  their stored (redacted) findings back in;
- after the scan, adds provenance to each finding (``Finding.commit``): the commit that introduced the blob
  at that path, computed with one streaming ``git log --raw`` pass only when there are findings.

Worker side (``BlobReader``): one persistent ``git cat-file --batch`` process per repository per worker
process; ``prefetch`` sends a whole batch of object ids at once so git streams them back to back. A corrupt
object makes git exit mid-object: the reader reports that object as ``corrupt`` and restarts git for the rest.
"""

from __future__ import annotations

import collections
import os
import subprocess
import threading
from collections.abc import Sequence
from typing import IO, Any

from veritensor_fast.findings import Item
from veritensor_fast.sources.fs import InputError

#: Environment for every git child: no prompts, no pager, C locale (stable messages), no replace objects.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C", "GIT_NO_REPLACE_OBJECTS": "1"}


class GitError(Exception):
    """A git command needed to list history failed (not a repository, git missing, bad revision)."""


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_ENV)
    return env


def _noop() -> None:
    return None


class _CatFile:
    """One ``git cat-file --batch`` child for one repository, with the ids requested but not yet read."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.pending: collections.deque[str] = collections.deque()
        self._writer: threading.Thread | None = None
        try:
            self.proc = subprocess.Popen(
                ["git", "-C", repo, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, env=git_env(), bufsize=1 << 16,
            )
        except OSError as exc:
            raise InputError("unreadable", f"cannot start git cat-file: {exc.strerror}") from None
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
        data = self.stdout.read(size + 1)
        if len(data) != size + 1:
            raise EOFError
        return otype, data[:size]

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

    def __init__(self) -> None:
        self._procs: dict[str, _CatFile] = {}

    def _proc(self, origin: str) -> _CatFile:
        cf = self._procs.get(origin)
        if cf is None or cf.proc.poll() is not None:
            if cf is not None:
                cf.close()
            cf = _CatFile(origin or ".")
            self._procs[origin] = cf
        return cf

    def prefetch(self, items: Sequence[Item]) -> None:
        by_origin: dict[str, list[str]] = {}
        for it in items:
            by_origin.setdefault(it.origin, []).append(it.key)
        for origin, oids in by_origin.items():
            self._proc(origin).request(oids)

    def open(self, item: Item) -> tuple[Any, Any]:
        """Return ``(bytes, closer)`` for the blob ``item.key`` in repository ``item.origin``."""
        cf = self._proc(item.origin)
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
            if otype != "blob":
                raise InputError("unreadable", f"git object {oid} is a {otype}, not a blob")
            return data, _noop
        raise InputError("internal", f"no response from git for object {item.key}")  # pragma: no cover

    def close(self) -> None:
        for cf in self._procs.values():
            cf.close()
        self._procs.clear()
