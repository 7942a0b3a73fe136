"""The small commands: ``rules list``, ``rules check``, ``explain`` and ``baseline create``."""

import os
from pathlib import Path
from typing import Annotated

import typer

from veritensor_fast.cli_common import check_jobs, exit_code, fail, normalise_excludes, stop_on_sigterm
from veritensor_fast.cli_settings import settings


def rules_list() -> None:
    """List every rule: id, severity, name."""
    from veritensor_fast.models.rule_ids import MODEL_RULES
    from veritensor_fast.rules import load_rules

    for r in load_rules().rules:
        typer.echo(f"{r.id:32} {r.severity:9} {r.name}{'  (--strict-secrets)' if r.strict_only else ''}")
    for rid, (sev, what) in MODEL_RULES.items():
        typer.echo(f"{rid:32} {sev:9} {what}")



def rules_check(
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="Extra YAML rules file to check too.")] = None,
) -> None:
    """Check every rule's examples and negative examples in both engines (Hyperscan and Python re)."""
    from veritensor_fast.redaction import escape_text
    from veritensor_fast.rules import RuleError, load_rules
    from veritensor_fast.rules_check import check

    try:
        rs = load_rules([str(p) for p in rules or ()])
    except RuleError as exc:
        raise fail(str(exc)) from None
    bad = 0
    for line in check(rs):
        bad += 1
        typer.echo(escape_text(line))
    typer.echo(f"{len(rs.rules)} rules checked, {bad} failure(s)")
    raise typer.Exit(1 if bad else 0)



def explain(rule_id: Annotated[str, typer.Argument(help="A rule id from a report or `rules list`.")]) -> None:
    """What a rule's finding means: what the credential grants, how to revoke and rotate it, the provider's
    pages (model rules: what the file can do and what to do about it)."""
    from veritensor_fast.explain import explain as lookup
    from veritensor_fast.explain import render

    try:
        e = lookup(rule_id)
    except KeyError as exc:
        raise fail(exc.args[0]) from None
    typer.echo(render(e), nl=False)


def baseline_create(
    paths: Annotated[list[Path], typer.Argument(help="Files and directories to scan (usually: .)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Baseline file to write.")] = Path(".veritensor-baseline.json"),
    config: Annotated[Path | None, typer.Option("--config", help="Config file (default: .veritensor-fast.toml or pyproject.toml in the current directory; never one inside a scanned target).")] = None,
    no_config: Annotated[bool, typer.Option("--no-config", help="Ignore every config file.")] = False,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Glob of paths to skip (repeatable).")] = None,
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="Extra YAML rules file (repeatable).")] = None,
    disable_rule: Annotated[list[str] | None, typer.Option("--disable-rule", help="Rule id to turn off (repeatable).")] = None,
    strict_secrets: Annotated[bool | None, typer.Option("--strict-secrets/--no-strict-secrets", help="As for scan.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes (default: all cores).")] = 0,
    default_excludes: Annotated[bool, typer.Option("--default-excludes/--no-default-excludes", help="As for scan.")] = True,
) -> None:
    """Scan PATHs and write every finding's fingerprint, rule id and relative path (never the secret) to a
    sorted, reviewable JSON file for `scan --baseline`."""
    from veritensor_fast.baseline import Baseline, Locator
    from veritensor_fast.cli_output import check_output
    from veritensor_fast.engine import EngineError, ScanResult
    from veritensor_fast.engine import scan as run_scan
    from veritensor_fast.sources.fs import FileSource

    check_jobs(jobs)
    to_stdout = os.fspath(output) == "-"  # '-' is standard output (locations: relative to this directory)
    if not to_stdout:
        check_output(output)  # an unwritable baseline path fails now, not after a long scan
    eff = settings(paths, False, config, no_config, exclude=normalise_excludes(exclude or ()),
                    rules=[str(p) for p in rules or ()],
                    disabled_rules=disable_rule or (), strict_secrets=strict_secrets, jobs=jobs)
    source = FileSource([os.fspath(p) for p in paths], eff.excludes, eff.follow_symlinks, eff.max_file_size,
                        default_excludes=default_excludes)
    restore = stop_on_sigterm()  # SIGTERM and Ctrl-C end the pool through its cleanup, leaving no process
    try:
        result = run_scan(source, eff.options, jobs=eff.jobs or None)
    except EngineError as exc:
        raise fail(str(exc)) from None
    finally:
        restore()
    bl = Baseline.from_findings(result.findings, Locator([os.fspath(p) for p in paths], output).key)
    try:
        if to_stdout:
            typer.echo(bl.dumps(), nl=False)
        else:
            bl.write(output)
    except OSError as exc:
        raise fail(f"cannot write {output}: {exc.strerror}") from None
    from veritensor_fast.redaction import escape_text, redact_result

    where = "standard output" if to_stdout else output
    typer.echo(escape_text(f"wrote {len(bl.entries)} known finding(s) to {where}"), err=True)
    for e in redact_result(result).errors:
        typer.echo(escape_text(f"  could not scan {e.path}: {e.reason} ({e.kind})"), err=True)
    # findings are what a baseline records: only an incomplete scan fails
    raise typer.Exit(exit_code(ScanResult([], result.errors)))
