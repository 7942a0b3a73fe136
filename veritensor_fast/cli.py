"""Typer command line: a thin layer over the library (``engine.scan`` + a reporter). This module assembles the
app; the commands live in ``cli_scan`` (scan) and ``cli_commands`` (rules, explain, baseline), with the shared
parts in ``cli_common`` (exit codes), ``cli_output`` (progress, report writing), ``cli_settings`` (config,
baseline) and ``cli_git`` (--staged / pre-push ranges).

Exit codes: 0 nothing found and everything scanned; 1 findings; 2 usage or fatal error;
3 no findings but some inputs could not be scanned (the scan is incomplete; ``--exit-code-incomplete``).
"""

import os
import sys
from typing import Annotated

import typer

from veritensor_fast.cli_commands import baseline_create, explain, rules_check, rules_list
from veritensor_fast.cli_common import (
    EXIT_CLEAN,
    EXIT_FATAL,
    EXIT_FINDINGS,
    EXIT_INCOMPLETE,
    exit_code,
    normalise_excludes,
)
from veritensor_fast.cli_output import Progress, emit
from veritensor_fast.cli_scan import scan

__all__ = ["EXIT_CLEAN", "EXIT_FATAL", "EXIT_FINDINGS", "EXIT_INCOMPLETE", "Progress", "app", "emit", "exit_code",
           "main", "normalise_excludes"]

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Find leaked ML credentials and poisoned model files, fast.")
rules_app = typer.Typer(no_args_is_help=True, help="Inspect and check the rule set.")
app.add_typer(rules_app, name="rules")


def _version(value: bool) -> None:
    if value:
        from veritensor_fast import __version__

        typer.echo(f"veritensor-fast {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Find leaked ML credentials and poisoned model files, fast."""


app.command()(scan)
rules_app.command("list")(rules_list)
rules_app.command("check")(rules_check)
app.command()(explain)

baseline_app = typer.Typer(no_args_is_help=True, help="Record known findings so scans report only new ones.")
app.add_typer(baseline_app, name="baseline")
baseline_app.command("create")(baseline_create)


def main() -> None:
    # the program's entry point (console script, ``python -m``): called from the ``__main__`` module. A host that
    # calls ``main()`` from its own code (a test runner, a service) gets ``SystemExit`` as before.
    entry = sys._getframe(1).f_globals.get("__name__") == "__main__" and not sys.flags.interactive
    try:
        app()
    except SystemExit as exc:
        if entry:
            exit_now(exc.code)  # returns only when the interpreter's own exit must run
        raise


def exit_now(code: object) -> None:
    """End the process now with ``code``, without the interpreter's teardown: freeing every module, object and
    database one by one costs 35-50 ms of wall time at the end of every command, serial after the scan
    (measured on the monorepo corpus, ``--jobs 1`` and ``2``). First the ``atexit`` handlers run (the pool's,
    logging's, ``weakref.finalize`` ones, a host's probes) and standard output and error are flushed; every
    file the commands write is closed by then (reports, baselines, caches; the datastore commits each batch).
    Returns, and the interpreter exits as usual, when another thread still runs (it must be joined), for a
    message as exit status, when a flush fails (a closed pipe: the usual error and status), or under a profiler or
    tracer (``python -m cProfile -o F -m veritensor_fast``, ``trace``, ``coverage``: they write after ``main``)."""
    import threading

    if code is None:
        code = 0
    if not isinstance(code, int) or threading.active_count() > 1:
        return
    if sys.getprofile() is not None or sys.gettrace() is not None or not {"cProfile", "profile", "trace"}.isdisjoint(
            sys.modules):
        return
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - the interpreter's exit reports it as it always did
        return
    os._exit(code & 0xFF)


if __name__ == "__main__":  # pragma: no cover
    main()
