"""Batches of a scan, worker side: a ``dir`` shard expanded into its ``file`` items, and a batch that stops at
its bytes (``expand_capped``). The executors that send shards run what comes back (``BatchResult.more`` and
``BatchResult.rest``) as tasks of their own.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from veritensor_fast.buffers import LargeFile
from veritensor_fast.findings import Finding, Item, ScanError


def expand_items(batch: list[Item], big: int = 0) -> tuple[list[Item], list[ScanError], list[Item]]:
    """``batch`` with every ``dir`` shard replaced by its ``file`` items: ``(items, errors, deferred)`` (see
    ``sources.fs.expand_shard``; ``big=0``: nothing is deferred)."""
    batch, tree_errors, _, _ = expand_trees(batch, 1 << 30, 1 << 62, -1)  # a tree item: all of it, here
    items, errors, deferred, _ = expand_capped(batch, big, 0)
    return items, tree_errors + errors, deferred


def expand_trees(batch: list[Item], max_files: int, max_bytes: int,
                 budget: int) -> tuple[list[Item], list[ScanError], list[str], list[list[Item]]]:
    """``batch`` with its ``tree`` items walked (``sources.fs.walk_tree``, about ``budget`` files in all; ``< 0``:
    all of them): ``(items, errors, skipped directories, rest)``, ``rest`` what is left of the walk, as
    batches of one ``tree`` item each (a task each)."""
    if all(it.kind != "tree" for it in batch):
        return batch, [], [], []
    from veritensor_fast.sources.fs import walk_tree

    out: list[Item] = []
    errors: list[ScanError] = []
    skipped: list[str] = []
    rest: list[list[Item]] = []
    for it in batch:
        if it.kind != "tree":
            out.append(it)
            continue
        if budget >= 0 and budget <= sum(len(x.entries) or 1 for x in out):  # the batch is full: walk it later
            rest.append([it])
            continue
        items, e, sk, trees = walk_tree(it, max_files, max_bytes, budget)
        out.extend(items)
        errors.extend(e)
        skipped.extend(sk)
        rest.extend([t] for t in trees)
    return out, errors, skipped, rest


def chunk(items: list[Item], max_items: int, max_bytes: int) -> list[list[Item]]:
    """``items`` in batches as ``engine.make_batches`` fills them (a ``dir`` shard counts its entries; a file of
    ``max_bytes`` or more is a batch of its own)."""
    out: list[list[Item]] = []
    batch: list[Item] = []
    size = n = 0
    for it in items:
        if it.size >= max_bytes:
            out.append([it])
            continue
        batch.append(it)
        size += max(it.size, 0)
        n += len(it.entries) or 1
        if n >= max_items or size >= max_bytes:
            out.append(batch)
            batch, size, n = [], 0, 0
    if batch:
        out.append(batch)
    return out


def walked(batch: list[Item], out: list[Item], rest: list[list[Item]]) -> tuple[int, int]:
    """What ``expand_trees`` did to ``batch`` (``out``, ``rest`` its result), for ``BatchResult.walked``: the files
    its tree walks listed, and the ``tree`` items it handed back less those it took. Counted per item, not per
    file (a ``dir`` shard counts its entries)."""
    def files(items: list[Item]) -> int:
        return sum(len(it.entries) or 1 for it in items if it.kind != "tree")

    return files(out) - files(batch), sum(len(b) for b in rest) - sum(it.kind == "tree" for it in batch)


def expand_capped(batch: list[Item], big: int, cap: int, stat_of: Callable[..., os.stat_result] | None = None,
                  ) -> tuple[list[Item], list[ScanError], list[Item], list[list[Item]]]:
    """``expand_items`` that stops at about ``cap`` bytes (0: no limit): ``(items, errors, deferred, rest)``.

    A ``dir`` shard listed by name only has no sizes until the worker stats its files, so a batch of 256 of
    them may hold up to 1 GB: one task that the other workers wait for at the end of the scan. A file is taken
    while the batch holds less than ``cap`` bytes (as ``engine.make_batches`` fills a batch). ``rest`` is
    what is left, as batches the executor runs as tasks of their own (``BatchResult.rest``): the remaining
    files of the shard being expanded, stat-ed, as ``dir`` shards of about ``cap`` bytes (filled the same
    way, so none is cut again, and expanding one costs no ``stat``), then the batch's other items as they
    are, in one batch (it stops at ``cap`` bytes again). ``stat_of``: as ``expand_shard``'s."""
    if all(it.kind != "dir" for it in batch):
        return batch, [], [], []
    from veritensor_fast.sources.fs import expand_shard

    out: list[Item] = []
    errors: list[ScanError] = []
    deferred: list[Item] = []
    total = 0
    for n, it in enumerate(batch):
        if cap and total >= cap and out:
            return out, errors, deferred, [batch[n:]]
        if it.kind != "dir":
            out.append(it)
            total += max(it.size, 0)
            continue
        o, e, d = expand_shard(it, big, stat_of)
        errors.extend(e)
        deferred.extend(d)
        for i, f in enumerate(o):
            if cap and total >= cap and (out or i):
                out.extend(o[:i])
                rest = [[_shard_of(it, part)] for part in _fill(o[i:], cap)]
                return out, errors, deferred, rest + ([batch[n + 1:]] if n + 1 < len(batch) else [])
            total += f.size
        out.extend(o)
    return out, errors, deferred, []


