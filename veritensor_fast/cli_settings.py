"""Settings for a command: the trusted config merged with the command-line values, and the baseline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from veritensor_fast.cli_common import fail


def settings(paths: list[Path], git_changes: bool, config: Path | None, no_config: bool = False,
              **cli: Any) -> Any:
    """Load the trusted config (``--config``, else one found in the current directory; for ``--staged`` /
    ``--since-commit`` also the repository top-level when the current directory is inside it) and merge the
    command-line values over it. A config inside a scanned target is never applied: one stderr line says so.
    User rules files are validated here, before anything is scanned (exit 2 naming the file and rule)."""
    from veritensor_fast.config import Config, ConfigError, effective, load_config, untrusted_configs
    from veritensor_fast.rules import RuleError

    cwd = os.getcwd()
    trusted: list[str] = [cwd]
    targets: list[str] = [os.fspath(p) for p in paths if os.fspath(p) != "-" and p.is_dir()]
    try:
        if git_changes:
            from veritensor_fast.sources.staged import GitChangesError, repo_toplevel

            try:
                top = repo_toplevel(paths[0] if paths else cwd)
            except GitChangesError as exc:
                raise fail(str(exc)) from None
            here = os.path.realpath(cwd)
            real_top = os.path.realpath(top)
            if here == real_top or here.startswith(real_top.rstrip(os.sep) + os.sep):
                trusted.append(top)  # the user stands inside this repository: it is their project
            else:
                targets.append(top)
        notes: list[str] = []
        cfg = Config() if no_config else load_config(config, trusted, notes)
        for note in notes:
            typer.echo(f"veritensor-fast: note: {note}", err=True)
        skip = {os.path.realpath(d) for d in trusted}
        for cand in [] if no_config else untrusted_configs(targets):
            if os.path.realpath(cand.parent) not in skip:
                typer.echo(f"veritensor-fast: note: ignoring config {cand} inside the scanned target (a scanned "
                           f"tree does not configure its own audit); to apply it, pass --config {cand}", err=True)
        eff = effective(cfg, **cli)
        opts = eff.options
        if opts.rule_files or opts.disabled_rules or opts.entropy_overrides:
            opts.ruleset()  # fail now (exit 2, naming the file and rule), not halfway through a scan
        return eff
    except (ConfigError, RuleError) as exc:
        raise fail(str(exc)) from None


def load_baseline(path: str | None) -> Any:
    if path is None:
        return None
    from veritensor_fast.baseline import BaselineError, load_baseline

    try:
        return load_baseline(path)
    except BaselineError as exc:
        raise fail(str(exc)) from None


def apply_baseline(result: Any, known: Any, roots: list[str] | None, baseline_file: str) -> Any:
    """Drop findings already in the baseline; ``stats["baselined"]`` says how many. ``roots``: the PATHs of a
    file scan (None: standard input or a git scan, whose paths are already repository-relative)."""
    from veritensor_fast.baseline import Locator
    from veritensor_fast.findings import ScanResult

    new, dropped = known.filter_new(result.findings, Locator(roots, baseline_file).key)
    return ScanResult(new, result.errors, {**result.stats, "findings": len(new), "baselined": dropped})

