"""Refuse a repository whose files would make ``git`` block forever: FIFOs and devices where git opens a file.

A repository shipped as files (a tarball, a shared volume) is hostile. ``git`` opens its ``config`` (and every
file that config includes with ``include.path`` / ``includeIf.*.path``, wherever it points), ``HEAD``, refs,
``packed-refs``, loose objects, pack files and the object directories its ``objects/info/alternates`` name,
each with a blocking ``open``: one FIFO (or ``/dev/tty``) among them and even ``git rev-parse`` waits forever,
so the scan would hang. No command-line option turns repository config includes off, so before the first git
command on a repository :func:`check` looks, without running git, at every place git may read:

- the repository git would discover from the path (each directory upward from the physical directory:
  ``.git`` as a directory or as a ``gitdir:`` file, its ``commondir``; a bare repository itself; a ``.git``
  directory git may not accept does not end the search, as it does not end git's): its own files (``HEAD``, ``config``,
  ``packed-refs``...), ``refs/``, ``logs/`` and ``worktrees/`` (links to directories not followed), ``info/``
  (``exclude``, which ``git diff --cached`` opens; one level) and its object directory as git reads it (``pack/``, ``info/``, the loose-object directories, one level each);
- every ``path`` value in its config files (any ``path =`` in the text, read whole: a superset of the
  includes), resolved as git resolves an include (``~/``, ``%(prefix)/`` under each prefix git may have,
  relative to the including file), followed into included files (depth 10); a path through ``/proc``
  (``/dev/stdin``, ``/dev/fd/N``) is refused: it names git's own file, not the one ``stat`` sees here;
- the object directories named by ``objects/info/alternates`` (depth 5), the same way (an alternate naming
  ``/`` costs one directory listing, not a walk of the file system).

Any of these that is a FIFO or a device other than ``/dev/null`` (after symlinks) makes
:class:`UnsafeRepository` with the path (a socket is fine: opening one fails at once); nothing is opened that could block (a FIFO is recognised by its
type before anything reads it). With the location variables ``gitloc.locate`` kept for the repository, also what
they name (its git directory, object directories, index file). The answer is cached for a ``gitloc`` target (one
per scan), never for a plain path.
"""

from __future__ import annotations

import os
import re
import shutil
import stat

MAX_INCLUDE_DEPTH = 10
MAX_ALTERNATE_DEPTH = 5
#: Largest config or alternates file read whole (git reads all of it; a larger one is refused, not half-read:
#: an include past the first MiB was missed).
MAX_LIST_FILE = 64 << 20
_DONE: dict[str, tuple[str, str] | None] = {}
#: Why a path is refused, unless said otherwise.
FIFO = "is a FIFO or device that git would open (it would block forever)"


class UnsafeRepository(Exception):
    """A file git would open is a FIFO or a device: git would block (or read a terminal). ``args``: the path and
    what is wrong with it."""

    def __init__(self, path: str, why: str = FIFO) -> None:
        super().__init__(path, why)


def _special(path: str) -> bool:
    """True when ``path`` exists and is a FIFO or a device other than ``/dev/null`` (symlinks followed, as git
    follows them): what a blocking ``open`` may wait on, or read a terminal from."""
    if _via_proc(path):
        return True
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        return False  # a socket cannot be opened (ENXIO at once): git's fsmonitor daemon keeps one in .git
    try:
        return not os.path.samefile(path, os.devnull)
    except OSError:
        return True


def _via_proc(path: str) -> bool:
    """True when ``path`` (or a link on the way to it) passes through ``/proc``: ``/dev/stdin``, ``/dev/fd/0``,
    ``/proc/self/fd/0`` name another file in git's process than in this one (git's standard input is the
    ``cat-file --batch`` request pipe), so what ``stat`` says here is not what git would open."""
    p = path
    try:
        for _ in range(40):  # the kernel's own limit on links followed
            d = os.path.realpath(os.path.dirname(p) or ".")
            full = os.path.join(d, os.path.basename(p))
            if full == "/proc" or full.startswith("/proc/"):
                return True
            try:
                link = os.readlink(full)
            except OSError:
                return False
            p = os.path.join(d, link)
    except (OSError, ValueError):
        return False
    return True


#: Most directories one recursive walk (refs, logs, worktrees) lists.
MAX_TREE_ENTRIES = 100_000


