"""The ``scan`` command: option declarations, checks and the dispatch to a file, stdin, staged, history,
Dask or sharded scan."""

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from veritensor_fast.cli_common import (
    EXIT_FINDINGS,
    EXIT_INCOMPLETE,
    check_jobs,
    exit_code,
    fail,
    normalise_excludes,
    stop_on_sigterm,
)
from veritensor_fast.cli_git import BLOCKED_HELP, git_changes_source, pre_push_range
from veritensor_fast.cli_output import Progress, check_output, emit, set_root
from veritensor_fast.cli_settings import (
    apply_baseline,
    load_baseline,
    missing_paths_note,
    settings,
    unmatched_paths_note,
)


def scan(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files and directories to scan; '-' reads standard input.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes (default: all cores).")] = 0,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Glob of paths to skip (repeatable).")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, json, jsonl, sarif or markdown (CI job summaries); any case.")] = "text",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here.")] = None,
    show_secrets: Annotated[bool, typer.Option("--show-secrets", help="Print full secrets (dangerous in CI logs).")] = False,
    strict_secrets: Annotated[bool | None, typer.Option("--strict-secrets/--no-strict-secrets", help="Also report high-entropy values assigned to secret-looking names.")] = None,
    include_outputs: Annotated[bool | None, typer.Option("--include-outputs/--no-include-outputs", help="Scan notebook outputs (default on).")] = None,
    follow_symlinks: Annotated[bool | None, typer.Option("--follow-symlinks/--no-follow-symlinks", help="Follow symbolic links (loops are detected).")] = None,
    max_file_size: Annotated[int | None, typer.Option("--max-file-size", help="Skip (and report) files larger than this many bytes; 0 = no limit.")] = None,
    rules: Annotated[list[Path] | None, typer.Option("--rules", help="Extra YAML rules file (repeatable).")] = None,
    disable_rule: Annotated[list[str] | None, typer.Option("--disable-rule", help="Rule id to turn off (repeatable).")] = None,
    allow_global: Annotated[list[str] | None, typer.Option("--allow-global", help="Extra pickle global allowed, module.qualname (repeatable).")] = None,
    fail_severity: Annotated[str | None, typer.Option("--fail-severity", help="Lowest severity that makes the exit code 1 (default low).")] = None,
    staged: Annotated[bool, typer.Option("--staged", help="Scan what is staged in the git index (for pre-commit hooks); PATHs limit it.")] = False,
    since_commit: Annotated[str | None, typer.Option("--since-commit", metavar="REV", help="Scan blobs added or changed by the commits in REV..HEAD; PATHs limit it.")] = None,
    pre_push: Annotated[str | None, typer.Option("--pre-push", metavar="REMOTE", help='In a plain git pre-push hook (scan --pre-push "$1"): scan what git says is pushed (its hook input on stdin): new commits and annotated tags.')] = None,
    baseline: Annotated[Path | None, typer.Option("--baseline", help="Report only findings not in this baseline file.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Config file (default: .veritensor-fast.toml or pyproject.toml in the current directory; never one inside a scanned target).")] = None,
    no_config: Annotated[bool, typer.Option("--no-config", help="Ignore every config file.")] = False,
    history: Annotated[bool, typer.Option("--history", help="PATHs are git repositories (work tree or bare): scan every blob reachable from every ref.")] = False,
    all_objects: Annotated[bool, typer.Option("--all-objects", help="With --history: also scan blobs no ref reaches.")] = False,
    since: Annotated[str | None, typer.Option("--since", metavar="REV", help="With --history: only commits after REV (REV..refs).")] = None,
    rev_range: Annotated[str | None, typer.Option("--range", metavar="A..B", help="With --history: only the commits in A..B.")] = None,
    branch: Annotated[list[str] | None, typer.Option("--branch", help="With --history: only these branches (repeatable).")] = None,
    datastore: Annotated[Path | None, typer.Option("--datastore", help="With --history: incremental datastore (default: one per repository in the user cache dir, never inside the scanned repository).")] = None,
    no_datastore: Annotated[bool, typer.Option("--no-datastore", help="With --history: scan everything, remember nothing.")] = False,
    new_only: Annotated[bool, typer.Option("--new-only", help="With --history: report only findings no earlier finished sweep reported.")] = False,
    stdin_name: Annotated[str | None, typer.Option("--stdin-name", help="Path to report for '-' (its extension picks the detectors, e.g. secret.yaml).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress on stderr when it is a terminal.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only findings and errors: no progress, summary or hints (notes on your own settings still print).")] = False,
    scheduler: Annotated[str | None, typer.Option("--scheduler", metavar="ADDRESS", help="Run the workers on this Dask scheduler (e.g. tcp://host:8786) instead of local processes; every worker must see the PATHs under the same absolute paths.")] = None,
    default_excludes: Annotated[bool, typer.Option("--default-excludes/--no-default-excludes", help="Skip virtualenvs, site-packages, node_modules, __pycache__, build, dist and tool caches (default on).")] = True,
    exit_code_incomplete: Annotated[int, typer.Option("--exit-code-incomplete", metavar="N", min=0, max=255, help="Exit code when there are no findings but some inputs could not be scanned (default 3; 0 accepts an incomplete scan).")] = EXIT_INCOMPLETE,
    validate: Annotated[bool, typer.Option("--validate", help="Ask each found credential's own provider (over HTTPS) whether it is live; adds validation: valid/invalid/unknown. Off by default: it sends the secrets to their providers.")] = False,
    scheduler_file: Annotated[Path | None, typer.Option("--scheduler-file", help="As --scheduler, the address read from this Dask scheduler file (dask-jobqueue, HPC).")] = None,
    shard_output: Annotated[Path | None, typer.Option("--shard-output", metavar="DIR", help="With --scheduler: workers list and scan whole shards (top-level directories, repositories) and write results here as JSONL; a rerun skips finished shards. Every worker must see DIR.")] = None,
) -> None:
    """Scan files and directories for leaked secrets and malicious model files."""
    from veritensor_fast.engine import EngineError
    from veritensor_fast.engine import scan as run_scan
    from veritensor_fast.findings import SEVERITY_ORDER
    from veritensor_fast.report import FORMATS
    from veritensor_fast.sources.fs import FileSource

    fmt = fmt.lower()
    fail_severity = fail_severity.lower() if fail_severity is not None else None
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}")
    check_jobs(jobs)
    exclude = normalise_excludes(exclude or ())
    change_range = pre_push_range(staged, since_commit, pre_push=pre_push)
    git_changes = change_range.git_changes
    if fail_severity is not None and fail_severity not in SEVERITY_ORDER:
        raise fail(f"--fail-severity must be one of {', '.join(SEVERITY_ORDER)}")
    if history and git_changes:
        raise fail("--history cannot be combined with --staged or --since-commit")
    if not history and (all_objects or since or rev_range or branch or datastore or no_datastore or new_only):
        raise fail("--all-objects, --since, --range, --branch, --datastore, --no-datastore and --new-only "
                    "need --history")
    if not paths and not git_changes:
        raise fail("give at least one PATH to scan")
    if max_file_size is not None and max_file_size < 0:
        raise fail(f"--max-file-size must be 0 (no limit) or a positive number of bytes, not {max_file_size}")
    if stdin_name is not None and [os.fspath(p) for p in paths or []] != ["-"]:
        raise fail("--stdin-name names standard input: give - as the only PATH "
                   "(cat FILE | veritensor-fast scan - --stdin-name NAME)")
    if config is not None and no_config:
        raise fail("give either --config or --no-config, not both")
    if output is not None and os.fspath(output) == "-":
        output = None  # '-' is standard output, as a PATH of '-' is standard input (a file named -: its full path)
    if output is not None:
        check_output(output)
    eff = settings(paths or [], git_changes, config, no_config, exclude=exclude or (), rules=[str(p) for p in rules or ()],
                    disabled_rules=disable_rule or (), allow_globals=allow_global or (),
                    strict_secrets=strict_secrets, include_outputs=include_outputs, follow_symlinks=follow_symlinks,
                    max_file_size=max_file_size, jobs=jobs, fail_severity=fail_severity,
                    baseline=os.fspath(baseline) if baseline else None)
    options, fail_severity, jobs = eff.options, eff.fail_severity, eff.jobs
    known = load_baseline(eff.baseline)
    if not history and not git_changes:  # a misspelt PATH reaches the user whatever the format and exit code
        missing_paths_note(paths or [])
    local_only = False
    if git_changes:
        source: Any = git_changes_source(paths or [], change_range, eff)
        unmatched_paths_note(paths or [], source)
        if not jobs and source.small():
            jobs = 1  # a hook's few blobs: starting a process pool would cost more than the scan
    elif paths and [os.fspath(p) for p in paths] == ["-"] and not history:
        from veritensor_fast.sources.memory import MemorySource

        if sys.stdin.isatty():  # else `scan -` typed at a prompt waits in silence
            print("veritensor-fast: reading standard input from the terminal: type or paste, then Ctrl-D "
                  "(or pipe into it: CMD | veritensor-fast scan -)", file=sys.stderr)
        source = MemorySource(sys.stdin.buffer.read(), stdin_name or "stdin")  # kept in memory, never written to disk
        jobs = 1
        local_only = True  # only this process holds the bytes: scanned here even with --scheduler
    else:
        source = FileSource([os.fspath(p) for p in paths or []], eff.excludes, eff.follow_symlinks, eff.max_file_size,
                            default_excludes=default_excludes)
    if scheduler and scheduler_file:
        raise fail("give either --scheduler or --scheduler-file, not both")
    client, make_executor = (_dask(scheduler, scheduler_file, [os.fspath(p) for p in paths or []])
                             if (scheduler or scheduler_file) and not local_only else (None, None))
    prog = Progress(progress and not quiet and sys.stderr.isatty())
    source = prog.counting(source)
    if shard_output is not None and client is None:
        raise fail("--shard-output needs --scheduler or --scheduler-file")
    restore = stop_on_sigterm()
    try:
        if shard_output is not None:
            result = _sharded_scan(client, paths or [], options, shard_output, history, show_secrets, eff,
                                   branches=tuple(branch or ()), since=since, rev_range=rev_range,
                                   all_objects=all_objects, new_only=new_only,
                                   datastore=os.fspath(datastore) if datastore else None,
                                   use_datastore=not no_datastore)
        elif history:
            result = _history_scan(paths or [], options, jobs, prog, make_executor=make_executor,
                                   branches=tuple(branch or ()), since=since,
                                   rev_range=rev_range, all_objects=all_objects, new_only=new_only,
                                   datastore=os.fspath(datastore) if datastore else None,
                                   use_datastore=not no_datastore, excludes=eff.excludes,
                                   max_file_size=eff.max_file_size)
        else:
            result = run_scan(source, options, jobs=jobs or None, on_progress=prog, make_executor=make_executor)
    except EngineError as exc:
        raise fail(str(exc)) from None
    finally:
        prog.done()
        if client is not None:
            client.close()
        restore()
    if known is not None:  # matched by location, whatever PATH or directory this scan ran from
        file_roots = None if git_changes or history or local_only else [os.fspath(p) for p in paths or []]
        result = apply_baseline(result, known, file_roots, eff.baseline)
    result.stats["config"] = eff.config
    if git_changes and getattr(source, "env_ignored", None):  # git location variables naming another repository
        result.stats["git_env_ignored"] = source.env_ignored
    if validate:
        result = _validate(result)
    if fmt in ("text", "markdown"):
        set_root(result, paths or [], source if git_changes else None, history)
        if quiet:
            result.stats["quiet"] = True
    emit(result, fmt, output, show_secrets, quiet)
    code = exit_code(result, fail_severity, exit_code_incomplete)
    if code == EXIT_FINDINGS and change_range.staged and not quiet:
        sys.stderr.write(BLOCKED_HELP)
    raise typer.Exit(code)



