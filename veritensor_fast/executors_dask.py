"""Run the scan's worker code on a Dask ``distributed`` cluster (``scan --scheduler tcp://host:8786``).

The same ``WorkerContext.run_batch`` the local pool runs, submitted as ``run_remote(options, db, batch)``:

- what travels is ``ScanOptions`` and ``Item`` references, never file bytes; the serialised Hyperscan
  database is scattered once to every worker (``broadcast=True``) and passed to tasks by reference;
- each Dask worker *thread* builds its ``WorkerContext`` (rules, Hyperscan scratch, detectors, readers) once
  and keeps it (``threading.local``, keyed by the options and a hash of the database);
- items are paths (files) or repository directories (git blobs): every worker must see them under the same
  absolute path as the client (shared filesystem, or the same checkout on every node). Relative file paths
  and rule files are made absolute here, in the client, before anything is shipped;
- at most ``max_in_flight`` batches (default 4 x the cluster's threads) are submitted at once, so a huge source
  is never materialised; results are yielded as they complete;
- a batch that raises inside ``run_remote`` is retried item by item, and an item that still fails becomes an
  ``internal`` ``ScanError`` (exception type only, never content); a task Dask gives up on (a worker that kept
  dying: ``KilledWorker``) becomes an ``internal`` error for each item of its batch. The scan goes on.

``distributed`` is imported only by this module, which the CLI imports only when ``--scheduler`` is given.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import replace

from distributed import Client, Future, as_completed

from veritensor_fast.engine import EngineError
from veritensor_fast.findings import Item, ScanError
from veritensor_fast.worker import BatchResult, ScanOptions, WorkerContext

#: Item kinds a remote worker can read (``memory`` items live in the client's memory only).
REMOTE_KINDS = frozenset({"file", "blob", "commit"})
#: Worker contexts kept per thread (one per distinct options + database; scans rarely interleave).
CONTEXTS_PER_THREAD = 4


class DaskExecutorError(EngineError):
    """The Dask cluster cannot be used: no scheduler at the address, no workers, an item it cannot read."""


# ---- worker side -----------------------------------------------------------------------------------------

_local = threading.local()


def _context(options: ScanOptions, serialised_db: bytes) -> WorkerContext:
    """This thread's ``WorkerContext`` for ``options`` and the database, built on first use."""
    last = getattr(_local, "last", None)
    if last is not None and last[1] is serialised_db and last[0] == options:
        return last[2]
    cache: OrderedDict[tuple[ScanOptions, str], WorkerContext] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    key = (options, hashlib.sha256(serialised_db).hexdigest())
    ctx = cache.get(key)
    if ctx is None:
        ctx = cache[key] = WorkerContext(options, serialised_db)
        while len(cache) > CONTEXTS_PER_THREAD:
            cache.popitem(last=False)[1].close()
    else:
        cache.move_to_end(key)
    _local.last = (options, serialised_db, ctx)  # holds the bytes, so the identity check above stays valid
    return ctx


def _failed(items: Iterable[Item], exc: BaseException, where: str) -> list[ScanError]:
    return [ScanError(it.path, f"{where}: {type(exc).__name__}", "internal") for it in items]


def _merge(into: BatchResult, res: BatchResult) -> None:
    into.findings.extend(res.findings)
    into.errors.extend(res.errors)
    into.items += res.items
    into.bytes += res.bytes
    into.scanned.extend(res.scanned)


def run_remote(options: ScanOptions, serialised_db: bytes, batch: list[Item]) -> BatchResult:
    """The Dask task: ``run_batch`` with this thread's context. Never raises for a bad item."""
    try:
        ctx = _context(options, serialised_db)
    except Exception as exc:  # the worker cannot scan at all (e.g. a rules file it cannot see)
        return BatchResult(errors=_failed(batch, exc, "distributed worker could not start"))
    try:
        return ctx.run_batch(batch)
    except Exception as exc:
        if len(batch) == 1:
            return BatchResult(errors=_failed(batch, exc, "distributed worker failed"))
    out = BatchResult()  # find the item that fails; the others' findings are kept
    for it in batch:
        _merge(out, run_remote(options, serialised_db, [it]))
    return out


