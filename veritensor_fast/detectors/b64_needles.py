"""Base64 needles: what a rule's secret looks like once base64-encoded, as literals for the main database.

The encoded pass used to search every text file for every base64 run (a ``[ALPHA]{27}`` Hyperscan pattern at
~600 MB/s plus two pre-check databases). Instead, each rule contributes the literals that every one of its
matches must contain (a fixed prefix such as ``hf_``, ``AKIA``; the keyword of a keyword-anchored rule such as
``aws`` or ``token``; an infix such as ``JQQJ``), and this module turns them into the base64 (and base64url)
fragments those literals always produce, at each of the three byte alignments (``hf_`` -> ``aGZf``, ``hmX``,
``oZl``), and again for a second layer of base64. The fragments ride in the secrets database
(``matcher.compile_ruleset``), so the text pass's one Hyperscan scan also says where an encoded secret may
start; the encoded detector decodes only the base64 run around such a hit (``B64Decoder.scan_hits``).

Line-wrapped blobs (MIME 76, PEM 64) may break a fragment across a line: every first-layer fragment also
comes with a line break between two of its characters (or, when long, as its two halves).

Trade-offs (documented in ``bench/README.md``, "One pass per buffer"):
- a rule without a required literal of at least :data:`MIN_LITERAL` bytes contributes no fragment; its secrets
  are found in base64 only in the structured places that keep the generic decoder (Kubernetes ``data:``,
  Docker configs, notebooks, binaries, decoded text at depth);
- a case-insensitive literal is encoded as written in lower case, upper case and capitalised (``aws``,
  ``AWS``, ``Aws``); other mixed-case spellings of a keyword are not recognised once encoded;
- a second-layer fragment broken by a wrapped line, or any fragment broken by an indented continuation line
  outside YAML files, is not seen (YAML files keep the generic decoder);
- gzip and zlib streams (``H4sI``, ``eJ``...) are recognised at the start of a run only, as before.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from typing import Any

#: Shortest required literal (bytes) taken from a rule: 3 (``hf_``, ``sk-``) gives 3-character fragments.
MIN_LITERAL = 3
#: Shortest fragment kept as a needle (shorter ones hit everywhere).
MIN_FRAGMENT = 3
#: Largest set of alternative literals one rule may contribute (a cross product of small classes).
MAX_ALTERNATIVES = 64
#: Base64 layers the needles cover (more layers fall back to the generic decoder, see ``EncodedSecrets``).
LAYERS = 2
#: A line break inside a wrapped blob: what ``b64_scan._CONT`` accepts between two lines of one blob.
_BREAK = rb"[ \t]*\r?\n[ \t]*"
_ALPHA = rb"A-Za-z0-9+/_\-"
#: Compressed streams inside base64 start a run with these (gzip ``\x1f\x8b\x08``, zlib ``\x78\x01/5e/9c/da``).
COMPRESSED_STARTS = rb"(?:^|[^" + _ALPHA + rb"])(?:H4sI|e[AFJN])[" + _ALPHA + rb"]{25}"
_URL = bytes.maketrans(b"+/", b"-_")
#: Escaped token characters (``escaped``): a letter, digit, ``_`` or ``-`` written ``\\u0068`` or ``\\x68``, and
#: a percent-encoded ``_`` or ``-`` (``%5F``/``%2D``; in lower case only between two token characters: printf's
#: ``%5f`` and ``%2d`` stay quiet). Real serializers never escape these characters. A fully percent-encoded
#: token is seen by its ``_`` or ``-`` (a needle for any ``%XX%XX`` made the whole database scan ~30 % slower).
_ESC_CHAR = rb"(?:2[dD]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF])"
#: Quoted-printable (``escaped``, RFC 2045: ``.eml``/``.mbox``/MIME parts, encoded-word headers): a soft line break
#: (``=`` then LF or CRLF) between two token characters, which cuts a long line and the token in it every 76
#: columns, an encoded ``_`` or ``-`` (``=5F``/``=2D``; QP's hex is upper case, so ``a=5f`` never hits), and
#: two encoded words of a header folded onto two lines (``...?=`` LF, space, ``=?utf-8?q?...``).
QP_NEEDLES = [rb"[A-Za-z0-9_\-]=\r?\n[A-Za-z0-9_\-=]", rb"=5F|=2D", rb"\?=\r?\n[ \t]=\?"]
#: A line continuation between two token characters (a backslash ending a line, LF or CRLF, the next line not
#: indented): shells (inside double quotes too), Dockerfiles, C, JavaScript and Python join the two lines.
CONT_NEEDLES = [rb"[A-Za-z0-9_\-]\\\r?\n[A-Za-z0-9_\-]"]
ESCAPE_NEEDLES = [rb"\\u00" + _ESC_CHAR, rb"\\x" + _ESC_CHAR, rb"%5F|%2D",
                  rb"[A-Za-z0-9]%(?:5f|2d)[A-Za-z0-9]", *QP_NEEDLES, *CONT_NEEDLES]

# A literal is a tuple of (character, case-insensitive) pairs until it is expanded.
_Lit = tuple[tuple[str, bool], ...]


def _parser() -> Any:
    from veritensor_fast.rules import _sre_parse

    return _sre_parse()


class _Extract:
    """Required literals of a regex: a set of strings such that every match contains one of them."""

    def __init__(self) -> None:
        p = _parser()
        self.parse = p.parse
        self.ignore = getattr(p, "SRE_FLAG_IGNORECASE", re.IGNORECASE)

    def run(self, pattern: str) -> set[_Lit] | None:
        tree = self.parse(pattern)
        icase = bool(tree.state.flags & self.ignore)
        exact, req = self._seq(list(tree), icase)
        return exact if exact is not None else req

    @staticmethod
    def _score(s: set[_Lit] | None) -> tuple[int, int]:
        if not s:
            return (0, 0)
        return (min(len(x) for x in s), -len(s))

    def _better(self, a: set[_Lit] | None, b: set[_Lit] | None) -> set[_Lit] | None:
        return b if self._score(b) > self._score(a) else a

    def _seq(self, items: Sequence[Any], icase: bool) -> tuple[set[_Lit] | None, set[_Lit] | None]:
        """(exact set of the whole sequence or None, best required set)."""
        cur: set[_Lit] | None = {()}
        best: set[_Lit] | None = None
        broken = False
        for op, av in items:
            ex, req = self._node(op, av, icase)
            if ex is not None and cur is not None and len(cur) * len(ex) <= MAX_ALTERNATIVES:
                cur = {a + b for a in cur for b in ex}
                continue
            if ex is not None and cur is None:
                cur = set(ex)
                broken = True
                continue
            broken = True
            best = self._better(best, cur)
            best = self._better(best, req if req is not None else ex)
            cur = set(ex) if ex is not None and len(ex) <= MAX_ALTERNATIVES else None
        best = self._better(best, cur)
        return (None if broken else cur), best

    def _node(self, op: Any, av: Any, icase: bool) -> tuple[set[_Lit] | None, set[_Lit] | None]:
        name = str(op)
        if name == "LITERAL":
            ch = chr(av)
            return {((ch, icase and ch.lower() != ch.upper()),)}, None
        if name == "IN":
            chars: set[str] = set()
            for iop, iav in av:
                iname = str(iop)
                if iname == "LITERAL":
                    chars.add(chr(iav))
                elif iname == "RANGE" and iav[1] - iav[0] < 16:
                    chars.update(chr(x) for x in range(iav[0], iav[1] + 1))
                else:
                    return None, None
            if icase:
                chars = {x.lower() for x in chars}
            if not chars or len(chars) > 16:
                return None, None
            return {((x, icase and x.lower() != x.upper()),) for x in chars}, None
        if name == "SUBPATTERN":
            _group, add, delete, sub = av
            ic = (icase or bool(add & self.ignore)) and not bool(delete & self.ignore)
            return self._seq(list(sub), ic)
        if name == "BRANCH":
            _n, alts = av
            parts = [self._seq(list(a), icase) for a in alts]
            if all(e is not None for e, _r in parts):
                union: set[_Lit] = set()
                for e, _r in parts:
                    union |= e or set()
                if len(union) <= MAX_ALTERNATIVES:
                    return union, None
            reqs = [e if e is not None else r for e, r in parts]
            if any(not r for r in reqs):
                return None, None
            out: set[_Lit] = set()
            for r in reqs:
                out |= r or set()
            return None, out if len(out) <= MAX_ALTERNATIVES * 4 else None
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, sub = av
            ex, req = self._seq(list(sub), icase)
            if lo == hi == 1:
                return ex, req
            if lo >= 1:
                return None, ex if ex is not None else req
            return None, None
        if name == "ATOMIC_GROUP":
            return self._seq(list(av), icase)
        return None, None


def _expand(lit: _Lit) -> set[bytes]:
    """Case variants of a literal: as written (lower case for case-insensitive characters), upper, capitalised."""
    low = "".join(ch.lower() if ic else ch for ch, ic in lit)
    if not any(ic for _ch, ic in lit):
        return {low.encode("utf-8")}
    up = "".join(ch.upper() if ic else ch for ch, ic in lit)
    first = next(i for i, (_ch, ic) in enumerate(lit) if ic)
    cap = low[:first] + low[first].upper() + low[first + 1:]
    return {x.encode("utf-8") for x in (low, up, cap)}


def required_literals(pattern: str) -> set[bytes]:
    """Literals (case variants expanded) one of which every match of ``pattern`` contains; empty when the
    pattern has none of at least :data:`MIN_LITERAL` bytes."""
    try:
        lits = _Extract().run(pattern)
    except Exception:  # an exotic construct: no needle, the rule keeps the structured places only
        return set()
    if not lits or min(len(x) for x in lits) < MIN_LITERAL:
        return set()
    out: set[bytes] = set()
    for lit in lits:
        out |= _expand(lit)
    return out


def fragments(lit: bytes) -> set[bytes]:
    """The base64 characters ``lit`` always produces, at each of the three alignments, standard and URL-safe."""
    out: set[bytes] = set()
    for a in range(3):
        enc = base64.b64encode(b"\x00" * a + lit + b"\x00\x00")
        bits_lo, bits_hi = 8 * a, 8 * (a + len(lit))
        j0 = -(-bits_lo // 6)
        j1 = bits_hi // 6  # chars j with 6j >= bits_lo and 6j + 6 <= bits_hi
        frag = enc[j0:j1]
        if len(frag) >= MIN_FRAGMENT:
            out.add(frag)
            out.add(frag.translate(_URL))
    return out


def layered(patterns: Iterable[str], layers: int = LAYERS) -> list[set[bytes]]:
    """The fragments of every rule's required literals, one set per base64 layer (first layer first)."""
    lits: set[bytes] = set()
    for p in patterns:
        lits |= required_literals(p)
    layer: set[bytes] = set()
    for lit in lits:
        layer |= fragments(lit)
    out = [layer]
    for _ in range(layers - 1):
        nxt: set[bytes] = set()
        for f in out[-1]:
            nxt |= fragments(f)
        out.append(nxt - set().union(*out))
    return out


