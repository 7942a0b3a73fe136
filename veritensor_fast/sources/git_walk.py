"""One history walk for a full sweep: provenance's ``git log --raw`` is also the blob listing (parent side).

A full sweep used to walk the history twice: ``rev-list --objects`` to list every reachable blob with a path,
then, once findings existed, ``git log --raw -z`` for provenance (which commit first added each blob at each
path). Each walk costs git ~0.7 CPU-s on a 6k-commit, 60k-blob history. Here the log pass is started once, at
the start of the sweep (``GitHistorySource.start``); its output (a temporary file, ``git_spool``) is read twice:
as the listing, while git writes it (``log_names``), and after the scan by provenance (``git_provenance``).

Why the log sees every blob ``rev-list --objects`` lists from commits: a blob B at path P in the tree of a
walked commit C was put there by the first-parent diff of some commit on C's first-parent chain (a root commit's
diff, ``--root``, adds its whole tree), and a full sweep walks every commit of that chain. Gitlinks (mode
160000) are submodule commits, not blobs: skipped, as ``rev-list`` skips them. What the log cannot see is
listed apart (``extra_names``, a few small git calls): refs (or annotated tags) naming a tree or a blob, and
the annotated tags themselves, by ``rev-list`` itself, over just those tips, as the full walk names them.

Which path a blob is listed at when it appears at several: the first the log shows it added at, that is the
newest commit adding it (in the walk's order; within a commit, git's path order), unless a ref names it
through a tree (the path in that tree, as ``rev-list`` names objects under refs first). ``rev-list`` named the
path of the newest commit *containing* it. On a linear history the two differ only for a blob one commit holds
at two paths at once (a file copied, not moved); with branches, also for a file renamed on one branch while a
newer commit on another still holds it at the old path. Provenance is then looked up for the listed path.

Used for full sweeps of every ref (the default scope, ``--all-objects`` too); ``--branch``, ``--since``,
``--range`` and incremental sweeps keep ``rev-list --objects`` (with an excluded side, the log's diffs would
also list blobs re-added inside the range that the excluded commits already had).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain

from veritensor_fast import gitcmd
from veritensor_fast.findings import display_path
from veritensor_fast.gitcmd import GitError
from veritensor_fast.sources.git_list import git_input
from veritensor_fast.sources.git_spool import Spool

_NOT_BLOB = (b"160000", b"040000", b"000000")  # a gitlink (submodule commit), a tree, a deletion


def log_names(tokens: Iterable[bytes]) -> Iterator[tuple[str, str]]:
    """(blob id, display path) of every blob a ``git log --raw -z --no-renames`` pass (``git_provenance.LOG_ARGS``)
    shows added or changed, in its order (a blob may come several times)."""
    it = iter(tokens)
    path_of = _display
    for tok in it:
        if tok[:1] != b":":
            tok = tok.lstrip(b"\n")
            if tok[:1] != b":":
                continue  # a commit's format line
        path = next(it, None)
        if path is None:
            break
        f = tok.split()
        if len(f) >= 5 and f[1] not in _NOT_BLOB and f[4] != b"D" and f[3].strip(b"0"):
            yield f[3].decode("ascii", "replace"), path_of(path)


_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


def _display(path: bytes) -> str:
    """``display_path(os.fsdecode(path))`` in one call for the usual case: a UTF-8 file system encoding and a
    path that is valid UTF-8 and holds no backslash (strictly decoded, it needs no escaping)."""
    if _FS_ENCODING == "utf-8" and b"\\" not in path:
        try:
            return path.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return display_path(path.decode(_FS_ENCODING, _FS_ERRORS))


def spool_tokens(spool: Spool, follow: bool = False) -> Iterator[bytes]:
    """The NUL-separated tokens of a log ``Spool``'s output: as git writes them (``follow``), else once it has
    finished. Read with ``pread`` from the start: the file offset is git's, and provenance reads the file again.
    Read a chunk at a time and flattened by ``itertools.chain``: no generator step per token."""
    return chain.from_iterable(spool.chunks(b"\0", follow))


def _lines(out: str) -> list[tuple[str, str]]:
    """``rev-list --objects`` lines -> (oid, path)."""
    return [(oid, path) for oid, _, path in (ln.partition(" ") for ln in out.splitlines()) if oid]


def extra_names(repo: str, tips: Sequence[str]) -> tuple[list[tuple[str, str]], str | None]:
    """(oid, name) of what a full ``rev-list --objects --filter=object:type=blob`` walk names outside the commits'
    trees, in its format: the blobs under tips that are (or whose tags peel to) a tree or a blob, and every
    annotated tag on the tips (named by its tag name; nested tags too). Lists only those tips, without walking any
    history: ``rev-list`` over the tips that peel to a tree or blob, and ``--filter=object:type=tag --no-walk``
    (no tree is read) over the tags that peel to a commit. Also git's error if one failed (as the walk would)."""
    tips = [t for t in tips if t and not t.startswith("^")]
    if not tips:
        return [], None
    try:
        out = git_input(repo, "".join(f"{t}\n{t}^{{}}\n" for t in tips), "cat-file",
                        "--batch-check=%(objectname) %(objecttype)").splitlines()
    except GitError as exc:
        return [], str(exc)
    deep: list[str] = []
    tags: list[str] = []
    for i, tip in enumerate(tips):
        own = out[2 * i].split() if 2 * i < len(out) else []
        peeled = out[2 * i + 1].split() if 2 * i + 1 < len(out) else []
        if len(own) == 2 and own[1] == "commit":
            continue  # the log walks it
        if len(own) == 2 and own[1] == "tag" and len(peeled) == 2 and peeled[1] == "commit":
            tags.append(tip)
        else:
            deep.append(tip)  # a tree, a blob, a tag of one, or missing (git reports it, as the walk would)
    names: list[tuple[str, str]] = []
    try:  # the tags first: a tree missing under a deep tip (a partial clone, corruption) must not lose them
        if tags:
            names += _lines(git_input(repo, "\n".join(tags) + "\n", "rev-list", "--objects",
                                      "--filter=object:type=tag", "--no-walk=unsorted", "--stdin"))
        if deep:
            req = "\n".join(deep) + "\n"
            args = ("rev-list", "--objects", "--filter=object:type=blob", "--no-walk=unsorted", "--stdin")
            try:
                names += _lines(git_input(repo, req, *args))
            except GitError:  # a blobless partial clone: a blob it lacks fails the walk (it may not be fetched)
                more = _unfetched(repo, deep, req, args)
                if more is None:  # something else is missing or damaged
                    raise
                names += more
    except GitError as exc:
        return names, str(exc)
    return names, None


