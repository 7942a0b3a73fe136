"""Shards: the unit of distributed work when one client must not walk, plan and gather a whole sweep.

A shard is a directory subtree (one top-level directory of a scanned PATH, or the files directly in it), a
single file PATH, or a git repository (``--history``). The client only *plans* shards (one ``scandir`` per
PATH); each Dask task lists and scans its shard on the worker with the ordinary in-process engine, and writes
its findings, errors and stats as JSON Lines to ``out_dir/<shard id>.jsonl`` (atomically: a temporary file,
then a rename; the last line says the shard is complete). The task returns only counts. The client merges the
shard files into one ``ScanResult`` at the end, and a rerun after a crash skips every shard whose file is
complete. Full secrets are written to shard files only when the report will show them (``--show-secrets``).

Reports are the same as an unsharded scan: paths are relative to the PATH given, as ``FileSource`` makes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from veritensor_fast.findings import Finding, Item, ScanError, ScanResult, display_path
from veritensor_fast.sources.fs import ALWAYS_SKIP_DIRS, FileSource, _excluded
from veritensor_fast.worker import ScanOptions

#: Stats that add up across shards.
#: Largest shard result file read back (a bigger one is taken as not done and its shard scanned again).
MAX_SHARD_FILE = 1 << 30
SUMMED = ("files", "bytes", "seconds", "findings", "errors", "blobs_total", "blobs_scanned", "blobs_from_datastore")


@dataclass(frozen=True)
class Shard:
    """``root`` as given; ``sub``: a top-level directory name under it, ``""`` for the files directly in it,
    ``None`` for the whole root (a file PATH, or a repository with ``history``)."""

    root: str
    sub: str | None
    multi: bool  # several PATHs: report paths start with the root (as ``FileSource`` does)
    history: bool = False

    @property
    def id(self) -> str:
        key = json.dumps([os.path.abspath(self.root), self.sub, self.multi, self.history])
        return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def plan(roots: Sequence[str], history: bool = False, follow_symlinks: bool = False,
         excludes: Sequence[str] = ()) -> list[Shard]:
    """Shards for ``roots``: one ``scandir`` per directory PATH, nothing deeper."""
    multi = len(roots) > 1
    out: list[Shard] = []
    for root in roots:
        if history or not os.path.isdir(root):
            out.append(Shard(root, None, multi, history))
            continue
        out.append(Shard(root, "", multi))
        try:
            with os.scandir(root) as it:
                names = sorted(e.name for e in it if e.is_dir(follow_symlinks=follow_symlinks)
                               and (follow_symlinks or not e.is_symlink()))
        except OSError:
            names = []  # the files shard reports the unreadable directory
        prefix = os.path.normpath(root) if multi else ""
        for n in names:
            rel = display_path(os.path.join(prefix, n).replace(os.sep, "/") if prefix else n)  # as the walk's
            if n not in ALWAYS_SKIP_DIRS and not _excluded(rel, n, excludes):
                out.append(Shard(root, n, multi))
    return out


class ShardSource(FileSource):
    """The part of ``FileSource([root])`` one shard covers, with the same report paths and excludes."""

    def __init__(self, shard: Shard, excludes: Sequence[str] = (), follow_symlinks: bool = False,
                 max_file_size: int = 0) -> None:
        super().__init__([shard.root], excludes, follow_symlinks, max_file_size)
        self.shard = shard

    def _enter(self, root: str, path: str, is_root: bool, what: str) -> ScanError | None:
        """Stat a directory the shard walks from and remember it (a link back to it is a loop); the error when
        it cannot be."""
        try:
            st = os.stat(path)
        except OSError as exc:
            return ScanError(self._rel(root, path, is_root), f"{what}: {exc.strerror}", "unreadable")
        self._seen_dirs.add((st.st_dev, st.st_ino))
        return None

    def items(self) -> Iterator[Item | ScanError]:
        sh = self.shard
        self._prefix = os.path.normpath(sh.root) if sh.multi else ""
        if sh.sub is None:
            yield from self._root(sh.root)
            return
        root = sh.root
        err = self._enter(root, root, True, "cannot access")
        if err is None and sh.sub:
            top = os.path.join(root, sh.sub)
            err = self._enter(root, top, False, "cannot stat")
            if err is None:
                yield from self._walk(root, top)
                return
        if err is not None:
            yield err
            return
        try:  # the files directly in the root
            with os.scandir(root) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield ScanError(self._rel(root, root, False), f"cannot list directory: {exc.strerror}", "unreadable")
            return
        for e in entries:
            rel = self._rel(root, e.path, False)
            try:
                if e.is_symlink() and not self.follow_symlinks:
                    continue
                if e.is_dir(follow_symlinks=self.follow_symlinks) or _excluded(rel, e.name, self.excludes):
                    continue
                fst = e.stat(follow_symlinks=self.follow_symlinks)
            except OSError as exc:
                kind = "vanished" if isinstance(exc, FileNotFoundError) else "unreadable"
                yield ScanError(rel, f"cannot stat: {exc.strerror}", kind)
                continue
            if stat.S_ISDIR(fst.st_mode):
                continue
            yield self._file_item(e.path, rel, fst)


# ---- worker side -----------------------------------------------------------------------------------------

def _path(out_dir: str, shard: Shard) -> str:
    return os.path.join(out_dir, shard.id + ".jsonl")


def read_shard(path: str, need_secrets: bool = False) -> tuple[list[Finding], list[ScanError], dict[str, Any]] | None:
    """A complete shard file's contents, or ``None`` (absent, partial, unreadable, or without the full secrets
    that ``need_secrets`` asks for)."""
    findings: list[Finding] = []
    errors: list[ScanError] = []
    from veritensor_fast.safeio import SmallFileError, read_regular_file

    try:  # a regular file only, bounded: a FIFO or /dev/zero planted in the shared DIR is "not done"
        lines = read_regular_file(path, "shard file", MAX_SHARD_FILE).decode("utf-8", "surrogateescape")
    except SmallFileError:
        return None
    try:
        for line in lines.split("\n"):
            if not line:
                continue
            rec = json.loads(line)
            t = rec.pop("type")
            if t == "finding":
                findings.append(Finding(**rec))
            elif t == "error":
                errors.append(ScanError(**rec))
            elif t == "done":
                return (findings, errors, rec["stats"]) if rec["secrets"] or not need_secrets else None
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return None


def run_shard(shard: Shard, options: ScanOptions, out_dir: str, keep_secrets: bool,
              source_kw: dict[str, Any]) -> dict[str, Any]:
    """The Dask task: scan one shard here (in-process engine), write its JSONL file, return its counts. A shard
    whose file is already complete is not scanned again."""
    path = _path(out_dir, shard)
    done = read_shard(path, keep_secrets)
    if done is not None:
        return {"skipped": True, "findings": len(done[0]), "errors": len(done[1])}
    if shard.history:
        from veritensor_fast.history import scan_history

        res = scan_history([shard.root], options, jobs=1, **source_kw)
    else:
        from veritensor_fast.engine import scan

        res = scan(ShardSource(shard, **source_kw), options, jobs=1)
    out: list[str] = []
    for fd in res.findings:
        d = dataclasses.asdict(fd)
        if not keep_secrets:
            d["secret"] = None
        if shard.history and shard.multi:
            d["repo"] = os.path.normpath(shard.root)
        out.append(json.dumps({"type": "finding", **d}) + "\n")
    for e in res.errors:
        out.append(json.dumps({"type": "error", **dataclasses.asdict(e)}) + "\n")
    out.append(json.dumps({"type": "done", "secrets": keep_secrets, "stats": res.stats}) + "\n")
    from veritensor_fast.safeio import replace_file

    replace_file(path, "".join(out), newline="\n")  # random exclusive temporary name, then renamed
    return {"skipped": False, "findings": len(res.findings), "errors": len(res.errors)}


# ---- client side -----------------------------------------------------------------------------------------

def scan_sharded(client: Any, roots: Sequence[str], options: ScanOptions, out_dir: str, *,
                 history: bool = False, keep_secrets: bool = False, excludes: Sequence[str] = (),
                 follow_symlinks: bool = False, max_file_size: int = 0,
                 history_kw: dict[str, Any] | None = None) -> ScanResult:
    """Plan shards, run one Dask task per shard (each writes ``out_dir/<id>.jsonl``), merge the files."""
    from distributed import KilledWorker, as_completed

    from veritensor_fast.executors_dask import DaskExecutorError, _absolute, preflight

    roots = [os.path.abspath(r) if not os.path.isabs(r) else r for r in roots]
    out_dir = os.path.abspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    options = _absolute(options)
    preflight(client, options, [*roots, out_dir])
    shards = plan(roots, history, follow_symlinks, excludes)
    kw: dict[str, Any] = dict(history_kw or {}) if history else {
        "excludes": tuple(excludes), "follow_symlinks": follow_symlinks, "max_file_size": max_file_size}
    futures = [client.submit(run_shard, sh, options, out_dir, keep_secrets, kw, pure=False) for sh in shards]
    skipped = 0
    errors: list[ScanError] = []
    by_future = dict(zip(futures, shards, strict=True))
    for fut in as_completed(futures, loop=client.loop):
        sh = by_future[fut]
        try:
            skipped += bool(fut.result()["skipped"])
        except Exception as exc:  # a shard whose workers kept dying, or a bug: the rest of the sweep goes on
            if client.status != "running":
                raise DaskExecutorError("lost the Dask scheduler mid-scan (the scan is incomplete)") from None
            kind = "crash" if isinstance(exc, KilledWorker) else "internal"
            errors.append(ScanError(os.path.join(sh.root, sh.sub or ""), f"shard failed: {type(exc).__name__}",
                                    kind))
    findings: list[Finding] = []
    stats: dict[str, Any] = {}
    for sh in shards:
        got = read_shard(_path(out_dir, sh), keep_secrets)
        if got is None:
            continue  # reported above
        findings.extend(got[0])
        errors.extend(got[1])
        for k, v in got[2].items():
            if k in SUMMED and isinstance(v, int | float):
                stats[k] = stats.get(k, 0) + v
            else:
                stats.setdefault(k, v)
    findings.sort(key=Finding.sort_key)
    errors.sort(key=lambda e: (e.path, e.kind, e.reason))
    stats.update(findings=len(findings), errors=len(errors), shards=len(shards), shards_skipped=skipped,
                 jobs=max(1, sum(client.nthreads().values())))
    if stats.get("seconds"):
        stats["mb_per_s"] = round(stats.get("bytes", 0) / 1e6 / stats["seconds"], 2)
    return ScanResult(findings, errors, stats)
