"""Filesystem source: walk files and directories, yield ``file`` items (the worker-side reader is ``fs_read``).

- ``.git`` directories are skipped (history has its own source); ``--exclude`` globs prune files and directories.
- By default (``default_excludes``) the walk also skips what users never mean to scan: virtualenvs (any
  directory holding ``pyvenv.cfg``), ``site-packages``, ``node_modules``, ``__pycache__``, ``build``, ``dist``
  and tool caches (``DEFAULT_EXCLUDE_DIRS``); ``skipped_dirs`` lists them for the report. A PATH given
  explicitly is always scanned, even if it is one of these.
- Symlinks are not followed unless asked; when followed, directories are tracked by (device, inode) so a loop
  is reported once and never walked twice.
- Paths in reports are relative to the root given on the command line, with POSIX separators; undecodable
  bytes in names are shown backslash-escaped but the real name is used to open the file.
"""

from __future__ import annotations

import errno
import operator
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from veritensor_fast.findings import Finding, Item, ScanError, display_path
from veritensor_fast.sources.excludes import excluded as _excluded
from veritensor_fast.sources.fs_read import FileReader, InputError  # noqa: F401 (re-exported: the worker-side reader)

ALWAYS_SKIP_DIRS = frozenset({".git"})
#: Skipped by default below a scan root (``--no-default-excludes`` scans them): installed third-party code,
#: build output and caches that repeat the sources' findings at meaningless lines.
DEFAULT_EXCLUDE_DIRS = frozenset({
    "site-packages", "node_modules", "__pycache__", "build", "dist", ".tox", ".nox", ".mypy_cache",
    ".ruff_cache", ".pytest_cache", ".hypothesis",
})
#: A directory holding this file is a Python virtualenv (PEP 405), whatever its name.
VENV_MARKER = "pyvenv.cfg"


