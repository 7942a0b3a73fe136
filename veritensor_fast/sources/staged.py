"""Git change sources for hooks and CI: what is staged (``--staged``) and what changed since a commit
(``--since-commit REV``). They yield ``blob`` items (``key`` = object id, ``origin`` = repository top-level)
read by ``veritensor_fast.sources.git.BlobReader``; only the changed blobs are listed and read.

- ``--staged``: the blobs in the index that differ from ``HEAD`` (added, modified or type-changed regular
  files), i.e. exactly the content ``git commit`` would record, not the working-tree file.
- ``--since-commit REV``: every blob added or modified by any commit in ``REV..HEAD`` (so a secret added and
  removed again inside the range is still found), merge commits included (their own changes, as ``git log -c``
  shows them). Uncommitted changes are not included; add ``--staged`` to scan the index too.
- pre-push with no range (``pushed=(local ref, remote name)``): pre-commit gives no FROM/TO when the pushed
  branch reaches a root commit the remote lacks (a first push). The commits being pushed are then the local
  ref's commits that no remote-tracking ref of that remote reaches (``refs/remotes/NAME/*``, as pre-commit's
  own ``--remotes=NAME``): all of history when the remote has nothing; each is scanned as ``--since-commit``.
- a pushed annotated tag (pre-push's TO is a tag object, or the pushed local ref is ``refs/tags/NAME``): the tag
  object, and each tag it nests, is scanned as ``--history`` scans one (name, tagger, message, signature,
  a ``commit`` item at ``tag:<id>``), besides the commits it brings; tags FROM already names are not.

Report paths are relative to the repository top-level. Symlinks and submodules are skipped (their "content" is
a path or a commit id). Each (object id, path) pair is scanned once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from veritensor_fast import gitcmd, gitloc
from veritensor_fast.findings import Finding, Item, ScanError, display_path
from veritensor_fast.sources.excludes import excluded_parts as excluded
from veritensor_fast.sources.git_objects import commit_path, is_commit_path, tag_path

REGULAR_MODES = frozenset({"100644", "100755", "100664"})
_ZERO = "0" * 40
#: Below these totals the CLI scans in-process unless --jobs is given.
SMALL_ITEMS = 256
SMALL_BYTES = 16 << 20


class GitChangesError(gitcmd.GitError):
    """Git could not list the changes (not a repository, unknown revision, git missing)."""


def _git(repo: str, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        return gitcmd.run(repo, args, stdin=stdin)
    except gitcmd.GitError as exc:
        if str(exc).startswith("cannot run git"):
            raise GitChangesError(f"{exc} (git is needed for --staged / --since-commit)") from None
        raise GitChangesError(f"git {args[0]} failed: {exc}") from None


def repo_toplevel(path: str | os.PathLike[str]) -> str:
    """The top-level directory of the work tree containing ``path`` (a file or directory)."""
    return located(path)[0]


def located(path: str | os.PathLike[str]) -> tuple[str, str, list[str]]:
    """``(top-level directory, gitloc target there, location variables dropped)`` for the work tree containing
    ``path`` (a file or directory): git's location variables count only where they describe that repository
    (``gitloc.locate``: a hook's ``GIT_INDEX_FILE`` does, another repository's ``GIT_DIR`` does not)."""
    p = os.fspath(path)
    d = p if os.path.isdir(p) else (os.path.dirname(os.path.abspath(p)) or ".")
    target, dropped = gitloc.locate(d)
    try:
        top = os.fsdecode(_git(target, "rev-parse", "--show-toplevel").rstrip(b"\n"))
    except GitChangesError as exc:
        if "not running git" in str(exc):  # ``gitcmd``'s refusal (a FIFO or device git would block on)
            raise
        raise GitChangesError(f"{display_path(p)} is not inside a git work tree; --staged and --since-commit read a "
                              "repository's index and commits: run it inside one, or give a PATH in one") from None
    return top, gitloc.rebase(target, top), dropped


def parse_raw(out: bytes) -> Iterator[tuple[str, str, str, bytes]]:
    """Parse ``git diff/log --raw -z --no-abbrev --no-renames [-c] --format=%x01%H`` output into
    ``(commit, mode, oid, path)`` for the post-image of every entry (commit is "" for ``git diff``)."""
    tokens = out.split(b"\0")
    commit = ""
    i = 0
    while i < len(tokens):
        tok = tokens[i].lstrip(b"\n")
        i += 1
        if tok.startswith(b"\x01"):
            commit = tok[1:].decode("ascii", "replace").strip()
            continue
        if not tok.startswith(b":"):
            continue
        n = len(tok) - len(tok.lstrip(b":"))  # number of parents
        fields = tok[n:].decode("ascii", "replace").split(" ")
        if i >= len(tokens) or len(fields) < 2 * n + 3:
            break
        path = tokens[i]
        i += 1
        yield commit, fields[n], fields[2 * n + 1], path


def pushed_revs(repo: str, local_ref: str, remote: str) -> list[str]:
    """A ``git rev-list --stdin`` list of the commits a push of ``local_ref`` to ``remote`` sends: the ref's
    commit, then ``^oid`` for every remote-tracking ref of that remote (none for a URL or an empty remote)."""
    if not local_ref or local_ref.startswith("-"):
        raise GitChangesError(f"invalid pushed ref {local_ref!r}")
    try:
        tip = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", local_ref + "^{commit}")
    except GitChangesError:
        raise GitChangesError(f"unknown pushed ref {local_ref!r} (not a commit in this repository)") from None
    return [tip.decode("ascii").strip(), *("^" + oid for oid in remote_tips(repo, remote))]


def remote_tips(repo: str, remote: str) -> list[str]:
    """The commits of the remote-tracking refs of ``remote`` (``refs/remotes/NAME/*``; none for a URL)."""
    prefix = f"refs/remotes/{remote}/"
    out = _git(repo, "for-each-ref", "--format=%(objectname) %(refname)", "refs/remotes/")
    return [line.split(" ", 1)[0] for line in out.decode("utf-8", "replace").splitlines()
            if line.partition(" ")[2].startswith(prefix)]


def push_line_revs(repo: str, remote: str, lines: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """For git's pre-push input (local oid, remote oid per pushed ref): the ``rev-list --stdin`` list of the
    commits the push sends (each local oid's commit, ``^`` each remote oid this repository has and each
    remote-tracking ref of ``remote``), and the annotated tag objects it sends (each pushed tag and the tags it
    nests, less those of the ref's remote oid)."""
    objs = sorted({o for pair in lines for o in pair if o.strip("0")})
    peeled: dict[str, str] = {}
    if objs:
        out = _git(repo, "cat-file", "--batch-check=%(objectname)", stdin="".join(o + "^{commit}\n" for o in objs).encode())
        for o, line in zip(objs, out.decode("ascii", "replace").splitlines(), strict=False):
            if not line.endswith(" missing") and _is_oid(line):
                peeled[o] = line.strip()
    revs = [peeled[local] for local, _ in lines if local in peeled]
    if revs:  # (only negatives would walk nothing; none at all would walk HEAD)
        revs += ["^" + peeled[rem] for _, rem in lines if rem in peeled]
        revs += ["^" + oid for oid in remote_tips(repo, remote)]
    tags: list[str] = []
    for local, rem in lines:
        have = set(tag_chain(repo, rem)) if rem.strip("0") else set()
        tags += [t for t in tag_chain(repo, local) if t not in have and t not in tags]
    return list(dict.fromkeys(revs)), tags


def _is_oid(line: str) -> bool:
    s = line.strip()
    return len(s) in (40, 64) and all(c in "0123456789abcdef" for c in s)


def tag_chain(repo: str, rev: str) -> list[str]:
    """The annotated tag objects ``rev`` names, outermost first (``git tag -a outer inner`` nests them): what a
    push of that tag sends besides commits, at any depth (rev-list names every nested tag: 10,000 in 0.3 s).
    Empty for a commit, a lightweight tag or an unknown revision. One git call for a commit (a hook's usual
    case), one more for a tag."""
    if not rev or rev.startswith("-") or "\n" in rev:
        return []
    try:
        kind = _git(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)", stdin=(rev + "\n").encode())
        oid, _, otype = kind.decode("ascii", "replace").strip().partition(" ")
        if otype != "tag":
            return []
        out = _git(repo, "rev-list", "--objects", "--no-object-names", oid, f"^{oid}^{{}}")
    except GitChangesError:  # missing: the commit walk reports what it cannot read
        return []
    chain = [line for line in out.decode("ascii", "replace").split("\n") if _is_oid(line)]
    return chain if oid in chain else [oid, *chain]


def tag_targets(repo: str, tags: Sequence[str], excludes: Sequence[str] = ()) -> list[tuple[str, str]]:
    """The (blob id, report path) pairs a pushed tag sends when it names a blob (``blob/<id>``, as ``--history``
    reports one) or a tree (each regular file in it, at its path in the tree) rather than a commit:
    ``git tag -a v1 <blob-id>`` pushes that blob, and no commit walk sees it."""
    if not tags:
        return []
    out = _git(repo, "cat-file", "--batch-check=%(objectname) %(objecttype)",
               stdin="".join(t + "^{}\n" for t in tags).encode())
    pairs: list[tuple[str, str]] = []
    for line in dict.fromkeys(out.decode("ascii", "replace").splitlines()):
        oid, _, otype = line.partition(" ")
        if otype == "blob" and _is_oid(oid):
            pairs.append((oid, f"blob/{oid}"))
        elif otype == "tree" and _is_oid(oid):
            for rec in _git(repo, "ls-tree", "-r", "-z", "--full-tree", oid).split(b"\0"):
                meta, _, bpath = rec.partition(b"\t")
                parts = meta.decode("ascii", "replace").split(" ")
                path = display_path(os.fsdecode(bpath))
                if len(parts) == 3 and parts[0] in REGULAR_MODES and parts[1] == "blob" \
                        and not excluded(path, excludes):
                    pairs.append((parts[2], path))
    return pairs


def tags_on(repo: str, commits: set[str]) -> list[str]:
    """Every annotated tag object (nested ones too) of the ``refs/tags`` tags that peel to one of ``commits``:
    what ``git push --follow-tags`` (or ``push.followTags``) sends with those commits."""
    if not commits:
        return []
    out = _git(repo, "for-each-ref", "--format=%(objecttype) %(refname)", "refs/tags/")
    refs = [line[4:] for line in out.decode("utf-8", "replace").splitlines() if line.startswith("tag ")]
    if not refs:
        return []
    peeled = _git(repo, "cat-file", "--batch-check=%(objectname)", stdin="".join(r + "^{commit}\n" for r in refs).encode())
    mine = [ref for ref, line in zip(refs, peeled.decode("ascii", "replace").splitlines(), strict=False)
            if line.strip() in commits]
    if not mine:
        return []
    # every tag object of those refs, nested ones too, in one walk (a chain per ref took two git calls a tag:
    # 7 s for a first push of a repository with 1,000 release tags); their commits are negated, so only tags
    out = _git(repo, "rev-list", "--objects", "--no-object-names", "--stdin",
               stdin="".join(f"{ref}\n^{ref}^{{}}\n" for ref in mine).encode())
    return list(dict.fromkeys(line for line in out.decode("ascii", "replace").split("\n") if _is_oid(line)))


@dataclass
class GitChangesSource:
    """Staged blobs and/or blobs changed in ``since..HEAD`` of the repository at ``repo``."""

    repo: str
    staged: bool = False
    since: str | None = None
    until: str = "HEAD"  # --since-commit: the range is since..until (pre-push: the commits being pushed)
    pushed: tuple[str, str] | None = None  # pre-push without a range: (local ref, remote name)
    push_tags: bool = False  # pre-push: also the annotated tags on the pushed commits (``--follow-tags``)
    push_lines: tuple[str, Sequence[tuple[str, str]]] | None = None  # --pre-push: (remote, git's pushed refs)
    pathspecs: Sequence[str] = ()
    excludes: Sequence[str] = ()
    max_file_size: int = 0
    toplevel: str = ""
    git: str = ""  # the ``gitloc`` target git runs on (the top-level directory and the location variables kept)
    env_ignored: list[str] = field(default_factory=list)  # location variables that named another repository
    _entries: list[tuple[str, str]] = field(default_factory=list)  # (oid, path) in scan order
    _sizes: dict[str, int] = field(default_factory=dict)
    _commits: list[str] = field(default_factory=list)  # commits of since..HEAD: their message/author are scanned
    _tags: list[str] = field(default_factory=list)  # annotated tags pushed: their name/tagger/message are scanned

    def __post_init__(self) -> None:
        """List the changes now, so git errors surface before the scan starts (``GitChangesError``)."""
        self.toplevel, self.git, self.env_ignored = located(self.repo)
        seen: set[tuple[str, str]] = set()
        spec = ["--", *self.pathspecs] if self.pathspecs else []
        raw: list[tuple[str, str, str, bytes]] = []
        if self.since is not None:
            if self.since.startswith("-") or self.until.startswith("-"):
                raise GitChangesError(f"invalid revision {self.since!r}")
            for rev in (self.since, self.until):
                try:
                    _git(self.git, "rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}")
                except GitChangesError:
                    raise GitChangesError(f"unknown revision {rev!r} (not a commit in this repository)") from None
            raw += parse_raw(_git(self.git, "log", "--raw", "-c", "-z",
                                  "--no-abbrev", "--no-renames", "--format=%x01%H", f"{self.since}..{self.until}", *spec))
        walk: list[str] = [f"{self.since}..{self.until}"] if self.since is not None else []
        stdin: bytes | None = None
        revs = pushed_revs(self.git, *self.pushed) if self.pushed is not None else []
        if self.push_lines is not None:
            revs, self._tags = push_line_revs(self.git, *self.push_lines)
        if revs:  # (``git log --stdin`` with nothing on stdin would walk HEAD)
            walk, stdin = ["--stdin"], "".join(r + "\n" for r in revs).encode()
            raw += parse_raw(_git(self.git, "log", "--stdin", "--root", "--raw", "-c", "-z", "--no-abbrev",
                                  "--no-renames", "--format=%x01%H", *spec, stdin=stdin))
        if self.staged:
            raw += parse_raw(_git(self.git, "diff", "--cached", "--raw", "-z", "--no-abbrev", "--no-renames",
                                  "--diff-filter=AMT", *spec))
        for _commit, mode, oid, bpath in raw:
            if mode not in REGULAR_MODES or oid == _ZERO:
                continue
            path = display_path(os.fsdecode(bpath))
            key = (oid, path)
            if key in seen or excluded(path, self.excludes):
                continue
            seen.add(key)
            self._entries.append(key)
        if walk:
            from veritensor_fast.sources.git_list import commits

            self._commits = commits(self.git, walk, stdin)
        if self.since is not None and self.until != "HEAD":  # pre-push's TO: a pushed tag (FROM's tags are there)
            have = set(tag_chain(self.git, self.since))
            self._tags = [t for t in tag_chain(self.git, self.until) if t not in have]
        if self.pushed is not None:
            self._tags += [t for t in tag_chain(self.git, self.pushed[0]) if t not in self._tags]
        if self.push_tags:
            self._tags += [t for t in tags_on(self.git, set(self._commits)) if t not in self._tags]
        for key in tag_targets(self.git, self._tags, self.excludes):
            if key not in seen:
                seen.add(key)
                self._entries.append(key)
        if self._entries or self._commits or self._tags:
            oids = sorted({o for o, _ in self._entries} | set(self._commits) | set(self._tags))
            out = _git(self.git, "cat-file", "--batch-check=%(objectname) %(objectsize)",
                       stdin="".join(o + "\n" for o in oids).encode())
            for line in out.decode("ascii", "replace").splitlines():
                parts = line.split(" ")
                if len(parts) == 2 and parts[1].isdigit():
                    self._sizes[parts[0]] = int(parts[1])

    def __len__(self) -> int:
        return len(self._entries) + len(self._commits) + len(self._tags)

    def listed_paths(self) -> list[str]:
        """The report paths of the blobs listed (repository-relative)."""
        return [path for _oid, path in self._entries]

    def small(self) -> bool:
        """Few and small enough that one in-process worker beats starting a pool (measured: a 3-blob staged
        scan takes 0.49 s in-process vs 0.87 s with a pool on 2 cores)."""
        return len(self) <= SMALL_ITEMS and sum(max(s, 0) for s in self._sizes.values()) <= SMALL_BYTES

    def items(self) -> Iterator[Item | ScanError]:
        for oid, path in self._entries:
            size = self._sizes.get(oid, -1)
            if size < 0:
                yield ScanError(path, f"git object {oid[:12]} is missing from the repository", "unreadable")
            elif self.max_file_size and size > self.max_file_size:
                yield ScanError(path, f"{size} bytes exceeds --max-file-size {self.max_file_size}; skipped",
                                "too-large")
            else:
                yield Item("blob", oid, path, size, self.git)
        for oid, path in [(c, commit_path(c)) for c in self._commits] + [(t, tag_path(t)) for t in self._tags]:
            size = self._sizes.get(oid, -1)
            if self.max_file_size and size > self.max_file_size:
                yield ScanError(path, f"{size} bytes exceeds --max-file-size {self.max_file_size}; "
                                "skipped", "too-large")
            else:
                yield Item("commit", oid, path, size, self.git)

    def annotate(self, findings: Sequence[Finding]) -> list[Finding]:
        """Drop exact repeats (the same secret at the same place in two versions of a file); findings in a
        commit's own text get the field (``location.git``) and the commit (its fields redacted)."""
        findings = self._commit_findings(findings)
        seen: set[tuple[object, ...]] = set()
        out = []
        for f in findings:
            k = (f.path, f.rule_id, f.fingerprint, f.line, f.column,
                 repr(sorted(f.location.items())) if f.location else "")
            if k not in seen:
                seen.add(k)
                out.append(f)
        return out

    def _commit_findings(self, findings: Sequence[Finding]) -> list[Finding]:
        from dataclasses import replace

        from veritensor_fast.sources import git_provenance as gp

        pairs = [(f, f.path.partition(":")[2] if f.path.startswith(("commit:", "tag:")) else "") for f in findings]
        if not any(is_commit_path(f.path, oid) for f, oid in pairs):
            return list(findings)
        texts, secrets, hidden = gp.commit_texts(self.git, pairs)
        out = []
        for f, oid in pairs:
            if is_commit_path(f.path, oid):
                c, fields, _lines = texts.get(oid, ({"id": oid}, [], []))
                f = replace(f, location=gp.text_location(f, oid, c, fields, secrets, hidden),
                            commit={**gp.hide_commit(c, secrets, hidden), "path": f.path})
            out.append(f)
        return out
