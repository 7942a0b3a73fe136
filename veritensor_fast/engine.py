"""The engine: the only module that knows about processes.

It batches items from a source, hands the batches to an ``Executor`` (in-process for ``--jobs 1``, a
supervised process pool otherwise: ``executors_local``, which survives workers that die), gathers
``BatchResult`` objects in the parent and returns one sorted ``ScanResult``. Everything else is a library call: ``scan(source, options, jobs=...)``.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from veritensor_fast import __version__
from veritensor_fast.executors_base import EngineError, Executor, ExecutorFactory  # noqa: F401 (re-exported)
from veritensor_fast.findings import OUT_OF_MEMORY, Finding, Item, ScanError, ScanResult  # noqa: F401 (engine.ScanResult)
from veritensor_fast.matcher import compile_ruleset
from veritensor_fast.rules import RuleSet
from veritensor_fast.sources import Source
from veritensor_fast.worker import BATCH_BYTES, BATCH_ITEMS, BatchResult, ScanOptions, WorkerContext, scan_gc


class InProcessExecutor:
    """``--jobs 1``: the identical worker code, in this process."""

    def __init__(self, options: ScanOptions, serialised_db: bytes, ruleset: RuleSet | None = None) -> None:
        self.ctx = WorkerContext(options, serialised_db, ruleset)  # the parent's rule set: not loaded twice
        scan_gc()  # as a pool worker runs; the caller's thresholds come back at close
        self._closed = False

    def map(self, batches: Iterable[list[Item]]) -> Iterator[BatchResult]:
        for b in batches:
            todo = [b]
            while todo:
                batch = todo.pop()
                try:
                    res = self.ctx.run_batch(batch)
                except MemoryError:  # a batch step (the batch gate, a shard's walk) had no room: as the pool
                    # does with a worker that dies, each item alone, then an out-of-memory error for the one
                    # that still fails; this process (and every finding so far) goes on
                    if len(batch) > 1:
                        todo.extend([it] for it in reversed(batch))
                        continue
                    res = BatchResult()
                    res.errors.append(ScanError(batch[0].path, f"{OUT_OF_MEMORY}; not scanned", "limit"))
                todo.extend([it] for it in reversed(res.more))  # big files a directory shard held
                todo.extend(reversed(res.rest))  # what a batch of shards held past its bytes
                yield res

    def close(self) -> None:
        self.ctx.close()
        if not self._closed:
            self._closed = True
            scan_gc(enter=False)


def make_batches(items: Iterable[Item | ScanError], errors: list[ScanError], max_items: int = BATCH_ITEMS,
                 max_bytes: int = BATCH_BYTES) -> Iterator[list[Item]]:
    """Group items into batches; ``ScanError`` entries from the source go straight to ``errors``."""
    batch: list[Item] = []
    size = 0
    n = 0
    for it in items:
        if isinstance(it, ScanError):
            errors.append(it)
            continue
        if it.size >= max_bytes:
            yield [it]
            continue
        batch.append(it)
        size += max(it.size, 0)
        n += len(it.entries) or 1  # a ``dir`` shard counts as the files it holds
        if n >= max_items or size >= max_bytes:
            yield batch
            batch, size, n = [], 0, 0
    if batch:
        yield batch


#: A scan whose items all fit in this many batches and bytes runs in-process even when ``jobs > 1``
#: (measured: starting two workers costs ~0.13 s, more than scanning a few MB).
SMALL_SCAN_BATCHES = 2
SMALL_SCAN_BYTES = 8 << 20


class _Ahead:
    """An item stream that can say whether another item is coming (``more``) without handing it out yet."""

    def __init__(self, items: Iterable[Item | ScanError]) -> None:
        self._items = iter(items)
        self._held: list[Item | ScanError] = []

    def __iter__(self) -> Iterator[Item | ScanError]:
        return self

    def __next__(self) -> Item | ScanError:
        if self._held:
            return self._held.pop(0)
        return next(self._items)

    def more(self) -> bool:
        """Whether an item (not a ``ScanError``) is still to come; what it reads ahead is handed out later."""
        for it in self._items:
            self._held.append(it)
            if not isinstance(it, ScanError):
                return True
        return False


def _peek_small(batches: Iterator[list[Item]], ahead: _Ahead | None = None) -> tuple[Iterator[list[Item]], bool]:
    """Read ahead up to the small-scan limits; return the (restored) batch stream and whether it is small.

    With ``ahead`` (the stream ``batches`` is made from), a scan is known not to be small as soon as the small
    number of batches is full and one more item is listed: that item makes another batch, so the next batch's
    other files need not be listed (and stat-ed) before the workers are forked. Same answer as listing it."""
    head: list[list[Item]] = []
    size = 0
    for b in batches:
        head.append(b)
        size += sum(max(it.size, 0) for it in b)
        # a ``tree`` item is the rest of a walk handed to the workers: never small (its files are not counted)
        if len(head) > SMALL_SCAN_BATCHES or size > SMALL_SCAN_BYTES or any(it.kind == "tree" for it in b):
            return itertools.chain(head, batches), False
        if len(head) == SMALL_SCAN_BATCHES and ahead is not None and ahead.more():
            return itertools.chain(head, batches), False
    return iter(head), True


def _names_of_unread(errors: list[ScanError], findings: list[Finding], options: ScanOptions, ruleset: RuleSet,
                     db: bytes) -> list[Finding]:
    """A secret in the name of an input that could not be read (a FIFO, an unreadable file) leaks too."""
    from veritensor_fast.matcher import SecretMatcher
    from veritensor_fast.worker import allow_regex, secrets_in_paths

    if not errors:
        return []
    seen = {(f.path, f.fingerprint) for f in findings if f.location == {"in": "path"}}
    found = secrets_in_paths(SecretMatcher(ruleset, db, strict=options.strict_secrets), allow_regex(options),
                             [e.path for e in errors])
    return [f for fs in found.values() for f in fs if (f.path, f.fingerprint) not in seen]


def __getattr__(name: str) -> Any:
    """``engine.PoolExecutor`` stays importable; its module (and ``multiprocessing``) loads on first use."""
    if name == "PoolExecutor":
        from veritensor_fast.executors_local import PoolExecutor

        return PoolExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def scan(source: Source, options: ScanOptions, jobs: int | None = None,
         on_progress: Callable[[BatchResult], None] | None = None,
         executor: Executor | None = None, make_executor: ExecutorFactory | None = None) -> ScanResult:
    """Scan everything ``source`` yields and return sorted findings, errors and stats.

    ``make_executor`` (e.g. ``functools.partial(DaskExecutor, client)``) is called with the options and the
    compiled database; the small-scan shortcut does not apply to it, and ``stats["jobs"]`` is its ``jobs``."""
    from veritensor_fast.rules import RuleError

    t0 = time.perf_counter()
    try:
        ruleset = options.ruleset()
        db = compile_ruleset(ruleset)
    except RuleError as exc:
        raise EngineError(str(exc)) from exc
    jobs = jobs or default_jobs()
    errors: list[ScanError] = []
    # Local executors get directory shards when the source can list them (the workers build the per-file
    # items, in parallel); a custom executor (Dask) gets plain items.
    shardable = executor is None and make_executor is None and hasattr(type(source), "items_sharded")
    # With a pool (jobs > 1), the workers list all but the first files (``tree`` items): the parent only hands out.
    # (the rest of the walk in up to ``jobs`` pieces: that many workers list from the start)
    listing = (source.items_sharded(BATCH_ITEMS, BATCH_BYTES, trees=jobs > 1,  # type: ignore[attr-defined]
                                    pieces=jobs) if shardable else source.items())
    # (a walk with a pool: decide "not small" without listing the next batch; ``_peek_small``)
    ahead = _Ahead(listing) if shardable and jobs > 1 else None
    batches: Iterable[list[Item]] = make_batches(listing if ahead is None else ahead, errors)
    if executor is None and make_executor is not None:
        executor = make_executor(options, db)
        jobs = getattr(executor, "jobs", jobs)
    if executor is None:
        if jobs > 1:
            batches, small = _peek_small(iter(batches), ahead)
            if small:  # a few small files: forking workers would cost more than the whole scan
                jobs = 1
        if jobs <= 1:
            executor = InProcessExecutor(options, db, ruleset)
        else:
            from veritensor_fast.executors_local import PoolExecutor

            # ``BatchResult.scanned`` (a path per file) goes back to the parent only for a source that reads it
            executor = PoolExecutor(options, db, jobs, ruleset, scanned=hasattr(source, "on_batch"))
    findings: list[Finding] = []
    parts: list[tuple[str, int, list[Finding], list[ScanError]]] = []  # of files split across tasks
    n_items = n_bytes = 0
    observe: Callable[[BatchResult], None] | None = getattr(source, "on_batch", None)
    ok = False
    try:
        for res in executor.map(batches):
            findings.extend(res.findings)
            errors.extend(res.errors)
            parts.extend(res.spans)
            if res.skipped:  # directories the workers' walk skipped by default
                source.skipped_dirs.extend(res.skipped)  # type: ignore[attr-defined]
            n_items += res.items
            n_bytes += res.bytes
            if observe is not None:  # a source may record per-batch results (git history datastore)
                observe(res)
            if on_progress is not None:
                on_progress(res)
        ok = True
    finally:
        if ok or not hasattr(executor, "terminate"):
            executor.close()
        else:
            executor.terminate()
    if parts:
        from veritensor_fast.batching import merge_spans

        more_findings, more_errors = merge_spans(parts)
        findings.extend(more_findings)
        errors.extend(more_errors)
    try:
        findings.extend(_names_of_unread(errors, findings, options, ruleset, db))
    except MemoryError:  # no room for one more matcher: the report (and every finding) still comes out
        errors.append(ScanError(".", f"{OUT_OF_MEMORY}: the names of the inputs not read were not checked "
                                "for secrets", "limit"))
    findings = source.annotate(findings)
    findings.sort(key=Finding.sort_key)
    errors.sort(key=lambda e: (e.path, e.kind, e.reason))
    secs = time.perf_counter() - t0
    stats = {
        "files": n_items, "bytes": n_bytes, "seconds": round(secs, 4),
        "mb_per_s": round(n_bytes / 1e6 / secs, 2) if secs > 0 else 0.0,
        "findings": len(findings), "errors": len(errors), "jobs": jobs, "rules_version": ruleset.version,
        "version": __version__,
    }
    source_stats = getattr(source, "stats", None)  # e.g. the directories a walk skipped by default
    if callable(source_stats):
        stats.update(source_stats())
    restarts = getattr(executor, "restarts", 0)
    if restarts:
        stats["worker_restarts"] = restarts
    return ScanResult(findings, errors, stats)
