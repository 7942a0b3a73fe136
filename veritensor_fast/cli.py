"""Typer command line: a thin layer over the library (``engine.scan`` + a reporter).

Exit codes: 0 nothing found and everything scanned; 1 findings; 2 usage or fatal error;
3 no findings but some inputs could not be scanned (the scan is incomplete; ``--exit-code-incomplete``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find leaked ML credentials and poisoned model files, fast.")
rules_app = typer.Typer(no_args_is_help=True, help="Inspect and check the rule set.")
app.add_typer(rules_app, name="rules")

EXIT_CLEAN, EXIT_FINDINGS, EXIT_FATAL, EXIT_INCOMPLETE = 0, 1, 2, 3


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
            sys.stderr.write(f"\r\x1b[K{self.line(now)}")
            sys.stderr.flush()

    def counting(self, source: Any) -> Any:
        """``source`` wrapped so that, once its listing is done, the progress line shows the total and an ETA."""
        return _Counting(source, self) if self.enabled and hasattr(source, "items") else source

    def listed(self, files: int, nbytes: int) -> None:
        self.total_files, self.total_bytes = files, nbytes

    total_files: int | None = None
    total_bytes = 0

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
        from veritensor_fast.findings import Item

        n, size = self._prog.files, self._prog.bytes  # several repositories: totals add up
        for it in self._source.items():
            if isinstance(it, Item):
                n += 1
                size += max(it.size, 0)
            yield it
        self._prog.listed(n, size)


def _fail(msg: str) -> typer.Exit:
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


def _check_output(output: Path) -> None:
    """``--output``: fail before scanning (exit 2, one line naming the path and the OS error) when the report
    could not be written: a missing or read-only directory, a directory, a full device."""
    import errno
    import stat

    try:
        st = os.stat(output)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _fail(f"cannot write report {output}: {exc.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise _fail(f"cannot write report {output}: {os.strerror(errno.EISDIR)}")
    if st is not None and not stat.S_ISREG(st.st_mode):
        try:  # /dev/null, /dev/full, a FIFO: written in place. Probe without blocking and without writing.
            fd = os.open(output, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # a FIFO nobody reads yet: writable later
                raise _fail(f"cannot write report {output}: {exc.strerror}") from None
        else:
            try:
                full = os.stat("/dev/full").st_rdev if os.path.exists("/dev/full") else None
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == full:  # every write fails with ENOSPC
                    raise _fail(f"cannot write report {output}: {os.strerror(errno.ENOSPC)}")
            finally:
                os.close(fd)
        return
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise _fail(f"cannot write report {output}: {os.strerror(errno.ENOENT)} (no directory {parent})")
    probe = parent / f".{output.name}.probe{os.getpid()}"
    try:  # the report is written by create-and-rename in this directory: try exactly that
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _fail(f"cannot write report {output}: {exc.strerror}") from None


def _summary_line(result: Any, output: Path) -> str:
    n = len(result.findings)
    line = f"veritensor-fast: {n} finding{'s' if n != 1 else ''}" if n else "veritensor-fast: no findings"
    line += f", {len(result.errors)} input(s) not scanned" if result.errors else ""
    return line + f"; report written to {output}"


def emit(result: Any, fmt: str, output: Path | None, show_secrets: bool, quiet: bool = False) -> None:
    """Render with the chosen reporter; write ``output`` atomically (only once the scan has succeeded), then
    print a one-line summary on stderr. A write that fails (full disk) exits 2 naming the path and error,
    and leaves no temporary file behind."""
    from veritensor_fast.report import get_reporter

    color = fmt == "text" and output is None and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    text = get_reporter(fmt)(result, show_secrets=show_secrets, color=color)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        if output.exists() and not output.is_file():  # /dev/null, a FIFO: write in place, never replace it
            output.write_text(text, encoding="utf-8")
        else:
            tmp = output.with_name(output.name + f".tmp{os.getpid()}")
            try:
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, output)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    except OSError as exc:
        raise _fail(f"cannot write report {output}: {exc.strerror}") from None
    if not quiet:
        typer.echo(_summary_line(result, output), err=True)


BLOCKED_HELP = """
veritensor-fast: the commit was blocked: the staged changes above contain secrets (shown redacted).
  - Remove the secret from the file, then `git add` the file again (or unstage it: `git restore --staged FILE`).
  - Load it at run time instead, e.g. from an environment variable (os.environ["HF_TOKEN"]) or a secret store.
  - A false positive? Add `# veritensor-fast: ignore[RULE_ID]` at the end of that line (or alone on the line before).
  - Accept all current findings: `veritensor-fast baseline create . -o .veritensor-baseline.json`, commit it, and
    set `baseline = ".veritensor-baseline.json"` in [tool.veritensor-fast] (or pass --baseline).
  - If the secret was ever pushed or shared, rotate it: removing it from the file does not un-leak it.
    `veritensor-fast explain RULE_ID` says what the credential grants and how to revoke it.
