"""What every command shares: exit codes, the one-line fatal error, the exit-code policy and option
normalisation."""

from __future__ import annotations

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

