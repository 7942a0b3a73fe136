"""The AST prefilter's database in two stages: the patterns of long anchors compiled and scanned only where a
literal that each of them holds is found.

A long rule anchor (``https://hooks.slack.com/services/``, ``bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t``)
brings dozens of patterns into :func:`pyast_prefilter.prefilter_plan`: the anchor split between two literals
at each offset, a head and a tail per split (:mod:`pyast_split`), a piece starting with each of its rests
(:mod:`pyast_stream`). Every one of them holds, as written, a prefix of the anchor (its first ``k``
characters) or a suffix (from ``j`` on), and so its shortest such prefix or its longest such suffix across the
anchor's patterns: two **needles**. With the built-in rules such patterns are 2,038 of the database's 2,919,
and costly to compile: on a first run (an empty cache) 1.25 of its 2.9 CPU-s. So they go into a second
database (``late``), compiled only when a needle first hits (never, on most trees: 0 of the real tree's 11,380
``.py`` files), and the first database holds the needles instead (presence only). Where a needle hits, the second database scans
the buffer too; its hits replace the needles', so a file gets exactly the hits of the one database
(:class:`TwoStage`). The scan itself costs the same: Hyperscan's literal matcher runs at ~1 GB/s over Python
source with 40 ordinary literals as with 2,900 (measured), so fewer patterns do not make it faster.

A needle shorter than :data:`NEEDLE_MIN` characters would hit in many files, and one that PEM armour holds
(``-----BEGIN``, :data:`COMMON`) in every file with a certificate: the patterns it would stand for stay in the
first database.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

#: Shortest needle: the patterns of an anchor whose needle would be shorter stay in the first database.
NEEDLE_MIN = 8
#: Text that ordinary files hold: a needle inside one of these would bring the second database to them.
COMMON = (b"-----begin ", b"-----end ")


def stream_rests(group: tuple[str, str, int, bool, bool]) -> list[tuple[tuple[bytes, bool], int]]:
    """:mod:`pyast_stream`'s patterns of a piece starting with the rest of a long anchor (``group``), each with
    where in the anchor that rest starts (``(pattern, caseless), j``); empty for an anchor that has none."""
    from veritensor_fast.detectors.pyast_stream import LONG_REST, SPREAD_MAX

    anchor, cls, _need, ci, _word = group
    raw = anchor.encode("latin-1", "replace")
    if len(raw) <= SPREAD_MAX or not cls:
        return []
    return [((rb"[\x22'}]" + _literal(raw[j:]), ci), j) for j in range(1, len(raw) - LONG_REST + 1)]


def late_needles(groups: list[tuple[str, str, int, bool, bool]], fam: dict[int, list[tuple[int, int, int]]]
                 ) -> tuple[frozenset[int], tuple[tuple[bytes, bool], ...]]:
    """The pattern ids that can wait for a needle, and the needles (``(literal pattern, caseless)``, sorted).
    ``fam``: per anchor group, ``(pattern id, k, j)``: the pattern holds the anchor's first ``k`` characters
    (``0``: no prefix) and its characters from ``j`` on (``len(anchor)``: no suffix), as written."""
    late: set[int] = set()
    needles: set[tuple[bytes, bool]] = set()
    for g in sorted(fam):
        anchor, _cls, _need, ci, _word = groups[g]
        raw = anchor.encode("latin-1", "replace")
        n = len(raw)
        held = fam[g]
        # the shortest prefix a prefix-only pattern holds, the longest suffix a suffix-only one holds (of those
        # at least NEEDLE_MIN long: the patterns holding less stay in the first database)
        a = min((k for _p, k, j in held if j >= n and k >= NEEDLE_MIN), default=n)
        b = max((j for _p, k, j in held if k <= 0 and n - j >= NEEDLE_MIN), default=0)
        use_a, use_b = a >= NEEDLE_MIN and _rare(raw[:a]), n - b >= NEEDLE_MIN and _rare(raw[b:])
        for p, k, j in held:
            if use_a and k >= a:
                late.add(p)
                needles.add((_literal(raw[:a]), ci))
            elif use_b and j <= b:
                late.add(p)
                needles.add((_literal(raw[b:]), ci))
    return frozenset(late), tuple(sorted(needles))


def _rare(needle: bytes) -> bool:
    low = needle.lower()
    return not any(low in c for c in COMMON)


class TwoStage:
    """One scanner's hits (``scan(buf) -> [(pattern id, end)]``) from the two databases: ``first`` (the
    patterns not in ``late`` and, from id ``needle_base`` on, the needles) and the second (the ``late``
    patterns, under their own ids; ``build_second()`` makes its scanner, on the first buffer where a needle
    hits), scanned only when a needle hits. The needles' hits are dropped, the rest ordered by end offset, as
    one database reports them."""

    __slots__ = ("_build", "_second", "first", "needle_base")

    def __init__(self, first: Any, build_second: Callable[[], Any], needle_base: int) -> None:
        self.first, self.needle_base = first, needle_base
        self._build: Callable[[], Any] = build_second
        self._second: Any = None

    @property
    def second(self) -> Any:
        """The second database's scanner, built on first use."""
        if self._second is None:
            self._second = self._build()
        return self._second

    def scan(self, buf: Any) -> list[tuple[int, int]]:
        return self.after(buf, self.first.scan(buf))

    def after(self, buf: Any, hits: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The hits of :meth:`scan` given ``hits``, the first database's in ``buf`` (``pyast_shared``)."""
        if not hits:
            return hits
        base = self.needle_base
        if max(hits)[0] < base:
            return hits
        hits = [h for h in hits if h[0] < base]
        hits.extend(self.second.scan(buf))
        hits.sort(key=itemgetter(1))
        return hits


def _literal(word: bytes) -> bytes:
    return b"".join(b"\\x%02x" % c for c in word)
