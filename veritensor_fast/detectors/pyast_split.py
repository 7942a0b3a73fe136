"""The AST prefilter for a rule anchor split inside itself by a fold: ``"h{}".format("f_…")``,
``"".join(["https://hooks.sla", "ck.com/services/…"])``, ``"%s%s" % ("gh", "p_…")``, ``P = "f_…"; "h" + P``,
``f"h{X}_…"`` where ``X`` holds the ``f``.

Such a token shows in the source as a **head** (the anchor's first ``k`` characters ending a literal piece:
before a quote, a ``{``/``%`` field or an escape) and a **tail** (the anchor's rest starting a piece, after a
quote, a ``}``, a ``%s`` or an escape, followed by the rest of the token: at least the rule's shortest body). A
field or an escape may also hold one character between them (the tail then starts at ``k + 1``). The prefilter
database holds, for each split, the longer of the two literals (:func:`pyast_prefilter.split_triggers`,
single-match: presence only); where one is present this module looks for the other with Python regexes and
judges each head where it stands (:func:`head_dead`, then :func:`pyast_admit.cut_short_dead`).

Known limits: the tail must hold the anchor's rest and the token's shortest body in one piece (a token split
twice, ``"h" + "f_abc" + "def…"``, is not reassembled), and at most one character may come between the head
and the tail from a field or an escape.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from veritensor_fast.detectors.pyast_admit import (
    _PREFIX,
    _WORD,
    Brackets,
    _next_token,
    cut_short_dead,
    folds_elements,
)
from veritensor_fast.detectors.pyast_prefilter import _FIELD, _START, split_pattern

if TYPE_CHECKING:
    from veritensor_fast.detectors.pyast_prefilter import PrefilterPlan

#: On one line: a triple quote, a single-line string literal (with its prefix), or a comment's start.
_LINE_TOKENS = re.compile(rb"\x22{3}|\x27{3}|[rRbBuUfF]{0,2}(?:\x22(?:[^\x22\\]|\\.)*\x22|'(?:[^'\\]|\\.)*')|#")
_QUOTES = (0x22, 0x27)


def in_literal(buf: Any, at: int) -> bytes | bool | None:
    """Whether offset ``at`` is inside a string literal, judged from its own line only: the literal's prefix
    and quote (``b'r"'``) when one is open at ``at``, ``False`` when the line up to ``at`` holds only whole
    single-line literals (or ``at`` is in a comment), ``None`` when that cannot be told (a triple quote on the
    line, an f-string, a line continued from the one above, 16 KiB without a line break). A head such as
    ``f"`` of ``f"{x}"`` is a string prefix, not the end of a literal."""
    lo = max(0, at - 16384)
    line = bytes(buf[lo:at])
    nl = max(line.rfind(b"\n"), line.rfind(b"\r"))
    if nl < 0 and lo > 0:
        return None
    if nl >= 0:
        if line[:nl].rstrip(b"\r").endswith(b"\\"):
            return None  # a line continuation: the literal may have opened above
        line = line[nl + 1:]
    pos = 0
    for m in _LINE_TOKENS.finditer(line):
        gap = line[pos:m.start()]
        if b"\x22" in gap or b"'" in gap:
            return None  # a quote the literal pattern did not take (an unterminated one)
        tok = m.group(0)
        if tok == b"#":
            return False
        if tok in (b"\x22\x22\x22", b"\x27\x27\x27"):
            return None
        pos = m.end()
    rest = line[pos:]
    opened = [i for i in (rest.find(b"\x22"), rest.find(b"'")) if i >= 0]
    if not opened:
        return False
    i = j = min(opened)
    while j > 0 and i - j < 2 and rest[j - 1] in _PREFIX:
        j -= 1
    if b"f" in rest[j:i].lower():
        return None  # an f-string: its fields hold other literals
    return rest[j:i + 1]


def head_dead(buf: Any, start: int, end: int, brackets: Brackets) -> bool:
    """:func:`pyast_admit.cut_short_dead` for a head (``buf[start:end]``: the anchor's first characters, then
    what ended them); also dead when it is not inside a literal (``f"`` of an f-string, ``s%2``), when it ends
    at a quote of the other kind or at a raw string's backslash, or when its literal is the last element of a
    list or tuple that folds nothing (or a subscript's key)."""
    state = in_literal(buf, start)
    q = buf[end - 1]
    if state is False or (isinstance(state, bytes) and (
            (q in _QUOTES and q != state[-1]) or (q == 0x5C and b"r" in state.lower()))):
        return True
    if cut_short_dead(buf, start, end, brackets):
        return True
    if q in _QUOTES and state is not None:
        after, _crossed = _next_token(buf, end)
        if after[:1] == b"]":
            return not folds_elements(buf, end, brackets)
    return False