def _entry(e: os.DirEntry[str]) -> bool:
    """Check one directory entry (no special file, a symbolic link checked at its target); True when it is a
    real directory (not a link: links to directories are never walked into)."""
    if e.is_dir(follow_symlinks=False):
        return True
    if e.is_file(follow_symlinks=False):
        return False
    if e.is_symlink() and os.path.isdir(e.path):
        return False
    if _special(e.path):
        raise UnsafeRepository(e.path)
    return False


def _flat(d: str) -> list[str]:
    """Check the entries of directory ``d`` (one level); returns its real subdirectories. File types come from
    ``scandir`` (no ``stat`` per file)."""
    subdirs: list[str] = []
    try:
        with os.scandir(d) as it:
            for e in it:
                try:
                    if _entry(e):
                        subdirs.append(e.path)
                except OSError:
                    continue
    except OSError:
        pass
    return subdirs


def _tree(top: str) -> None:
    """Check every entry under ``top`` (refs, logs, worktrees), never following a link to a directory."""
    stack, seen = [top], 0
    while stack and seen < MAX_TREE_ENTRIES:
        d = stack.pop()
        seen += 1
        stack.extend(_flat(d))


def _objects(objects: str) -> None:
    """An object directory as git reads it: its own entries, ``pack/``, ``info/`` and the loose-object
    directories (two hex digits), one level each, links to them followed: nothing else under it is opened."""
    if _special(objects):
        raise UnsafeRepository(objects)
    _flat(objects)
    try:
        with os.scandir(objects) as it:
            subs = [e.path for e in it if (e.name in ("pack", "info") or (len(e.name) == 2 and all(
                c in "0123456789abcdef" for c in e.name))) and e.is_dir()]
    except OSError:
        subs = []
    for sub in subs:
        for deeper in _flat(sub):
            if os.path.basename(deeper) in ("multi-pack-index.d", "commit-graphs"):  # newer gits' chains
                _flat(deeper)


def _gitdir(g: str, seen: set[str]) -> None:
    """The files git may open in git directory ``g``: its own entries (``HEAD``, ``config``, ``packed-refs``,
    ``shallow``...), ``refs/``, ``logs/`` and ``worktrees/`` (recursively), ``info/`` (one level), and its object
    directory."""
    if _special(g):
        raise UnsafeRepository(g)
    real = os.path.realpath(g)
    if real in seen:
        return
    seen.add(real)
    _flat(g)
    for sub in ("refs", "logs", "worktrees", "reftable"):  # reftable: git 2.45+ (extensions.refStorage)
        p = os.path.join(g, sub)
        if os.path.islink(p):
            _flat(p)  # a link (to ``/``?): one level, never a walk of what it names
        elif os.path.isdir(p):
            _tree(p)
    info = os.path.join(g, "info")  # ``info/exclude`` (``diff --cached`` opens it), ``attributes``, ``grafts``
    if os.path.isdir(info) or os.path.islink(info):
        _flat(info)
    _objects(os.path.join(g, "objects"))


def _values(text: str, key: str) -> list[str]:
    """Every value of ``key`` (any section) in git config ``text``, decoded as git decodes a value (quotes,
    escapes, backslash-newline continuations, ``;``/``#`` comments). Lenient: a superset is fine, so every
    ``key =`` not preceded by a name character is taken, wherever it stands (a line start, after a section
    header on the same line, even inside a comment or another value): a section header is not parsed (its quoted
    subsection may hold a ``]``: ``[includeIf "hasconfig:remote.*.url:*]*"] path = ...`` hid the include)."""
    rx = re.compile(rf"(?<![A-Za-z0-9-]){re.escape(key)}[ \t]*=", re.IGNORECASE)
    return [_value(text, m.end())[0] for m in rx.finditer(text)]


def _value(text: str, i: int) -> tuple[str, int]:
    buf: list[str] = []
    quoted = False
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    pending_space = ""
    while i < n:
        c = text[i]
        if c == "\n" and not quoted:
            break
        if c in ";#" and not quoted:
            break
        if c in " \t" and not quoted:
            pending_space += c
            i += 1
            continue
        if pending_space:
            buf.append(pending_space)
            pending_space = ""
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt == "\n":
                i += 2
                continue
            buf.append({"t": "\t", "b": "\b", "n": "\n"}.get(nxt, nxt))
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        else:
            buf.append(c)
        i += 1
    return "".join(buf), i


