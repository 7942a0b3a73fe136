"""The quiet items of a batch: those no detector can report anything for, found with one Hyperscan scan over
the batch instead of every detector over each item.

A ``--history`` sweep reads tens of thousands of small blobs and commit messages (66k in a 6k-commit history),
and a tree tens of thousands of small files (20k on a monorepo, 35k on the real tree); nearly all hold no
candidate, yet each paid the full detector round. Here a batch's items are read first (at most :data:`UPFRONT`
bytes; files through the same ``FileReader.open`` as one by one, with its ``O_NOFOLLOW`` and device/inode checks
and its ``changed`` reasons; a file listed over :data:`SMALL` is not read ahead: the gate saves a per-item cost,
and a larger file is likelier to have a hit and be scanned twice). An item is *quiet* when its bytes are
``bytes`` of at most :data:`MAX_PIECE`, every detector calls it quiet, and the rules database has no hit in it:
the text pieces are joined by a line break and scanned once (the rules' signatures and the base64 needles,
``SecretMatcher.hit_ends``), and so are the binary pieces (a NUL byte in the first 4 KiB; up to :data:`SMALL`),
for the active rules' candidates (``candidate_ends``: the text pass scans binary data with the rules alone, and
no detector uses the needles there). A quiet item is not run through the detectors;
it is recorded as scanned, with no finding and no error but its reader's ``changed`` reason, if any.

Each detector answers for itself (``quiet_test()``: a function ``quiet(item, data, head) -> bool``, ``head``
being ``data[:4096]``, or None when it cannot answer in its configuration): True means that, for such ``data``
without a hit, its ``scan`` reports nothing (no finding, no error). Every hit of the database in a piece alone
is a hit in the joined buffer (no pattern is anchored, but for the compressed-stream needle, whose
``(?:^|[^alphabet])`` start the line break satisfies; a word boundary sees a line break where the piece alone
sees its start or end). As the detectors stand:
- model, notebook, archive: the item is nothing they analyse (their ``scan`` returns at once);
- text: not UTF-16 (decoded, then scanned); otherwise its one scan is the rules database's, with no candidate;
- encoded: text other than YAML decodes only runs that hold a needle; a YAML file (parsed when it mentions a
  Secret or a Docker config, every run decoded) and a binary one (every run decoded, unless exempt) must hold
  no base64 run at all; None (the gate off) when text files get the generic layer (``base64_depth`` beyond the
  needles' layers, or the fallback backend);
- Python AST: not a Python file, or not admitted by its prefilter;
- the post-processors only remove findings (``removes_only``: the inline ignores). Secrets in the item's *path*
  are still reported (``WorkerContext.path_secrets``, per batch as before).

A detector whose test may scan the bytes itself declares ``quiet_cost = 1``: its test is asked only for the
items left without a hit (the others' before the scan, so that what a detector claims is not joined). Such a
detector may also offer its own patterns to the joined scan (``gate_share(items, datas)``: a ``matcher.Shared``
database of the rules, the needles and its patterns, and which text items to scan with it; the AST pass offers the
prefilter's first stage for its Python files, ``pyast_shared``): those items are joined and scanned with that
database instead, and one without a hit of the offered patterns of its own is not asked (its test would scan it
for them and find none). The offered patterns report every hit there (no single match, which would report a
pattern's first hit in the whole concatenation only) and hold no anchor.

Each detector is asked once per batch: ``quiet_batch(items, datas, heads) -> list[bool]`` (its answer for each
item, in order), only about the items every detector before it called quiet; one with only ``quiet_test()`` is
asked item by item (:func:`_per_item`). A ``quiet_test()`` of None still turns the gate off, and an answer of the
wrong length leaves the batch without a quiet item.

The gate is off when a detector has neither ``quiet_test`` nor ``quiet_batch``, or its ``quiet_test()`` answers
None, a post-processor does not declare ``removes_only``, or the matcher cannot answer (the fallback backend, an
anchored rule). It runs for batches of git objects and of files. Findings and errors are the same with or
without it (``tests/test_hist17_gate.py``, ``tests/test_gate18_*.py`` compare both on every shape the conditions
name; ``tests/test_gatebatch18_batch.py`` each batch answer with the per-item one).
"""

from __future__ import annotations