class _Split:
    """One file's split check: tails and heads looked for once each."""

    __slots__ = ("brackets", "buf", "by_id", "plan", "tails")

    def __init__(self, plan: PrefilterPlan, buf: Any, brackets: Brackets, by_id: dict[int, list[int]]) -> None:
        self.plan, self.buf, self.brackets, self.by_id = plan, buf, brackets, by_id
        self.tails: dict[tuple[int, int], bool] = {}

    def tail(self, g: int, j: int) -> bool:
        """Whether a piece starts with anchor ``g``'s characters from ``j`` on, followed by the token's rest (at
        ``j == len(anchor)``: the token's rest alone, after a field or an escape)."""
        key = (g, j)
        got = self.tails.get(key)
        if got is None:
            # Where the database holds this tail (``split_pattern(…, "tail", j, TAIL_CAP)``: what starts a piece,
            # the anchor's rest, at most TAIL_CAP of the token's characters), a tail :meth:`_tail` finds is a hit
            # of that pattern too (the same start, a prefix of the same token): without one, there is none. The
            # regex search over the whole file is then skipped (ast22).
            p = _index(self.plan)[2].get(key)
            got = self.tails[key] = False if p is not None and p not in self.by_id else self._tail(g, j)
        return got

    def _tail(self, g: int, j: int) -> bool:
        group = self.plan.groups[g]
        if j >= len(group[0]) and not (group[1] and group[2]):
            return False  # nothing to look for after the anchor
        buf = self.buf
        if j >= len(group[0]):  # the token's rest alone, after ``}`` or ``%s`` (each searched by its first byte)
            return any(rx.search(buf) is not None for rx in _body_regexes(group))
        rx = _regex(group, "tail", j)  # the anchor's rest first (a literal: searched fast), then what is before
        m = rx.search(buf)
        while m is not None:
            s = m.start()
            if s and (buf[s - 1] in (0x22, 0x27, 0x7D) or (s > 1 and buf[s - 2] == 0x25 and buf[s - 1] in b"sdr")):
                return True
            m = rx.search(buf, s + 1)
        return False

    def head(self, g: int, k: int, quoted: bool) -> int | None:
        """End of a head of anchor ``g`` (its first ``k`` characters) that a fold may continue; with ``quoted``
        false only heads ending at a field or an escape count."""
        buf, group = self.buf, self.plan.groups[g]
        for m in _regex(group, "head", k).finditer(buf):
            s, e = m.start(), m.end()
            if group[4] and s and buf[s - 1] in _WORD:
                continue  # ``\\b``: searched without it (a literal first is searched fast)
            if (quoted or buf[e - 1] not in _QUOTES) and not head_dead(buf, s, e, self.brackets):
                return e
        return None

    def pair(self, g: int, k: int) -> int | None:
        """A live head at ``k`` with a tail at ``k`` (any head) or ``k + 1`` (a head ending at a field)."""
        if self.tail(g, k):
            return self.head(g, k, True)
        if self.tail(g, k + 1):
            return self.head(g, k, False)
        return None


def split_end(plan: PrefilterPlan, buf: Any, by_id: dict[int, list[int]], brackets: Brackets) -> int | None:
    """End of the head of an anchor split by a fold in ``buf`` (see the module's docstring), or ``None``.
    ``by_id``: the prefilter database's hits by pattern id."""
    heads, tails, _tail_ids = _index(plan)
    check = _Split(plan, buf, brackets, by_id)
    tried: set[tuple[int, int]] = set()
    for p in sorted(heads.keys() & by_id.keys()):
        for g, k in heads[p]:
            if (g, k) not in tried:
                tried.add((g, k))
                end = check.pair(g, k)
                if end is not None:
                    return end
    for p in sorted(tails.keys() & by_id.keys()):
        for g, j in tails[p]:
            for k in (j, j - 1):
                if k >= 1 and (g, k) not in tried:
                    tried.add((g, k))
                    end = check.pair(g, k)
                    if end is not None:
                        return end
    return None


_INDEX: dict[int, tuple[Any, dict[int, list[tuple[int, int]]], dict[int, list[tuple[int, int]]],
                        dict[tuple[int, int], int]]] = {}
_REGEX: dict[tuple[tuple[str, str, int, bool, bool], str, int], re.Pattern[bytes]] = {}


def _index(plan: PrefilterPlan) -> tuple[dict[int, list[tuple[int, int]]], dict[int, list[tuple[int, int]]],
                                         dict[tuple[int, int], int]]:
    """``plan``'s heads and tails by pattern id, and the pattern id of each tail ``(group, j)`` the database
    holds (built once per plan)."""
    got = _INDEX.get(id(plan))
    if got is None or got[0] is not plan:
        heads: dict[int, list[tuple[int, int]]] = {}
        tails: dict[int, list[tuple[int, int]]] = {}
        for dst, src in ((heads, plan.heads), (tails, plan.tails)):
            for p, g, k in src:
                dst.setdefault(p, []).append((g, k))
        got = _INDEX[id(plan)] = (plan, heads, tails, {(g, j): p for p, g, j in plan.tails})
    return got[1], got[2], got[3]


def _regex(group: tuple[str, str, int, bool, bool], kind: str, k: int) -> re.Pattern[bytes]:
    """A head's pattern without ``\\b``, or a tail's without what starts it (both checked by the caller)."""
    key = (group, kind, k)
    rx = _REGEX.get(key)
    if rx is None:
        pat = split_pattern(group, kind, k)
        if kind == "tail":
            pat = pat[len(_START):]
        elif group[4]:
            pat = pat[2:]  # ``\\b``
        rx = _REGEX[key] = re.compile(pat, re.I if group[3] else 0)
    return rx


def _body_regexes(group: tuple[str, str, int, bool, bool]) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """The token's rest after ``}`` and after ``%s``."""
    body = split_pattern(group, "tail", len(group[0]))[len(_FIELD):]
    return (_compiled(rb"\}" + body, group[3]), _compiled(rb"%[sdr]" + body, group[3]))


def _compiled(pat: bytes, caseless: bool) -> re.Pattern[bytes]:
    key = ((pat.decode("latin-1"), "", 0, caseless, False), "raw", 0)
    rx = _REGEX.get(key)
    if rx is None:
        rx = _REGEX[key] = re.compile(pat, re.I if caseless else 0)
    return rx
