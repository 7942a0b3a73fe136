"""What every command shares: exit codes, the one-line fatal error, the exit-code policy and option
normalisation."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import typer

EXIT_CLEAN, EXIT_FINDINGS, EXIT_FATAL, EXIT_INCOMPLETE = 0, 1, 2, 3


def fail(msg: str) -> typer.Exit:
    from veritensor_fast.redaction import escape_text

    typer.echo(f"veritensor-fast: error: {escape_text(msg)}", err=True)  # may name a hostile path
    return typer.Exit(EXIT_FATAL)


def exit_code(result: Any, fail_severity: str = "low", incomplete_code: int = EXIT_INCOMPLETE) -> int:
    """1 for findings at or above ``fail_severity``; else ``incomplete_code`` (3, or ``--exit-code-incomplete``)
    when an input could not be scanned. Policy skips (``--max-file-size``) and warnings never count."""
    from veritensor_fast.findings import SEVERITY_ORDER, error_level

    floor = SEVERITY_ORDER[fail_severity]
    if any(SEVERITY_ORDER.get(f.severity, 4) >= floor for f in result.findings):
        return EXIT_FINDINGS
    if any(error_level(e) == "error" for e in result.errors):
        return incomplete_code
    return EXIT_CLEAN


def check_jobs(jobs: int) -> None:
    if jobs < 0:
        raise fail(f"--jobs must be 0 (all cores) or a positive number of worker processes, not {jobs}")


def normalise_excludes(patterns: Any) -> list[str]:
    """``--exclude ./sub/`` means the same as ``--exclude sub``: patterns match paths relative to the scan
    root, written without a leading ``./`` or a trailing ``/``."""
    out = []
    for p in patterns:
        q = p
        while q.startswith("./"):
            q = q[2:].lstrip("/")
        q = q.rstrip("/") or q
        out.append(q if q not in ("", ".") else p)
    return out





def _children() -> list[int]:
    """This process's child pids (every thread's; ``/proc/<pid>/task/<tid>/children``, Linux); [] elsewhere."""
    out: list[int] = []
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as fh:
                out.extend(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            continue
    return out


def adopt_orphans() -> Callable[[], None]:
    """Make this process the reaper of its descendants (``PR_SET_CHILD_SUBREAPER``, Linux): a process a pool
    worker started (its ``git cat-file`` reader) whose worker was killed (Ctrl-C, SIGTERM, a broken pool) is
    re-parented here, not to PID 1 (which in a container may never reap it: a zombie per reader). Returns what
    to call once the command's work is over: it kills and reaps every child still left (by then the scan has
    ended its pool and its git commands, so each one is an orphan adopted here, or one a ``finally`` could not
    reach). Nothing is done where ``prctl`` is missing."""
    import sys

    if not sys.platform.startswith("linux"):
        return lambda: None
    try:
        import ctypes

        prctl = ctypes.CDLL(None).prctl
        was = ctypes.c_int(0)
        prctl(37, ctypes.byref(was), 0, 0, 0)  # PR_GET_CHILD_SUBREAPER
        if prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
            return lambda: None
    except (OSError, AttributeError):  # pragma: no cover - no prctl
        return lambda: None
    before = set(_children())  # a program that runs the command in-process keeps its own children

    def _reap() -> None:
        for pid in _children():  # our children: a pid is not reused before we reap it
            if pid in before:
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.waitpid(pid, 0)
            except (ChildProcessError, OSError):
                pass  # reaped by its own ``Popen`` meanwhile
        if not was.value:
            prctl(36, 0, 0, 0, 0)

    return _reap


def stop_on_sigterm() -> Callable[[], None]:
    """SIGTERM (a CI job's timeout, ``kill``) ends a scan as Ctrl-C does, through its cleanup: the workers are
    killed and the git commands it started (the listing, a provenance pass) are killed and reaped; then the process dies of SIGTERM as before. Only when
    SIGTERM has its default action here (a program that set its own keeps it). Returns what to call once the
    scan is over (in a ``finally``): it reaps what the scan's processes left (:func:`adopt_orphans`), puts the
    default action back and, after a SIGTERM, raises it again."""
    reap = adopt_orphans()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return reap
    got: list[int] = []

    def _stop(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
        got.append(signum)
        raise SystemExit(128 + signum)  # unwinds through every ``finally`` of the scan

    def _restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        reap()
        if got:
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    return _restore
