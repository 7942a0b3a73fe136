"""Run the scan's worker code on a Dask ``distributed`` cluster (``scan --scheduler tcp://host:8786``).

The same ``WorkerContext.run_batch`` the local pool runs, submitted as ``run_remote(options, digest, expect,
batch)``:

- what travels is ``ScanOptions`` and ``Item`` references, never file bytes. The serialised Hyperscan
  database goes to every worker in a ``WorkerPlugin`` (the scheduler hands it to workers that join or restart
  later, so a cluster whose workers all died and came back still has it); tasks name it by its sha256. A
  worker without it compiles the rules itself;
- each Dask worker *thread* builds its ``WorkerContext`` (rules, Hyperscan scratch, detectors, readers) once
  and keeps it (``threading.local``, keyed by the options and the database digest). The worker code is safe
  under threads (``ast.parse`` is serialised: CPython 3.11 races there);
- before any work, ``preflight`` asks every worker for its veritensor-fast version, its rules version and what
  it sees at each scanned root: a worker of another version or rule set, or one that cannot see a root (or
  sees different content there), is refused, by name (``DaskExecutorError``, exit 2). A worker that joins
  later and differs is caught per task: its batches become ``internal`` errors, never silent losses;
- items are paths (files) or repository directories (git blobs): every worker must see them under the same
  absolute path as the client. Relative file paths and rule files are made absolute here, in the client;
- at most ``max_in_flight`` batches (default 4 x the cluster's threads) are submitted at once, so a huge source
  is never materialised; results are yielded as they complete;
- a task whose worker died is retried by Dask; a batch Dask gives up on (``KilledWorker``: its workers kept
  dying) runs again item by item; an item Dask gives up on again runs once more *alone* on the cluster (Dask
  blames every task a dying worker held), and if it still kills its worker it becomes a ``crash`` error; after
  ``executors_base.failures_in_a_row(max_in_flight)`` such give-ups in a row with no task finishing between
  (memory starvation: every worker dies on every item) and up to ``PROBES`` tasks run alone after them that
  died too (a run of files that each kill their worker reaches the count as well: a probe that finishes resets
  it), every item not scanned is a ``crash`` error and the scan stops, findings kept. A batch that
  raises inside ``run_remote`` is retried item by item; an item that still fails becomes an ``internal``
  error (exception type only, never content). The scan goes on;
- the scheduler lost mid-scan, or an address that accepts but never answers (bounded handshake: 10 s), is a
  ``DaskExecutorError``: the CLI exits 2 with one line.

``distributed`` is imported only by this module, which the CLI imports only when ``--scheduler`` is given.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from distributed import Client, Future, WorkerPlugin, as_completed

from veritensor_fast import __version__
from veritensor_fast.executors_base import PROBES, EngineError, failures_in_a_row
from veritensor_fast.findings import Item, ScanError
from veritensor_fast.worker import BatchResult, ScanOptions, WorkerContext

#: Item kinds a remote worker can read (``memory`` items live in the client's memory only).
REMOTE_KINDS = frozenset({"file", "blob", "commit"})
#: Worker contexts kept per thread (one per distinct options + database; scans rarely interleave).
CONTEXTS_PER_THREAD = 4
#: Seconds to connect and complete the handshake with the scheduler, and for workers to answer preflight.
CONNECT_TIMEOUT = 10.0
#: A scan whose cluster has had no worker at all for this long (seconds) stops with ``DaskExecutorError``.
NO_WORKERS_TIMEOUT = 120.0
#: Seconds between looks at the futures while none is ready.
POLL = 0.01
#: Names at the top of a scanned directory that ``preflight`` compares between the client and each worker.
FINGERPRINT_NAMES = 10_000


class DaskExecutorError(EngineError):
    """The Dask cluster cannot be used: no scheduler at the address, no workers, a worker that differs from the
    client or cannot see a scanned root, the scheduler lost mid-scan."""


# ---- worker side -----------------------------------------------------------------------------------------

_local = threading.local()
#: Serialised databases this worker process holds, by sha256 (put here by ``RulesPlugin``).
_DATABASES: dict[str, bytes] = {}


class RulesPlugin(WorkerPlugin):
    """Carries the compiled rules database to every worker, including workers that join or restart later."""

    idempotent = True

    def __init__(self, digest: str, serialised_db: bytes) -> None:
        self.digest = digest
        self.db = serialised_db

    def setup(self, worker: Any) -> None:
        _DATABASES[self.digest] = self.db

    def teardown(self, worker: Any) -> None:
        _DATABASES.pop(self.digest, None)


def _context(options: ScanOptions, digest: str) -> WorkerContext:
    """This thread's ``WorkerContext`` for ``options`` and the database, built on first use."""
    cache: OrderedDict[tuple[ScanOptions, str], WorkerContext] | None = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = OrderedDict()
    key = (options, digest)
    ctx = cache.get(key)
    if ctx is None:
        ctx = cache[key] = WorkerContext(options, _DATABASES.get(digest))  # absent: compiled here
        while len(cache) > CONTEXTS_PER_THREAD:
            cache.popitem(last=False)[1].close()
    else:
        cache.move_to_end(key)
    return ctx


def _failed(items: Iterable[Item], exc: BaseException, where: str, kind: str = "internal") -> list[ScanError]:
    return [ScanError(it.path, f"{where}: {type(exc).__name__}", kind) for it in items]


def _merge(into: BatchResult, res: BatchResult) -> None:
    into.findings.extend(res.findings)
    into.errors.extend(res.errors)
    into.items += res.items
    into.bytes += res.bytes
    into.scanned.extend(res.scanned)


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except ValueError:  # not in a worker (tests call run_remote directly)
        return "this process"


def run_remote(options: ScanOptions, digest: str, expect: tuple[str, str], batch: list[Item]) -> BatchResult:
    """The Dask task: ``run_batch`` with this thread's context. Never raises for a bad item. ``expect`` is the
    client's (version, rules version): a worker that differs scans nothing and says so."""
    try:
        ctx = _context(options, digest)
    except Exception as exc:  # the worker cannot scan at all (e.g. a rules file it cannot see)
        return BatchResult(errors=_failed(batch, exc, "distributed worker could not start"))
    if (__version__, ctx.ruleset.version) != expect:
        why = (f"distributed worker {_worker_name()} runs veritensor-fast {__version__} with rules "
               f"{ctx.ruleset.version}, the client {expect[0]} with rules {expect[1]}; not scanned")
        return BatchResult(errors=[ScanError(it.path, why, "internal") for it in batch])
    try:
        return ctx.run_batch(batch)
    except Exception as exc:
        if len(batch) == 1:
            return BatchResult(errors=_failed(batch, exc, "distributed worker failed"))
    out = BatchResult()  # find the item that fails; the others' findings are kept
    for it in batch:
        _merge(out, run_remote(options, digest, expect, [it]))
    return out


