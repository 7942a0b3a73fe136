"""Listing a repository's history with git plumbing (parent side): revisions, tips, reachable blobs, sizes.

Every command goes through ``veritensor_fast.gitcmd`` (hardened). Object ids are hex and one per line; paths
come from ``rev-list --objects``, whose names git cuts at a newline (its own output format, no ``-z`` in the
git versions we support): exact paths are restored from the NUL-separated provenance pass
(``git_provenance``).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TypeVar

from veritensor_fast import gitcmd, gitloc
from veritensor_fast.findings import display_path
from veritensor_fast.gitcmd import GitError
from veritensor_fast.sources.git_spool import Spool

T = TypeVar("T")


def git_text(repo: str, *args: str, check: bool = True) -> str:
    """Run a short git command and return its stdout (text). Raises ``GitError`` with git's last error line."""
    return gitcmd.run(repo, args, check=check).decode("utf-8", "surrogateescape")


def git_input(repo: str, stdin: str, *args: str) -> str:
    """Run a git command with ``stdin`` as input; raises ``GitError`` like ``git_text``."""
    return gitcmd.run(repo, args, stdin=stdin.encode("ascii")).decode("utf-8", "surrogateescape")


def check_rev(rev: str, what: str) -> str:
    if not rev or rev.startswith("-") or any(c in rev for c in "\n\0"):
        raise GitError(f"invalid {what}: {rev!r}")
    return rev


_UNQUOTE = {"a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def unquote_path(p: str) -> str:
    """Undo git's C-style quoting of a path (``"a\\tb"``); octal escapes are bytes (UTF-8 or escaped)."""
    if not (len(p) >= 2 and p[0] == '"' and p[-1] == '"'):
        return p
    out = bytearray()
    s = p[1:-1]
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n in "0123" and i + 3 < len(s) + 0 and all(x in "01234567" for x in s[i + 1:i + 4]):
                out.append(int(s[i + 1:i + 4], 8))
                i += 4
                continue
            out += _UNQUOTE.get(n, n).encode("utf-8", "surrogateescape")
            i += 2
            continue
        out += c.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def verify_commit(repo: str, rev: str, what: str) -> None:
    """Raise ``GitError`` naming ``rev`` unless it resolves to a commit of this repository."""
    check_rev(rev, what)
    if ".." in rev or not git_text(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}",
                                   check=False).strip():
        raise GitError(f"{what}: unknown revision {rev!r} (not a commit in {display_path(gitloc.path_of(repo))})")