@dataclass
class FileSource:
    roots: Sequence[str]
    excludes: Sequence[str] = ()
    follow_symlinks: bool = False
    max_file_size: int = 0  # 0: no limit
    default_excludes: bool = True
    #: Directories the default excludes skipped (report paths), in walk order.
    skipped_dirs: list[str] = field(default_factory=list)
    _seen_dirs: set[tuple[int, int]] = field(default_factory=set)
    #: (device, inode) of each directory as listed, by path: checked when it is walked and when a worker stats
    #: its files (``_open_dir``), so a directory swapped for a symlink meanwhile is not followed
    _dir_keys: dict[str, tuple[int, int]] = field(default_factory=dict, init=False, repr=False, compare=False)
    #: (files, bytes, files to stat first) per ``dir`` shard while ``items_sharded`` runs, else None
    _shard: tuple[int, int, int] | None = field(default=None, init=False, repr=False, compare=False)

    def stats(self) -> dict[str, Any]:
        """What the walk skipped on purpose, for ``ScanResult.stats``."""
        return {"skipped_dirs": sorted(self.skipped_dirs)} if self.default_excludes else {}

    def annotate(self, findings: Sequence[Finding]) -> list[Finding]:
        return list(findings)

    def items(self) -> Iterator[Item | ScanError]:
        # One root: paths are relative to it. Several roots: each path starts with its root as given
        # (normalised), so ``scan a b`` never reports two different ``src/x.py`` files under one name.
        multi = len(self.roots) > 1
        for root in self.roots:
            self._prefix = os.path.normpath(root) if multi else ""
            yield from self._root(root)

    def items_sharded(self, max_files: int, max_bytes: int, stat_first: int = -1,
                      trees: bool = False, pieces: int = 1) -> Iterator[Item | ScanError]:
        """Like ``items``, but the regular files of a directory come as ``dir`` shards of at most ``max_files``
        files and about ``max_bytes`` bytes (``expand_shard`` gives the ``file`` items ``items`` would have
        yielded). No per-file report path or ``Item`` is built here: the workers do that, in parallel.

        The first ``stat_first`` files (default ``4 * max_files``: every file of a scan small enough to run
        in-process) are stat-ed here, so their sizes are known, and files of ``max_bytes`` or more among them
        stay single ``file`` items. After that only names are listed (the directory entry's type says it is a
        regular file, no ``stat``): the worker stats them and hands a big one back to run as its own task
        (``BatchResult.more``). With ``--max-file-size`` every file is stat-ed here.

        ``trees`` (a pool of workers): after those first files, this process lists nothing more. What the walk
        has not entered yet goes to the workers as one ``tree`` item (``_tree_item``): each worker walks a part
        of it (``walk_tree``), scans what it listed and hands the rest of its walk back as ``tree`` items for the
        others, so the listing runs in parallel and the parent, one process for all workers, only hands out
        batches (measured on the real tree: the walk was 0.12 of the parent's 0.33 CPU-s while the pool ran).
        Not with ``--follow-symlinks`` (a loop through a symlink is found with every directory walked so far)
        nor ``--max-file-size`` (every file is stat-ed here). What is left of the walk goes out as up to ``pieces``
        ``tree`` items (the directories not entered yet, in order, cut into runs), so that as many workers as
        there are pieces list from the start instead of waiting for one worker's walk to hand the rest back."""
        if type(self).items is not FileSource.items:  # a subclass that lists its own way: its items, as they are
            yield from self.items()
            return
        self._shard = (max_files, max_bytes, 4 * max_files if stat_first < 0 else stat_first)
        self._statted = 0
        self._hand_off = self._shard[2] if trees and not self.follow_symlinks and not self.max_file_size else -1
        self._pieces = max(1, pieces)
        try:
            yield from self.items()
        finally:
            self._shard = None
            self._hand_off = -1
            self._pieces = 1

    _prefix = ""
    _statted = 0
    #: the rest of a walk handed off goes out as up to this many ``tree`` items (``items_sharded``'s ``pieces``)
    _pieces = 1
    #: with ``trees``: once this many files are listed, what is left of the walk goes out as a ``tree`` item
    _hand_off = -1

    def _rel_raw(self, base: str, full: str) -> str:
        if full.startswith(base) and full[len(base):len(base) + 1] == os.sep:
            rel = full[len(base) + 1:]  # the walk joins names onto ``base``: no relpath/abspath calls
        else:
            rel = os.path.relpath(full, base)
        return os.path.join(self._prefix, rel) if self._prefix else rel

    def _rel(self, base: str, full: str, single: bool) -> str:
        rel = (self._prefix or os.path.basename(full)) if single else self._rel_raw(base, full)
        return display_path(rel.replace(os.sep, "/"))

    def _file_item(self, full: str, rel: str, st: os.stat_result) -> Item | ScanError:
        if not stat.S_ISREG(st.st_mode):
            return ScanError(rel, "not a regular file (device, FIFO or socket); skipped", "not-regular")
        if self.max_file_size and st.st_size > self.max_file_size:
            return ScanError(rel, f"{st.st_size} bytes exceeds --max-file-size {self.max_file_size}; skipped",
                             "too-large")
        return Item("file", full, rel, st.st_size, dev=st.st_dev, ino=st.st_ino, follow=self.follow_symlinks)

    def _root(self, root: str) -> Iterator[Item | ScanError]:
        try:
            st = os.stat(root) if self.follow_symlinks or not os.path.islink(root) else os.lstat(root)
        except OSError as exc:
            yield ScanError(display_path(root), f"cannot access: {exc.strerror}", "unreadable")
            return
        if stat.S_ISDIR(st.st_mode):
            self._seen_dirs.add((st.st_dev, st.st_ino))
            self._dir_keys[root] = (st.st_dev, st.st_ino)
            yield from self._walk(root, root)
        elif stat.S_ISLNK(st.st_mode):
            yield ScanError(display_path(root), "symlink not followed (use --follow-symlinks)", "not-regular")
        else:
            yield self._file_item(root, self._rel(root, root, True), st)

    def _walk(self, base: str, top: str, stack: list[str] | None = None) -> Iterator[Item | ScanError]:
        stack = [top] if stack is None else stack
        while stack:
            if 0 <= self._hand_off <= self._statted:
                n = len(stack)
                k = min(self._pieces, n)
                for i in range(k):
                    yield self._tree_item(base, top, stack[n * i // k:n * (i + 1) // k])
                return
            d = stack.pop()
            dfd = -1
            try:
                dfd = _open_dir(d, None if self.follow_symlinks else self._dir_keys.get(d))
                with os.scandir(d if dfd < 0 else dfd) as it:
                    entries = sorted(it, key=_BY_NAME)
            except OSError as exc:
                if dfd >= 0:
                    os.close(dfd)
                yield _dir_error(self._rel(base, d, False), exc)
                continue
            try:
                yield from self._list(base, top, d, entries, stack)
            finally:
                if dfd >= 0:
                    os.close(dfd)

    def _list(self, base: str, top: str, d: str, entries: list[os.DirEntry[str]],
              stack: list[str]) -> Iterator[Item | ScanError]:
        """One directory's entries (``_walk``), its subdirectories pushed on ``stack``. Entries of a directory
        opened by descriptor carry only their name (``os.scandir(fd)``): the path is the directory's plus it."""
        pre = d if d.endswith(os.sep) else d + os.sep
        if d != top and self.default_excludes and any(e.name == VENV_MARKER for e in entries):
            self.skipped_dirs.append(self._rel(base, d, False))  # a virtualenv: listed, never walked
            return
        subdirs: list[str] = []
        shard = self._shard
        pending: list[tuple[str, int, int, int]] = []
        pbytes = 0
        follow, excludes = self.follow_symlinks, self.excludes
        names_only = shard is not None and not self.max_file_size  # files past the first ``first``: no stat
        per_shard, first = (shard[0], shard[2]) if shard is not None else (0, 0)
        for e in entries:
            name = e.name
            try:
                is_link = e.is_symlink()
                if is_link and not follow:
                    continue
                is_dir = e.is_dir(follow_symlinks=follow)
            except OSError as exc:
                yield ScanError(self._rel(base, pre + name, False), f"cannot stat: {exc.strerror}", "unreadable")
                continue
            if is_dir:
                path = pre + name  # ``e.path`` is the bare name for a directory listed by descriptor
                rel = self._rel(base, path, False)
                if name in ALWAYS_SKIP_DIRS or _excluded(rel, name, excludes):
                    continue
                if self.default_excludes and name in DEFAULT_EXCLUDE_DIRS:
                    self.skipped_dirs.append(rel)
                    continue
                try:
                    dst = e.stat(follow_symlinks=True)
                except OSError as exc:
                    yield ScanError(rel, f"cannot stat: {exc.strerror}", "unreadable")
                    continue
                key = (dst.st_dev, dst.st_ino)
                if key in self._seen_dirs:
                    if is_link:
                        yield ScanError(rel, "symlink loop or repeated directory; not walked again", "not-regular")
                    continue
                self._seen_dirs.add(key)
                self._dir_keys[path] = key
                subdirs.append(path)
                continue
            if excludes and _excluded(self._rel(base, pre + name, False), name, excludes):
                continue
            if names_only and self._statted >= first:
                try:
                    regular = e.is_file(follow_symlinks=follow)  # the entry's type: no stat
                except OSError:
                    regular = False
                if regular:  # the worker stats it
                    self._statted += 1  # (counted as listed, for ``_hand_off``)
                    pending.append((name, -1, 0, 0))
                    if len(pending) >= per_shard:
                        yield self._shard_item(base, d, top, pending, pbytes)
                        pending, pbytes = [], 0
                    continue
            path = pre + name
            self._statted += 1
            try:
                st = e.stat(follow_symlinks=follow)
            except OSError as exc:
                kind = "vanished" if isinstance(exc, FileNotFoundError) else "unreadable"
                yield ScanError(self._rel(base, path, False), f"cannot stat: {exc.strerror}", kind)
                continue
            size = st.st_size
            if (shard is None or size >= shard[1] or not stat.S_ISREG(st.st_mode)
                    or (self.max_file_size and size > self.max_file_size)):
                yield self._file_item(path, self._rel(base, path, False), st)
                continue
            pending.append((name, size, st.st_dev, st.st_ino))
            pbytes += size
            if shard is not None and (len(pending) >= shard[0] or pbytes >= shard[1]):
                yield self._shard_item(base, d, top, pending, pbytes)
                pending, pbytes = [], 0
        if pending:
            yield self._shard_item(base, d, top, pending, pbytes)
        stack.extend(reversed(subdirs))

    def _tree_item(self, base: str, top: str, stack: list[str]) -> Item:
        """What is left of a walk, for ``walk_tree``: ``key`` the walk's base, ``path`` its top, ``origin`` the
        listing's settings (JSON), ``entries`` the directories not entered yet (as on the walk's stack)."""
        import json

        conf = json.dumps([self._prefix, list(self.excludes), self.default_excludes])
        keys = self._dir_keys
        return Item("tree", base, top, 0, origin=conf,
                    entries=tuple((d, 0, *keys.get(d, (0, 0))) for d in stack))

    def _shard_item(self, base: str, d: str, top: str, entries: list[tuple[str, int, int, int]],
                    size: int) -> Item:
        rel = (self._prefix or "") if d == top else self._rel_raw(base, d)
        dev, ino = self._dir_keys.get(d, (0, 0))  # checked by ``expand_shard`` before it stats a file by name
        return Item("dir", d, rel, size, dev=dev, ino=ino, follow=self.follow_symlinks, entries=tuple(entries))


_BY_NAME = operator.attrgetter("name")
#: POSIX paths: ``os.path.join(a, name)`` of a directory entry's name is ``a + "/" + name`` (``a`` not ending
#: in ``/``), and a relative path needs no separator conversion. Elsewhere ``os.path`` decides.
_POSIX = os.sep == "/" and os.path.join is __import__("posixpath").join


def _under(a: str) -> str:
    """``a`` ready to have an entry name appended, as ``os.path.join(a, name)`` would (POSIX only)."""
    return a if a.endswith("/") else a + "/"


#: A ``tree`` task hands the rest of its walk back in at most this many ``tree`` items (tasks for other workers).
TREE_PIECES = 4


def walk_tree(item: Item, max_files: int, max_bytes: int,
              budget: int) -> tuple[list[Item], list[ScanError], list[str], list[Item]]:
    """List the directories of a ``tree`` item (``FileSource._tree_item``) as ``FileSource.items_sharded`` would
    have, names only, until about ``budget`` files are listed (``budget < 0``: all of them): ``(items, errors,
    skipped directories, trees)``, ``trees`` what is left, in up to ``TREE_PIECES`` parts.

    A directory is walked at most once along any path: the directories above each one given are stat-ed first
    (a bind mount that loops back is a repeated directory, as in one walk). Only a directory reached twice
    through a mount that does not loop is listed again (the walk of one process would skip it)."""
    import json

    prefix, excludes, default_excludes = json.loads(item.origin)
    src = FileSource([item.key], tuple(excludes), default_excludes=default_excludes)
    src._prefix = prefix
    src._shard = (max_files, max_bytes, 0)
    src._hand_off = budget
    top = item.path
    climbed: set[str] = set()
    for d, _size, dev, ino in item.entries:
        if ino:
            src._dir_keys[d] = (dev, ino)
        up = d
        while up not in climbed:  # ``d`` and the directories above it, up to the walk's top
            climbed.add(up)
            try:
                st = os.stat(up)
            except OSError:
                break
            src._seen_dirs.add((st.st_dev, st.st_ino))
            if len(up) <= len(top) or not up.startswith(top):
                break
            up = os.path.dirname(up)
    items: list[Item] = []
    errors: list[ScanError] = []
    trees: list[Item] = []
    for it in src._walk(item.key, top, [e[0] for e in item.entries]):
        if isinstance(it, ScanError):
            errors.append(it)
        elif it.kind == "tree":
            n = len(it.entries)
            k = min(TREE_PIECES, n)
            trees.extend(Item("tree", it.key, it.path, 0, origin=it.origin, entries=it.entries[n * i // k:n * (i + 1) // k])
                         for i in range(k))
        else:
            items.append(it)
    return items, errors, src.skipped_dirs, trees


_OPEN_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class DirChanged(OSError):
    """A directory is no longer the one its listing recorded (swapped for a symlink or another directory)."""


def _open_dir(d: str, key: tuple[int, int] | None) -> int:
    """A descriptor of directory ``d`` checked against the (device, inode) its listing recorded, or -1 when there
    is nothing to check (no key: a walk that follows symlinks, or not POSIX). Opened with ``O_NOFOLLOW``: a
    directory swapped for a symlink after its parent was listed raises ``DirChanged`` (or ``OSError``), and so
    does one whose path now leads elsewhere (a directory above it swapped). Its entries are then listed and
    stat-ed relative to the descriptor (``scandir(fd)``, ``dir_fd``), so nothing outside the tree is read."""
    if key is None or not _POSIX:
        return -1
    try:
        fd = os.open(d, _OPEN_DIR)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise DirChanged(exc.errno, "replaced by a symlink or a file after it was listed") from None
        raise
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != key:
        os.close(fd)
        raise DirChanged(errno.ESTALE, "replaced by another directory after it was listed")
    return fd


def _stat(path: str, follow_symlinks: bool = True, at: tuple[int, str] | None = None) -> os.stat_result:
    """``os.stat``, of ``at``'s name relative to its directory descriptor when given."""
    if at is None:
        return os.stat(path, follow_symlinks=follow_symlinks)
    return os.stat(at[1], dir_fd=at[0], follow_symlinks=follow_symlinks)


def _dir_error(rel: str, exc: OSError) -> ScanError:
    if isinstance(exc, DirChanged):
        return ScanError(rel, f"directory {exc.strerror}; not walked (nothing outside the tree is read)", "changed")
    return ScanError(rel, f"cannot list directory: {exc.strerror}", "unreadable")


def expand_shard(item: Item, big: int = 0,
                 stat_of: Callable[..., os.stat_result] | None = None) -> tuple[list[Item], list[ScanError], list[Item]]:
    """The ``file`` items of a ``dir`` shard, exactly as ``FileSource.items`` would have listed them, as
    ``(items, errors, deferred)``. An entry listed by name only (size -1) is stat-ed here, with the listing's
    errors for a file that vanished or is no longer regular; when ``big`` is set, such a file of ``big`` bytes
    or more in a shard of several goes to ``deferred`` (its own task) instead of ``items``. ``stat_of``: what
    stats it (``os.stat`` by default; the worker passes ``FileReader.probe``, which opens the file as it stats
    it, so reading it needs no second ``open`` nor ``fstat``)."""
    stat_of = stat_of or _stat
    d, rel, follow = item.key, item.path, item.follow
    several = len(item.entries) > 1
    dpre, rpre = (_under(d), _under(rel) if rel else "") if _POSIX else ("", "")
    dfd = -1
    if not follow and item.ino and any(e[1] < 0 for e in item.entries):  # files to stat by name: from here
        try:
            dfd = _open_dir(d, (item.dev, item.ino))
        except OSError as exc:
            shown_dir = display_path(rel) if rel else "."
            return [], [_dir_error(shown_dir, exc)], []
    try:
        return _expand(item, big, stat_of, dfd, several, dpre, rpre)
    finally:
        if dfd >= 0:
            os.close(dfd)


def _file_item_maker() -> Callable[[str, str, int, int, int, bool], Item]:
    """``file_item(key, path, size, dev, ino, follow)``: ``Item("file", key, path, size, dev=dev, ino=ino,
    follow=follow)``, built by setting its slots through their descriptors. ``Item`` is a frozen dataclass, whose
    ``__init__`` sets each of its ten fields with ``object.__setattr__`` (a lookup by name each): 1.85 µs an item
    against 0.65 µs, ~45 ms of CPU for the real tree's 36k items (invisible in cProfile, where every dataclass
    ``__init__`` is the same ``<string>:2`` entry). Any field not given gets its declared default; should
    ``Item`` ever gain a ``__post_init__`` or a field with a default factory, this is ``Item`` itself."""
    import dataclasses

    fields = dataclasses.fields(Item)
    names = tuple(f.name for f in fields)
    given = ("kind", "key", "path", "size", "dev", "ino", "follow")
    rest = [f for f in fields if f.name not in given]
    if (hasattr(Item, "__post_init__") or not set(given) <= set(names)
            or any(f.default is dataclasses.MISSING or not f.init for f in rest)):  # pragma: no cover - a new Item
        return lambda key, path, size, dev, ino, follow: Item("file", key, path, size, dev=dev, ino=ino, follow=follow)
    new = object.__new__
    s_kind, s_key, s_path, s_size, s_dev, s_ino, s_follow = (Item.__dict__[n].__set__ for n in given)
    defaults = tuple((Item.__dict__[f.name].__set__, f.default) for f in rest)

    def file_item(key: str, path: str, size: int, dev: int, ino: int, follow: bool) -> Item:
        it = new(Item)
        s_kind(it, "file")
        s_key(it, key)
        s_path(it, path)
        s_size(it, size)
        s_dev(it, dev)
        s_ino(it, ino)
        s_follow(it, follow)
        for setter, value in defaults:
            setter(it, value)
        return it

    return file_item


file_item = _file_item_maker()


def _expand(item: Item, big: int, stat_of: Callable[..., os.stat_result], dfd: int, several: bool, dpre: str,
            rpre: str) -> tuple[list[Item], list[ScanError], list[Item]]:
    d, rel, follow = item.key, item.path, item.follow
    make, posix, is_lnk, is_reg = file_item, _POSIX, stat.S_ISLNK, stat.S_ISREG
    join = os.path.join
    out: list[Item] = []
    errors: list[ScanError] = []
    deferred: list[Item] = []
    for name, size, dev, ino in item.entries:
        if posix:  # the same strings, without two ``os.path.join`` calls per file
            path, shown = dpre + name, rpre + name
            if not shown.isascii() or "\\" in shown:  # other ASCII (a flag of the string) is shown as it is
                shown = display_path(shown)
        else:
            r = join(rel, name) if rel else name
            path, shown = join(d, name), display_path(r.replace(os.sep, "/"))
        if size >= 0:
            out.append(make(path, shown, size, dev, ino, follow))
            continue
        try:
            st = stat_of(path, follow_symlinks=follow) if dfd < 0 else stat_of(path, follow_symlinks=follow,
                                                                                at=(dfd, name))
        except OSError as exc:
            kind = "vanished" if isinstance(exc, FileNotFoundError) else "unreadable"
            errors.append(ScanError(shown, f"cannot stat: {exc.strerror}", kind))
            continue
        mode = st.st_mode
        if not is_reg(mode):
            if is_lnk(mode):  # a regular file when listed, a symlink now (as ``FileReader.open`` says)
                errors.append(ScanError(shown, "replaced by a symlink after it was listed; not followed "
                                               "(use --follow-symlinks)", "changed"))
            else:
                errors.append(ScanError(shown, "not a regular file (device, FIFO or socket); skipped",
                                        "not-regular"))
            continue
        sz = st.st_size
        it = make(path, shown, sz, st.st_dev, st.st_ino, follow)
        (deferred if big and several and sz >= big else out).append(it)
    return out, errors, deferred