def _validate(result: Any) -> Any:
    """``--validate``: check the distinct secrets with their providers (see ``veritensor_fast.validate``)."""
    from veritensor_fast.validate import ValidateError, validate_result

    try:
        return validate_result(result, os.environ)
    except ValidateError as exc:
        raise fail(str(exc)) from None


def _dask(address: str | None, scheduler_file: Path | None, roots: list[str]) -> tuple[Any, Any]:
    """``--scheduler``: connect to the Dask scheduler; return the client and an executor factory for the engine
    (which checks every worker against this client and the ``roots`` before scanning)."""
    import functools
    import logging


    try:
        from veritensor_fast.executors_dask import DaskExecutor, DaskExecutorError, connect
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("distributed", "dask"):
            raise
        raise fail("--scheduler needs Dask distributed: pip install distributed (the distributed extra: pip install '.[distributed]' in a checkout)") from None
    # the CLI reports a lost scheduler or a refused worker in one line; Dask's own log lines would bury it
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.split(".")[0] == "distributed":
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        client = connect(address, scheduler_file=os.fspath(scheduler_file) if scheduler_file else None)
    except DaskExecutorError as exc:
        raise fail(str(exc)) from None
    return client, functools.partial(DaskExecutor, client, roots=roots)


def _sharded_scan(client: Any, paths: list[Path], options: Any, out: Path, history: bool, show_secrets: bool,
                  eff: Any, **history_kw: Any) -> Any:
    """``--shard-output``: see ``veritensor_fast.shards``."""
    from veritensor_fast.shards import scan_sharded

    if history and history_kw.get("datastore") and len(paths) > 1:
        raise fail("--datastore with --shard-output and several repositories would have workers write one "
                    "database at once; leave it out (each repository keeps its own)")
    try:
        return scan_sharded(client, [os.fspath(p) for p in paths], options, os.fspath(out), history=history,
                            keep_secrets=show_secrets, excludes=eff.excludes, follow_symlinks=eff.follow_symlinks,
                            max_file_size=eff.max_file_size,
                            history_kw={**history_kw, "excludes": eff.excludes, "max_file_size": eff.max_file_size})
    except OSError as exc:
        raise fail(f"cannot use --shard-output {out}: {exc.strerror or exc}") from None


