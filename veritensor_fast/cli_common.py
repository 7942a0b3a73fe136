"""What every command shares: exit codes, the one-line fatal error, the exit-code policy and option
normalisation."""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Callable
from typing import Any

import typer

EXIT_CLEAN, EXIT_FINDINGS, EXIT_FATAL, EXIT_INCOMPLETE = 0, 1, 2, 3


def fail(msg: str) -> typer.Exit:
    from veritensor_fast.redaction import escape_text

    typer.echo(f"veritensor-fast: error: {escape_text(redact_message(msg))}", err=True)  # may name a hostile path
    return typer.Exit(EXIT_FATAL)


#: Runs a fatal message could hold a secret in (a path a scanned repository names, git's own error line).
_TOKENISH = re.compile(r"[A-Za-z0-9_\-+/=.]{16,}")


def redact_message(msg: str) -> str:
    """``msg`` with every secret the built-in rules find in it redacted: a fatal error may quote a path that a
    scanned repository chose (``git_guard`` names the FIFO its config includes, and that name may be a token).
    A message without a run of 16 token characters is returned as it is (no rules loaded); if the rules
    cannot be loaded, every such run is cut to its first 4 characters."""
    if not _TOKENISH.search(msg):
        return msg
    try:
        from veritensor_fast.matcher import SecretMatcher
        from veritensor_fast.redaction import Redactor
        from veritensor_fast.worker import ScanOptions, secrets_in_paths

        found = secrets_in_paths(SecretMatcher(ScanOptions().ruleset()), None, [msg])
        return Redactor(f.secret for fs in found.values() for f in fs if f.secret).text(msg)
    except Exception:  # a broken rules file or cache: redact too much rather than leak
        return _TOKENISH.sub(lambda m: m.group()[:4] + "…", msg)


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





def adopt_orphans() -> Callable[[], None]:
    """Leave no process behind (``veritensor_fast.reaper``): what this command's process tree orphans is
    adopted and, when the returned function is called (once the command's work is over), killed and reaped."""
    from veritensor_fast import reaper

    reaper.adopt()
    return reaper.reap


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
