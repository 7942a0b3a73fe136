"""Secret matching: Hyperscan finds candidate end offsets for every rule at once, each rule's Python regex
confirms the candidate in a bounded window and captures the exact secret span, then the entropy floor and a
placeholder check reject dummies. This is the only place rules touch bytes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from veritensor_fast.detectors.privkey import STRUCTURAL
from veritensor_fast.kernels import BACKEND, entropy
from veritensor_fast.kernels.hsdb import Scanner, compile_cached
from veritensor_fast.rules import Rule, RuleSet

#: A candidate whose adjacent characters step by ±1 this often is a placeholder such as ``abcdef…``.
MAX_SEQUENTIAL = 0.5
#: Words that mark documentation placeholders (AWS's ``AKIAIOSFODNN7EXAMPLE``, ``hf_YOUR_TOKEN``…). A random
#: 34-character token contains one of them with probability below 1e-7.
_PLACEHOLDER = re.compile(
    rb"(?i)example|placeholder|dummy|sample|changeme|redacted|your_?(?:api_?)?(?:key|token|secret)|x{6}|\*{4}"
    # documentation keys (Google's ``AIzaSyDOCAbC123dEf456GhI789jKl012-MnO``, ``…AbCdEfGhIj…``, ``…1234567890``)
    rb"|abc123def456|abcdefghij|0123456789|1234567890")

#: Exact values published as examples, never anyone's live credential: the Firebase SDK and sample-app API keys
#: that gitleaks also allowlists (its ``gcp-api-key`` rule). Matched whole, so a real key is never hidden.
KNOWN_PUBLIC = frozenset({
    b"AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs",
    b"AIzaSyCkEhVjf3pduRDt6d1yKOMitrUEke8agEM",
    b"AIzaSyDMAScliyLx7F0NPDEJi1QmyCgHIAODrlU",
    b"AIzaSyD3asb-2pEZVqMkmL6M9N6nHZRR_znhrh0",
    b"AIzayDNSXIbFmlXbIE6mCzDLQAqITYefhixbX4A",
    b"AIzaSyAdOS2zB6NCsk1pCdZ4-P6GBdi_UUPwX7c",
    b"AIzaSyASWm6HmTMdYWpgMnjRBjxcQ9CKctWmLd4",
    b"AIzaSyANUvH9H9BsUccjsu2pCmEkOPjjaXeDQgY",
    b"AIzaSyA5_iVawFQ8ABuTZNUdcwERLJv_a_p4wtM",
    b"AIzaSyA4UrcGxgwQFTfaI3no3t7Lt1sjmdnP5sQ",
    b"AIzaSyDSb51JiIcB6OJpwwMicseKRhhrOq1cS7g",
    b"AIzaSyBF2RrAIm4a0mO64EShQfqfd2AFnzAvvuU",
    b"AIzaSyBcE-OOIbhjyR83gm4r2MFCu4MJmprNXsw",
    b"AIzaSyB8qGxt4ec15vitgn44duC5ucxaOi4FmqE",
    b"AIzaSyA8vmApnrHNFE0bApF4hoZ11srVL_n0nvY",
})


def is_placeholder(secret: bytes) -> bool:
    """Placeholder-looking candidates (entropy floors miss e.g. ``wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY``)
    and exact values published as examples (``KNOWN_PUBLIC``)."""
    return secret in KNOWN_PUBLIC or entropy.sequential_fraction(secret) > MAX_SEQUENTIAL \
        or _PLACEHOLDER.search(secret) is not None


@dataclass(frozen=True, slots=True)
class SecretMatch:
    rule: Rule
    start: int  # span of the secret itself (the ``secret`` group, else the whole match) in the buffer
    end: int
    secret: bytes


def compile_ruleset(ruleset: RuleSet) -> bytes:
    """Serialised Hyperscan database for ``ruleset`` (cached on disk by pattern hash): the rules' signatures
    (:func:`rule_expressions`: match id = the rule's index), then (Hyperscan backend only) the base64 needles of
    ``b64_needles`` (ids from ``len(ruleset.rules)`` on; one scan per buffer finds both)."""
    pats, ids = rule_expressions(ruleset.rules)
    if BACKEND == "python":
        return compile_cached(pats, ids=ids)
    from veritensor_fast.detectors import b64_needles

    # deriving the needles takes ~0.1 s: done only when the cached database is missing (keyed by their code)
    return compile_cached(pats, key=b64_needles.code_key(), more=lambda: aux_patterns(ruleset), ids=ids)


def aux_patterns(ruleset: RuleSet) -> list[bytes]:
    """The base64 needles appended to the rules in the database (ids from ``len(ruleset.rules)`` on). The
    fallback backend never scans the database (see ``SecretMatcher._windows``): none there."""
    if BACKEND == "python":
        return []
    from veritensor_fast.detectors.b64_needles import hs_patterns

    return hs_patterns([r.pattern for r in ruleset.rules])


def rule_expressions(rules: Sequence[Rule]) -> tuple[list[bytes], list[int]]:
    """The Hyperscan expressions of ``rules`` and the rule index each one reports: a built-in rule that starts
    with an alternation (``(?i)(?:A|B|C)rest``) is compiled as one expression per alternative
    (:func:`split_alternatives`), all with the rule's id. The union of their matches is the rule's, end for end
    (a candidate end may be reported twice), but Hyperscan plans each branch on its own literals: measured on
    real ``.py`` text, ``azure.devops-pat``'s ``ado`` branch beside ``personal_?access_?token`` made the whole
    secrets database 20 % slower (``bench/README.md``). Not with the fallback backend, whose scan reports
    leftmost matches, not every end (it never scans this database for candidates: ``SecretMatcher._windows``)."""
    pats: list[bytes] = []
    ids: list[int] = []
    split = BACKEND == "hyperscan"
    cuts = _split_all([r.hs_pattern for r in rules if r.engine == "re"]) if split else []
    for i, r in enumerate(rules):
        exprs = cuts.pop(0) if split and r.engine == "re" else [r.hs_pattern]
        pats += exprs
        ids += [i] * len(exprs)
    return pats, ids


def _split_all(patterns: list[bytes]) -> list[list[bytes]]:
    """``split_alternatives`` of each pattern, memoised in the on-disk cache (``kernels.diskcache``): checking
    every cut compiles each piece with ``re``, ~5 ms of every start (the rules' database is then found in the
    cache by the split patterns). Keyed by the patterns, this module's code and the Python version (``re``'s
    grammar); a cache file that does not decode, or does not fit the patterns, is ignored and rewritten."""
    import hashlib
    import json
    import sys

    from veritensor_fast.kernels.diskcache import cache_file, cache_load, cache_store

    h = hashlib.sha256(f"split:{sys.version}".encode())
    try:
        with open(__file__, "rb") as f:
            h.update(f.read())
    except OSError:  # pragma: no cover - e.g. a zip import: split afresh
        return [split_alternatives(p) for p in patterns]
    for p in patterns:
        h.update(len(p).to_bytes(4, "little") + p)
    path = cache_file(f"split-{h.hexdigest()[:32]}.json")
    raw = cache_load(path)
    if raw is not None:
        try:
            cuts = [[bytes.fromhex(x) for x in xs] for xs in json.loads(raw)]
        except (ValueError, TypeError):
            cuts = []
        if len(cuts) == len(patterns) and all(xs for xs in cuts):
            return cuts
    cuts = [split_alternatives(p) for p in patterns]
    cache_store(path, json.dumps([[x.hex() for x in xs] for xs in cuts]).encode())
    return cuts


def split_alternatives(pattern: bytes) -> list[bytes]:
    """``[(?i)(?:A)rest, (?i)(?:B)rest, …]`` for a ``pattern`` of the form ``(?i)(?:A|B|…)rest`` (``(?i)``
    optional), else ``[pattern]``. The alternatives are cut at the ``|`` of the leading group's own level (escapes
    and character classes skipped), and the cut is kept only when each alternative and the rest are regular
    expressions of their own (else, or on anything unusual, ``[pattern]``)."""
    flags, body = (b"(?i)", pattern[4:]) if pattern.startswith(b"(?i)") else (b"", pattern)
    if not body.startswith(b"(?:") or b"\\Q" in body:
        return [pattern]
    depth, i, in_class, start, n = 0, 0, False, 3, len(body)
    alts: list[bytes] = []
    rest = b""
    while i < n:
        c = body[i]
        if c == 0x5C:  # backslash: the escaped character is literal
            i += 2
            continue
        if in_class:
            in_class = c != 0x5D  # ``]``
        elif c == 0x5B:  # ``[``; a ``]`` (after an optional ``^``) first in a class is literal
            in_class = True
            i += 1 + (body[i + 1:i + 2] == b"^")
            i += body[i:i + 1] == b"]"
            continue
        elif c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                alts.append(body[start:i])
                rest = body[i + 1:]
                break
        elif c == 0x7C and depth == 1:
            alts.append(body[start:i])
            start = i + 1
        i += 1
    else:
        return [pattern]
    if len(alts) < 2 or not _whole([*alts, rest]):
        return [pattern]
    return [flags + b"(?:" + a + b")" + rest for a in alts]


def _whole(pieces: list[bytes]) -> bool:
    """Whether every piece is a regular expression of its own (a cut inside a group or a class is not)."""
    try:
        for p in pieces:
            re.compile(p)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


class Shared:
    """:meth:`SecretMatcher.shared`: a database of the rules, the base64 needles and a detector's patterns (one
    scan serves both), the id each of those patterns reports (its hits come from the database as ``nrules +
    index``), and the indices of those asked for a single match (``once``): compiled to report every hit, so
    that the batch gate can tell each piece of a concatenation its own hits (:meth:`SecretMatcher.shared_ends`);
    :meth:`SecretMatcher.find_shared` keeps their first hit only, which is the one a single match reports."""

    __slots__ = ("ids", "once", "scanner")

    def __init__(self, scanner: Scanner, ids: tuple[int, ...], once: frozenset[int] = frozenset()) -> None:
        self.scanner, self.ids, self.once = scanner, ids, once


class SecretMatcher:
    """Built once per worker process: holds the Hyperscan scratch and the compiled confirmation regexes."""

    def __init__(self, ruleset: RuleSet, serialised_db: bytes | None = None, strict: bool = False) -> None:
        self.ruleset = ruleset
        self.strict = strict
        self._scanner = Scanner(serialised_db if serialised_db is not None else compile_ruleset(ruleset))
        #: the rules alone (no base64 needles), for callers that want no needle hits: a notebook's base64 images
        #: hold thousands of them (measured: the raw notebook pass at 1.2 GB/s instead of 2.4 GB/s); built lazily
        self._rules_only: Scanner | None = None if BACKEND == "hyperscan" else self._scanner
        self._rules = ruleset.rules
        self._nrules = len(self._rules)
        #: confirmation regexes and window widths, built on a rule's first candidate (most rules never get one
        #: in a scan, and compiling all of them up front cost ~17 ms of every start-up)
        self._confirm: list[Any] = [None] * self._nrules
        self._group = [False] * self._nrules
        self._width = [0] * self._nrules
        self._active = [strict or not r.strict_only for r in self._rules]
        #: rules confirmed by structure (private keys): the header match is handed to a parser that returns
        #: the end of the secret and applies its own entropy floor; the rule's own floor is not used
        self._struct = [STRUCTURAL.get(r.id) for r in self._rules]
        #: a rule anchored to the buffer's start or end: the candidates of a concatenation then miss some
        self._anchored = any(is_anchored(r.hs_pattern) for r in self._rules)

    def _windows(self, buf: Any, hits: list[int] | None = None,
                 shared: tuple[Shared, list[tuple[int, int]]] | None = None) -> dict[int, list[tuple[int, int]]]:
        """Per rule, the merged windows around its Hyperscan candidates that its regex confirms in. Without
        Hyperscan (``BACKEND == "python"``) every active rule's window is the whole buffer: the confirmation
        regexes alone decide, so the findings are the same, only slower. ``shared``: scan :class:`Shared`'s
        database instead, appending its extra patterns' hits ``(their id, end)`` to the list."""
        n = len(buf)
        if BACKEND == "python":
            return {pid: [(0, n)] for pid, on in enumerate(self._active) if on} if n else {}
        nrules, active = self._nrules, self._active
        top, extra = nrules, None
        extra_ids: tuple[int, ...] = ()
        once: frozenset[int] = frozenset()
        seen: set[int] = set()  # the single-match patterns whose first hit is in
        if shared is not None:
            raw = shared[0].scanner.scan(buf)
            extra_ids, extra = shared[0].ids, shared[1]
            top += len(extra_ids)
            once = shared[0].once
        else:
            raw = (self._scanner if hits is not None else self._rules_scanner()).scan(buf)
        if not raw:
            return {}  # most files: no candidate at all
        ends: dict[int, list[int]] = defaultdict(list)
        for pid, end in raw:
            if pid >= nrules:  # a base64 needle (``aux_patterns``), or an extra pattern of ``shared``
                if pid >= top:
                    if hits is not None:
                        hits.append(end)
                elif extra is not None:
                    k = pid - nrules
                    if k in once:  # hits come in order of their ends: its first is the single match
                        if k in seen:
                            continue  # a later hit, which the pattern compiled alone with single match never reports
                        seen.add(k)
                    extra.append((extra_ids[k], end))
            elif active[pid]:
                ends[pid].append(end)
        out: dict[int, list[tuple[int, int]]] = {}
        for pid, es in ends.items():
            width = self._width[pid] or self._width_of(pid)
            es.sort()
            lo, hi = max(0, es[0] - width), min(n, es[0] + width)
            windows: list[tuple[int, int]] = []
            for e in es[1:]:
                a, b = max(0, e - width), min(n, e + width)
                if a <= hi:
                    hi = max(hi, b)
                else:
                    windows.append((lo, hi))
                    lo, hi = a, b
            windows.append((lo, hi))
            out[pid] = windows
        return out

    def _width_of(self, pid: int) -> int:
        w = self._width[pid] = self._rules[pid].max_width() + 16
        return w

    def _confirm_of(self, pid: int) -> Any:
        rx = self._confirm[pid] = self._rules[pid].confirm_regex()
        self._group[pid] = "secret" in rx.groupindex
        return rx

    def candidate_ends(self, buf: Any) -> list[int] | None:
        """End offsets (unsorted) of the active rules' Hyperscan candidates in ``buf``, no base64 needles. A piece
        of a concatenation with none of them has no secret (:meth:`find` of it alone finds nothing), since every
        candidate of the piece alone is one of the whole; None where that does not hold: the fallback backend,
        or a rule anchored to the start or end of the buffer."""
        if BACKEND == "python" or self._anchored:
            return None
        nrules, active = self._nrules, self._active
        return [end for pid, end in self._rules_scanner().scan(buf) if pid < nrules and active[pid]]

    def hit_ends(self, buf: Any) -> list[int] | None:
        """End offsets of every hit of the whole database in ``buf``: any rule's candidate (active or not) and
        any base64 needle (``batch_gate``: a piece of a concatenation joined by line breaks with none of them has
        neither, alone). None where that does not hold: the fallback backend, or a rule anchored to the start or
        end of the buffer (the needles' one start anchor accepts a line break before it)."""
        if BACKEND == "python" or self._anchored:
            return None
        return [end for _pid, end in self._scanner.scan(buf)]

    def _rules_scanner(self) -> Scanner:
        """The active rules alone: an inactive rule's candidates are dropped by every caller (the strict-only rule
        outside ``--strict-secrets`` cost 1.7 % of this scan on binary files; the database with the needles keeps
        every rule, as :meth:`hit_ends` promises)."""
        if self._rules_only is None:
            pats, ids = rule_expressions(self._rules)
            on = [k for k, i in enumerate(ids) if self._active[i]]
            if on and len(on) < len(ids):
                pats, ids = [pats[k] for k in on], [ids[k] for k in on]
            self._rules_only = Scanner(compile_cached(pats, ids=ids))
        return self._rules_only

    def find_with_hits(self, buf: Any) -> tuple[list[SecretMatch], list[int]]:
        """:meth:`find`, plus the end offsets (sorted) of the base64 needles the same scan met in ``buf``: where
        a base64-encoded secret may stand (``B64Decoder.scan_hits``). Always empty with the fallback backend."""
        hits: list[int] = []
        found = self.find(buf, hits)
        return found, sorted(set(hits)) if hits else hits

    def shared(self, patterns: list[bytes], flags: list[int], ids: list[int], *,
               compile_it: bool) -> Shared | None:
        """The database of the rules and base64 needles with a detector's ``patterns`` added (their Hyperscan
        ``flags`` and the ``ids`` their hits report), for :meth:`find_shared`; None with the fallback backend, or
        when it is not in the on-disk cache and not ``compile_it``."""
        if BACKEND != "hyperscan":
            return None
        import hyperscan

        from veritensor_fast.detectors import b64_needles
        from veritensor_fast.kernels.hsdb import cached_only

        pats, rids = rule_expressions(self._rules)
        n = self._nrules
        single = hyperscan.HS_FLAG_SINGLEMATCH  # compiled off: every hit reported (``Shared.once``)
        args = (pats + patterns, [0] * len(pats) + [f & ~single for f in flags])
        kw: dict[str, Any] = {"key": b64_needles.code_key(), "more": lambda: aux_patterns(self.ruleset),
                              "ids": rids + list(range(n, n + len(patterns)))}  # needles from n + len(patterns) on
        blob = compile_cached(*args, **kw) if compile_it else cached_only(*args, **kw)
        once = frozenset(k for k, f in enumerate(flags) if f & single)
        return None if blob is None else Shared(Scanner(blob), tuple(ids), once)

    def shared_ends(self, buf: Any, shared: Shared) -> tuple[list[int], list[int]] | None:
        """One scan of ``buf`` with ``shared``'s database: the end offsets of :meth:`hit_ends` (every rule's
        candidate and base64 needle) and those of every hit of its extra patterns (single match or not: a piece of
        a concatenation joined by line breaks without any has none alone, when no extra pattern is anchored).
        None where :meth:`hit_ends` is."""
        if BACKEND == "python" or self._anchored:
            return None
        lo, hi = self._nrules, self._nrules + len(shared.ids)
        ends: list[int] = []
        extra: list[int] = []
        for pid, end in shared.scanner.scan(buf):
            (extra if lo <= pid < hi else ends).append(end)
        return ends, extra

    def find_shared(self, buf: Any, shared: Shared) -> tuple[list[SecretMatch], list[int], list[tuple[int, int]]]:
        """:meth:`find_with_hits` and the hits ``(id, end)`` of ``shared``'s extra patterns, from one scan."""
        hits: list[int] = []
        extra: list[tuple[int, int]] = []
        found = self.find(buf, hits, (shared, extra))
        return found, sorted(set(hits)) if hits else hits, extra

    def find(self, buf: Any, hits: list[int] | None = None,
             shared: tuple[Shared, list[tuple[int, int]]] | None = None) -> list[SecretMatch]:
        """All confirmed secrets in ``buf`` (bytes, bytearray, mmap or memoryview), sorted by offset. Given a
        ``hits`` list (:meth:`find_with_hits`), the database with the base64 needles is scanned and their end
        offsets are appended to it; otherwise the rules alone are (``shared``: :meth:`find_shared`)."""
        cands: dict[tuple[int, int], tuple[int, bytes]] = {}
        for pid, windows in self._windows(buf, hits, shared).items():
            rx = self._confirm[pid]
            if rx is None:
                rx = self._confirm_of(pid)
            grp, struct = self._group[pid], self._struct[pid]
            for lo, hi in windows:
                for m in rx.finditer(buf, lo, hi):
                    s, e = m.span("secret") if grp and m.start("secret") >= 0 else m.span()
                    if struct is not None:
                        block_end = struct(buf, m.start(), m.end())
                        if block_end is None:
                            continue
                        s, e = m.start(), block_end
                    key = (pid, s)
                    prev = cands.get(key)
                    if prev is None or prev[0] < e:
                        cands[key] = (e, bytes(buf[s:e]))
        if not cands:
            return []
        keys = list(cands)
        secrets = [cands[k][1] for k in keys]
        low = entropy.below(secrets, [None if self._struct[pid] is not None else self._rules[pid].min_entropy
                                      for pid, _s in keys])
        out: list[SecretMatch] = []
        for i, (pid, s) in enumerate(keys):
            rule = self._rules[pid]
            sec = secrets[i]
            if self._struct[pid] is not None:
                out.append(SecretMatch(rule, s, cands[(pid, s)][0], sec))
                continue
            if low[i]:
                continue
            if is_placeholder(sec):
                continue
            out.append(SecretMatch(rule, s, cands[(pid, s)][0], sec))
        out.sort(key=lambda m: (m.start, m.rule.id))
        return out