def _unfetched(repo: str, tips: Sequence[str], req: str, args: tuple[str, ...]) -> list[tuple[str, str]] | None:
    """The walk of ``args`` when only blobs are missing (a blobless partial clone): (oid, path) of the blobs there
    and of the missing ones (``--missing=print`` names them without a path and without fetching; ``ls-tree -r``,
    which reads trees only, gives their paths). None when a tree is missing too (``ls-tree`` fails), or a missing
    object is not a blob of those trees: the walk failed."""
    got = _lines(git_input(repo, req, *args, "--missing=print"))
    missing = {oid[1:] for oid, _ in got if oid.startswith("?")}
    out = [(oid, path) for oid, path in got if not oid.startswith("?")]
    for tip in tips:
        try:
            listing = gitcmd.run(repo, ["ls-tree", "-r", "-z", "--full-tree", tip])
        except GitError:
            return None
        for rec in listing.split(b"\0"):
            head, _, path = rec.partition(b"\t")
            oid = head.rsplit(b" ", 1)[-1].decode("ascii", "replace")
            if oid in missing:
                missing.discard(oid)
                out.append((oid, path.decode("utf-8", "surrogateescape")))
    return None if missing else out


def walk_names(extras: Sequence[tuple[str, str]], log: Spool, follow: bool = False) -> Iterator[tuple[str, str]]:
    """Every (oid, display path) of the sweep in the listing's order: what ``extra_names`` found (``rev-list``
    names objects under non-commit tips before any commit's tree), then the log's blobs."""
    for oid, path in extras:
        yield oid, display_path(path)
    yield from log_names(spool_tokens(log, follow))


def reachable(extras: Sequence[tuple[str, str]], log: Spool) -> dict[str, str]:
    """oid -> path of every listed object once git has finished (``git_list.parse_reachable``'s rule: the first
    name, unless it is empty and a later one is not)."""
    out: dict[str, str] = {}
    for oid, path in walk_names(extras, log):
        if oid not in out or (path and not out[oid]):
            out[oid] = path
    return out