"""


def _settings(paths: list[Path], git_changes: bool, config: Path | None, no_config: bool = False,
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
                raise _fail(str(exc)) from None
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
        raise _fail(str(exc)) from None


def _git_changes_source(paths: list[Path], staged: bool, since: str | None, eff: Any, until: str = "HEAD") -> Any:
    """``--staged`` / ``--since-commit``: the repository is the one holding the first PATH (else the current
    directory); PATHs limit the scan to those pathspecs."""
    from veritensor_fast.sources.staged import GitChangesError, GitChangesSource

    repo = os.fspath(paths[0]) if paths else os.getcwd()
    try:
        return GitChangesSource(repo, staged=staged, since=since, until=until,
                                pathspecs=[os.path.abspath(p) for p in paths], excludes=eff.excludes,
                                max_file_size=eff.max_file_size)
    except GitChangesError as exc:
        raise _fail(str(exc)) from None


def _load_baseline(path: str | None) -> Any:
    from veritensor_fast.baseline import BaselineError, load_baseline

    if path is None:
        return None
    try:
        return load_baseline(path)
    except BaselineError as exc:
        raise _fail(str(exc)) from None


def _apply_baseline(result: Any, known: Any) -> Any:
    """Drop findings already in the baseline; ``stats["baselined"]`` says how many."""
    from veritensor_fast.findings import ScanResult

    new, dropped = known.filter_new(result.findings)
    return ScanResult(new, result.errors, {**result.stats, "findings": len(new), "baselined": dropped})


@app.command()
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
    stdin_name: Annotated[str, typer.Option("--stdin-name", help="Path to report for '-' (its extension picks the detectors, e.g. secret.yaml).")] = "stdin",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress on stderr when it is a terminal.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only findings and errors: no progress, summary or notes.")] = False,
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
        raise _fail(f"--format must be one of {', '.join(FORMATS)}")
    _check_jobs(jobs)
    exclude = normalise_excludes(exclude or ())
    git_changes, staged, since_commit, until = _pre_push_range(staged, since_commit)
    if fail_severity is not None and fail_severity not in SEVERITY_ORDER:
        raise _fail(f"--fail-severity must be one of {', '.join(SEVERITY_ORDER)}")
    if history and git_changes:
        raise _fail("--history cannot be combined with --staged or --since-commit")
    if not history and (all_objects or since or rev_range or branch or datastore or no_datastore or new_only):
        raise _fail("--all-objects, --since, --range, --branch, --datastore, --no-datastore and --new-only "
                    "need --history")
    if not paths and not git_changes:
        raise _fail("give at least one PATH to scan")
    if config is not None and no_config:
        raise _fail("give either --config or --no-config, not both")
    if output is not None:
        _check_output(output)
    eff = _settings(paths or [], git_changes, config, no_config, exclude=exclude or (), rules=[str(p) for p in rules or ()],
                    disabled_rules=disable_rule or (), allow_globals=allow_global or (),
                    strict_secrets=strict_secrets, include_outputs=include_outputs, follow_symlinks=follow_symlinks,
                    max_file_size=max_file_size, jobs=jobs, fail_severity=fail_severity,
                    baseline=os.fspath(baseline) if baseline else None)
    options, fail_severity, jobs = eff.options, eff.fail_severity, eff.jobs
    known = _load_baseline(eff.baseline)
    local_only = False
    if git_changes:
        source: Any = _git_changes_source(paths or [], staged, since_commit, eff, until)
        if not jobs and source.small():
            jobs = 1  # a hook's few blobs: starting a process pool would cost more than the scan
    elif paths and [os.fspath(p) for p in paths] == ["-"] and not history:
        from veritensor_fast.sources.memory import MemorySource

        source = MemorySource(sys.stdin.buffer.read(), stdin_name)  # kept in memory, never written to disk
        jobs = 1
        local_only = True  # only this process holds the bytes: scanned here even with --scheduler
    else:
        source = FileSource([os.fspath(p) for p in paths or []], eff.excludes, eff.follow_symlinks, eff.max_file_size,
                            default_excludes=default_excludes)
    if scheduler and scheduler_file:
        raise _fail("give either --scheduler or --scheduler-file, not both")
    client, make_executor = (_dask(scheduler, scheduler_file, [os.fspath(p) for p in paths or []])
                             if (scheduler or scheduler_file) and not local_only else (None, None))
    prog = Progress(progress and not quiet and sys.stderr.isatty())
    source = prog.counting(source)
    if shard_output is not None and client is None:
        raise _fail("--shard-output needs --scheduler or --scheduler-file")
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
        raise _fail(str(exc)) from None
    finally:
        prog.done()
        if client is not None:
            client.close()
    if known is not None:
        result = _apply_baseline(result, known)
    result.stats["config"] = eff.config
    if validate:
        result = _validate(result)
    if fmt in ("text", "markdown"):
        _set_root(result, paths or [], source if git_changes else None, history)
        if quiet:
            result.stats["quiet"] = True
    emit(result, fmt, output, show_secrets, quiet)
    code = exit_code(result, fail_severity, exit_code_incomplete)
    if code == EXIT_FINDINGS and staged and not quiet:
        sys.stderr.write(BLOCKED_HELP)
    raise typer.Exit(code)


def _check_jobs(jobs: int) -> None:
    if jobs < 0:
        raise _fail(f"--jobs must be 0 (all cores) or a positive number of worker processes, not {jobs}")


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


def _pre_push_range(staged: bool, since: str | None) -> tuple[bool, bool, str | None, str]:
    """Under pre-commit's ``pre-push`` stage (it sets PRE_COMMIT_FROM_REF / PRE_COMMIT_TO_REF), ``--staged``
    scans the commits being pushed (FROM..TO) instead of the index, which is empty at push time.
    Returns (git_changes, staged, since, until)."""
    frm, to = os.environ.get("PRE_COMMIT_FROM_REF"), os.environ.get("PRE_COMMIT_TO_REF")
    if staged and since is None and frm and to and frm.strip("0"):
        return True, False, frm, to
    return staged or since is not None, staged, since, "HEAD"


def _set_root(result: Any, paths: list[Path], changes: Any, history: bool) -> None:
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


def _validate(result: Any) -> Any:
    """``--validate``: check the distinct secrets with their providers (see ``veritensor_fast.validate``)."""
    from veritensor_fast.validate import ValidateError, validate_result

    try:
        return validate_result(result, os.environ)
    except ValidateError as exc:
        raise _fail(str(exc)) from None


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
        raise _fail("--scheduler needs Dask distributed: pip install 'veritensor-fast[distributed]'") from None
    # the CLI reports a lost scheduler or a refused worker in one line; Dask's own log lines would bury it
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.split(".")[0] == "distributed":
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        client = connect(address, scheduler_file=os.fspath(scheduler_file) if scheduler_file else None)
    except DaskExecutorError as exc:
        raise _fail(str(exc)) from None
    return client, functools.partial(DaskExecutor, client, roots=roots)


def _sharded_scan(client: Any, paths: list[Path], options: Any, out: Path, history: bool, show_secrets: bool,
                  eff: Any, **history_kw: Any) -> Any:
    """``--shard-output``: see ``veritensor_fast.shards``."""
    from veritensor_fast.shards import scan_sharded

    if history and history_kw.get("datastore") and len(paths) > 1:
        raise _fail("--datastore with --shard-output and several repositories would have workers write one "
                    "database at once; leave it out (each repository keeps its own)")
    try:
        return scan_sharded(client, [os.fspath(p) for p in paths], options, os.fspath(out), history=history,
                            keep_secrets=show_secrets, excludes=eff.excludes, follow_symlinks=eff.follow_symlinks,
                            max_file_size=eff.max_file_size,
                            history_kw={**history_kw, "excludes": eff.excludes, "max_file_size": eff.max_file_size})
    except OSError as exc:
        raise _fail(f"cannot use --shard-output {out}: {exc.strerror or exc}") from None


def _history_scan(paths: list[Path], options: Any, jobs: int, prog: Progress, **kw: Any) -> Any:
    """``--history``: each PATH is a git repository; see ``veritensor_fast.sources.git``."""
    from veritensor_fast.history import scan_history
    from veritensor_fast.sources.git import GitError

    if kw["all_objects"] and (kw["since"] or kw["rev_range"] or kw["branches"]):
        raise _fail("--all-objects scans the whole object database; it cannot be combined with --since, "
                    "--range or --branch")
    if kw["since"] and kw["rev_range"]:
        raise _fail("give either --since or --range, not both")
    if kw["new_only"] and not kw["use_datastore"]:
        raise _fail("--new-only needs the datastore (drop --no-datastore)")
    try:
        return scan_history([os.fspath(p) for p in paths], options, jobs=jobs or None, on_progress=prog,
                            wrap_source=prog.counting, **kw)
    except GitError as exc:
        raise _fail(str(exc)) from None


@rules_app.command("list")
def rules_list() -> None:
    """List every rule: id, severity, name."""
    from veritensor_fast.models.rule_ids import MODEL_RULES
    from veritensor_fast.rules import load_rules

    for r in load_rules().rules:
        typer.echo(f"{r.id:32} {r.severity:9} {r.name}{'  (--strict-secrets)' if r.strict_only else ''}")
    for rid, (sev, what) in MODEL_RULES.items():
        typer.echo(f"{rid:32} {sev:9} {what}")


@rules_app.command("check")
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
        raise _fail(str(exc)) from None
    bad = 0
    for line in check(rs):
        bad += 1
        typer.echo(escape_text(line))
    typer.echo(f"{len(rs.rules)} rules checked, {bad} failure(s)")
    raise typer.Exit(1 if bad else 0)


@app.command()
def explain(rule_id: Annotated[str, typer.Argument(help="A rule id from a report or `rules list`.")]) -> None:
    """What a rule's finding means: what the credential grants, how to revoke and rotate it, the provider's
    pages (model rules: what the file can do and what to do about it)."""
    from veritensor_fast.explain import explain as lookup
    from veritensor_fast.explain import render

    try:
        e = lookup(rule_id)
    except KeyError as exc:
        raise _fail(exc.args[0]) from None
    typer.echo(render(e), nl=False)


baseline_app = typer.Typer(no_args_is_help=True, help="Record known findings so scans report only new ones.")
app.add_typer(baseline_app, name="baseline")


@baseline_app.command("create")
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
    from veritensor_fast.baseline import Baseline
    from veritensor_fast.engine import EngineError, ScanResult
    from veritensor_fast.engine import scan as run_scan
    from veritensor_fast.sources.fs import FileSource

    _check_jobs(jobs)
    eff = _settings(paths, False, config, no_config, exclude=normalise_excludes(exclude or ()),
                    rules=[str(p) for p in rules or ()],
                    disabled_rules=disable_rule or (), strict_secrets=strict_secrets, jobs=jobs)
    source = FileSource([os.fspath(p) for p in paths], eff.excludes, eff.follow_symlinks, eff.max_file_size,
                        default_excludes=default_excludes)
    try:
        result = run_scan(source, eff.options, jobs=eff.jobs or None)
    except EngineError as exc:
        raise _fail(str(exc)) from None
    bl = Baseline.from_findings(result.findings)
    try:
        bl.write(output)
    except OSError as exc:
        raise _fail(f"cannot write {output}: {exc.strerror}") from None
    typer.echo(f"wrote {len(bl.entries)} known finding(s) to {output}", err=True)
    from veritensor_fast.redaction import escape_text, redact_result

    for e in redact_result(result).errors:
        typer.echo(escape_text(f"  could not scan {e.path}: {e.reason} ({e.kind})"), err=True)
    # findings are what a baseline records: only an incomplete scan fails
    raise typer.Exit(exit_code(ScanResult([], result.errors)))


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
