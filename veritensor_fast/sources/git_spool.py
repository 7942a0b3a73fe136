"""Git plumbing run in the background into temporary files, so that several listings overlap one another and
the parent's own start-up work (``history.warm_workers``), and nothing waits on a full pipe.

A history sweep needs ``rev-list --objects`` (the reachable blobs and their paths), the pack order of the object
database (``cat-file --batch-all-objects --batch-check``), the commit list and, when there are findings, one
``git log --raw`` pass for provenance. Each is independent of the others: a ``Spool`` starts one of them at once
(through ``gitcmd``, hardened like every git call) with its output going to an unlinked temporary file; the
parent reads the file when it needs the result. Measured on a 6k-commit, 60k-blob repository: the listing
phase goes from ``rev-list`` + ``batch-check`` + worker start-up one after the other to the longest of them.

No thread is started (the process pool forks after the listing starts, and a fork must not copy a held lock).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import IO

from veritensor_fast import gitcmd


class Spool:
    """One git command running in the background, its stdout and stderr going to temporary files."""

    def __init__(self, repo: str, args: Sequence[str], stdin: bytes | None = None) -> None:
        self.args = list(args)
        self.out: IO[bytes] = tempfile.TemporaryFile(prefix="vf-git-")
        self.err: IO[bytes] = tempfile.TemporaryFile(prefix="vf-git-")
        self.rc: int | None = None
        try:
            self.proc: subprocess.Popen[bytes] | None = gitcmd.popen(
                repo, args, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, stdout=self.out,
                stderr=self.err)
        except gitcmd.GitError:
            self.close()
            raise
        if stdin is not None:  # revision lists are small (ref tips): git reads them in full before writing
            gitcmd.feed(self.proc, stdin)

    def background(self) -> None:
        """Run git at the lowest priority (nice 19): it then takes only CPU time nothing else wants."""
        if self.proc is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, self.proc.pid, 19)
            except OSError:
                pass

    def foreground(self) -> bool:
        """Back to this process's own priority (True also when git has already finished); False when that is
        not permitted (lowering a niceness needs privilege)."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        try:
            os.setpriority(os.PRIO_PROCESS, self.proc.pid, os.getpriority(os.PRIO_PROCESS, 0))
        except OSError:
            return False
        return True

    def wait(self) -> int:
        """Wait for git to finish; the output file is then read from its start. Returns the exit status."""
        if self.rc is None:
            assert self.proc is not None
            self.rc = self.proc.wait()
            self.proc = None
        self.out.seek(0)
        return self.rc

    def lines(self) -> Iterator[bytes]:
        """The output lines (without their newline), after git has finished: read 1 MiB at a time, each read's
        lines split at once and flattened by ``itertools.chain`` (no Python step per line: a pack-order listing
        has a line per object, 130k in a 6k-commit history)."""
        return chain.from_iterable(self.chunks())

    def chunks(self, sep: bytes = b"\n") -> Iterator[list[bytes]]:
        """The output's records ending in ``sep`` (without it), after git has finished: a list per 1 MiB read.
        Read with ``pread`` from the start: the file offset is the one git wrote at, and nothing here moves it
        (provenance reads a log's output again)."""
        self.wait()
        fd = self.out.fileno()
        off = 0
        rest = b""
        while True:
            data = os.pread(fd, 1 << 20, off)
            if not data:
                break
            off += len(data)
            parts = (rest + data).split(sep)
            rest = parts.pop()
            yield parts
        if rest:
            yield [rest]

    def failure(self) -> str | None:
        """git's last error line when it failed (None when it succeeded)."""
        if self.wait() == 0:
            return None
        self.err.seek(0)
        msg = self.err.read().decode("utf-8", "replace").strip().splitlines()
        return gitcmd.printable(msg[-1]) if msg else f"git {self.args[0]} failed with status {self.rc}"

    def close(self) -> None:
        """Stop git if it still runs and drop the files."""
        proc, self.proc = getattr(self, "proc", None), None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if self.rc is None:
                self.rc = proc.returncode
        for f in (self.out, self.err):
            f.close()
