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

``depth`` (``GitHistorySource(early_depth=N)``; 0 by default, as above) also hands out, as the walk names
them, the deltas whose chain down to a whole object has at most N links (``ALL_DEPTHS``: every blob). Reading
them in the walk's order costs ``cat-file`` CPU (this history read by two readers in turns of 256, as two
workers do: every blob +0.47 CPU-s (+75 %); one reader, chains of at most 1 link (10.8k blobs): 0.17 CPU-s
against ~0.12 in pack order). It pays only where cores idle while the serial walk runs: more cores than two,
or the ~0.2 CPU-s two quiet cores leave idle beside ``rev-list`` and provenance's ``git log`` here. Not measured
yet on a quiet or larger machine: ``bench/bench_history.py scan REPO JOBS [DEPTH|all]`` measures it.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from itertools import chain

from veritensor_fast.findings import display_path
from veritensor_fast.sources.git_spool import Spool

#: ``OverlappedListing(depth=ALL_DEPTHS)``: every blob goes early, whatever its delta chain.
ALL_DEPTHS = 1 << 30


def follow_lines(spool: Spool, sep: bytes = b"\n") -> Iterator[bytes]:
    """The output lines of a running ``Spool`` (without their newline; ``sep``: another terminator, NUL for
    ``-z`` output) as git writes them, until git has exited and all of it is read (``Spool.chunks``)."""
    return chain.from_iterable(spool.chunks(sep, follow=True))


class _Rows:
    """(oid, type, size) of the blobs of a pack-order listing, and of the objects it names git could not read
    (size -1), in its order: what ``git_list.reachable_in_pack_order`` reads from the listing, kept from the one
    pass over it. Packed: the ids' hex text end to end, the sizes in an array (~50 bytes a blob; a tuple of Python
    objects took ~190); a row whose id is not ``width`` long, or not a blob, is kept apart in ``odd``."""

    __slots__ = ("ids", "sizes", "width", "odd")

    def __init__(self) -> None:
        self.ids = bytearray()
        self.sizes = array("q")
        self.width = 0
        self.odd: dict[int, tuple[str, str]] = {}  # row -> (oid, type)

    def __iter__(self) -> Iterator[tuple[str, str, int]]:
        text, w, odd = self.ids.decode("ascii", "replace"), self.width, self.odd
        for i, size in enumerate(self.sizes):
            if odd and i in odd:
                oid, otype = odd[i]
                yield oid, otype, size
            else:
                yield text[i * w:i * w + w], "blob", size


class OverlappedListing:
    """Blobs of a full sweep as (oid, type, size, path), handed out while ``rev-list`` still walks.

    After iterating: ``reachable`` (oid -> path, as ``git_list.parse_reachable``) and ``failure`` (git's error
    if the walk failed). ``on_walked`` is called once the walk is done (before the rest is handed out)."""

    def __init__(self, reach: Spool, pack: Spool, on_walked: Callable[[], None] | None = None,
                 depth: int = 0, names: Iterator[tuple[str, str]] | None = None) -> None:
        self.reach = reach
        #: (oid, display path) as the walk names them; default: ``reach`` is ``rev-list --objects``, read as it
        #: runs (``git_walk.walk_names``: the one-walk listing, ``reach`` being its ``git log`` pass)
        self.names = names
        self.pack = pack
        self.on_walked = on_walked
        #: blobs whose delta chain is at most this long also go early (0: whole objects only; see the module)
        self.depth = depth
        self.reachable: dict[str, str] = {}
        self.failure: str | None = None
        self.early = 0  # blobs handed out while the walk ran

    def _whole_blobs(self) -> tuple[dict[str, int], _Rows]:
        """The size of every blob that may go early, from the pack-order listing (done long before the walk):
        stored whole (no chain to resolve, so reading it out of pack order costs git nothing more), or with
        ``depth``, a delta whose chain down to a whole object is at most that long (``ALL_DEPTHS``: every blob).
        Also the rows handed out after the walk (``_Rows``), from the same one pass over the listing."""
        sizes: dict[str, int] = {}
        rows = _Rows()
        ids, lens, width, odd = rows.ids, rows.sizes, 0, rows.odd
        deltas: list[list[bytes]] = []  # [oid, type, size, base] of each delta, decoded only if it goes early
        depth = self.depth
        for raw in self.pack.lines():
            parts = raw.split()
            if len(parts) >= 3:
                if parts[1] != b"blob":
                    continue
                oid, size = parts[0], int(parts[2])
                if len(oid) != width:
                    width = width or len(oid)
                    if len(oid) != width:  # not git's: every id of a repository has one length; kept apart
                        odd[len(lens)] = (oid.decode(), "blob")
                        oid = b"0" * width
                ids += oid
                lens.append(size)
                if len(parts) == 4:
                    if depth >= ALL_DEPTHS or not parts[3].strip(b"0"):
                        sizes[parts[0].decode()] = size
                    elif depth > 0:
                        deltas.append(parts)
            elif len(parts) == 2:  # "<oid> missing" (or another word git has for an object it cannot read)
                odd[len(lens)] = (parts[0].decode(), parts[1].decode())
                width = width or len(parts[0])
                ids += b"0" * width
                lens.append(-1)
        rows.width = width
        level = {oid.encode() for oid in sizes} if deltas else set()
        for _ in range(depth if deltas else 0):  # one link more each round: deltas whose base went the round before
            rest: list[list[bytes]] = []
            nxt: set[bytes] = set()
            for parts in deltas:
                if parts[3] in level:
                    sizes[parts[0].decode()] = int(parts[2])
                    nxt.add(parts[0])
                else:
                    rest.append(parts)
            deltas, level = rest, nxt
            if not deltas or not level:
                break
        return sizes, rows

    def _rev_list_names(self) -> Iterator[tuple[str, str]]:
        """(oid, display path) of each line of ``rev-list --objects`` as git writes it."""
        for raw in follow_lines(self.reach):
            oid, _, path = raw.decode("utf-8", "surrogateescape").partition(" ")
            yield oid, display_path(path)

    def __iter__(self) -> Iterator[tuple[str, str, int, str]]:
        sizes, rows = self._whole_blobs()
        reachable = self.reachable
        early: set[str] = set()
        names = self.names if self.names is not None else self._rev_list_names()
        for oid, path in names:
            if oid not in reachable or (path and not reachable[oid]):
                reachable[oid] = path
                # a path is final (only an empty one may be replaced by a later line); commits have none
                if path and oid not in early:
                    size = sizes.get(oid)
                    if size is not None:
                        early.add(oid)
                        yield oid, "blob", size, path
        self.early = len(early)
        self.failure = self.reach.failure()
        if self.on_walked is not None:
            self.on_walked()
        del sizes
        for oid, otype, size in rows:  # the rest in pack order, as ``git_list.reachable_in_pack_order`` gives it
            at = reachable.get(oid)
            if at is not None and oid not in early:
                yield oid, otype, size, at