def rev_args(repo: str, rev_range: str | None, branches: Sequence[str], since: str | None) -> list[str]:
    """The revision arguments of a sweep's scope (validated; ``GitError`` names a bad one)."""
    if rev_range:
        r = check_rev(rev_range, "--range")
        sep = "..." if "..." in r else ".."
        left, found, right = r.partition(sep)
        if not found:
            raise GitError(f"--range must look like A..B (or A...B), got {r!r}")
        if not left and not right:
            raise GitError(f"--range {r!r} names no revision: give A..B (an empty side means HEAD)")
        for part in (left, right):
            if part:
                verify_commit(repo, part, "--range")
        return [r]
    tips: list[str] = []
    if branches:
        for name in branches:
            check_rev(name, "--branch")
            for cand in (f"refs/heads/{name}", f"refs/remotes/{name}", f"refs/tags/{name}", name):
                if git_text(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", cand, check=False).strip():
                    tips.append(cand)
                    break
            else:
                raise GitError(f"unknown branch {name!r}")
    else:
        tips.append("--all")
        if git_text(repo, "rev-parse", "--verify", "--quiet", "refs/stash", check=False).strip():
            # older stash entries live only in the stash reflog
            tips.extend(git_text(repo, "log", "-g", "--format=%H", "refs/stash", check=False).split())
    if since:
        verify_commit(repo, check_rev(since, "--since"), "--since")
        tips.append("^" + since)
    return tips


def current_tips(repo: str, revs: Sequence[str]) -> list[str]:
    """Object ids of everything ``--all`` walks (every ref, HEAD, other worktrees' HEADs) and the stash
    reflog: enumerated once, before the walk, and walked exactly (so what is stored was walked)."""
    tips = set(git_text(repo, "for-each-ref", "--format=%(objectname)").split())
    head = git_text(repo, "rev-parse", "--verify", "--quiet", "HEAD", check=False).strip()
    if head:
        tips.add(head)
    for line in git_text(repo, "worktree", "list", "--porcelain", "-z", check=False).split("\0"):
        if line.startswith("HEAD "):
            tips.add(line[5:].strip())
    tips.update(r for r in revs if r != "--all")  # stash reflog entries
    return sorted(t for t in tips if t.strip("0"))  # an unborn HEAD is listed as the null id: nothing to walk


def walks_nothing(stdin: bytes | None) -> bool:
    """True for a ``--stdin`` revision list with no positive revision (no new tips: nothing to walk)."""
    return stdin is not None and not any(not ln.startswith("^") for ln in stdin.decode().split())


def _failure(err: IO[bytes], rc: int) -> str:
    err.seek(0)
    msg = err.read().decode("utf-8", "replace").strip().splitlines()
    return msg[-1] if msg else f"git rev-list failed with status {rc}"


def reachable_spool(repo: str, args: Sequence[str], stdin: bytes | None) -> Spool | None:
    """Start ``rev-list --objects`` (blobs only) in the background; None when the walk covers nothing."""
    if walks_nothing(stdin):
        return None
    return Spool(repo, ["rev-list", "--objects", "--filter=object:type=blob", *args], stdin)


def parse_reachable(spool: Spool | None) -> tuple[dict[str, str], str | None]:
    """oid -> path ('' if none) of every blob a ``reachable_spool`` reported; and git's error if it failed."""
    out: dict[str, str] = {}
    if spool is None:
        return out, None
    for raw in spool.lines():
        line = raw.decode("utf-8", "surrogateescape")
        oid, _, path = line.partition(" ")
        if oid not in out or (path and not out[oid]):
            out[oid] = display_path(path)  # reports must stay valid UTF-8; the key is the oid
    return out, spool.failure()


def _drain(spool: Spool | None, parse: Callable[[Spool | None], T]) -> T:
    """Wait for ``spool``, parse what it listed, and close it (the listings run in the foreground)."""
    try:
        return parse(spool)
    finally:
        if spool is not None:
            spool.close()


def reachable(repo: str, args: Sequence[str], stdin: bytes | None) -> tuple[dict[str, str], str | None]:
    """oid -> path ('' if none) of every blob rev-list reports; and git's error if it failed."""
    return _drain(reachable_spool(repo, args, stdin), parse_reachable)


def commits_spool(repo: str, args: Sequence[str], stdin: bytes | None) -> Spool | None:
    """Start listing the ids of the commits the walk covers in the background (None: the walk covers nothing)."""
    if walks_nothing(stdin):
        return None
    return Spool(repo, ["rev-list", *args], stdin)


def parse_commits(spool: Spool | None) -> list[str]:
    """The commit ids a ``commits_spool`` listed (empty if the walk failed: that is reported by the blob
    listing)."""
    if spool is None or spool.wait() != 0:
        return []
    return spool.out.read().decode("ascii", "replace").split()


def commits(repo: str, args: Sequence[str], stdin: bytes | None) -> list[str]:
    """Ids of the commits the walk covers (empty if the walk fails: that is reported by the blob listing)."""
    return _drain(commits_spool(repo, args, stdin), parse_commits)


def sizes(repo: str, oids: Sequence[str]) -> Iterator[tuple[str, str, int]]:
    """(oid, type, size) of ``oids`` (type 'missing' if unreadable), in the given order."""
    if not oids:
        return
    out = git_input(repo, "\n".join(oids) + "\n", "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)")
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            yield parts[0], parts[1], int(parts[2])
        elif len(parts) == 2:
            yield parts[0], parts[1], -1


def typed(repo: str, oids: Sequence[str]) -> list[tuple[str, str, int]]:
    """``sizes`` of ``oids``, in a partial clone too: there cat-file dies lazily fetching a missing blob (no fetch
    is allowed), and the database's own listing (which never fetches) is asked instead: what it lacks is left
    out (missing)."""
    try:
        return list(sizes(repo, oids))
    except GitError:
        want = set(oids)
        return [t for t in pack_order(repo) if t[0] in want]


#: Also the delta base of each object (the null id for one stored whole: ``git_overlap`` reads those early).
PACK_ORDER = ["cat-file", "--batch-all-objects", "--unordered",
              "--batch-check=%(objectname) %(objecttype) %(objectsize) %(deltabase)"]


def parse_pack_order(spool: Spool) -> Iterator[tuple[str, str, int]]:
    """(oid, type, size) of every object a ``Spool(repo, PACK_ORDER)`` listed, in pack order."""
    for raw in spool.lines():
        parts = raw.split()
        if len(parts) >= 3:
            yield parts[0].decode(), parts[1].decode(), int(parts[2])
        elif len(parts) == 2:
            yield parts[0].decode(), parts[1].decode(), -1


def reachable_in_pack_order(spool: Spool, reachable: dict[str, str]) -> Iterator[tuple[str, str, int, str]]:
    """(oid, type, size, path) of the objects of ``reachable`` that a ``Spool(repo, PACK_ORDER)`` listed as blobs
    or as missing, in pack order (``parse_pack_order`` restricted to them, without decoding the lines of trees
    and commits: half of the listing)."""
    for raw in spool.lines():
        parts = raw.split()
        if len(parts) >= 3:
            if parts[1] == b"blob":
                oid = parts[0].decode()
                path = reachable.get(oid)
                if path is not None:
                    yield oid, "blob", int(parts[2]), path
        elif len(parts) == 2:
            oid = parts[0].decode()
            if oid in reachable:
                yield oid, parts[1].decode(), -1, reachable[oid]


def pack_order(repo: str) -> Iterator[tuple[str, str, int]]:
    """(oid, type, size) of every object in the database, in pack order (type 'missing' if unreadable)."""
    spool = Spool(repo, PACK_ORDER)
    try:
        yield from parse_pack_order(spool)
    finally:
        spool.close()


def stream(repo: str, args: Sequence[str], stdin: bytes | None, on_failure: Callable[[str], None]
           ) -> Iterator[tuple[str, str, int, str]]:
    """(oid, type, size, path) of every object ``rev-list --objects`` walks (blobs and commits; trees are
    filtered out), piped through one ``cat-file --batch-check``: items flow while the walk goes on.
    A failed walk (corrupt commit or tree) calls ``on_failure`` with git's message."""
    with tempfile.TemporaryFile() as err:
        rl = gitcmd.popen(repo, ["rev-list", "--objects", "--filter=object:type=blob", *args],
                          stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL, stderr=err)
        gitcmd.feed(rl, stdin)
        bc = gitcmd.popen(repo, ["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize) %(rest)"],
                          stdin=rl.stdout)
        assert rl.stdout is not None and bc.stdout is not None
        rl.stdout.close()
        try:
            for raw in bc.stdout:
                parts = raw.rstrip(b"\n").split(b" ", 3)
                if len(parts) >= 3:
                    path = display_path(parts[3].decode("utf-8", "surrogateescape")) if len(parts) > 3 else ""
                    yield parts[0].decode("ascii", "replace"), parts[1].decode(), int(parts[2]), path
                elif len(parts) == 2:  # "<oid> missing": absent, or too corrupt to read its header
                    yield parts[0].decode("ascii", "replace"), "missing", -1, ""
        finally:
            gitcmd.stop(bc)
            rc = rl.wait()
            if rc != 0:
                on_failure(_failure(err, rc))


def shallow_cuts(repo: str) -> list[str]:
    """The commits a shallow clone's history stops at."""
    shallow_file = os.path.join(gitloc.path_of(repo), git_text(repo, "rev-parse", "--git-path", "shallow").strip())
    try:
        with open(shallow_file, encoding="ascii", errors="replace") as fh:
            return [ln.strip() for ln in fh if ln.strip()]
    except OSError:
        return []
