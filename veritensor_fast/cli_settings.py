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
            _note(f"veritensor-fast: note: {note}")
        skip = {os.path.realpath(d) for d in trusted}
        for cand in [] if no_config else untrusted_configs(targets):
            if os.path.realpath(cand.parent) not in skip:
                _note(f"veritensor-fast: note: ignoring config {cand} inside the scanned target (a scanned tree does "
                      f"not configure its own audit); to apply it, pass --config {cand}")
        eff = effective(cfg, **cli)
        opts = eff.options
        if opts.allow_globals:
            ignored_allows_note(tuple(opts.allow_globals))
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


def _note(line: str) -> None:
    """One stderr line; what the user gave (a path, an allow entry) cannot drive the terminal, nor print a
    secret in it (``scan ./HF_TOKEN=hf_...``: the report redacts that path, the note printed it in full)."""
    from veritensor_fast.cli_common import redact_message
    from veritensor_fast.redaction import escape_text

    typer.echo(escape_text(redact_message(line)), err=True)


def missing_paths_note(paths: list[Path]) -> None:
    """One stderr line per PATH that does not exist: it is an error in the report (exit 3), but a report on
    stdout in JSON, or ``--exit-code-incomplete 0``, would let a misspelt PATH pass unseen."""
    from veritensor_fast.findings import display_path

    for p in paths:
        if os.fspath(p) != "-" and not os.path.lexists(p):
            _note(f"veritensor-fast: error: {display_path(os.fspath(p))} does not exist (misspelt?): not scanned")


def unmatched_paths_note(paths: list[Path], source: Any) -> None:
    """``--staged`` / ``--since-commit``: one stderr line per PATH that does not exist and matches none of the
    changes listed (a PATH that names a change deleted from the work tree exists in git: no line)."""
    import fnmatch

    from veritensor_fast.findings import display_path

    listed = source.listed_paths()
    top = os.path.realpath(source.toplevel)
    for p in paths:
        if os.path.lexists(p):
            continue
        rel = os.path.relpath(os.path.realpath(os.path.abspath(p)), top).replace(os.sep, "/")
        if not any(e == rel or e.startswith(rel + "/") or fnmatch.fnmatchcase(e, rel) for e in listed):
            what = "staged" if source.staged else "listed"
            _note(f"veritensor-fast: note: {display_path(os.fspath(p))} does not exist and matches no {what} "
                  "change (misspelt?): nothing scanned for it")


def ignored_allows_note(entries: tuple[str, ...]) -> None:
    """An allow entry (``--allow-global`` / ``allow_globals``) with no module and name, or every reading of
    which is on the built-in denylist, is never applied (a pickle importing it stays CRITICAL, as in picklescan
    and modelscan, whose dangerous lists cannot be allowed): say so in one stderr line, not silently."""
    from veritensor_fast.models.allowlist import dangerous_reason, parse_allow

    for e in entries:
        splits = sorted(parse_allow([e]))
        if e.strip() and not any(m and q for m, q in splits):  # "OrderedDict", "os.", ":x": matches nothing
            _note(f"veritensor-fast: note: allow-global {e} has no effect: give module.qualname (e.g. "
                  "collections.OrderedDict) or module:qualname")
            continue
        reasons = [dangerous_reason(m, q) for m, q in splits]
        if splits and all(reasons):
            _note(f"veritensor-fast: note: allow-global {e} has no effect: it is on the built-in denylist "
                  f"({reasons[0]}), so a pickle that uses it stays a critical finding; remove it from "
                  "--allow-global / allow_globals")
