"""The blob listing of a full sweep, overlapped with ``rev-list --objects`` (parent side).

``rev-list --objects`` walks every commit's tree on one core (single-threaded in git: ~0.8 s for a 6k-commit,
60k-blob history) while the pack-order listing (``cat-file --batch-all-objects --batch-check``) is done long
before it. Waiting for the walk before handing out any blob leaves the other cores idle. Here the walk's output
is read as git writes it: each blob it names with a path is handed out at once (its size from the pack-order
listing) if it is stored whole, and when the walk is done the rest follow in pack order, as before. Only whole
objects go early: a delta read out of pack order makes git resolve its chain again (measured on a repacked
6k-commit history, handing out every blob the walk named as it came cost 0.66 s more ``cat-file`` CPU, +50 %);
a whole object costs the same in any order, and the deltas are still read in pack order (each family together).

What is listed is exactly what the two listings give when read one after the other (``git_list.parse_reachable``
and ``git_list.reachable_in_pack_order``): each blob once, at the path ``rev-list`` named it (a blob named
without a path first waits for the end of the walk, where a later line may name its path), missing objects
reported as before.

``deltas`` (``GitHistorySource(early_deltas=True)``; off by default): hand out the deltas too as the walk names them. That costs ``cat-file`` CPU (+50 % above)
and pays only where idle cores can absorb it while the serial walk runs (estimated above ~4 cores; not measured:
no machine with more than 2 cores so far). ``bench/bench_history.py scan REPO JOBS deltas`` measures it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

from veritensor_fast.findings import display_path
from veritensor_fast.sources.git_list import reachable_in_pack_order
from veritensor_fast.sources.git_spool import Spool

#: How long to wait for more output from a running ``rev-list`` before looking again.
POLL_S = 0.004


def follow_lines(spool: Spool) -> Iterator[bytes]:
    """The output lines of a running ``Spool`` (without their newline) as git writes them, until git has exited
    and all of it is read. Reads with ``pread``: git writes at the file offset it shares with us, which must
    not move."""
    proc = spool.proc
    fd = spool.out.fileno()
    off = 0
    rest = b""
    while True:
        done = proc is None or proc.poll() is not None  # before reading: what git wrote before exiting is read
        while True:
            data = os.pread(fd, 1 << 20, off)
            if not data:
                break
            off += len(data)
            parts = (rest + data).split(b"\n")
            rest = parts.pop()
            yield from parts
        if done:
            break
        time.sleep(POLL_S)
    if rest:
        yield rest


class OverlappedListing:
    """Blobs of a full sweep as (oid, type, size, path), handed out while ``rev-list`` still walks.

    After iterating: ``reachable`` (oid -> path, as ``git_list.parse_reachable``) and ``failure`` (git's error
    if the walk failed). ``on_walked`` is called once the walk is done (before the rest is handed out)."""

    def __init__(self, reach: Spool, pack: Spool, on_walked: Callable[[], None] | None = None,
                 deltas: bool = False) -> None:
        self.reach = reach
        self.pack = pack
        self.on_walked = on_walked
        #: also hand out blobs stored as deltas as the walk names them (see the module's note)
        self.deltas = deltas
        self.reachable: dict[str, str] = {}
        self.failure: str | None = None
        self.early = 0  # blobs handed out while the walk ran

    def _whole_blobs(self) -> dict[str, int]:
        """The size of every blob stored whole (not as a delta: no chain to resolve, so reading it out of pack
        order costs git nothing more), from the pack-order listing (done long before the walk); with ``deltas``,
        of every blob."""
        sizes: dict[str, int] = {}
        deltas = self.deltas
        for raw in self.pack.lines():
            parts = raw.split()
            if len(parts) == 4 and parts[1] == b"blob" and (deltas or not parts[3].strip(b"0")):
                sizes[parts[0].decode()] = int(parts[2])
        return sizes

    def __iter__(self) -> Iterator[tuple[str, str, int, str]]:
        sizes = self._whole_blobs()
        reachable = self.reachable
        early: set[str] = set()
        for raw in follow_lines(self.reach):
            oid, _, path = raw.decode("utf-8", "surrogateescape").partition(" ")
            if oid not in reachable or (path and not reachable[oid]):
                reachable[oid] = display_path(path)
                size = sizes.get(oid)
                # a path is final (only an empty one may be replaced by a later line); commits have none
                if path and size is not None and oid not in early:
                    early.add(oid)
                    yield oid, "blob", size, reachable[oid]
        self.early = len(early)
        self.failure = self.reach.failure()
        if self.on_walked is not None:
            self.on_walked()
        del sizes
        for item in reachable_in_pack_order(self.pack, reachable):  # the pack-order listing, read again
            if item[0] not in early:
                yield item
