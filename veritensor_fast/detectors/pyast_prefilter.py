"""The AST pass's prefilter: which files are worth parsing (see :func:`prefilter_plan`).

A file is parsed only when parsing can add a finding to the text pass: some rule's anchor is cut short inside a
literal, or a context word is used as a name beside a literal shaped like that rule's secret. The patterns are
derived from the rules' regular expressions (``sre_parse``) and compiled into Hyperscan databases once per
worker (:func:`build_prefilter`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from veritensor_fast.rules import Rule

#: A bare ``login(key=…)`` is read as ``wandb.login`` (``from wandb import login``): the call is a context word
#: of that rule (its value must still be shaped like a wandb key).
SINK_RULE = "wandb.api-key"
SINK_CALL = rb"\blogin\s*\("


def _sre() -> Any:
    try:
        from re import _parser as sre_parse  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse
    return sre_parse


def rule_anchors(rule: Rule) -> set[str] | None:
    """Literal prefixes (lower-cased for ``(?i)`` rules) that every match of ``rule`` starts with; ``None`` when the rule has
    no such prefix of at least 2 characters."""
    sp = _sre()
    pfx = _prefixes(list(sp.parse(rule.pattern)), sp)[0]
    if not pfx or any(len(p) < 2 for p in pfx):
        return None
    return pfx if not rule.pattern.startswith("(?i)") else {p.lower() for p in pfx}


#: A longest match beyond this many characters counts as unbounded (``ya29\\.[…]+``).
MAX_SHORT = 1024
#: What ends a literal piece that a fold may continue: a quote, a ``{``/``%`` field, an escape.
_END = rb"[\x22'{%\\]"


#: A tail's token characters looked for by the database (the whole shortest match is checked in Python where
#: it hits): long bounded repeats after short literals doubled the database's scan time on real code.
TAIL_CAP = 24
#: What a tail starts after: a quote, the end of a ``{…}`` field, a ``%s`` field.
_START = rb"(?:[\x22'}]|%[sdr])"
_FIELD = rb"(?:}|%[sdr])"


def split_triggers(n: int, body: bool) -> list[tuple[str, int]]:
    """Which pattern makes a file a candidate for each split of an ``n``-character anchor (see
    :mod:`pyast_split`): at ``k`` (head ``anchor[:k]``, tail ``anchor[k:]`` and the token's rest) and at ``k``
    with one character from a field between (tail from ``k + 1``; the head then ends at ``{`` or ``%``: kind
    ``fhead``): the longer literal of the two; a tail wins ties when the token's rest follows it (``body``)."""
    out: set[tuple[str, int]] = set()
    for k in range(1, n):
        for j, head in ((k, "head"), (k + 1, "fhead")):
            tail = n - j
            out.add(("tail", j) if tail > k or (tail == k and body) else (head, k))
    return sorted(out)


def split_pattern(group: tuple[str, str, int, bool, bool], kind: str, k: int, cap: int | None = None) -> bytes:
    """The head (``\\b`` for a word rule, ``anchor[:k]``, what ends a piece) or tail (what starts a piece,
    ``anchor[k:]``, then token characters to the rule's shortest match, at most ``cap`` of them) pattern of an
    anchor ``group``."""
    anchor, cls, need, _ci, word = group
    need = need if cap is None else min(need, cap)
    raw = anchor.encode("latin-1", "replace")
    if kind in ("head", "fhead"):
        return (rb"\b" if word else b"") + _literal(raw[:k]) + (_END if kind == "head" else rb"[{%]")
    start = _START if k < len(raw) else _FIELD  # the token's rest alone: after a field in the head's literal
    return start + _literal(raw[k:]) + (b"[" + cls.encode("latin-1") + b"]{%d}" % need if cls and need else b"")


#: Between two pieces of a split literal: close quote, optional ``+`` (or nothing: implicit concatenation),
#: whitespace or newlines, an optional string prefix, open quote.
_SPLIT = rb"[\x22']\s*(?:\+\s*)?[rRbBuUfF]{0,2}[\x22']"


def _inner_literal(rule: Rule) -> str | None:
    """The longest run (>= 2 characters) of literal characters at the top level of a rule without a literal
    prefix (``Q~`` in an Azure AD client secret), or None."""
    sp = _sre()
    best, run = "", ""
    try:
        tokens = list(sp.parse(rule.pattern))
    except Exception:  # pragma: no cover - rules compile (checked at load)
        return None
    for op, av in tokens:
        if op == sp.LITERAL:
            run += chr(av)
            if len(run) > len(best):
                best = run
        else:
            run = ""
    return best if len(best) >= 2 else None


#: A secret of a context rule (``together… = "<64 hex>"``) must show in the source as a literal piece: at least
#: this many of its characters (fewer when the secret is shorter) followed by the end of a literal or an escape.
#: A secret split into pieces shorter than this on both sides is not reassembled (the file is not parsed).
MIN_PIECE = 8


@dataclass(frozen=True, slots=True)
class PrefilterPlan:
    """Hyperscan patterns (with a caseless flag, as their rule) and how their hits admit a file for parsing
    (see :func:`pyast_admit.admits`): a hit of a pattern in ``alone``; a hit of a pattern in ``cut`` (an anchor
    cut short) whose literal can still be continued; or, for some ``(context, shape)`` pair, a hit in
    ``context`` (a context rule's word used as a name) whose value holds a literal piece shaped like that
    rule's secret (a ``shapes`` pattern) or a name bound to one. Shapes are character-class runs without a
    literal to anchor on (slow to scan for), so they are a second database, scanned only in a context
    word's value."""

    patterns: list[tuple[bytes, bool]]
    alone: frozenset[int]
    pairs: list[tuple[frozenset[int], frozenset[int]]]  # (ids in ``patterns``, ids in ``shapes``)
    shapes: list[tuple[bytes, bool]]
    cut: frozenset[int] = frozenset()
    headers: frozenset[int] = frozenset()  # context ids that are text inside a literal (``"username"``)
    #: An anchor split inside itself by any fold (``"h{}".format("f_…")``, ``"".join(["ho", "oks.sla…"])``),
    #: see :mod:`pyast_split`: per anchor, ``(anchor, token class, token characters after it, caseless, word
    #: boundary)``; and the patterns that make a file a candidate, ``(pattern id, group, k)``: a head (the
    #: anchor's first ``k`` characters ending a piece) or a tail (its characters from ``k`` on, then the rest of
    #: the token), whichever is the longer literal.
    groups: tuple[tuple[str, str, int, bool, bool], ...] = ()
    heads: tuple[tuple[int, int, int], ...] = ()
    tails: tuple[tuple[int, int, int], ...] = ()
    #: Triggers of the literal stream check (:mod:`pyast_stream`): a token spread over several pieces, escapes.
    streams: frozenset[int] = frozenset()
    #: Patterns of long anchors scanned only where one of ``needles`` (a literal each of them holds) is found
    #: (:mod:`pyast_needles`): the same hits as one database, with fewer literals in the one every file sees.
    late: frozenset[int] = frozenset()
    needles: tuple[tuple[bytes, bool], ...] = ()

    def every_hit(self, pid: int) -> bool:
        """Whether the admission check needs every hit of pattern ``pid`` (not only the first)."""
        return pid in self.cut or pid in self.streams or any(pid in c for c, _s in self.pairs)


def prefilter_patterns(rules: Iterable[Rule]) -> list[tuple[bytes, bool]] | None:
    """Every pattern of :func:`prefilter_plan` (sorted), or ``None`` when every file must be parsed."""
    plan = prefilter_plan(rules)
    return None if plan is None else sorted(plan.patterns + plan.shapes)


def prefilter_plan(rules: Iterable[Rule]) -> PrefilterPlan | None:
    """Patterns whose absence proves that parsing cannot add a finding; ``None`` when some rule has no
    literal anchor (then every file is parsed).

    - A rule whose match starts with its token (``hf_…``): its anchor followed by fewer token characters than
      the rule's minimum and then a character that ends or interrupts a literal (quote, ``{``, ``%``,
      backslash). A complete literal token is the text pass's job; only a token cut short can need the AST.
    - A rule that needs context before its secret (``wandb…``, ``together…``): the context word used as a
      name (followed by ``"]``, ``",``, ``":``, ``=``, ``:`` or ``(``), because the AST supplies context (sink
      calls, ``os.environ[…]``) that the text may lack; **and** the secret's shape in a literal: its literal
      prefix (``sk-``, also split between two literals) or, without one, a run of ``MIN_PIECE`` characters of
      its alphabet ending a literal piece (holding a digit when the alphabet has letters beyond hex: a random
      40-character alphanumeric key lacks one with probability ~0.1%). Without a secret-shaped literal the AST has nothing to assemble
      (measured on a real site-packages: ``token_id``, ``together``, ``cohere`` alone admitted ~250 files).
    """
    sp = _sre()
    ids: dict[tuple[bytes, bool], int] = {}
    shape_ids: dict[tuple[bytes, bool], int] = {}
    alone: set[int] = set()
    cut: set[int] = set()
    headers: set[int] = set()
    pairs: list[tuple[frozenset[int], frozenset[int]]] = []
    groups: list[tuple[str, str, int, bool, bool]] = []
    heads: set[tuple[int, int, int]] = set()
    tails: set[tuple[int, int, int]] = set()
    #: per anchor group, its patterns and the anchor's literal each holds (:func:`pyast_needles.late_needles`)
    fam: dict[int, list[tuple[int, int, int]]] = {}

    def pid(pat: bytes, caseless: bool) -> int:
        return ids.setdefault((pat, caseless), len(ids))

    for r in rules:
        caseless = r.pattern.startswith("(?i)")
        anchors = rule_anchors(r)
        if anchors is None:
            inner = _inner_literal(r)
            if inner is None:
                return None
            alone.add(pid(_literal(inner.encode("latin-1", "replace")), caseless))  # ``Q~``, ``JQQJ``: rare
            continue
        body = r.pattern[4:] if r.pattern.startswith("(?i)") else r.pattern
        context = "(?P<secret>" in body and not body.startswith("(?P<secret>")
        shape = _secret_shape(r, sp) if context else None
        ctx_ids: set[int] = set()
        for a in sorted(anchors):  # sorted: the database (and its on-disk cache key) must not follow the hash seed
            lit = _literal(a.encode("latin-1", "replace"))
            if (context or r.left == "word") and a[:1].isalnum():
                lit = rb"\b" + lit
            if context and not a[:1].isalnum():  # a header such as ``"username"``: its presence
                ctx_ids.add(pid(lit, caseless))
                headers.add(pid(lit, caseless))
            elif context:  # the word used as a name: key of a subscript/dict/setdefault, keyword, call, assignment
                ctx_ids.add(pid(lit + rb"[\w.\-]{0,20}(?:[\x22']\s*[\],:]|\s*[:=(])", caseless))
            else:
                lo, hi = sp.parse(r.pattern).getwidth()
                cls = _token_class(r.pattern)
                # A literal holding the anchor and fewer token characters than the rule's longest match can be
                # continued into a longer (other) secret: ``"sk-proj-<40 of 160>" + "…"`` (issue ast17).
                rep = b"*" if hi > MAX_SHORT else b"{0,%d}" % max(0, int(hi) - len(a) - 1)
                g, n = len(groups), len(a.encode("latin-1", "replace"))
                held = fam.setdefault(g, [])  # (pattern id, the anchor's prefix it holds, where its suffix starts)
                c = pid(lit + (b"[" + cls + b"]" + rep if cls else b"") + _END, caseless)
                cut.add(c)
                held.append((c, n, 0))  # the whole anchor
                # the anchor itself split between two literals: ``"h" + "f_…"``, ``("gh" "p_…")``
                for k, sp_pat in enumerate(_split_patterns(a), 1):
                    alone.add(pid(sp_pat, caseless))
                    held.append((pid(sp_pat, caseless), k, k))
                # ... or by any other fold: a head ending a piece, a tail starting one (judged in pyast_split)
                group = (a, cls.decode("latin-1"), max(0, int(lo) - len(a)), caseless,
                         r.left == "word" and a[:1].isalnum())
                groups.append(group)
                for kind, k in split_triggers(len(a), group[2] > 0 and bool(cls)):
                    pat = split_pattern(group, kind, k, TAIL_CAP)
                    (tails if kind == "tail" else heads).add((pid(pat, caseless), g, k))
                    held.append((pid(pat, caseless), 0, k) if kind == "tail" else (pid(pat, caseless), k, n))
        if not ctx_ids:
            continue
        if shape is None:  # the secret's shape is unknown: the context word alone admits the file
            alone |= ctx_ids
        else:
            shape_set = frozenset(shape_ids.setdefault((p, caseless), len(shape_ids)) for p in shape)
            pairs.append((frozenset(ctx_ids), shape_set))
            if r.id == SINK_RULE:  # a bare ``login(key=…)`` is read as ``wandb.login`` (imported or not)
                pairs.append((frozenset({pid(SINK_CALL, False)}), shape_set))
    from veritensor_fast.detectors.pyast_stream import stream_patterns  # a token spread over pieces, escapes
    streams = frozenset(pid(p, ci) for p, ci in stream_patterns(groups))
    from veritensor_fast.detectors.pyast_needles import late_needles, stream_rests

    for g, held in fam.items():  # a piece starting with a long anchor's rest (``pyast_stream``)
        held.extend((ids[k], 0, j) for k, j in stream_rests(groups[g]) if k in ids)
    late, needles = late_needles(groups, fam)
    pats = [k for k, _v in sorted(ids.items(), key=lambda kv: kv[1])]
    shapes = [k for k, _v in sorted(shape_ids.items(), key=lambda kv: kv[1])]
    return PrefilterPlan(pats, frozenset(alone), pairs, shapes, frozenset(cut), frozenset(headers),
                         tuple(groups), tuple(sorted(heads)), tuple(sorted(tails)), streams, late, needles)


def _split_patterns(anchor: str) -> list[bytes]:
    raw = anchor.encode("latin-1", "replace")
    return [_literal(raw[:k]) + _SPLIT + _literal(raw[k:]) for k in range(1, len(raw))]


def _secret_shape(rule: Rule, sp: Any) -> list[bytes] | None:
    """Patterns one of which any literal holding (a piece of) the ``secret`` group of ``rule`` matches; None
    when that cannot be told (no such group, or an alphabet without bounds)."""
    try:
        parsed = sp.parse(rule.pattern)
    except Exception:  # pragma: no cover - rules compile (checked at load)
        return None
    gid = parsed.state.groupdict.get("secret")
    group = _find_group(list(parsed), gid, sp) if gid is not None else None
    if group is None:
        return None
    items = list(group)
    pfx, _full = _prefixes(items, sp)
    if pfx and all(len(p) >= 2 for p in pfx):  # ``sk-…``, ``pa-…``: the prefix, whole or split
        out: list[bytes] = []
        for p in sorted(pfx):
            out.append(_literal(p.encode("latin-1", "replace")))
            out.extend(_split_patterns(p))
        return out
    chars = _chars(items, sp)
    if chars is None:
        return None
    keep = sorted(chars & _TOKEN_CHARS)
    if not keep:
        return None
    need = max(1, min(MIN_PIECE, int(group.getwidth()[0])))
    cls = b"[" + b"".join(b"\\x%02x" % c for c in keep) + b"]"
    end = rb"[\x22'{%\\]"
    digits = set(b"0123456789")
    if not (set(keep) & set(b"ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ")) or not (set(keep) & digits) or need < 2:
        return [cls + b"{%d}" % need + end]
    # An alphabet with letters beyond hex, such as ``[A-Za-z0-9]``: words (``"command"``, ``"together"``) fill
    # such runs, random keys hold a digit. The run must hold one: ``x`` digit ``y`` with ``|x| + |y| >= need - 1``.
    dig = rb"[\x30-\x39]"
    alts = [(cls + b"{%d}" % i if i else b"") + dig + cls + (b"{%d,}" % (need - 1 - i) if need - 1 - i else b"*")
            for i in range(need)]  # the digit at offset ``i`` of the run's last ``need`` or more characters
    return [b"(?:" + b"|".join(alts) + b")" + end]


def _find_group(items: list[Any], gid: int, sp: Any) -> Any:
    """The parsed body of capture group ``gid`` in ``items`` (searched depth-first), or None."""
    stack = [items]
    while stack:
        for op, av in stack.pop():
            if op is sp.SUBPATTERN:
                if av[0] == gid:
                    return av[-1]
                stack.append(list(av[-1]))
            elif op is sp.BRANCH:
                stack.extend(list(b) for b in av[1])
            elif op in (sp.MAX_REPEAT, sp.MIN_REPEAT) or op is getattr(sp, "POSSESSIVE_REPEAT", None):
                stack.append(list(av[2]))
            elif op is getattr(sp, "ATOMIC_GROUP", None):
                stack.append(list(av))
    return None


#: Characters a cut-short token may be followed by inside its literal (before a quote, ``{``, ``%``, ``\\``).
_TOKEN_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.")


def _token_class(pattern: str) -> bytes:
    """A Hyperscan class body for the characters that can follow a rule's literal head in a match.

    The union of every character the rest of ``pattern`` (after its leading literals) can match, intersected
    with ``_TOKEN_CHARS``; all of ``_TOKEN_CHARS`` when the rest has a wildcard or a negated class. So
    ``hf_[A-Za-z0-9]{34}`` gives ``[A-Za-z0-9]``: a literal ``"hf_YOUR_TOKEN_HERE"`` cannot start a token
    whatever is appended to it and does not make the file worth parsing."""
    sp = _sre()
    items = list(sp.parse(pattern))
    i = 0
    while i < len(items) and (items[i][0] is sp.LITERAL or (
            items[i][0] is sp.IN and all(o is sp.LITERAL for o, _v in items[i][1]))):
        i += 1
    chars = _chars(items[i:], sp)
    keep = sorted(_TOKEN_CHARS if chars is None else chars & _TOKEN_CHARS)
    out = b""
    i = 0
    while i < len(keep):  # ranges: ``\x30-\x39``
        j = i
        while j + 1 < len(keep) and keep[j + 1] == keep[j] + 1:
            j += 1
        out += b"\\x%02x" % keep[i] + (b"-\\x%02x" % keep[j] if j > i else b"")
        i = j + 1
    return out


def _chars(items: list[Any], sp: Any) -> set[int] | None:
    """Every character a parsed pattern can match (lookarounds included: a superset); ``None`` if unbounded."""
    out: set[int] = set()
    cats = {sp.CATEGORY_DIGIT: b"0123456789", sp.CATEGORY_SPACE: b" \t\n\r\x0b\x0c",
            sp.CATEGORY_WORD: bytes(_TOKEN_CHARS - frozenset(b"-+/=."))}
    for op, av in items:
        if op is sp.LITERAL:
            out.add(av)
        elif op is sp.IN:
            for o, v in av:
                if o is sp.LITERAL:
                    out.add(v)
                elif o is sp.RANGE:
                    out.update(range(v[0], v[1] + 1))
                elif o is sp.CATEGORY and v in cats:
                    out.update(cats[v])
                else:
                    return None  # negated set or category
        elif op is sp.CATEGORY and av in cats:
            out.update(cats[av])
        elif op in (sp.MAX_REPEAT, sp.MIN_REPEAT) or op is getattr(sp, "POSSESSIVE_REPEAT", None):
            sub = _chars(list(av[2]), sp)
            if sub is None:
                return None
            out |= sub
        elif op is sp.SUBPATTERN or op is getattr(sp, "ATOMIC_GROUP", None):
            sub = _chars(list(av[-1] if op is sp.SUBPATTERN else av), sp)
            if sub is None:
                return None
            out |= sub
        elif op is sp.BRANCH:
            for b in av[1]:
                sub = _chars(list(b), sp)
                if sub is None:
                    return None
                out |= sub
        elif op in (sp.ASSERT, sp.ASSERT_NOT):
            sub = _chars(list(av[1]), sp)
            if sub is None:
                return None
            out |= sub
        elif op is sp.AT:
            continue
        else:
            return None  # ANY, NOT_LITERAL, group references, ...
    return out


def _prefixes(items: list[Any], sp: Any) -> tuple[set[str], bool]:
    """Literal prefixes of a parsed pattern and whether they cover it entirely (no non-literal tail)."""
    cur = {""}
    for op, av in items:
        if op is sp.LITERAL:
            cur = {p + chr(av) for p in cur}
        elif op is sp.SUBPATTERN:
            inner, full = _prefixes(list(av[-1]), sp)
            cur = {p + q for p in cur for q in inner}
            if not full:
                return cur, False
        elif op is sp.IN and len(av) <= 8 and all(o is sp.LITERAL for o, _v in av):
            cur = {p + chr(v) for p in cur for _o, v in av}  # a small class such as gh[pousr]_
        elif op is sp.BRANCH:
            alts: set[str] = set()
            full = True
            for b in av[1]:
                s, f = _prefixes(list(b), sp)
                alts |= s
                full = full and f
            cur = {p + q for p in cur for q in alts}
            if not full:
                return cur, False
        else:
            return cur, False
        if len(cur) > 64:
            return cur, False
    return cur, True


def cached_plan(rules: list[Rule]) -> PrefilterPlan | None:
    """:func:`prefilter_plan`, memoised on disk (:mod:`pyast_plan_cache`)."""
    from veritensor_fast.detectors.pyast_plan_cache import cached_plan as cached

    return cached(rules)


def build_prefilter(rules: list[Rule]) -> tuple[Any, Any, PrefilterPlan] | None:
    """Hyperscan databases of :func:`prefilter_plan`'s patterns and shapes (``None`` without shapes) and the
    plan (:func:`cached_plan`), or ``None`` (parse every file). The patterns' scanner is a
    :class:`pyast_needles.TwoStage` when the plan has ``late`` patterns (compiled on the first needle's hit)."""
    plan = cached_plan(rules)
    if plan is None or not plan.patterns:
        return None
    import hyperscan

    from veritensor_fast.kernels.hsdb import Scanner, compile_cached

    # every hit: cut anchors and context words are checked where they stand, shapes are looked for near them
    shapes = Scanner(compile_cached([p for p, _ci in plan.shapes], [hyperscan.HS_FLAG_CASELESS if ci else 0
                                                                     for _p, ci in plan.shapes])) if plan.shapes else None
    pats, flags, ids = first_stage(plan)
    if not plan.late:
        return Scanner(compile_cached(pats, flags)), shapes, plan
    from veritensor_fast.detectors.pyast_needles import TwoStage

    def late() -> Any:
        lp, lf, li = stage(plan, sorted(plan.late))
        return Scanner(compile_cached(lp, lf, ids=li))

    return TwoStage(Scanner(compile_cached(pats, flags, ids=ids)), late, len(plan.patterns)), shapes, plan


def first_stage(plan: PrefilterPlan) -> tuple[list[bytes], list[int], list[int]]:
    """:func:`stage` of the prefilter's first (or only) database: the plan's patterns but the ``late`` ones, then
    the needles that stand for those (``pyast_needles``)."""
    if not plan.late:
        return stage(plan, list(range(len(plan.patterns))))
    return stage(plan, [i for i in range(len(plan.patterns)) if i not in plan.late], plan.needles)


def stage(plan: PrefilterPlan, ids: list[int], more: tuple[tuple[bytes, bool], ...] = ()
          ) -> tuple[list[bytes], list[int], list[int]]:
    """The expressions, Hyperscan flags and match ids of one prefilter database: the patterns ``ids`` of the plan
    under their own ids, every hit reported for those ``plan.every_hit`` needs (single match for the rest), then
    ``more`` (presence only) from ``len(plan.patterns)`` on."""
    import hyperscan

    every = plan.cut.union(plan.streams, *(c for c, _s in plan.pairs))  # ``plan.every_hit`` as one set
    caseless, once = hyperscan.HS_FLAG_CASELESS, hyperscan.HS_FLAG_SINGLEMATCH
    pats = [plan.patterns[i] for i in ids] + list(more)
    flags = [(caseless if ci else 0) | (0 if i in every else once) for i, (_p, ci) in zip(ids, pats, strict=False)]
    flags += [(caseless if ci else 0) | once for _p, ci in more]
    n = len(plan.patterns)
    return [p for p, _ci in pats], flags, ids + list(range(n, n + len(more)))


def after_backslash(data: bytes, c: int) -> bool:
    """Whether byte ``c`` follows a backslash somewhere in ``data`` (each occurrence of ``c`` found by memchr: the
    letters of ``\\A``, ``\\Z``, ``\\z`` and ``\\G`` are rare in the prefilter's patterns, backslashes are not)."""
    i = data.find(c)
    while i >= 0:
        if i and data[i - 1] == 0x5C:
            return True
        i = data.find(c, i + 1)
    return False


def _literal(word: bytes) -> bytes:
    return b"".join(b"\\x%02x" % c for c in word)
