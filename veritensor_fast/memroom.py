"""Room to allocate, checked before a C library that does not survive a failed allocation is asked for memory.

Under an address-space cap (``prlimit --as``, a container limit with overcommit off) some libraries end the
process instead of raising ``MemoryError``: orjson dies with SIGSEGV while it builds objects, and OpenBLAS
(loaded with numpy) calls ``exit`` when its buffers cannot be mapped ("Memory allocation still failed after 10
retries"). For ``--jobs 1`` that is the whole scan, every finding made so far lost. So the address space such a
call may need is reserved first (:func:`room`: an anonymous map, unmapped at once and never touched: two system
calls, no memory) and a ``MemoryError`` raised when there is none. Callers report a ``MemoryError`` as an
allocation failure (kind ``limit``, reason starting with ``findings.OUT_OF_MEMORY``), never as invalid input.
"""

from __future__ import annotations

import importlib
import mmap
import resource
import sys
from types import ModuleType

#: address space numpy's first import maps (OpenBLAS's buffers; measured: the import fails between a 100 and a
#: 150 MiB cap on a process that holds ~50 MiB)
NUMPY_ROOM = 160 << 20


def _guarded() -> bool:
    """Whether a map can fail for want of room: an address-space limit (``prlimit --as``, ``ulimit -v``), or
    strict overcommit (``vm.overcommit_memory = 2``). Otherwise a lazy map of any sane size succeeds (a cgroup
    limit is enforced later, by the OOM killer, which no check here can avoid), so :func:`room` does nothing."""
    if resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY:
        return True
    try:
        with open("/proc/sys/vm/overcommit_memory", "rb") as f:
            return f.read().strip() == b"2"
    except OSError:
        return False


#: decided once, when this module loads (a worker inherits its parent's limit)
GUARDED = _guarded()


def room(nbytes: int) -> None:
    """Raise ``MemoryError`` unless ``nbytes`` of address space can be mapped now (the map is released at once:
    no page is touched, nothing is kept). Nothing to check (and no cost) unless :data:`GUARDED`."""
    if not GUARDED:
        return
    try:
        m = mmap.mmap(-1, max(nbytes, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (OSError, ValueError, OverflowError) as exc:
        raise MemoryError(f"out of memory: no room for {nbytes >> 20} MiB") from exc
    m.close()


def has_room(nbytes: int) -> bool:
    """Whether :func:`room` finds ``nbytes`` of address space now."""
    try:
        room(nbytes)
    except MemoryError:
        return False
    return True


def numpy() -> ModuleType:
    """``import numpy``, or ``MemoryError`` when it is not imported yet and there is no room for its first
    import (which would end the process)."""
    if "numpy" not in sys.modules:
        room(NUMPY_ROOM)
    return importlib.import_module("numpy")
