"""The local process pool (``--jobs N``): a supervisor over ``executors_pool.LeanPool``.

``multiprocessing.Pool`` never returns a batch whose worker died (SIGKILL, SIGBUS, the kernel's OOM killer):
the scan hung forever. The pool (``LeanPool``, with ``concurrent.futures.ProcessPoolExecutor``'s contract but no
thread in this process) fails every pending task with ``BrokenProcessPool`` instead, and this supervisor turns
that into a bounded, attributable retry:

- batches run with at most ``2 x jobs`` in flight (a huge source is never materialised);
- when the pool breaks, every batch that was in flight is *suspect*: the pool is rebuilt and each suspect
  batch's items run again one by one (level 1, in parallel);
- an item in flight during a second break runs again alone, with nothing else in flight (level 2): if the pool
  breaks then, that item killed its worker. It becomes a ``ScanError`` of kind ``crash`` (the scan is
  incomplete, exit 3) and the scan goes on. A worker killed from outside (an OOM kill of an innocent
  worker) costs a retry, never a finding;
- a task that raises (a reader bug, a result that cannot be pickled) is retried item by item; an item that
  still fails becomes an ``internal`` error (exception type only, never content);
- a rebuilt pool must answer a no-op task before it gets work: workers that cannot start at all stop the scan
  with ``EngineError`` instead of turning every item into a crash (the first pool gets work at once: if it
  breaks, nothing in flight is reported, only run again);
- the restarts are budgeted: when the pool breaks (or a task fails with ``MemoryError``) ``failure_budget(jobs)``
  times with no task finishing between (memory starvation: a worker cannot hold one item, so every item would
  be retried alone, one restart each), or a rebuilt pool cannot start after some task finished, the pool is
  not restarted again: every item not yet scanned becomes a ``crash`` error (the scan is incomplete, exit 3) and
  every finding made so far is kept. An item that kills its worker costs at most three breaks in a row, and
  ``2 x jobs`` of them in one window ``2 + 2 x 2 x jobs``: the budget is above that.

The start method is chosen once per scan: ``fork`` while the parent runs no other thread, else ``forkserver``
(a fork copies locks other threads may hold). Each worker loads the serialised rules database once
(``init_worker``).

A task of ``tree`` items only (what is left of a walk, ``sources.fs.walk_tree``) is a *walk* (``_walk``): it lists
about ``WALK_FILES`` files and hands them back as batches with the rest of its walk, scanning nothing. Walks run
before other work while fewer than ``WALK_AHEAD`` listed batches per worker wait. When a task walked and then
scanned what it listed, the rest of the walk came back only at its end: a slow file there held the rest of the
tree from the other workers, and a pool of N workers had work for all of them only after a chain of such tasks.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from veritensor_fast.executors_base import PROBES, EngineError, failures_in_a_row
from veritensor_fast.executors_pool import BrokenProcessPool, Future, LeanPool
from veritensor_fast.executors_tasks import Listed, _files, _init, _PoolResult, _scan, _walk
from veritensor_fast.findings import Item, ScanError
from veritensor_fast.rules import RuleSet
from veritensor_fast.worker import (
    BATCH_BYTES,
    BATCH_ITEMS,
    BatchResult,
    ScanOptions,
    WorkerContext,
    expand_items,
    expand_trees,
    prebuild,
    walked,
)

#: Batches in flight per worker process.
IN_FLIGHT_PER_JOB = 2
#: Walks run before other work while fewer than this many listed batches per worker wait: the listing keeps
#: ahead of the scan, and what the parent holds stays bounded by the workers, not by the size of the tree.
WALK_AHEAD = 4
#: A pool that breaks this many times in a row before answering a no-op task cannot start at all.
START_ATTEMPTS = 3
#: Suspect levels: 0 a batch as planned; 1 one item, run in parallel after a break; 2 one item, run alone.
PLANNED, SINGLE, ALONE = 0, 1, 2


def failure_budget(jobs: int) -> int:
    """Pool breaks (and ``MemoryError`` task failures) in a row, nothing finishing between, after which the scan
    stops restarting workers (``executors_base.failures_in_a_row`` of the window)."""
    return failures_in_a_row(IN_FLIGHT_PER_JOB * jobs)


def start_method() -> str:
    methods = mp.get_all_start_methods()
    # fork is fastest (measured: 0.15 s vs 0.24 s forkserver, 0.27 s spawn for 2 workers), but forking a
    # process that already runs other threads can copy a held lock into the child: then use forkserver.
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _signal_name(procs: list[Any]) -> str:
    """How the worker that broke the pool ended (the others were terminated by the pool: SIGTERM)."""
    codes = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
    own = [c for c in codes if c != -signal.SIGTERM] or codes
    if not own:
        return "it exited"
    c = own[0]
    if c < 0:
        try:
            return f"killed by {signal.Signals(-c).name}"
        except ValueError:
            return f"killed by signal {-c}"
    return f"exit status {c}"


class PoolExecutor:
    """An ``Executor`` over worker processes that survives workers dying; see the module docstring."""

    def __init__(self, options: ScanOptions, serialised_db: bytes, jobs: int, ruleset: RuleSet | None = None,
                 scanned: bool = True) -> None:
        self.options = options
        #: ``BatchResult.scanned`` comes back (``scanned=False``: nobody reads it; on the real tree it is most of
        #: what the results weigh, 2.9 MB of 35k paths)
        self._scanned = scanned
        self.jobs = jobs
        self._db = serialised_db
        self.method = start_method()
        #: how many times the pool broke and was rebuilt (``stats["worker_restarts"]``)
        self.restarts = 0
        #: breaks and ``MemoryError`` failures since a task last finished; whether any task has finished
        self._failing = 0
        self._finished = False
        #: the budget was spent and a probe runs alone to decide whether workers can still scan (see ``map``)
        self._probing = False
        self._probes = 0  # probes since a task last finished
        self._prebuilt = False
        if self.method == "fork":  # build the worker state once, here: every forked worker inherits it
            prebuild(WorkerContext(options, serialised_db, ruleset), serialised_db)
            self._prebuilt = True
        try:
            self._pool = self._start(answer=False)
        except BaseException:
            self._withdraw()
            raise

    def _withdraw(self) -> None:
        if self._prebuilt:
            prebuild(None)
            self._prebuilt = False

    def _start(self, answer: bool = True) -> LeanPool:
        """A new pool that has answered a no-op task. A pool that breaks before answering is retried (a
        worker killed from outside while it started); ``START_ATTEMPTS`` in a row mean the workers cannot start.

        ``answer=False`` (the first pool of a scan): the no-op is sent but not waited for, so the workers start
        while this process lists and sends the first batches. If that pool breaks, every batch in flight is a
        suspect of level 0 (run again, none reported), and the pool that replaces it must answer first."""
        for _ in range(START_ATTEMPTS):
            pool = LeanPool(self.jobs, mp.get_context(self.method), _init, (self.options, self._db),
                            IN_FLIGHT_PER_JOB)
            try:
                ping = pool.submit(os.getpid)
                if not answer:
                    return pool
                pool.wait([ping])
                ping.result()
            except BrokenProcessPool:
                pool.shutdown(wait=True)
                self.restarts += 1
                continue
            return pool
        raise EngineError("the worker processes could not start (try --jobs 1)")

    def _processes(self) -> list[Any]:
        return list((getattr(self._pool, "_processes", None) or {}).values())  # private; best effort

    def _submit(self, inflight: dict[Future[BatchResult], Unit], unit: Unit) -> bool:
        batch = unit[0]
        walk = not isinstance(batch, Listed) and all(it.kind == "tree" for it in batch)
        try:
            fut = self._pool.submit(_walk, batch) if walk else self._pool.submit(_scan, batch, self._scanned)
            inflight[fut] = unit
        except BrokenProcessPool:
            return False
        return True

    def map(self, batches: Iterable[list[Item]]) -> Iterator[BatchResult]:
        planned = iter(batches)
        exhausted = False
        retry: deque[Unit] = deque()  # level-1 singles, before new batches
        walks: deque[Unit] = deque()  # what is left of the tree walks, a tree item each
        ahead = WALK_AHEAD * self.jobs
        alone: deque[Item] = deque()  # level-2 items: each runs with nothing else in flight
        inflight: dict[Future[BatchResult], Unit] = {}
        window = IN_FLIGHT_PER_JOB * self.jobs
        probe: Unit | None = None  # the task that decides, once the budget is spent, whether workers can scan
        while True:
            # fill the window; a pool that broke while idle refuses the submit: the unit goes back, unrun
            refused = False
            if self._probing:  # the task that decides runs alone: nothing else is sent until it ends
                if probe is not None and not inflight:
                    refused = not self._submit(inflight, probe)
                    if not refused:
                        probe = None
            elif alone:
                if not inflight:
                    it = alone.popleft()
                    refused = not self._submit(inflight, ([it], ALONE))
                    if refused:
                        alone.appendleft(it)
            else:
                while len(inflight) < window:
                    if walks and len(retry) < ahead:  # list ahead, but hold at most ``ahead`` listed batches
                        unit = walks.popleft()
                    elif retry:
                        unit = retry.popleft()
                        head = unit[0]
                        if unit[1] == PLANNED:
                            if isinstance(head, Listed):
                                unit = (_merge_listed(head, retry), PLANNED)
                            elif head[0].kind != "tree":
                                unit = (_merge(head, retry), PLANNED)
                    elif not exhausted:
                        b = next(planned, None)
                        if b is None:
                            exhausted = True
                            continue
                        if any(it.kind == "tree" for it in b):  # the pieces of a walk handed off: a walk each,
                            walks.extend(([it], PLANNED) for it in b if it.kind == "tree")  # all listing at once
                            b = [it for it in b if it.kind != "tree"]
                            if not b:
                                continue
                        unit = (b, PLANNED)
                    elif walks:
                        unit = walks.popleft()
                    else:
                        break
                    if not self._submit(inflight, unit):
                        retry.appendleft(unit)
                        refused = True
                        break
            if not inflight and not refused and not walks:
                return
            done: set[Future[BatchResult]] = set()
            if inflight:
                done = self._pool.wait(inflight)
            broke = refused or any(isinstance(f.exception(), BrokenProcessPool) for f in done)
            if broke:
                self._pool.wait(inflight, first=False)  # the pool fails every pending task at once; some may
                # have finished first
                done = set(inflight)
            crashed: list[Item] = []
            for fut in done:
                items, level = inflight.pop(fut)
                exc = fut.exception()
                if exc is None:
                    self._failing, self._finished, self._probing, self._probes = 0, True, False, 0
                    if probe is not None:  # chosen while other work was in flight, never sent: back in its queue
                        if probe[1] == ALONE and not isinstance(probe[0], Listed):
                            alone.appendleft(probe[0][0])
                        else:
                            retry.appendleft(probe)
                        probe = None
                    res = fut.result()
                    # big files of a shard and parts of a split file: a task each, first (the longest tasks
                    # start early instead of ending the scan on one worker while the others wait)
                    retry.extendleft(([it], PLANNED) for it in reversed(res.more))
                    for b in res.rest:  # what a batch of shards held past its bytes, what a walk listed, and
                        if b[0].kind == "tree":  # what is left of a walk: walked first, so the listing (the
                            walks.appendleft((b, PLANNED))  # progress line's total) ends early
                        else:
                            retry.append((b, PLANNED))
                    if isinstance(res, _PoolResult):  # what a walk listed, still pickled: sent on as it came
                        retry.extend((b, PLANNED) for b in res.listed)
                    yield res
                    continue
                # a directory shard is retried file by file; a tree item as the files of about one batch (as the
                # task walked them), each alone, and the rest of its walk as tree items
                given = items.items() if isinstance(items, Listed) else items
                items, tree_errors, skipped, trees = expand_trees(given, BATCH_ITEMS, BATCH_BYTES, BATCH_ITEMS)
                done_walk = walked(given, items, trees) if items is not given else (0, 0)
                items, listing_errors, _ = expand_items(items)
                items += [t for b in trees for t in b]
                if tree_errors or listing_errors or skipped or done_walk != (0, 0):
                    yield BatchResult(errors=tree_errors + listing_errors, skipped=skipped, walked=done_walk)
                if isinstance(exc, MemoryError):  # as a break: a worker that cannot hold what it scans
                    self._failing += 1
                if isinstance(exc, BrokenProcessPool):
                    if level == ALONE:
                        crashed.extend(items)
                    elif len(items) > 1:
                        retry.extend(([it], SINGLE) for it in items)
                    else:
                        alone.extend(items)
                elif len(items) > 1:  # the task raised: find the item that fails, keep the others
                    retry.extend(([it], SINGLE) for it in items)
                else:
                    yield BatchResult(errors=[ScanError(items[0].path, f"worker failed: {type(exc).__name__}",
                                                        "internal")])
            how = "ran out of memory"
            if broke:
                self._failing += 1
                procs = self._processes()
                self._pool.shutdown(wait=True)  # joins the workers: their exit codes are final
                how = _signal_name(procs)
                if crashed:
                    yield BatchResult(errors=[
                        ScanError(it.path, f"the worker process died while scanning this item ({how}); "
                                           "it was not scanned", "crash") for it in crashed])
            if self._probing and probe is None and not inflight:
                self._probing = False  # the probe ended and failed (one that finishes ends probing above)
            if self._failing >= failure_budget(self.jobs) and not self._probing and self._probes < PROBES:
                # files that each kill their worker, one after the other, look the same as starvation until
                # something else runs alone: it finishes unless every worker dies on everything (review23: 24
                # such files in a row stopped a scan and lost the findings of the 700 after them)
                probe = _probe(retry, walks, alone, planned)
                self._probing = probe is not None
                self._probes += 1
            if self._failing >= failure_budget(self.jobs) and not self._probing:
                yield _abandoned([inflight.values(), retry, walks, [([it], ALONE) for it in alone]], planned,
                                 f"the worker processes failed {self._failing} times in a row (last: {how}), "
                                 "as when they run out of memory; the scan stopped")
                return
            if broke:
                self.restarts += 1
                try:
                    self._pool = self._start()
                except EngineError:
                    if not self._finished:  # nothing was ever scanned: the workers cannot start at all
                        raise
                    yield _abandoned([retry, walks, [([it], ALONE) for it in alone]], planned,
                                     "the worker processes could not start again; the scan stopped")
                    return

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._withdraw()

    def terminate(self) -> None:
        """Stop now (Ctrl-C, an error in the parent): kill the workers, drop queued work."""
        procs = self._processes()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(5)
        self._withdraw()


def _probe(retry: deque[Unit], walks: deque[Unit], alone: deque[Item], planned: Iterator[list[Item]]) -> Unit | None:
    """What runs alone once the restart budget is spent, out of its queue: work never tried yet (a listed batch,
    the rest of a batch, else the next planned batch of files; its walks join ``walks``), else one suspect item
    drawn at random (files that kill their worker come in runs, in listing order); None when nothing is left."""
    for i, unit in enumerate(retry):
        if unit[1] == PLANNED and (isinstance(unit[0], Listed) or unit[0][0].kind != "tree"):
            del retry[i]
            return unit
    for b in planned:
        walks.extend(([it], PLANNED) for it in b if it.kind == "tree")
        b = [it for it in b if it.kind != "tree"]
        if b:
            return (b, PLANNED)
    singles = [i for i, (u, _) in enumerate(retry) if not isinstance(u, Listed) and len(u) == 1]
    pick = random.randrange(len(singles) + len(alone)) if singles or alone else -1
    if pick < 0:
        return None
    if pick < len(singles):
        unit = retry[singles[pick]]
        del retry[singles[pick]]
        return (unit[0], ALONE)
    it = alone[pick - len(singles)]
    del alone[pick - len(singles)]
    return ([it], ALONE)


def _abandoned(queues: Iterable[Iterable[Unit]], planned: Iterator[list[Item]], why: str) -> BatchResult:
    """Every item of ``queues`` and of the batches still ``planned``, as a ``crash`` error saying ``why`` (the
    pool is not restarted again). Walks and directory shards are listed here, so each file is named."""
    items: list[Item] = []
    for q in queues:
        for unit, _ in q:
            items.extend(unit.items() if isinstance(unit, Listed) else unit)
    for b in planned:
        items.extend(b)
    files, errors, _ = expand_items(items)
    return BatchResult(errors=errors + [ScanError(it.path, f"not scanned: {why}", "crash") for it in files])


def _merge(batch: list[Item], retry: deque[Unit]) -> list[Item]:
    """``batch`` and the planned batches after it in ``retry``, while they fit in one batch (``BATCH_ITEMS`` files,
    under ``BATCH_BYTES`` known bytes): the last batch of each walk and the remainders of batches cut at their
    bytes are small, and each task costs a round trip (on the real tree 148 of 346 tasks held under 200 files
    and 3.5 MB)."""
    n, size = _files(batch), sum(max(it.size, 0) for it in batch)
    while retry and retry[0][1] == PLANNED and not isinstance(retry[0][0], Listed) and retry[0][0][0].kind != "tree":
        nxt = retry[0][0]
        m, b = _files(nxt), sum(max(it.size, 0) for it in nxt)
        if n + m > BATCH_ITEMS or size + b >= BATCH_BYTES:
            break
        retry.popleft()
        batch = batch + nxt
        n, size = n + m, size + b
    return batch


#: What the executor queues: a batch (its items, or a walk's batches still pickled) and its suspect level.
Unit = tuple["list[Item] | Listed", int]


def _merge_listed(first: Listed, retry: deque[Unit]) -> Listed:
    """``first`` and the ``Listed`` units after it in ``retry``, while they fit in one batch (as ``_merge``)."""
    blobs, n, size = list(first.blobs), first.files, first.size
    while retry and retry[0][1] == PLANNED and isinstance(retry[0][0], Listed):
        nxt = retry[0][0]
        if n + nxt.files > BATCH_ITEMS or size + nxt.size >= BATCH_BYTES:
            break
        retry.popleft()
        blobs += nxt.blobs
        n, size = n + nxt.files, size + nxt.size
    return first if len(blobs) == 1 else Listed(tuple(blobs), n, size)