import weakref
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate, compress
from typing import TYPE_CHECKING, Any

from veritensor_fast.findings import Item

if TYPE_CHECKING:
    from veritensor_fast.worker import WorkerContext

#: Item kinds the gate applies to: git objects (read whole into memory by ``sources.git_read``) and files.
KINDS = frozenset({"blob", "commit", "file"})
#: What joins the plain items of a batch: a line break, which the one start-anchored needle accepts before a run.
SEP = b"\n"
#: A piece larger than this is scanned by the detectors as before (a batch holds at most ``BATCH_BYTES``
#: anyway; this only keeps the joined buffer small). A file listed larger is not read up front.
MAX_PIECE = 1 << 20
#: Files up to this size are read up front, and binary pieces up to it are gated: the gate saves a per-item
#: cost, worth it for small items; a large one with a hit (the likelier, the larger) would be scanned twice.
SMALL = 16 << 10
#: Bytes of a batch read up front at most: the rest of its items are read one at a time when the worker reaches
#: them. A batch of listed objects holds less (``engine.make_batches``: under ``2 * BATCH_BYTES``), all read up
#: front; one of unknown sizes (``-1``: the HEAD blobs ``GitHistorySource._head_fingerprints`` looks up after a
#: sweep, all in one batch) may hold any number of any size.
UPFRONT = 8 << 20

#: A detector's answer (``quiet_test()``): whether it reports nothing for an item whose bytes have no hit.
QuietTest = Callable[[Item, bytes, bytes], bool]
#: The same answer for a batch (``quiet_batch(items, datas, heads)``): one bool per item, in order.
QuietBatch = Callable[[list[Item], list[bytes], list[bytes]], list[bool]]
#: A costly detector's offer (``gate_share(items, datas)``, text items only): a ``matcher.Shared`` database of the
#: rules and its own patterns, and which items to scan with it; an item without a hit of those patterns there is
#: quiet for that detector (it is not asked). None: no offer for this batch.
Share = Callable[[list[Item], list[bytes]], "tuple[Any, list[bool]] | None"]


def _per_item(test: QuietTest) -> QuietBatch:
    """The batch answer of a detector that only answers item by item."""
    def quiet_batch(items: list[Item], datas: list[bytes], heads: list[bytes]) -> list[bool]:
        return [test(it, d, h) for it, d, h in zip(items, datas, heads, strict=True)]
    return quiet_batch


class Opened:
    """A batch read up front: each item's ``(buffer, closer)``, the ``InputError`` reading it raised, or None
    (not read up front: a large file), and the indices of the quiet items. Items past ``got`` (beyond
    :data:`UPFRONT`) and the None ones are read when opened, as without the gate."""

    __slots__ = ("got", "quiet", "_ctx", "_batch")

    def __init__(self, got: list[Any], quiet: set[int], ctx: WorkerContext | None = None,
                 batch: list[Item] | None = None) -> None:
        self.got = got
        self.quiet = quiet
        self._ctx = ctx
        self._batch = batch

    def open(self, i: int) -> tuple[Any, Any]:
        g: Any = self.got[i] if i < len(self.got) else None
        if g is None and self._ctx is not None and self._batch is not None:
            it = self._batch[i]
            return self._ctx.reader(it.kind).open(it)
        if isinstance(g, BaseException):
            raise g
        return g


