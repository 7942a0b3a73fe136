"""Typer command line: a thin layer over the library (``engine.scan`` + a reporter).

Exit codes: 0 nothing found and everything scanned; 1 findings; 2 usage or fatal error;
3 no findings but some inputs could not be scanned (the scan is incomplete).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find leaked ML credentials and poisoned model files, fast.")
rules_app = typer.Typer(no_args_is_help=True, help="Inspect and check the rule set.")
app.add_typer(rules_app, name="rules")

EXIT_CLEAN, EXIT_FINDINGS, EXIT_FATAL, EXIT_INCOMPLETE = 0, 1, 2, 3


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
        now = time.perf_counter()
        if self.enabled and now - self._last > 0.2:
            self._last = now
            rate = self.bytes / 1e6 / max(now - self._t0, 1e-9)
            sys.stderr.write(f"\r\x1b[Kscanned {self.files} files, {self.bytes / 1e6:.1f} MB "
                             f"({rate:.0f} MB/s), {self.findings} findings")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self._last:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"veritensor-fast: error: {msg}", err=True)
    return typer.Exit(EXIT_FATAL)


def exit_code(result: Any, fail_severity: str = "low") -> int:
    from veritensor_fast.findings import SEVERITY_ORDER

    floor = SEVERITY_ORDER[fail_severity]
    if any(SEVERITY_ORDER.get(f.severity, 4) >= floor for f in result.findings):
        return EXIT_FINDINGS
    if result.errors:
        return EXIT_INCOMPLETE
    return EXIT_CLEAN


def emit(result: Any, fmt: str, output: Path | None, show_secrets: bool) -> None:
    """Render with the chosen reporter; write ``output`` atomically (only once the scan has succeeded)."""
    from veritensor_fast.report import get_reporter

    color = fmt == "text" and output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    text = get_reporter(fmt)(result, show_secrets=show_secrets, color=color)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    tmp = output.with_name(output.name + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, output)


@app.command()
def scan(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files and directories to scan.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes (default: all cores).")] = 0,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Glob of paths to skip (repeatable).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, json, jsonl or sarif.")] = "text",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here.")] = None,
    show_secrets: Annotated[bool, typer.Option("--show-secrets", help="Print full secrets (dangerous in CI logs).")] = False,
    strict_secrets: Annotated[bool, typer.Option("--strict-secrets", help="Also report high-entropy values assigned to secret-looking names.")] = False,
    include_outputs: Annotated[bool, typer.Option("--include-outputs/--no-include-outputs", help="Scan notebook outputs (default on).")] = True,
    follow_symlinks: Annotated[bool, typer.Option("--follow-symlinks", help="Follow symbolic links (loops are detected).")] = False,
    max_file_size: Annotated[int, typer.Option("--max-file-size", help="Skip (and report) files larger than this many bytes; 0 = no limit.")] = 0,
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="Extra YAML rules file (repeatable).")] = None,
    disable_rule: Annotated[list[str] | None, typer.Option("--disable-rule", help="Rule id to turn off (repeatable).")] = None,
    allow_global: Annotated[list[str] | None, typer.Option("--allow-global", help="Extra pickle global allowed, module.qualname (repeatable).")] = None,
    fail_severity: Annotated[str, typer.Option("--fail-severity", help="Lowest severity that makes the exit code 1.")] = "low",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress on stderr when it is a terminal.")] = True,
) -> None:
    """Scan files and directories for leaked secrets and malicious model files."""
    from veritensor_fast.engine import EngineError
    from veritensor_fast.engine import scan as run_scan
    from veritensor_fast.findings import SEVERITY_ORDER
    from veritensor_fast.report import FORMATS
    from veritensor_fast.sources.fs import FileSource
    from veritensor_fast.worker import ScanOptions

    if fmt not in FORMATS:
        raise _fail(f"--format must be one of {', '.join(FORMATS)}")
    if fail_severity not in SEVERITY_ORDER:
        raise _fail(f"--fail-severity must be one of {', '.join(SEVERITY_ORDER)}")
    if not paths:
        raise _fail("give at least one PATH to scan")
    options = ScanOptions(
        strict_secrets=strict_secrets, include_outputs=include_outputs,
        rule_files=tuple(str(p) for p in rules or ()), disabled_rules=tuple(disable_rule or ()),
        allow_globals=tuple(allow_global or ()),
    )
    source = FileSource([os.fspath(p) for p in paths], tuple(exclude or ()), follow_symlinks, max_file_size)
    prog = Progress(progress and sys.stderr.isatty())
    try:
        result = run_scan(source, options, jobs=jobs or None, on_progress=prog)
    except EngineError as exc:
        raise _fail(str(exc)) from None
    finally:
        prog.done()
    emit(result, fmt, output, show_secrets)
    raise typer.Exit(exit_code(result, fail_severity))


@rules_app.command("list")
def rules_list() -> None:
    """List every rule: id, severity, name."""
    from veritensor_fast.rules import load_rules

    for r in load_rules().rules:
        typer.echo(f"{r.id:32} {r.severity:9} {r.name}{'  (--strict-secrets)' if r.strict_only else ''}")


@rules_app.command("check")
def rules_check(
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="Extra YAML rules file to check too.")] = None,
) -> None:
    """Check every rule's examples and negative examples in both engines (Hyperscan and Python re)."""
    from veritensor_fast.matcher import SecretMatcher, python_only_match
    from veritensor_fast.rules import RuleError, load_rules

    try:
        rs = load_rules([str(p) for p in rules or ()])
    except RuleError as exc:
        raise _fail(str(exc)) from None
    m = SecretMatcher(rs, strict=True)
    bad = 0
    for r in rs.rules:
        for ex in r.examples:
            hs_ok = any(x.rule.id == r.id for x in m.find(ex.encode()))
            if not (hs_ok and python_only_match(r, ex)):
                bad += 1
                typer.echo(f"FAIL {r.id}: an example is not matched (hyperscan={hs_ok})")
        for i, ex in enumerate(r.negative_examples):
            hs_hit = any(x.rule.id == r.id for x in m.find(ex.encode()))
            if hs_hit or python_only_match(r, ex):
                bad += 1
                typer.echo(f"FAIL {r.id}: negative example #{i} is matched")
    typer.echo(f"{len(rs.rules)} rules checked, {bad} failure(s)")
    raise typer.Exit(1 if bad else 0)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