def fingerprint_root(path: str) -> str | None:
    """What a root looks like from here: ``None`` if it cannot be seen; else its type and, for a directory, a
    hash of the names at its top (a worker with another checkout or an empty mount point differs)."""
    try:
        if os.path.isdir(path):
            with os.scandir(path) as it:
                names = sorted(e.name for e in itertools.islice(it, FINGERPRINT_NAMES + 1))
            if len(names) > FINGERPRINT_NAMES:  # (listing order differs between filesystems: no prefix)
                return "dir:large"
            return "dir:" + hashlib.sha256("\0".join(names).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        if os.path.isfile(path):
            return f"file:{os.path.getsize(path)}"
        return "other" if os.path.exists(path) else None
    except OSError:
        return None


def worker_facts(options: ScanOptions, roots: Sequence[str]) -> dict[str, Any]:
    """Run on each worker by ``preflight``: its version, its rules version (or why it cannot load the rules)
    and what it sees at each root."""
    try:
        rules: str = options.ruleset().version
    except Exception as exc:
        rules = f"cannot load the rules ({type(exc).__name__})"
    return {"version": __version__, "rules": rules, "roots": {r: fingerprint_root(r) for r in roots}}


# ---- client side -----------------------------------------------------------------------------------------

def _handshake(address: str, timeout: float) -> None:
    """Connect and complete Dask's handshake within ``timeout`` (``Client`` waits for the handshake forever)."""
    from distributed.comm import connect as comm_connect

    async def probe() -> None:
        comm = await asyncio.wait_for(comm_connect(address, timeout=timeout), timeout)
        await comm.close()

    asyncio.run(probe())


def connect(address: str | None = None, timeout: float = CONNECT_TIMEOUT, scheduler_file: str | None = None) -> Client:
    """A client for the scheduler at ``address`` (or in ``scheduler_file``) that has at least one worker, or
    ``DaskExecutorError``. Every step is bounded by ``timeout``."""
    from distributed.comm import parse_address
    from distributed.comm.registry import get_backend

    where = address or f"the scheduler file {scheduler_file}"
    try:
        if scheduler_file is not None:
            import json

            from veritensor_fast.safeio import SmallFileError, read_regular_file

            try:  # a regular file only, bounded: a FIFO at its name is an error, not a hang
                address = str(json.loads(read_regular_file(scheduler_file, "scheduler file", 1 << 20))["address"])
            except SmallFileError as exc:
                raise ValueError(str(exc)) from None
        assert address is not None
        get_backend(parse_address(address)[0])  # a bad scheme fails here, at once
        if not address.startswith("inproc://"):
            _handshake(address, timeout)
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, ValueError, KeyError, TypeError, asyncio.TimeoutError) as exc:  # not OSError before 3.11
        msg = "no answer" if isinstance(exc, asyncio.TimeoutError) else str(exc) or type(exc).__name__
        raise DaskExecutorError(f"cannot connect to the Dask scheduler at {where}: {msg}") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, ValueError, asyncio.TimeoutError) as exc:
        client.close()
        raise DaskExecutorError(f"the Dask scheduler at {address} has no workers ({type(exc).__name__})") from None
    return client


