"""What a local pool worker runs: the tasks ``executors_local.PoolExecutor`` sends (``_walk``, ``_scan``), the
batches that cross the parent still pickled (``Listed``), and each worker's start (``_init``: signals, heap,
the per-process scan state). The parent's side, the queues and the fault handling, is ``executors_local``.
"""

from __future__ import annotations

import pickle
import signal
import sys
from dataclasses import dataclass, field, fields
from typing import Any

from veritensor_fast.batching import chunk
from veritensor_fast.findings import Item
from veritensor_fast.worker import (
    BATCH_BYTES,
    BATCH_ITEMS,
    BatchResult,
    ScanOptions,
    expand_trees,
    init_worker,
    run_batch,
    scan_gc,
    walked,
)

#: Files a walk task (``_walk``) lists before it hands the rest of its walk back.
WALK_FILES = 4 * BATCH_ITEMS


def _files(batch: list[Item]) -> int:
    return sum(len(it.entries) or 1 for it in batch)


def _walk(batch: list[Item]) -> BatchResult:
    """A task of ``tree`` items: walk about ``WALK_FILES`` files of them and hand back what was listed, as batches
    (``_PoolResult.listed``, scanned as tasks of their own), and the rest of the walk as ``tree`` items
    (``BatchResult.rest``); nothing is scanned here. The executor retries a walk that fails as it retries any
    batch of tree items."""
    items, errors, skipped, trees = expand_trees(batch, BATCH_ITEMS, BATCH_BYTES, WALK_FILES)
    listed = [Listed.of(b) for b in chunk(items, BATCH_ITEMS, BATCH_BYTES)]
    return _PoolResult(errors=errors, skipped=skipped, walked=walked(batch, items, trees), rest=trees,
                       listed=listed)


class Listed:
    """Batches a walk task listed (or what a batch of shards held past its bytes, ``_scan``), kept pickled
    (``pickle`` of each ``list[Item]``) on their way through this process to the worker that scans them: the
    parent, one process serving every worker, only counts them (``files``, ``size``: known bytes, as ``_merge``
    counts a batch) and never builds their items, unless a task that held them fails (``items``: then they are
    retried as any batch is). Measured on the monorepo corpus:
    a walked batch of ~50 ``dir`` shards cost the parent ~100 us to unpickle and ~120 us to pickle again, 200
    times a scan, CPU taken from the workers on a machine with as many cores as workers."""

    __slots__ = ("blobs", "files", "size")

    def __init__(self, blobs: tuple[bytes, ...], files: int, size: int) -> None:
        self.blobs, self.files, self.size = blobs, files, size

    @classmethod
    def of(cls, batch: list[Item]) -> Listed:
        return cls((pickle.dumps(batch, pickle.HIGHEST_PROTOCOL),), _files(batch),
                   sum(max(it.size, 0) for it in batch))

    def items(self) -> list[Item]:
        return [it for b in self.blobs for it in pickle.loads(b)]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Listed, (self.blobs, self.files, self.size))


@dataclass
class _PoolResult(BatchResult):
    """A pool task's result: ``BatchResult`` and batches to scan next, as ``Listed`` (see there): what a walk
    listed, or what a batch of shards held past its bytes (``BatchResult.rest``, less its ``tree`` items)."""

    listed: list[Listed] = field(default_factory=list)


def _scan(batch: list[Item] | Listed, scanned: bool) -> BatchResult:
    """A pool task that scans ``batch``: ``run_batch``, its result as the parent needs it. What the batch held
    past its bytes (shards of files stat-ed here, ``expand_capped``) goes back as ``Listed``, pickled once here:
    the parent sends it on without building its items (on the monorepo corpus ~80 such batches a scan, ~11 KB
    each, cost the parent ~0.3 ms each to unpickle and pickle again, on the cores the workers scan on). A
    result with nothing else to say goes back as a plain ``BatchResult``."""
    res = run_batch(batch.items() if isinstance(batch, Listed) else batch)
    if not scanned:
        res.scanned = []
    later = [b for b in res.rest if b[0].kind != "tree"]
    if not later:
        return res
    out = _PoolResult(**{f.name: getattr(res, f.name) for f in fields(BatchResult)})
    out.rest = [b for b in res.rest if b[0].kind == "tree"]
    out.listed = [Listed.of(b) for b in later]
    return out


def _init(options: ScanOptions, serialised_db: bytes) -> None:
    """Worker initializer: signals first, then the per-process scan state (rules database loaded once)."""
    _quiet_signals()
    keep_heap()
    scan_gc()  # a worker process: the scan thresholds for its whole life
    init_worker(options, serialised_db)


#: glibc ``mallopt`` parameters: ``M_TRIM_THRESHOLD``, ``M_MMAP_THRESHOLD``.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: A worker keeps this much freed memory at the top of its heap instead of giving it back to the system.
KEEP_HEAP = 64 << 20


def keep_heap() -> None:
    """Let this worker process reuse the memory of one large read for the next (glibc only; elsewhere nothing).

    Each window of a large file (16 MiB) and each whole read of a file up to 16 MiB is a fresh ``bytes``;
    glibc returns freed memory at the top of the heap to the system once more than twice the (adaptive) mmap
    threshold is free, so the next read faults every page in again: 43k minor faults on the real tree, ~0.1
    CPU-s. Buffers up to 32 MiB come from the heap (``M_MMAP_THRESHOLD``, the most glibc adapts to anyway)
    and up to ``KEEP_HEAP`` bytes of free heap stay (measured in one process: faults 43k -> 16k, CPU -0.1 s
    of 2.7, peak RSS 74 -> 84 MB). Pool workers only: a program that calls the scan in-process keeps its
    own allocator settings."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, KEEP_HEAP)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _quiet_signals() -> None:
    """Ctrl-C reaches the whole process group, but the parent decides (it kills the pool and exits 130): a
    worker ignores SIGINT, so it prints no traceback. A worker whose parent was killed does not linger."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the CLI's handler (``cli_common.stop_on_sigterm``)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass
