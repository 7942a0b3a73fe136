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
import time
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import IO

from veritensor_fast import gitcmd

#: How long to wait for more output from a running git (``Spool.chunks(follow=True)``) before looking again.
POLL_S = 0.004


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

    def chunks(self, sep: bytes = b"\n", follow: bool = False) -> Iterator[list[bytes]]:
        """The output's records ending in ``sep`` (without it), a list per read of up to 1 MiB (a caller that
        flattens them with ``itertools.chain`` pays no generator step per record): once git has finished, or with
        ``follow`` as git writes them, until it has exited and all of it is read. Read with ``pread`` from the
        start: git writes at the file offset it shares with us, which must not move (provenance reads a log's
        output again)."""
        if not follow:
            self.wait()
        proc = self.proc
        fd = self.out.fileno()
        off = 0
        rest = b""
        while True:
            done = proc is None or proc.poll() is not None  # before reading: what git wrote before exiting is read
            while True:
                data = os.pread(fd, 1 << 20, off)
                if not data:
                    break
                off += len(data)
                parts = (rest + data).split(sep)
                rest = parts.pop()
                yield parts
            if done:
                break
            time.sleep(POLL_S)
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