class Gate:
    """The gate of one worker context (see the module docstring); ``enabled`` False when a condition fails."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.tests = self._tests(ctx)
        self.enabled = self.tests is not None
        tests = self.tests or []
        #: tests asked before the scan, and those that may scan the bytes themselves (``quiet_cost`` 1: the base64
        #: runs, the AST prefilter), asked after it, only for the items left without a hit
        self.cheap = [t for c, t, _s in tests if c <= 0]
        self.costly = [t for c, t, _s in tests if c > 0]
        #: the first costly detector that offers the joined scan a database of its own patterns too (``gate_share``)
        #: and its batch answer, which the items that database proves quiet are then not asked
        self.sharer = next(((s, t) for c, t, s in tests if c > 0 and s is not None), None)

    @staticmethod
    def _tests(ctx: WorkerContext) -> list[tuple[int, QuietBatch, Share | None]] | None:
        """Every detector's ``quiet_cost``, batch answer (its ``quiet_batch``, else its ``quiet_test()`` asked item
        by item) and ``gate_share`` (or None); None when the gate cannot be on."""
        if ctx.matcher.hit_ends(b"") is None:  # the fallback backend, or an anchored rule
            return None
        if not all(getattr(p, "removes_only", False) for p in ctx.postprocessors):
            return None  # a post-processor that might add findings
        tests: list[tuple[int, QuietBatch, Share | None]] = []
        for det in ctx.detectors:
            ask = getattr(det, "quiet_test", None)
            test = ask() if callable(ask) else None
            batch = getattr(det, "quiet_batch", None)
            if callable(ask) and test is None:
                return None  # a detector that cannot tell in this configuration: fail closed
            if not callable(batch):
                if test is None:
                    return None  # a detector that cannot tell at all
                batch = _per_item(test)
            share = getattr(det, "gate_share", None)
            tests.append((int(getattr(det, "quiet_cost", 0)), batch, share if callable(share) else None))
        return tests

    def quiet(self, batch: list[Item], got: list[Any]) -> set[int]:
        """Indices of the quiet items among ``batch`` (``got``: each item's ``(buffer, closer)``, error or None)."""
        if self.tests is None:
            return set()
        # the columns of the items the gate may call quiet: bytes of at most MAX_PIECE, no binary over SMALL (its
        # candidates are as costly to rule out here as in the detectors); built a column at a time
        raw = [None if g is None or isinstance(g, BaseException) else g[0] for g in got]
        idx = [i for i, b in enumerate(raw) if type(b) is bytes and len(b) <= MAX_PIECE]
        bufs: list[bytes] = [raw[i] for i in idx]  # type: ignore[misc]
        heads = [b[:4096] for b in bufs]
        if max(map(len, bufs), default=0) > SMALL:
            keep = [len(b) <= SMALL or 0 not in h for b, h in zip(bufs, heads, strict=True)]
            idx, bufs, heads = (list(compress(col, keep)) for col in (idx, bufs, heads))  # type: ignore[assignment]
        items = [batch[i] for i in idx]
        cols = _ask(self.cheap, idx, items, bufs, heads)
        if cols is None:
            return set()
        idx, items, bufs, heads = cols
        # text: the rules' signatures and the base64 needles; binary: the active rules' candidates only (the text
        # pass scans binary data with the rules alone, and no detector uses the needles there)
        matcher = self.ctx.matcher
        nul = [0 in h for h in heads]  # an int: no TypeError raised and dropped, as for ``b"\x00" in h``
        text: Sequence[int] = range(len(bufs))
        found: set[int] = set()
        if True in nul:
            text = [k for k, n in enumerate(nul) if not n]
            binary = [k for k, n in enumerate(nul) if n]
            found = _no_hit(matcher.candidate_ends, binary, [bufs[k] for k in binary])
        settled: set[int] = set()  # items (``idx``) the sharer's own database proved quiet for it
        sharer = self.sharer
        share = sharer[0]([items[k] for k in text], [bufs[k] for k in text]) if sharer is not None and text else None
        if share is not None:  # the sharer's items scanned with its database, the other text with the rules'
            db, mask = share
            text, mine = [k for k, m in zip(text, mask, strict=True) if not m], list(compress(text, mask))
            pieces = [bufs[k] for k in mine]
            ends = matcher.shared_ends(pieces[0] if len(pieces) == 1 else SEP.join(pieces), db)
            if ends is not None:
                rules = _owners(ends[0], pieces)
                extra = _owners(ends[1], pieces)
                found.update(i for j, i in enumerate(mine) if j not in rules)
                settled.update(idx[i] for j, i in enumerate(mine) if j not in extra)
        calm = sorted(found | _no_hit(matcher.hit_ends, text, [bufs[k] for k in text]))
        if len(calm) < len(idx):
            idx, items, bufs, heads = ([col[k] for k in calm] for col in (idx, items, bufs, heads))  # type: ignore
        cols = _ask(self.costly, idx, items, bufs, heads, (sharer[1], settled) if settled and sharer else None)
        return set() if cols is None else set(cols[0])


def _ask(answers: list[QuietBatch], idx: list[int], items: list[Item], bufs: list[bytes], heads: list[bytes],
         settled: tuple[QuietBatch, set[int]] | None = None
         ) -> tuple[list[int], list[Item], list[bytes], list[bytes]] | None:
    """The columns narrowed to the items every answer calls quiet (one call per detector, on what is left); None
    when nothing is left, or an answer is not one bool per item (fail closed). ``settled``: an answer and the items
    (``idx``) it is not asked about, being quiet for it already (the joined scan with its database proved it)."""
    for answer in answers:
        if not idx:
            return None
        if settled is not None and answer is settled[0]:
            said = _unsettled(answer, settled[1], idx, items, bufs, heads)
        else:
            said = answer(items, bufs, heads)
        if len(said) != len(idx):
            return None
        if False in said:
            idx, items, bufs, heads = (list(compress(col, said)) for col in (idx, items, bufs, heads))  # type: ignore
    return (idx, items, bufs, heads) if idx else None


def _unsettled(answer: QuietBatch, done: set[int], idx: list[int], items: list[Item], bufs: list[bytes],
               heads: list[bytes]) -> list[bool]:
    """``answer`` for each item, asked only about those not in ``done`` (True for those)."""
    ask = [i not in done for i in idx]
    if True not in ask:
        return [True] * len(idx)
    sub = answer(*(list(compress(col, ask)) for col in (items, bufs, heads)))  # type: ignore[arg-type]
    if len(sub) != ask.count(True):
        return []  # an answer of the wrong length: nothing is quiet (fail closed)
    got = iter(sub)
    return [next(got) if a else True for a in ask]


def _no_hit(hits: Callable[[bytes], list[int] | None], idx: Sequence[int], pieces: list[bytes]) -> set[int]:
    """The indices in ``idx`` whose piece has no hit of ``hits`` in one scan of the pieces joined by :data:`SEP`."""
    if not pieces:
        return set()
    ends = hits(pieces[0] if len(pieces) == 1 else SEP.join(pieces))
    if ends is None:
        return set()
    loud = _owners(ends, pieces)
    return {i for k, i in enumerate(idx) if k not in loud}


def _owners(ends: list[int], pieces: list[bytes]) -> set[int]:
    """The pieces (their index) of a concatenation joined by :data:`SEP` that hold a hit ending at one of ``ends``:
    a hit ending at a piece's end (inclusive) or inside it is its own; one in a separator counts for both sides."""
    if not ends:
        return set()
    starts = list(accumulate(map(_AFTER_SEP, map(len, pieces[:-1])), initial=0))  # each piece's offset
    loud: set[int] = set()
    for e in ends:
        k = bisect_right(starts, e) - 1
        if k >= 0 and e <= starts[k] + len(pieces[k]):
            loud.add(k)
        if k >= 1 and e == starts[k]:
            loud.add(k - 1)
    return loud


#: A piece's length plus the separator's: the offset of the next piece, less this one's.
_AFTER_SEP = len(SEP).__add__

_GATES: weakref.WeakKeyDictionary[Any, Gate] = weakref.WeakKeyDictionary()


def open_batch(ctx: WorkerContext, batch: list[Item]) -> Opened | None:
    """Read the items of a batch of git objects or files up front (up to :data:`UPFRONT` bytes; no file listed
    over :data:`SMALL`, no part of a split file) and find their quiet items; None for any other batch (or
    with the gate off): the worker then reads and scans item by item as before. The reader's ``InputError`` for
    an item is kept and raised when the worker opens that item."""
    from veritensor_fast.sources.fs import InputError

    if len(batch) < 2 or any(it.kind not in KINDS for it in batch):
        return None
    gate = _GATES.get(ctx)
    if gate is None:
        gate = _GATES[ctx] = Gate(ctx)
    if not gate.enabled:
        return None
    got: list[Any] = []
    total = 0
    readers: dict[str, Any] = {}
    for it in batch:
        if total >= UPFRONT:
            break
        kind = it.kind
        if kind == "file" and (it.span or not 0 <= it.size <= SMALL):
            got.append(None)  # read when the worker reaches it (a large file: a window at a time)
            continue
        reader = readers.get(kind)
        if reader is None:
            reader = readers[kind] = ctx.reader(kind)
        try:
            g = reader.open(it)
            total += len(g[0])
        except InputError as exc:
            g = exc
        got.append(g)
    return Opened(got, gate.quiet(batch, got), ctx, batch)
