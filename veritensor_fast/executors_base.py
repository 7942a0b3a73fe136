"""The executor seam, below the engine and every executor: the ``Executor`` protocol, the factory type and
``EngineError``.

``engine`` drives an ``Executor``; ``executors_local`` and ``executors_dask`` implement one. Both sides import
these names from here, so no executor imports the engine (``engine`` re-exports them for existing callers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from veritensor_fast.findings import Item
from veritensor_fast.worker import BatchResult, ScanOptions


def failures_in_a_row(in_flight: int) -> int:
    """Worker deaths in a row, no task finishing between, after which an executor stops restarting and reports
    every item not scanned as a ``crash`` error (memory starvation: every worker dies on every item). Above what
    the items that kill their workers in one window of ``in_flight`` tasks can cost (a few deaths each, and
    every task in flight blamed with them)."""
    return 8 + 2 * in_flight


#: Probes that may die in a row, once ``failures_in_a_row`` is reached, before an executor stops: a probe is work
#: run alone (never tried yet, else one suspect at random) that tells files which each kill their worker, one
#: after the other, from workers that die on everything (review23; both executors).
PROBES = 3


class EngineError(Exception):
    """The scan could not run at all (bad rules, no worker could start)."""


class Executor(Protocol):
    """Runs ``run_batch`` over batches; results may arrive in any order."""

    def map(self, batches: Iterable[list[Item]]) -> Iterator[BatchResult]: ...

    def close(self) -> None: ...


#: Builds an executor once the rules are compiled: ``make_executor(options, serialised_db)`` (a distributed one).
ExecutorFactory = Callable[[ScanOptions, bytes], Executor]
