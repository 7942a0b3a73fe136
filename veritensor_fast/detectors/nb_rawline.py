"""Committing a notebook's structured findings, each with the ``raw_line`` of its verbatim occurrence in the raw
file: the k-th record (in document order) of a secret gets the k-th occurrence, all secrets looked up together
in one Hyperscan pass (:func:`raw_occurrences`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veritensor_fast.buffers import COPY_WINDOW, can_release, count_newlines, is_buffer, release_pages, span
from veritensor_fast.detectors.nb_walk import Record
from veritensor_fast.matcher import SecretMatch

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan

#: Findings beyond this many do not get a ``raw_line``.
RAW_LINE_MAX = 1000
#: Window of the ``raw_line`` pass over a memory-mapped notebook (pages released after each window).
RAW_WINDOW = 8 << 20


def wanted(records: list[Record]) -> dict[bytes, int]:
    """How many verbatim occurrences of each secret the first :data:`RAW_LINE_MAX` records need."""
    want: dict[bytes, int] = {}
    for m, _, _, _ in records[:RAW_LINE_MAX]:
        want[m.secret] = want.get(m.secret, 0) + 1
    return want


def commit(buf: Any, records: list[Record], scan: ItemScan,
           occ: dict[bytes, list[tuple[int, int]]] | None = None) -> list[tuple[SecretMatch, int | None]]:
    """Adds every record to ``scan`` (with its ``raw_line`` for the first :data:`RAW_LINE_MAX`); returns each
    finding's match and raw line, for the raw-text pass to leave out. ``occ``: ``raw_occurrences(buf,
    wanted(records))`` when the caller already has it."""
    # The k-th record (in document order) of a secret gets the k-th verbatim occurrence of that secret in
    # the raw file as its ``raw_line``; all secrets are looked up together in one pass.
    if occ is None:
        want = wanted(records)
        occ = raw_occurrences(buf, want) if want else {}
    taken: dict[bytes, int] = {}
    out: list[tuple[SecretMatch, int | None]] = []
    for i, (m, line, col, loc) in enumerate(records):
        loc = dict(loc)
        if i < RAW_LINE_MAX:
            k = taken.get(m.secret, 0)
            hits = occ.get(m.secret, ())
            if k < len(hits):
                loc["raw_line"] = hits[k][1]
                taken[m.secret] = k + 1
        decoded = loc.pop("decoded", None)
        scan.add_secret(m, line=line, column=col, location=loc, decoded=decoded)
        out.append((m, loc.get("raw_line")))
    return out


def _literal(s: bytes) -> bytes:
    """A Hyperscan expression matching exactly the bytes ``s``."""
    return "".join(f"\\x{c:02x}" for c in s).encode()


class LiteralFinder:
    """The verbatim occurrences of wanted secrets, window by window: one Hyperscan literal database for all of
    them (compiled here, never written to disk). ``found[secret]`` fills with ``(offset, line)`` in order; a
    window's scan hands back the hits that start in it, so the caller counts their lines.

    ``needles`` (the inline-ignore markers' needles) ride in the same database: the start of every occurrence
    lands in ``needle_hits`` (None past ``needle_max`` of them), so a file that is read for its secrets anyway is
    not read again for its markers."""

    def __init__(self, want: dict[bytes, int], needles: tuple[bytes, ...] = (), needle_max: int = 0) -> None:
        self.secrets = [s for s in want if s]
        self.found: dict[bytes, list[tuple[int, int]]] = {s: [] for s in self.secrets}
        ns = len(self.secrets)
        self.lens = [len(s) for s in self.secrets] + [len(x) for x in needles]
        self.need = [want[s] for s in self.secrets]
        self.pending = ns
        self.maxlen = max(self.lens, default=0)
        self.needle_hits: set[int] | None = set() if needles and ns else None
        self.needle_max = needle_max
        self.needles_over = False  # more than ``needle_max`` needles: ``needle_hits`` is None
        self.db: Any = None
        if not ns:
            return
        import hyperscan

        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        exprs = [_literal(s) for s in self.secrets] + [_literal(x) for x in needles]
        try:
            db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs),
                       flags=[hyperscan.HS_FLAG_SINGLEMATCH if want[s] == 1 else 0 for s in self.secrets]
                       + [0] * len(needles))
        except hyperscan.error:  # pragma: no cover - literals always compile; then no raw_line, findings kept
            self.pending = 0
            self.needle_hits = None
            return
        self.db = db

    @property
    def active(self) -> bool:
        """Whether a window still needs scanning (an occurrence or the needles still wanted)."""
        return bool(self.pending) or self.needle_hits is not None

    def scan(self, window: Any, a: int, b: int) -> list[tuple[int, int]]:
        """``(start, secret index)`` of the wanted occurrences starting in ``[a, b)``, in order; ``window`` holds
        the file from offset ``a`` (to at least ``b - 1 + maxlen``: a match starting in the overlap belongs to
        the next window). Stops early once every secret has enough."""
        import hyperscan

        hits: list[tuple[int, int]] = []
        lens, need, ns = self.lens, self.need, len(self.secrets)
        marks = self.needle_hits

        def on_match(pid: int, _from: int, to: int, _flags: int, _ctx: object) -> bool | None:
            start = a + to - lens[pid]
            if pid >= ns:  # an inline-ignore needle
                if marks is not None and start < b:
                    marks.add(start)
                return None
            if start < b and need[pid] > 0:
                need[pid] -= 1
                hits.append((start, pid))
                if need[pid] == 0:
                    self.pending -= 1
                    if self.pending == 0 and marks is None:
                        return True  # stop scanning
            return None

        if self.active:
            try:
                self.db.scan(window, match_event_handler=on_match)
            except hyperscan.ScanTerminated:
                pass
        if marks is not None and len(marks) > self.needle_max:
            self.needle_hits, self.needles_over = None, True  # too many: the marker pass gives up alike
        hits.sort()
        return hits


def raw_occurrences(buf: Any, want: dict[bytes, int]) -> dict[bytes, list[tuple[int, int]]]:
    """For each secret, its first ``want[secret]`` verbatim occurrences in ``buf`` (overlapping ones count), as
    ``(offset, line)``, in order.

    One Hyperscan pass for all secrets together (:class:`LiteralFinder`), window by window with the newlines
    counted while the window is resident; it stops as soon as every secret has enough occurrences. A
    memory-mapped file larger than one window has each window's pages released once it is done, so the pass
    faults every page in once and never makes the file resident. (A notebook's raw-text pass finds them in its
    own windows: ``nb_guard.find_windowed``.)
    """
    lit = LiteralFinder(want)
    if not lit.pending:
        return lit.found
    overlap = lit.maxlen - 1
    n = len(buf)
    drop = can_release(buf) and n > RAW_WINDOW
    a, line_base = 0, 1
    step = RAW_WINDOW if is_buffer(buf) else COPY_WINDOW
    while a < n and lit.pending:
        b = min(n, a + step)
        hi = min(n, b + overlap)
        with span(buf, a, hi) as window:
            hits = lit.scan(window, a, b)
        pos, line = a, line_base
        for start, pid in hits:
            line += count_newlines(buf, pos, start)
            pos = start
            lit.found[lit.secrets[pid]].append((start, line))
        if lit.pending:
            line_base = line + count_newlines(buf, pos, b)
        if drop:
            release_pages(buf, a, b if lit.pending else hi)
        a = b
    return lit.found