def _fill(files: list[Item], cap: int) -> list[list[Item]]:
    """``files`` in runs: a file is added while the run holds less than ``cap`` bytes."""
    runs: list[list[Item]] = [[]]
    total = 0
    for f in files:
        if total >= cap and runs[-1]:
            runs.append([])
            total = 0
        runs[-1].append(f)
        total += max(f.size, 0)
    return runs


def _shard_of(shard: Item, files: list[Item]) -> Item:
    """The ``dir`` shard of ``files`` (expanded from ``shard``, stat-ed), which ``expand_shard`` gives back as is."""
    return dataclasses.replace(shard, size=sum(f.size for f in files),
                               entries=tuple((os.path.basename(f.key), f.size, f.dev, f.ino) for f in files))


def merge_spans(parts: list[tuple[str, int, list[Finding], list[ScanError]]]) -> tuple[list[Finding], list[ScanError]]:
    """The findings and errors of files split across tasks (``BatchResult.spans``: ``(key, span start, findings,
    errors)`` per part, in any order), merged per file as ``worker.scan_windows`` merges the windows of a file
    scanned in one task: parts in file order, a finding already seen at the same line and location (a match in
    the overlap of two windows) dropped, each error reason once."""
    findings: list[Finding] = []
    errors: list[ScanError] = []
    seen: set[tuple[str, str, int, str]] = set()
    reasons: set[tuple[str, str, str]] = set()
    for key, _start, found, errs in sorted(parts, key=lambda p: (p[0], p[1])):
        for f in found:
            k = (key, f.fingerprint, f.line, repr(sorted(f.location.items())) if f.location else "")
            if k not in seen:
                seen.add(k)
                findings.append(f)
        for e in errs:
            if (key, e.reason, e.kind) not in reasons:
                reasons.add((key, e.reason, e.kind))
                errors.append(e)
    return findings, errors


def part_changed(item: Item, buf: Any) -> str | None:
    """Why a part of a split file (``worker.split_file``) is not the file that was split, if it is not: it was
    opened later, by another task, and the file changed meanwhile (``LargeFile.close`` says the same of one task)."""
    version = buf.version if isinstance(buf, LargeFile) else (len(buf), -1)
    if len(item.span) < 4 or version == tuple(item.span[2:4]):
        return None
    return (f"changed while it was scanned ({item.span[2]} bytes when opened, {version[0]} now); "
            "findings are from what could be read")