def preflight(client: Client, options: ScanOptions, roots: Sequence[str] = (), rules_version: str = "",
              timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse a cluster whose workers differ from this client (version, rules) or cannot see a root."""
    roots = [os.path.abspath(r) for r in roots]
    rules_version = rules_version or options.ruleset().version
    try:
        facts: dict[str, Any] = client.run(worker_facts, options, roots, on_error="return")
    except (OSError, asyncio.TimeoutError) as exc:
        raise DaskExecutorError(f"the Dask workers did not answer ({type(exc).__name__})") from None
    here = {r: fingerprint_root(r) for r in roots}
    problems = []
    for worker, f in sorted(facts.items()):
        if not isinstance(f, dict):
            problems.append(f"worker {worker} failed the check ({type(f).__name__})")
            continue
        if f["version"] != __version__:
            problems.append(f"worker {worker} runs veritensor-fast {f['version']}, this client {__version__}")
        elif f["rules"] != rules_version:
            problems.append(f"worker {worker} has rules {f['rules']}, this client {rules_version}")
        for r in roots:
            seen = f["roots"].get(r)
            if seen is None:
                problems.append(f"worker {worker} cannot see {r}")
            elif seen != here[r]:
                problems.append(f"worker {worker} sees different content at {r}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DaskExecutorError("refusing the Dask cluster: " + "; ".join(problems[:3]) + more)


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
    here; any kind: TLS, Gateway, Kubernetes) or a scheduler address (connected here, closed by ``close``).
    ``roots``: the scanned paths, checked on every worker before the scan (``preflight``)."""

    def __init__(self, client: Client | str, options: ScanOptions, serialised_db: bytes,
                 max_in_flight: int | None = None, roots: Sequence[str] = (),
                 no_workers_timeout: float = NO_WORKERS_TIMEOUT) -> None:
        self._own = isinstance(client, str)
        self.client: Client = connect(client) if isinstance(client, str) else client
        self.options = _absolute(options)
        try:
            rules_version = self.options.ruleset().version
            preflight(self.client, self.options, roots, rules_version)
        except BaseException:
            if self._own:
                self.client.close()
            raise
        self._expect = (__version__, rules_version)
        #: total worker threads when the scan started (reported as ``stats["jobs"]``)
        self.jobs = max(1, sum(self.client.nthreads().values()))
        self.max_in_flight = max_in_flight or 4 * self.jobs
        self._digest = hashlib.sha256(serialised_db).hexdigest()
        self._plugin: str | None = f"veritensor-fast-rules-{self._digest[:16]}"
        self.client.register_plugin(RulesPlugin(self._digest, serialised_db), name=self._plugin)
        self._pending: dict[Future, list[Item]] = {}
        self.no_workers_timeout = no_workers_timeout
        self._last_watch = self._workers_seen = time.monotonic()

    def map(self, batches: Iterable[list[Item]]) -> Iterator[BatchResult]:
        from distributed import KilledWorker

        it = iter(batches)
        #: (items, level) of batches Dask gave up on, one item per task: level 1 runs with other work in flight;
        #: level 2 runs alone on the cluster, since Dask blames every task a dying worker held (and a probe not
        #: sent before work finished: level 0, a batch never tried)
        retry: deque[Unit] = deque()
        alone: deque[Item] = deque()
        levels: dict[Future, int] = {}
        done = as_completed(loop=self.client.loop)  # this client's loop: it is not the default client
        #: once the give-ups reach the budget: the task that runs alone to decide whether the workers can still
        #: scan (``_probe``; as the local pool), and how many probes died since a task last finished
        probe: list[Unit] = []
        probing, probes = False, 0

        def submit(batch: list[Item], level: int) -> None:
            batch = _portable(batch)
            fut = self.client.submit(run_remote, self.options, self._digest, self._expect, batch, pure=False)
            self._pending[fut] = batch
            levels[fut] = level
            done.add(fut)

        def fill() -> None:
            if probe or alone:  # the probe, else a level-2 item: alone on the cluster
                if not self._pending:
                    if probe:
                        submit(*probe.pop())
                    else:
                        submit([alone.popleft()], 2)
                return
            if probing:  # the probe runs: nothing else is sent until it ends
                return
            while len(self._pending) < self.max_in_flight:
                if retry:
                    submit(*retry.popleft())
                    continue
                batch = next(it, None)
                if batch is None:
                    return
                submit(batch, 0)

        fill()
        self._workers_seen = time.monotonic()
        failing = 0  # Dask's give-ups in a row, no task finishing between
        budget = failures_in_a_row(self.max_in_flight)
        while self._pending:
            if not done.has_ready():
                self._watch()
                time.sleep(POLL)
                continue
            fut = next(done)
            batch = self._pending.pop(fut)
            level = levels.pop(fut)
            res: BatchResult | None = None
            killed: BaseException | None = None
            try:
                res = fut.result()
                failing, probing, probes = 0, False, 0
                if probe:  # chosen while other work was in flight, never sent: back in its queue
                    unit = probe.pop()
                    if unit[1] == 2:
                        alone.appendleft(unit[0][0])
                    else:
                        retry.appendleft(unit)
            except KilledWorker as exc:  # the workers that ran it kept dying: find the item that kills them
                failing, killed = failing + 1, exc
                if level >= 2:
                    res = BatchResult(errors=_failed(batch, exc, "the Dask workers running this item died", "crash"))
                elif len(batch) > 1:
                    retry.extend(([x], 1) for x in batch)
                else:
                    alone.extend(batch)
            except Exception as exc:  # a result that could not be deserialised, a cancelled task
                self._check_scheduler()
                res = BatchResult(errors=_failed(batch, exc, "distributed task failed"))
            finally:
                fut.release()
            if probing and not probe and not self._pending:
                probing = False  # the probe ended and did not finish (one that finishes ends probing above)
            if killed is not None and failing >= budget and not probing and probes < PROBES:
                # files that each kill their worker, one after the other, look the same as starvation until
                # something else runs alone: it finishes unless every worker dies on everything
                chosen = _probe(retry, alone, it)
                probing, probes = chosen is not None, probes + 1
                probe.extend([chosen] if chosen is not None else [])
            if killed is not None and failing >= budget and not probing:  # they die on everything: stop here
                if res is not None:
                    yield res
                yield self._abandon(retry, alone, it, killed)
                return
            fill()  # keep the cluster busy while the caller handles this result
            if res is None:
                continue
            if not isinstance(res, BatchResult):
                res = BatchResult(errors=[ScanError(x.path, "distributed task returned no result", "internal")
                                          for x in batch])
            yield res

    def _abandon(self, retry: deque[Unit], alone: deque[Item], rest: Iterator[list[Item]],
                 exc: BaseException) -> BatchResult:
        """Every item not scanned (the batches in flight, cancelled, the queued and the planned ones) as a
        ``crash`` error: the workers died on each of the last tasks, and on the probes after them."""
        items = [x for b in self._pending.values() for x in b] + [x for b, _ in retry for x in b]
        items += list(alone) + [x for b in rest for x in b]
        if self._pending and self.client.status == "running":
            self.client.cancel(list(self._pending))
        self._pending.clear()
        why = (f"not scanned: the Dask workers died on {failures_in_a_row(self.max_in_flight)} tasks in a row and on "
               f"up to {PROBES} tasks run alone after them, as when they run out of memory; the scan stopped")
        return BatchResult(errors=_failed(items, exc, why, "crash"))

    def _watch(self) -> None:
        """While waiting (at most once a second): the scheduler must be there, and some worker must have been
        there within ``no_workers_timeout`` (tasks wait for workers that restart; not for ever)."""
        now = time.monotonic()
        if now - self._last_watch < 1.0:
            return
        self._last_watch = now
        self._check_scheduler()
        try:
            workers = len(self.client.nthreads())
        except (OSError, asyncio.TimeoutError):
            self._check_scheduler()
            return
        if workers:
            self._workers_seen = now
        elif now - self._workers_seen > self.no_workers_timeout:
            raise DaskExecutorError(f"the Dask cluster has had no workers for {self.no_workers_timeout:.0f} s "
                                    "mid-scan (the scan is incomplete)")

    def _check_scheduler(self) -> None:
        if self.client.status != "running":
            where = getattr(self.client.scheduler, "address", "?")
            raise DaskExecutorError(f"lost the Dask scheduler at {where} mid-scan "
                                    "(the scan is incomplete)")

    def close(self) -> None:
        if self._pending:
            if self.client.status == "running":
                self.client.cancel(list(self._pending))
            self._pending.clear()
        if self._plugin is not None and self.client.status == "running":
            try:
                self.client.unregister_worker_plugin(self._plugin)
            except Exception:  # noqa: BLE001 - best effort: a worker that left, a plugin already gone
                pass
        self._plugin = None
        if self._own:
            self.client.close()

    def terminate(self) -> None:
        self.close()


#: What ``DaskExecutor.map`` queues: a batch's items and its level (0 planned, 1 a suspect item, 2 one run alone).
Unit = tuple[list[Item], int]


def _probe(retry: deque[Unit], alone: deque[Item], planned: Iterator[list[Item]]) -> Unit | None:
    """What runs alone once Dask's give-ups reach the budget, out of its queue: work never tried (a probe put
    back, else the next planned batch), else one suspect item drawn at random, to run at level 2 (files that kill
    their worker come in runs, in listing order); None when nothing is left (``executors_local._probe``)."""
    for i, unit in enumerate(retry):
        if unit[1] == 0:
            del retry[i]
            return unit
    for batch in planned:
        return (batch, 0)
    pick = random.randrange(len(retry) + len(alone)) if retry or alone else -1
    if pick < 0:
        return None
    if pick < len(retry):
        unit = retry[pick]
        del retry[pick]
        return (unit[0], 2)
    item = alone[pick - len(retry)]
    del alone[pick - len(retry)]
    return ([item], 2)
