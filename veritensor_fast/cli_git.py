"""--staged and --since-commit: which repository and which range of changes a hook scan reads (pre-commit's
pre-commit and pre-push stages), and the help printed when a commit is blocked."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veritensor_fast.cli_common import fail

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


@dataclass(frozen=True)
class ChangeRange:
    """What a ``--staged`` / ``--since-commit`` scan reads (see ``veritensor_fast.sources.staged``)."""

    git_changes: bool  # a git change scan at all (else a path scan)
    staged: bool  # the index
    since: str | None = None  # the commits in since..until
    until: str = "HEAD"
    pushed: tuple[str, str] | None = None  # pre-push without a range: (local ref, remote name)
    push_tags: bool = False  # pre-push: the annotated tags on the pushed commits too (``--follow-tags``)
    push_lines: tuple[str, tuple[tuple[str, str], ...]] | None = None  # --pre-push: (remote, (local, remote oid)s)


_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_MAX_PUSH_INPUT = 16 << 20  # git's list of pushed refs: ~100 bytes a ref
#: Seconds git's pre-push hook input may take to end (git writes it whole at once);
#: ``VERITENSOR_FAST_PUSH_INPUT_SECONDS`` sets another bound.
PUSH_INPUT_SECONDS = 10.0


def _push_input() -> str:
    """Standard input, whole, as git's pre-push hook gets it: at most ``_MAX_PUSH_INPUT`` bytes, ended within
    ``PUSH_INPUT_SECONDS`` (git writes the list and closes it at once; an input that never ends, a terminal
    multiplexer's pipe or a hook run by hand, is exit 2, not a hang). Bytes, decoded leniently: a ref name may be
    any bytes (``caf\xe9`` under a strict UTF-8 locale was a traceback and exit 1); only the object ids are read."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test runner's stand-in): read it as it is
        raw = getattr(sys.stdin, "buffer", None)
        data: Any = raw.read(_MAX_PUSH_INPUT + 1) if raw is not None else sys.stdin.read(_MAX_PUSH_INPUT + 1)
    else:
        try:
            seconds = float(os.environ.get("VERITENSOR_FAST_PUSH_INPUT_SECONDS", "") or PUSH_INPUT_SECONDS)
        except ValueError:
            raise fail("VERITENSOR_FAST_PUSH_INPUT_SECONDS is not a number of seconds") from None
        data = _read_within(fd, _MAX_PUSH_INPUT + 1, seconds)
    if len(data) > _MAX_PUSH_INPUT:
        raise fail(f"--pre-push: more than {_MAX_PUSH_INPUT >> 20} MiB on standard input; not a pre-push hook's")
    return data.decode("utf-8", "surrogateescape") if isinstance(data, bytes) else data


def _read_within(fd: int, limit: int, seconds: float) -> bytes:
    """Up to ``limit`` bytes of ``fd``, to its end; exit 2 when it has not ended within ``seconds``."""
    import select
    import time

    deadline = time.monotonic() + seconds
    out = bytearray()
    while len(out) < limit:
        left = deadline - time.monotonic()
        ready = select.select([fd], [], [], max(left, 0))[0] if left > 0 else []
        if not ready:
            raise fail(f"--pre-push: standard input did not end within {seconds:g} s (git closes it once it has "
                       "listed the pushed refs); run it from a pre-push hook")
        try:
            chunk = os.read(fd, min(1 << 16, limit - len(out)))
        except OSError as exc:
            raise fail(f"--pre-push: cannot read standard input: {exc.strerror}") from None
        if not chunk:
            break
        out += chunk
    return bytes(out)


def read_push_lines(text: str) -> tuple[tuple[str, str], ...]:
    """git's pre-push hook input, ``<local ref> <local oid> <remote ref> <remote oid>`` per line (githooks(5)):
    the (local oid, remote oid) of each pushed ref; a deletion (local oid all zeros) sends nothing and is left
    out. A line is never echoed (a ref name may hold a token)."""
    out = []
    for n, line in enumerate(text.split("\n"), 1):  # (not splitlines: a ref name may hold U+2028, U+0085)
        if not line.strip():
            continue
        parts = line.rsplit(" ", 3)
        if len(parts) != 4 or not (_OID.fullmatch(parts[1]) and _OID.fullmatch(parts[3])):
            raise fail(f"--pre-push: line {n} of standard input is not git's pre-push hook input "
                       "(<local ref> <local oid> <remote ref> <remote oid>)")
        if parts[1].strip("0"):
            out.append((parts[1], parts[3]))
    return tuple(out)


def pre_push_range(staged: bool, since: str | None, env: Mapping[str, str] | None = None,
                   pre_push: str | None = None) -> ChangeRange:
    """Under pre-commit's ``pre-push`` stage, ``--staged`` scans the commits being pushed instead of the index
    (which is empty at push time). pre-commit sets PRE_COMMIT_FROM_REF / PRE_COMMIT_TO_REF: FROM..TO. On a push
    whose branch reaches a root commit the remote lacks (a first push) it runs hooks with ``--all-files`` and
    no range, setting only PRE_COMMIT_LOCAL_BRANCH / PRE_COMMIT_REMOTE_NAME (pre-commit's ``hook_impl``
    ``_pre_push_ns``): then the local branch's commits no ref of that remote reaches (all of history when the
    remote has nothing). pre-commit names only the first pushed ref with new commits, so the annotated tags on
    the pushed commits (what ``git push --follow-tags`` sends along) are scanned too."""
    if pre_push is not None:  # a plain git pre-push hook: git's own list of pushed refs on stdin
        if staged or since is not None:
            raise fail("--pre-push cannot be combined with --staged or --since-commit")
        if sys.stdin is None or sys.stdin.isatty():
            raise fail("--pre-push reads git's pre-push hook input on standard input: run it from a pre-push hook")
        return ChangeRange(True, False, push_lines=(pre_push, read_push_lines(_push_input())))
    env = os.environ if env is None else env
    frm, to = env.get("PRE_COMMIT_FROM_REF"), env.get("PRE_COMMIT_TO_REF")
    if staged and since is None and frm and to and frm.strip("0"):
        return ChangeRange(True, False, frm, to, push_tags=bool(env.get("PRE_COMMIT_REMOTE_NAME")))
    local, remote = env.get("PRE_COMMIT_LOCAL_BRANCH"), env.get("PRE_COMMIT_REMOTE_NAME")
    if staged and since is None and not (frm or to) and local and remote:
        return ChangeRange(True, False, pushed=(local, remote), push_tags=True)
    return ChangeRange(staged or since is not None, staged, since)


def git_changes_source(paths: list[Path], rng: ChangeRange, eff: Any) -> Any:
    """``--staged`` / ``--since-commit`` / pre-push: the repository is the one holding the first PATH (else the
    current directory); PATHs limit the scan to those pathspecs."""
    from veritensor_fast.sources.staged import GitChangesError, GitChangesSource

    repo = os.fspath(paths[0]) if paths else os.getcwd()
    try:
        return GitChangesSource(repo, staged=rng.staged, since=rng.since, until=rng.until, pushed=rng.pushed,
                                push_tags=rng.push_tags, push_lines=rng.push_lines,
                                pathspecs=[os.path.abspath(p) for p in paths], excludes=eff.excludes,
                                max_file_size=eff.max_file_size)
    except GitChangesError as exc:
        raise fail(str(exc)) from None