def needles(patterns: Iterable[str], layers: int = LAYERS) -> list[bytes]:
    """Every fragment of every rule's required literals, for ``layers`` layers of base64, sorted."""
    return sorted(set().union(*layered(patterns, layers)))


#: What may stand between two lines of a wrapped blob inside a needle: LF or CRLF. Indented continuations
#: (YAML block scalars) are left to the generic decoder, which YAML files keep (``EncodedSecrets``): the
#: variants with 2 and 4 spaces made the database 50 % larger and its scan 20 % slower (1,362 -> 1,106 MB/s).
BREAKS = (b"\n", b"\r\n")
#: Fragments at least this long are searched as their two ends (see :func:`needle_literals`).
SPLIT_AT = 10


def needle_literals(frags: Iterable[bytes], breaks: Sequence[bytes] = BREAKS) -> list[bytes]:
    """What to search for so that a fragment is seen even where a wrapped line breaks it.

    A fragment of length ``L >= SPLIT_AT`` is searched as its first and its last ``k = min(8, (L + 1) // 2)``
    characters: a line break anywhere leaves one side of at least ``k`` characters, which holds one of the two.
    A shorter fragment is searched whole and with each of ``breaks`` between any two of its characters (pure
    literals keep Hyperscan at literal speed; a ``[ \t]*\r?\n`` pattern per fragment measured 3x slower)."""
    out: set[bytes] = set()
    for f in frags:
        if len(f) >= SPLIT_AT:
            k = min(8, (len(f) + 1) // 2)
            out.add(f[:k])
            out.add(f[-k:])
            continue
        out.add(f)
        for i in range(1, len(f)):
            for w in breaks:
                out.add(f[:i] + w + f[i:])
    return sorted(out)


def all_literals(patterns: Iterable[str], layers: int = LAYERS) -> list[bytes]:
    """The needle literals of a rule set: first-layer fragments with their line-break variants, deeper layers
    as they are (a wrapped outer blob that breaks a second-layer fragment is missed: the variants of every
    layer made the database 2.5x larger and its compilation 2x slower, see ``bench/README.md``)."""
    first, *deeper = layered(patterns, layers)
    out = set(needle_literals(first))
    for frags in deeper:
        out.update(needle_literals(frags, ()))
    return sorted(out)


def hex_literals(patterns: Iterable[str]) -> list[bytes]:
    """Every rule's required literals written in hex, lower and upper case (``hf_`` -> ``68665f``/``68665F``):
    where a hex-encoded secret may stand (``escaped``)."""
    lits: set[bytes] = set()
    for p in patterns:
        lits |= required_literals(p)
    return sorted({h for lit in lits for h in (lit.hex().encode(), lit.hex().upper().encode())})


def hs_patterns(patterns: Iterable[str], layers: int = LAYERS) -> list[bytes]:
    """Hyperscan patterns: every needle literal (see :func:`all_literals`), then the compressed-stream starts,
    the escaped token characters and the hex forms of the rules' literals."""
    pats = list(patterns)
    # needles hold only the alphabets, spaces and line breaks: ``+`` is the one Hyperscan metacharacter
    return [x.replace(b"+", b"\\+") for x in all_literals(pats, layers)] + [COMPRESSED_STARTS, *ESCAPE_NEEDLES,
                                                                           *hex_literals(pats)]


def code_key() -> bytes:
    """What the needles derive from besides the rules: this module's code (a cache key for the database)."""
    import hashlib
    from pathlib import Path

    try:
        return hashlib.sha256(Path(__file__).read_bytes()).digest()
    except OSError:  # pragma: no cover - e.g. a zip import: no cache reuse across versions, still correct
        return b"b64_needles:unknown"


class NeedleSet:
    """The needle literals for the fallback backend (no Hyperscan): ``in_span`` says whether a span of text
    holds one, by a dictionary of 3-byte heads (Python speed; the fallback is the slow path by design)."""

    def __init__(self, patterns: Iterable[str], layers: int = LAYERS) -> None:
        self.by_head: dict[bytes, list[bytes]] = {}
        for lit in all_literals(patterns, layers):
            self.by_head.setdefault(lit[:3], []).append(lit)

    def in_span(self, span: bytes) -> bool:
        by_head = self.by_head
        for i in range(len(span) - 2):
            lits = by_head.get(span[i:i + 3])
            if lits is not None and any(span.startswith(x, i) for x in lits):
                return True
        return span[:4] == b"H4sI" or span[:2] in (b"eA", b"eF", b"eJ", b"eN")