def _read(path: str) -> str | None:
    """The whole text of a regular file git reads line by line (config, alternates), or None when unreadable.
    Raises :class:`UnsafeRepository` over :data:`MAX_LIST_FILE` (git would read what follows)."""
    try:
        with open(path, "rb") as fh:
            # sized by the file, not by the bound: ``read(n)`` allocates n bytes first (64 MiB per config)
            data = fh.read(min(os.fstat(fh.fileno()).st_size, MAX_LIST_FILE) + 1)
    except OSError:
        return None
    if len(data) > MAX_LIST_FILE:
        raise UnsafeRepository(path, f"is over {MAX_LIST_FILE >> 20} MiB (not checked for what git would open)")
    return data.decode("utf-8", "replace")


def _prefixes() -> list[str]:
    """Where git's ``%(prefix)/`` may point (its runtime or build prefix): above git's ``bin/``, ``/usr``,
    ``/usr/local`` and ``/``. A superset is fine."""
    out = ["/usr", "/usr/local", "/"]
    git = shutil.which("git")
    if git:
        for g in (git, os.path.realpath(git)):
            out.append(os.path.dirname(os.path.dirname(g)))
    return list(dict.fromkeys(out))


def _targets(v: str, base: str) -> list[str]:
    """The files an include ``path`` value may name, resolved as git resolves it: ``:(optional)``, ``~/``,
    ``~user/``, ``%(prefix)/`` (each candidate prefix), relative to the including file's directory."""
    if v.startswith(":(optional)"):
        v = v[len(":(optional)"):]
    if v.startswith("%(prefix)/"):
        return [os.path.join(p, v[len("%(prefix)/"):]) for p in _prefixes()]
    if v.startswith("~"):
        v = os.path.expanduser(v)
    return [v if os.path.isabs(v) else os.path.join(base, v)]


def _includes(config: str, depth: int, seen: set[str]) -> None:
    """No ``path`` value of ``config`` (or of the files it includes) names a special file."""
    if _special(config):
        raise UnsafeRepository(config)
    if depth > MAX_INCLUDE_DEPTH:
        return
    real = os.path.realpath(config)
    if real in seen or not os.path.isfile(config):
        return
    seen.add(real)
    text = _read(config)
    if text is None:
        return
    base = os.path.dirname(config)
    for v in _values(text, "path"):
        for target in _targets(v, base):
            if _special(target):
                raise UnsafeRepository(target)
            _includes(target, depth + 1, seen)


_OID = re.compile(rb"(?:[0-9a-f]{40}|[0-9a-f]{64})\s*")


def _commondir(g: str) -> str | None:
    """The directory ``g/commondir`` names, or None. Checked first: a FIFO there blocked this check itself."""
    f = os.path.join(g, "commondir")
    if _special(f):
        raise UnsafeRepository(f)
    try:
        with open(f, encoding="utf-8", errors="replace") as fh:
            c = fh.read(4096).strip()
    except OSError:
        return None
    return c if os.path.isabs(c) else os.path.join(g, c)


def _is_repo(g: str) -> bool:
    """At most what git's discovery accepts as a git directory (``HEAD`` a ref or an object name, ``objects/`` and
    ``refs/`` there or in its ``commondir``). Where git may not accept it, its discovery goes on upward: so does
    :func:`_gitdirs` (checking a superset), or an empty ``.git`` decoy would hide the repository above it."""
    head = os.path.join(g, "HEAD")
    if _special(head):
        raise UnsafeRepository(head)
    try:
        if os.path.islink(head):
            ok = os.readlink(head).startswith("refs/")
        else:
            with open(head, "rb") as fh:
                h = fh.read(512)
            ok = (h.startswith(b"ref:") and h[4:].lstrip(b" \t").startswith(b"refs/")) or _OID.fullmatch(h) is not None
    except OSError:
        return False
    common = _commondir(g) or g
    return ok and os.path.isdir(os.path.join(common, "objects")) and os.path.isdir(os.path.join(common, "refs"))


