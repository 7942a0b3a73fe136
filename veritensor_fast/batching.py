"""Batches of a scan, worker side: a ``dir`` shard expanded into its ``file`` items, and a batch that stops at
its bytes (``expand_capped``). The executors that send shards run what comes back (``BatchResult.more`` and
``BatchResult.rest``) as tasks of their own.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

from veritensor_fast.findings import Item, ScanError


def expand_items(batch: list[Item], big: int = 0) -> tuple[list[Item], list[ScanError], list[Item]]:
    """``batch`` with every ``dir`` shard replaced by its ``file`` items: ``(items, errors, deferred)`` (see
    ``sources.fs.expand_shard``; ``big=0``: nothing is deferred)."""
    items, errors, deferred, _ = expand_capped(batch, big, 0)
    return items, errors, deferred


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