def _history_scan(paths: list[Path], options: Any, jobs: int, prog: Progress, **kw: Any) -> Any:
    """``--history``: each PATH is a git repository; see ``veritensor_fast.sources.git``."""
    from veritensor_fast.findings import display_path
    from veritensor_fast.history import scan_history
    from veritensor_fast.sources.git import GitError

    if kw["all_objects"] and (kw["since"] or kw["rev_range"] or kw["branches"]):
        raise fail("--all-objects scans the whole object database; it cannot be combined with --since, "
                    "--range or --branch")
    if kw["since"] and kw["rev_range"]:
        raise fail("give either --since or --range, not both")
    if kw["new_only"] and not kw["use_datastore"]:
        raise fail("--new-only needs the datastore (drop --no-datastore)")
    for p in paths:  # a new user's mistakes: one clear line, not git's "fatal: cannot change to ..."
        if not os.path.lexists(p):
            raise fail(f"--history: {display_path(os.fspath(p))} does not exist; give a git repository's directory")
        if not os.path.isdir(p):
            raise fail(f"--history: {display_path(os.fspath(p))} is not a git repository (not a directory); "
                       "scan it without --history")
    try:
        return scan_history([os.fspath(p) for p in paths], options, jobs=jobs or None, on_progress=prog,
                            wrap_source=prog.counting, **kw)
    except GitError as exc:
        if "not a git repository" in str(exc):
            raise fail(_not_a_repository(paths)) from None
        raise fail(str(exc)) from None


def _not_a_repository(paths: list[Path]) -> str:
    """The ``--history`` PATH git found no repository in (asked only once a scan has failed so)."""
    from veritensor_fast.findings import display_path
    from veritensor_fast.sources.git_list import git_text

    bad = [p for p in paths if not _is_repository(git_text, os.fspath(p))] or paths
    names = ", ".join(display_path(os.fspath(p)) for p in bad)
    return (f"--history: {names} is not a git repository (nor inside one); give a repository's directory, "
            "or scan it without --history")


def _is_repository(git_text: Any, path: str) -> bool:
    try:
        git_text(path, "rev-parse", "--git-dir")
    except Exception:  # noqa: BLE001 - any failure means git found no repository there
        return False
    return True

