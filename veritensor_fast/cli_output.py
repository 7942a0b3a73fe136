"""Reporting a scan on the command line: the progress line, the --output checks and atomic write, the
summary line and the root text reports are relative to."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import typer

from veritensor_fast.cli_common import fail


class Progress:
    """A one-line progress report on stderr (only when stderr is a terminal). Never prints findings."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.files = 0
        self.bytes = 0
        self.findings = 0
        self._last = 0.0
        self._t0 = time.perf_counter()

    def __call__(self, res: Any) -> None:
        self.files += res.items
        self.bytes += res.bytes
        self.findings += len(res.findings)
        walked = getattr(res, "walked", None)
        if walked and walked != (0, 0):  # tree items walked by the workers (``BatchResult.walked``)
            self._tree_files += walked[0]
            self._open_trees += walked[1]
            self._settle()
        now = time.perf_counter()
        if self.enabled and now - self._last > 0.2:
            self._last = now
            sys.stderr.write(f"\r\x1b[K{self.line(now)}")
            sys.stderr.flush()

    def counting(self, source: Any) -> Any:
        """``source`` wrapped so that, once its listing is done, the progress line shows the total and an ETA."""
        if not (self.enabled and hasattr(source, "items")):
            return source
        # the engine asks the source's class for ``items_sharded`` (directory shards): keep offering it
        return (_CountingShards if hasattr(type(source), "items_sharded") else _Counting)(source, self)

    def listed(self, files: int, nbytes: int, trees: int = 0) -> None:
        """The listing is done: ``files`` files of ``nbytes`` bytes (-1: not known), and ``trees`` ``tree`` items
        the workers walk (``FileSource._tree_item``): the total is known once they and the tree items they hand
        back are walked, the files they list added (``BatchResult.walked``); their sizes are not known here."""
        if not trees:
            self.total_files, self.total_bytes = files, nbytes
            return
        self._pending = (files, -1)
        self._open_trees += trees
        self._settle()

    def _walking(self) -> None:
        """A listing starts: no tree item of it walked yet."""
        self._tree_files = self._open_trees = 0
        self._pending = None

    def _settle(self) -> None:
        if self._pending is not None and self._open_trees <= 0:
            files, nbytes = self._pending
            self._pending = None
            self.total_files, self.total_bytes = files + self._tree_files, nbytes

    total_files: int | None = None
    total_bytes = 0
    _tree_files = 0  # files listed by the tree items walked so far
    _open_trees = 0  # tree items handed out and not walked yet
    _pending: tuple[int, int] | None = None  # the parent's listing, done, while tree items are still walked

    def line(self, now: float) -> str:
        from veritensor_fast.report.text import human_bytes, human_seconds

        secs = max(now - self._t0, 1e-9)
        head = f"scanned {self.files}"
        if self.total_files is not None:
            head += f"/{self.total_files}"
        s = f"{head} files, {human_bytes(self.bytes)} ({human_bytes(self.bytes / secs)}/s), {self.findings} findings"
        if self.total_files is not None and self.bytes and self.total_bytes >= self.bytes and secs > 1:
            eta = (self.total_bytes - self.bytes) / (self.bytes / secs)
            s += f", about {human_seconds(eta)} left"
        elif self.total_files is not None and self.total_bytes < 0 and self.files and secs > 1:
            # shards listed by name only: sizes are not known up front, so the ETA goes by files
            eta = max(self.total_files - self.files, 0) / (self.files / secs)
            s += f", about {human_seconds(eta)} left"
        return s

    def done(self) -> None:
        if self.enabled and self._last:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


class _Counting:
    """A source proxy: counts what the listing yields and tells ``Progress`` the totals when it is done."""

    def __init__(self, source: Any, prog: Progress) -> None:
        self._source, self._prog = source, prog

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def items(self) -> Any:
        return self._count(self._source.items())

    def _count(self, listing: Any) -> Any:
        from veritensor_fast.findings import Item

        n, size = self._prog.files, self._prog.bytes  # several repositories: totals add up
        unknown = False
        trees = 0  # the workers list the rest of the walk (``tree`` items): their counts come with the results
        self._prog._walking()
        for it in listing:
            if isinstance(it, Item):
                if it.kind == "tree":
                    trees += 1
                elif it.entries:  # a directory shard: its files, some listed by name only (size -1)
                    n += len(it.entries)
                    unknown = unknown or any(e[1] < 0 for e in it.entries)
                    size += sum(max(e[1], 0) for e in it.entries)
                else:
                    n += 1
                    size += max(it.size, 0)
            yield it
        self._prog.listed(n, -1 if unknown else size, trees)


