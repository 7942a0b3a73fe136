"""--staged and --since-commit: which repository and which range of changes a hook scan reads (pre-commit's
pre-commit and pre-push stages), and the help printed when a commit is blocked."""

from __future__ import annotations

import os
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


def pre_push_range(staged: bool, since: str | None) -> tuple[bool, bool, str | None, str]:
    """Under pre-commit's ``pre-push`` stage (it sets PRE_COMMIT_FROM_REF / PRE_COMMIT_TO_REF), ``--staged``
    scans the commits being pushed (FROM..TO) instead of the index, which is empty at push time.
    Returns (git_changes, staged, since, until)."""
    frm, to = os.environ.get("PRE_COMMIT_FROM_REF"), os.environ.get("PRE_COMMIT_TO_REF")
    if staged and since is None and frm and to and frm.strip("0"):
        return True, False, frm, to
    return staged or since is not None, staged, since, "HEAD"



def git_changes_source(paths: list[Path], staged: bool, since: str | None, eff: Any, until: str = "HEAD") -> Any:
    """``--staged`` / ``--since-commit``: the repository is the one holding the first PATH (else the current
    directory); PATHs limit the scan to those pathspecs."""
    from veritensor_fast.sources.staged import GitChangesError, GitChangesSource

    repo = os.fspath(paths[0]) if paths else os.getcwd()
    try:
        return GitChangesSource(repo, staged=staged, since=since, until=until,
                                pathspecs=[os.path.abspath(p) for p in paths], excludes=eff.excludes,
                                max_file_size=eff.max_file_size)
    except GitChangesError as exc:
        raise fail(str(exc)) from None