def is_anchored(pattern: bytes) -> bool:
    """Whether a pattern may hold ``^``, ``$``, ``\\A``, ``\\Z`` or ``\\z`` (conservative: outside character
    classes and escapes, ``^``/``$`` count wherever they stand)."""
    if re.search(rb"\\[AZzG]", pattern):
        return True
    bare = re.sub(rb"\[\^?\]?[^\]]*\]", b"", re.sub(rb"\\.", b"", pattern, flags=re.DOTALL))
    return b"^" in bare or b"$" in bare


def is_match(matcher: SecretMatcher, text: str | bytes, rule_id: str) -> bool:
    """Convenience for rule tests: does ``rule_id`` fire on ``text``?"""
    data = text.encode() if isinstance(text, str) else text
    return any(m.rule.id == rule_id for m in matcher.find(data))


def python_only_match(rule: Rule, text: str | bytes) -> bool:
    """The same rule evaluated by Python ``re`` alone (no Hyperscan), with the entropy floor applied."""
    data = text.encode() if isinstance(text, str) else text
    struct = STRUCTURAL.get(rule.id)
    for m in rule.confirm_regex().finditer(data):
        if struct is not None:
            if struct(data, m.start(), m.end()) is not None:
                return True
            continue
        sec = m.group("secret") if "secret" in m.re.groupindex and m.group("secret") else m.group(0)
        if rule.min_entropy is not None and entropy.below([sec], [rule.min_entropy])[0]:
            continue
        if is_placeholder(sec):
            continue
        return True
    return False