# ---- client side -----------------------------------------------------------------------------------------

def connect(address: str, timeout: float = 10.0) -> Client:
    """A client for the scheduler at ``address`` that has at least one worker, or ``DaskExecutorError``."""
    from distributed.comm import parse_address
    from distributed.comm.registry import get_backend

    try:  # a bad scheme fails here, at once (a Client would wait for its timeout, then twice more on exit)
        get_backend(parse_address(address)[0])
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, ValueError, asyncio.TimeoutError) as exc:  # asyncio's is not an OSError before 3.11
        raise DaskExecutorError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, ValueError, asyncio.TimeoutError) as exc:
        client.close()
        raise DaskExecutorError(f"the Dask scheduler at {address} has no workers ({type(exc).__name__})") from None
    return client


def _absolute(options: ScanOptions) -> ScanOptions:
    if not options.rule_files:
        return options
    return replace(options, rule_files=tuple(os.path.abspath(p) for p in options.rule_files))


def _portable(batch: list[Item]) -> list[Item]:
    out = []
    for it in batch:
        if it.kind not in REMOTE_KINDS:
            raise DaskExecutorError(f"{it.kind} items cannot be scanned on a Dask cluster (scan them locally)")
        if it.kind == "file" and not os.path.isabs(it.key):
            it = replace(it, key=os.path.abspath(it.key))
        elif it.kind in ("blob", "commit") and it.origin and not os.path.isabs(it.origin):
            it = replace(it, origin=os.path.abspath(it.origin))
        out.append(it)
    return out


class DaskExecutor:
    """An ``Executor`` that runs batches on a Dask cluster. ``client``: a ``distributed.Client`` (not closed
    here) or a scheduler address (connected here, closed by ``close``)."""

    def __init__(self, client: Client | str, options: ScanOptions, serialised_db: bytes,
                 max_in_flight: int | None = None) -> None:
        self._own = isinstance(client, str)
        self.client: Client = connect(client) if isinstance(client, str) else client
        self.options = _absolute(options)
        #: total worker threads when the scan started (reported as ``stats["jobs"]``)
        self.jobs = max(1, sum(self.client.nthreads().values()))
        self.max_in_flight = max_in_flight or 4 * self.jobs
        # hash=False: a unique key per scan (a reused content key can race with the previous scan's release)
        self._db: Future | None = self.client.scatter(serialised_db, broadcast=True, hash=False)
        self._pending: dict[Future, list[Item]] = {}

    def map(self, batches: Iterable[list[Item]]) -> Iterator[BatchResult]:
        it = iter(batches)
        done = as_completed(loop=self.client.loop)  # this client's loop: it is not the default client

        def submit() -> None:
            batch = next(it, None)
            if batch is not None:
                batch = _portable(batch)
                fut = self.client.submit(run_remote, self.options, self._db, batch, pure=False)
                self._pending[fut] = batch
                done.add(fut)

        for _ in range(self.max_in_flight):
            submit()
        for fut in done:
            batch = self._pending.pop(fut)
            submit()  # keep the cluster busy while the caller handles this result
            yield self._result(fut, batch)

    @staticmethod
    def _result(fut: Future, batch: list[Item]) -> BatchResult:
        try:
            res = fut.result()
        except Exception as exc:  # KilledWorker, a result that could not be deserialised, a cancelled task
            return BatchResult(errors=_failed(batch, exc, "distributed task failed"))
        finally:
            fut.release()
        if not isinstance(res, BatchResult):
            return BatchResult(errors=[ScanError(it.path, "distributed task returned no result", "internal")
                                       for it in batch])
        return res

    def close(self) -> None:
        if self._pending:
            self.client.cancel(list(self._pending))
            self._pending.clear()
        if self._db is not None:
            self._db.release()
            self._db = None
        if self._own:
            self.client.close()

    def terminate(self) -> None:
        self.close()