def _gitdirs(path: str) -> list[str]:
    """The git directories git could use for ``path``: its discovery upward from the physical directory (git
    runs ``-C path``, then ``getcwd``: links resolved, not ``..`` taken lexically), every candidate on the way
    until one git surely accepts (a ``.git`` directory or a bare repository) or a ``.git`` file (git stops there)."""
    d = os.path.realpath(path)
    if os.path.isfile(d):
        d = os.path.dirname(d)
    out: list[str] = []
    while True:
        dotgit = os.path.join(d, ".git")
        if _special(dotgit):
            raise UnsafeRepository(dotgit)
        if os.path.isdir(dotgit):
            out.append(dotgit)
            if _is_repo(dotgit):
                return out
        elif os.path.isfile(dotgit):
            try:
                with open(dotgit, encoding="utf-8", errors="replace") as fh:
                    line = fh.read(4096).strip()
            except OSError:
                line = ""
            if line.startswith("gitdir:"):
                g = line[7:].strip()
                out.append(g if os.path.isabs(g) else os.path.join(d, g))
            return out
        if all(os.path.exists(os.path.join(d, x)) for x in ("HEAD", "objects", "refs")):
            out.append(d)
            if _is_repo(d):
                return out
        parent = os.path.dirname(d)
        if parent == d:
            return out
        d = parent


def _alternates(objects: str, depth: int, seen: set[str]) -> None:
    if depth > MAX_ALTERNATE_DEPTH:
        return
    alt = os.path.join(objects, "info", "alternates")
    if _special(alt):
        raise UnsafeRepository(alt)
    text = _read(alt)
    if text is None:
        return
    for ln in text.splitlines():
        ln = ln.strip().strip('"')
        if not ln or ln.startswith("#"):
            continue
        other = ln if os.path.isabs(ln) else os.path.join(objects, ln)
        if _special(other):
            raise UnsafeRepository(other)
        real = os.path.realpath(other)
        if os.path.isdir(other) and real not in seen:
            seen.add(real)
            _objects(other)
            _alternates(other, depth + 1, seen)


def _from_env(env: dict[str, str], seen: set[str]) -> None:
    """What the kept location variables (``gitloc.locate``) make git open instead of, or beside, what discovery
    finds: the git and common directories they name (as :func:`_gitdirs`' own), the object directories
    (``GIT_OBJECT_DIRECTORY``, each ``GIT_ALTERNATE_OBJECT_DIRECTORIES`` entry) and the index file."""
    for k in ("GIT_DIR", "GIT_COMMON_DIR"):
        if k in env:
            _repo_dir(env[k], seen)
    objs = [env[k] for k in ("GIT_OBJECT_DIRECTORY",) if k in env]
    objs += [a for a in env.get("GIT_ALTERNATE_OBJECT_DIRECTORIES", "").split(":") if a]
    for o in objs:
        if _special(o):
            raise UnsafeRepository(o)
        real = os.path.realpath(o)
        if real not in seen:
            seen.add(real)
            _objects(o)
            _alternates(o, 0, seen)
    if "GIT_INDEX_FILE" in env and _special(env["GIT_INDEX_FILE"]):
        raise UnsafeRepository(env["GIT_INDEX_FILE"])


def _repo_dir(g: str, seen: set[str]) -> None:
    dirs = [g]
    common = _commondir(g)
    if common is not None:
        dirs.append(common)
    for d in dirs:
        _gitdir(d, seen)
        for cfg in ("config", "config.worktree"):
            _includes(os.path.join(d, cfg), 0, set())
        _alternates(os.path.join(d, "objects"), 0, seen)


def check(target: str) -> None:
    """Raise :class:`UnsafeRepository` when git, run on ``target`` (a path, or a ``gitloc`` target: a path and the
    location variables kept for it), could open a FIFO or a device. A target made by ``gitloc.locate`` is
    checked once per process (each scan makes a new one); a plain path every time."""
    from veritensor_fast import gitloc

    cached = gitloc.has_token(target)
    if cached and target in _DONE:
        bad = _DONE[target]
        if bad is not None:
            raise UnsafeRepository(*bad)
        return
    if len(_DONE) > 4096:
        _DONE.clear()
    path, env = gitloc.split(target)
    try:
        seen: set[str] = set()
        for g in _gitdirs(path):
            _repo_dir(g, seen)
        _from_env(env, seen)
    except UnsafeRepository as exc:
        if cached:
            _DONE[target] = (str(exc.args[0]), str(exc.args[1]))
        raise
    if cached:
        _DONE[target] = None
