"""Incremental sweeps: what the last finished sweep of a scope saw, and whether the current refs extend it.

The ref tips of the last finished sweep are stored in the datastore; the next sweep walks only
``<current tips> --not <previous tips>`` (a superset of the new blobs: git's exclusion is boundary based) when
``advance`` says every previous tip is still reached; a tip that is gone (gc) or no longer reachable (history
rewritten, ref deleted) means a full listing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from veritensor_fast.gitcmd import GitError
from veritensor_fast.sources.git_list import git_input


def scope_key(memo: str, excludes: Sequence[str], max_file_size: int) -> str:
    """The datastore scope of a default-scope sweep: the memo key plus what changes which blobs are listed."""
    return hashlib.sha256(repr((memo, tuple(excludes), max_file_size)).encode(
        "utf-8", "surrogateescape")).hexdigest()[:24]


def walk_input(tips: Sequence[str] | None, revs: Sequence[str], negatives: Sequence[str] | None = None
               ) -> tuple[list[str], bytes | None]:
    """Revision arguments and ``--stdin`` input for rev-list/log: the tracked tips (minus ``negatives``) or,
    when tips are not tracked (``None``), the plain revision arguments."""
    if tips is None:
        return list(revs), None
    neg = list(negatives or ())
    skip = set(neg)
    lines = [t for t in tips if t not in skip] + ["^" + t for t in neg]
    return ["--stdin"], ("\n".join(lines) + "\n").encode("ascii")


def advance(repo: str, tips: Sequence[str], prev: Sequence[str]) -> str | None:
    """None if everything ``prev`` reached is still reached by the current tips (refs only moved forward
    or were added); otherwise why not (a previous tip was garbage-collected, or history was rewritten or
    refs deleted so that commits dropped out of scope)."""
    cur = set(tips)
    dropped = [t for t in prev if t not in cur]
    why: str | None = None
    if dropped:
        lines = dropped + [t + "^{}" for t in dropped]
        out = git_input(repo, "\n".join(lines) + "\n", "cat-file",
                         "--batch-check=%(objectname) %(objecttype)").splitlines()
        n = len(dropped)
        if len(out) != 2 * n or any(ln.endswith(" missing") for ln in out[:n]):
            why = "a previous tip no longer exists"
        elif any(not ln.endswith(" commit") for ln in out[n:]):
            why = "a previous non-commit tip was removed"
        else:
            stdin = "".join(f"{t}\n" for t in dropped) + "".join(f"^{t}\n" for t in cur)
            try:
                count = int(git_input(repo, stdin, "rev-list", "--count", "--stdin").strip() or 0)
            except (GitError, ValueError):
                count = -1
            if count != 0:
                why = "history rewritten or refs deleted"
    return why

