"""--staged and --since-commit: which repository and which range of changes a hook scan reads (pre-commit's
pre-commit and pre-push stages), and the help printed when a commit is blocked."""

from __future__ import annotations

import os
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


def pre_push_range(staged: bool, since: str | None, env: Mapping[str, str] | None = None) -> ChangeRange:
    """Under pre-commit's ``pre-push`` stage, ``--staged`` scans the commits being pushed instead of the index
    (which is empty at push time). pre-commit sets PRE_COMMIT_FROM_REF / PRE_COMMIT_TO_REF: FROM..TO. On a push
    whose branch reaches a root commit the remote lacks (a first push) it runs hooks with ``--all-files`` and
    no range, setting only PRE_COMMIT_LOCAL_BRANCH / PRE_COMMIT_REMOTE_NAME (pre-commit's ``hook_impl``
    ``_pre_push_ns``): then the local branch's commits no ref of that remote reaches (all of history when the
    remote has nothing). pre-commit names only the first pushed ref with new commits, so the annotated tags on
    the pushed commits (what ``git push --follow-tags`` sends along) are scanned too."""
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
                                push_tags=rng.push_tags,
                                pathspecs=[os.path.abspath(p) for p in paths], excludes=eff.excludes,
                                max_file_size=eff.max_file_size)
    except GitChangesError as exc:
        raise fail(str(exc)) from None