class _CountingShards(_Counting):
    def items_sharded(self, *args: Any, **kw: Any) -> Any:
        return self._count(self._source.items_sharded(*args, **kw))

def check_output(output: Path) -> None:
    """``--output``: fail before scanning (exit 2, one line naming the path and the OS error) when the report
    could not be written: a missing or read-only directory, a directory, a full device."""
    import errno
    import stat

    from veritensor_fast.safeio import fd_name, in_place_ok

    fdn = fd_name(output)
    if fdn is not None:  # /dev/stdout, /dev/fd/63 (``-o >(jq .)``): written through the descriptor
        try:
            fst = os.fstat(fdn)
        except OSError as exc:
            raise fail(f"cannot write report {output}: {exc.strerror}") from None
        if not in_place_ok(str(output), fst, regular=True):
            raise fail(f"cannot write report {output}: a device other than a terminal or /dev/null")
        return
    try:
        st = os.stat(output)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise fail(f"cannot write report {output}: {exc.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise fail(f"cannot write report {output}: {os.strerror(errno.EISDIR)}")
    if st is not None and not stat.S_ISREG(st.st_mode):
        full = os.stat("/dev/full").st_rdev if os.path.exists("/dev/full") else None
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == full:  # every write fails with ENOSPC
            raise fail(f"cannot write report {output}: {os.strerror(errno.ENOSPC)}")
        if not in_place_ok(str(output), st):  # a disk, /dev/mem: never opened (a planted link to one)
            raise fail(f"cannot write report {output}: a device other than a terminal or /dev/null")
        if stat.S_ISFIFO(st.st_mode):  # never opened here: a reader would see our close as the end of the
            return  # report; one that has not come yet may still come (the write waits ``safeio.FIFO_WAIT``)
        try:  # /dev/null, a terminal: written in place. Probe without blocking and without writing.
            fd = os.open(output, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            raise fail(f"cannot write report {output}: {exc.strerror}") from None
        else:
            os.close(fd)
        return
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise fail(f"cannot write report {output}: {os.strerror(errno.ENOENT)} (no directory {parent})")
    import secrets

    probe = parent / f".{output.name}.probe{os.getpid()}.{secrets.token_hex(4)}"  # not a name one can plant
    try:  # the report is written by create-and-rename in this directory: try exactly that
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise fail(f"cannot write report {output}: {exc.strerror}") from None


def summary_line(result: Any, output: Path) -> str:
    n = len(result.findings)
    line = f"veritensor-fast: {n} finding{'s' if n != 1 else ''}" if n else "veritensor-fast: no findings"
    line += f", {len(result.errors)} input(s) not scanned" if result.errors else ""
    return line + f"; report written to {output}"


def emit(result: Any, fmt: str, output: Path | None, show_secrets: bool, quiet: bool = False) -> None:
    """Render with the chosen reporter; write ``output`` atomically (only once the scan has succeeded), then
    print a one-line summary on stderr. A write that fails (full disk) exits 2 naming the path and error,
    and leaves no temporary file behind."""
    from veritensor_fast.report import get_reporter
    from veritensor_fast.safeio import write_text_replacing

    color = fmt == "text" and output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    text = get_reporter(fmt)(result, show_secrets=show_secrets, color=color)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        write_text_replacing(output, text)  # /dev/null, a FIFO: written in place, never replaced
    except OSError as exc:
        raise fail(f"cannot write report {output}: {exc.strerror}") from None
    if not quiet:
        from veritensor_fast.redaction import escape_text

        typer.echo(escape_text(summary_line(result, output)), err=True)


def set_root(result: Any, paths: list[Path], changes: Any, history: bool) -> None:
    """``stats["root"]`` for the text reports: the directory report paths are relative to, so that a printed
    ``path:line:col`` opens from the current directory (one PATH, or a --staged / --since-commit scan)."""
    root: str | None = None
    if changes is not None:
        top = os.path.abspath(changes.toplevel)
        rel = os.path.relpath(top)
        root = top if rel == ".." or rel.startswith(".." + os.sep) else rel
    elif len(paths) == 1 and os.fspath(paths[0]) != "-" and not history:
        p = os.fspath(paths[0])
        root = p if os.path.isdir(p) else os.path.dirname(p)
    if root and root != ".":
        result.stats["root"] = root

