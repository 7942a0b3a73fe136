"""Python source: secrets assembled by the code rather than written in one literal.

Runs after the plain text pass on ``.py``/``.pyw``/``.pyi`` files (and is callable on notebook code cells via
:func:`scan_python_source`). The file is parsed with :mod:`ast` (never imported or executed) and these are
reassembled and matched with the same rules:

- string expressions folded to a constant (``"hf_" + "…"``, implicit concatenation across lines, ``%``,
  ``.format``, f-strings and ``"".join`` of constants, names bound once to such constants); every string
  literal is also matched after escape decoding;
- constant keyword arguments of calls, matched with their call as context: ``wandb.login(key=<const>)``
  becomes the text ``wandb.login(key="<value>")`` so that rules needing context fire; a bare ``login(key=…)``
  is read as ``wandb.login``; the first positional argument of ``login``/``save_token``/``Client``/
  ``set_api_key`` too;
- assignments, matched as ``NAME = "<value>"``, including ``os.environ["HF_TOKEN"] = …``,
  ``os.environ.setdefault("K", …)``, ``os.putenv("K", …)`` and ``os.environ.update(K=…)``; dict entries as
  ``"key": "<value>"``.

A finding points at the line and column where the expression starts; ``decoded`` is ``python-ast``. A secret
that an earlier pass (the text pass) already reported anywhere in the file is not reported again: the AST
view adds secrets, never second copies (``TOKEN = "hf_…"`` plus ``login(token=TOKEN)`` is one finding, at
the literal).

Cost control: files over ``MAX_SOURCE`` bytes or without a quote are not parsed, and neither are files
where no rule anchor is cut short and no context word occurs beside a literal shaped like that rule's secret
(see :func:`prefilter_plan`; measured on a real site-packages: 114 of 12,182 ``.py`` files are parsed). A token split inside its own anchor (``"h" + "f_…"``) is therefore not
reassembled, and rules active only in strict mode widen the prefilter only when strict mode is on. In a
parsed file, subtrees whose lines hold no quote and no name bound to a constant are not walked. A file that does not parse (Python 2, templates, syntax errors) falls back to the text pass only: no
error is recorded, because the text pass covered it completely (the scan is not incomplete).
"""

from __future__ import annotations

import ast
import re
import threading
import warnings
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from veritensor_fast.detectors.ast_eval import const_names, flatten_add, fold, walrus_lines
from veritensor_fast.findings import Item, fingerprint
from veritensor_fast.matcher import SecretMatch, SecretMatcher

if TYPE_CHECKING:
    from veritensor_fast.rules import Rule
    from veritensor_fast.worker import ItemScan, WorkerContext

#: Larger sources are not parsed (parsing runs at ~8 MB/s; the text pass still covers them).
MAX_SOURCE = 5 << 20
#: Shortest literal matched on its own (shorter ones can only matter inside a fold or a context).
MIN_LITERAL = 16
PY_EXT = (".py", ".pyw", ".pyi")
#: Names whose first positional argument is a credential.
POSITIONAL_SINKS = frozenset({"login", "save_token", "Client", "set_api_key", "set_access_token"})
#: Context words that make a file worth parsing besides rule anchors: ``from wandb import login`` then a bare
#: ``login(key=…)``, which is read as ``wandb.login``.
SINK_CONTEXT = (rb"\bwandb",)
_SEP = "\n\x00\n"


@dataclass(frozen=True, slots=True)
class AstHit:
    """A secret found in reassembled source. ``line``/``col`` are where the expression starts (``col`` is
    the 0-based UTF-8 byte offset, as ``ast`` gives it); ``end_line`` is where it ends."""

    match: SecretMatch  # offsets are within the reassembled text, not the file
    line: int
    col: int
    end_line: int


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str
    line: int
    col: int
    end_line: int


def _dotted(node: ast.AST) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call):
        parts.append(_dotted(node.func) + "()")
    return ".".join(reversed(parts))


def _q(value: str) -> str:
    """Quote a value for a context line the way source code would (rules look for a quote or ``=``)."""
    return '"' + value + '"'


def _relevant_lines(source: str | bytes, names: Iterable[str]) -> list[int]:
    """``r[i]`` = how many of lines 1..i hold a quote or one of ``names`` (``r[0] = 0``).

    Only such lines can hold a string literal or a reference to a name bound to one, so an AST node whose
    lines hold none can contribute no piece and its whole subtree is skipped. Line breaks are counted as the
    tokenizer counts them (``\\r\\n``, ``\\r`` and ``\\n``)."""
    if isinstance(source, str):
        source = source.encode("utf-8", "surrogatepass")
    if b"\r" in source:
        source = source.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    rx = None
    words = sorted({n.encode("utf-8", "surrogatepass") for n in names}, key=len, reverse=True)
    if words:
        rx = re.compile(b"|".join(re.escape(w) for w in words))
    out = [0]
    n = 0
    for ln in source.split(b"\n"):
        if b'"' in ln or b"'" in ln or (rx is not None and rx.search(ln)):
            n += 1
        out.append(n)
    return out


def _children(node: ast.AST) -> list[ast.AST]:
    """``list(ast.iter_child_nodes(node))`` without the generator overhead (same order)."""
    out: list[ast.AST] = []
    for f in node._fields:
        v = getattr(node, f, None)
        if isinstance(v, ast.AST):
            out.append(v)
        elif isinstance(v, list):
            out.extend(x for x in v if isinstance(x, ast.AST))
    return out


def _pieces(tree: ast.AST, source: str | bytes | None = None) -> list[_Piece]:
    """Every text worth matching in ``tree``, in source order. With ``source``, subtrees whose lines hold no
    quote and no constant name are skipped (see :func:`_relevant_lines`)."""
    names = const_names(tree) if source is None else const_names(tree, walrus_at=walrus_lines(source))
    rel = _relevant_lines(source, names) if source is not None else None
    last = len(rel) - 1 if rel is not None else 0
    out: list[_Piece] = []

    def add(text: str | None, node: ast.AST, end: ast.AST | None = None) -> None:
        if text:
            e = end if end is not None else node
            line = int(getattr(node, "lineno", 1))
            out.append(_Piece(text, line, int(getattr(node, "col_offset", 0)),
                              int(getattr(e, "end_lineno", None) or line)))

    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if rel is not None:
            lo = getattr(node, "lineno", None)
            if lo is not None:
                hi = getattr(node, "end_lineno", None) or lo
                for d in getattr(node, "decorator_list", ()):  # decorators stand above ``def``/``class``
                    lo = min(lo, d.lineno)
                if 0 < lo <= hi <= last and rel[hi] == rel[lo - 1]:
                    continue  # no quote and no constant name on these lines: nothing to fold or match
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            ops = flatten_add(node)
            vals = [fold(o, names) for o in ops]
            if all(v is not None for v in vals):
                add("".join(v for v in vals if v is not None), node)
                continue
            i = 0
            while i < len(ops):  # runs of constant operands inside a partly dynamic chain
                j = i
                while j < len(ops) and vals[j] is not None:
                    j += 1
                if j - i >= 2:
                    add("".join(v for v in vals[i:j] if v is not None), ops[i], ops[j - 1])
                if j == i:
                    stack.append(ops[i])
                    i += 1
                else:
                    if j - i == 1:
                        stack.append(ops[i])
                    i = j
            continue
        if isinstance(node, ast.BinOp | ast.JoinedStr) or (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("format", "join")):
            v = fold(node, names)
            if v is not None:
                add(v, node)
                continue
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) >= MIN_LITERAL:
            add(node.value, node)
        if isinstance(node, ast.Call):
            _call(node, names, add)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            _assign(node, names, add)
        elif isinstance(node, ast.Dict):
            for dk, dv in zip(node.keys, node.values, strict=True):
                if isinstance(dk, ast.Constant) and isinstance(dk.value, str):
                    dval = fold(dv, names)
                    if dval is not None:
                        add(f"{_q(dk.value)}: {_q(dval)}", dv)
        stack.extend(reversed(_children(node)))
    return out


def _call(node: ast.Call, names: dict[str, str], add: Any) -> None:
    func = _dotted(node.func)
    last = func.rsplit(".", 1)[-1]
    for kw in node.keywords:
        if kw.arg is None:
            continue
        val = fold(kw.value, names)
        if val is None:
            continue
        ctx = "wandb.login" if last == "login" and kw.arg == "key" and "wandb" not in func else func
        if last == "update" and func.endswith("environ.update"):
            add(f"{kw.arg}={_q(val)}", kw.value)
        else:
            add(f"{ctx}({kw.arg}={_q(val)})", kw.value)
    if node.args and last in POSITIONAL_SINKS:
        val = fold(node.args[0], names)
        if val is not None:
            add(f"{func}({_q(val)})", node.args[0])
    if len(node.args) >= 2 and (func.endswith("environ.setdefault") or last == "putenv"):
        key, val = fold(node.args[0], names), fold(node.args[1], names)
        if key is not None and val is not None:
            add(f"{key}={_q(val)}", node.args[1])
    if func.endswith("environ.update") and node.args and isinstance(node.args[0], ast.Dict):
        d = node.args[0]
        for k, v in zip(d.keys, d.values, strict=True):
            key = fold(k, names) if k is not None else None
            val = fold(v, names)
            if key is not None and val is not None:
                add(f"{key}={_q(val)}", v)


def _assign(node: ast.Assign | ast.AnnAssign, names: dict[str, str], add: Any) -> None:
    if node.value is None:
        return
    val = fold(node.value, names)
    if val is None:
        return
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    for t in targets:
        if isinstance(t, ast.Subscript):  # os.environ["HF_TOKEN"] = …, config["api_key"] = …
            key = fold(t.slice, names)
            if key is not None:
                add(f"{key}={_q(val)}" if _dotted(t.value).endswith("environ") else f"{_q(key)}: {_q(val)}",
                    node.value)
        elif isinstance(t, ast.Name | ast.Attribute):
            add(f"{_dotted(t)} = {_q(val)}", node.value)


#: One ``ast.parse`` at a time per process. CPython 3.11 keeps the AST converter's recursion depth in
#: interpreter-wide state: two threads converting at once (a Dask worker's threads; the GIL can switch inside
#: a gc callback) fail with "SystemError: AST constructor recursion depth mismatch". ``catch_warnings`` is
#: not thread-safe either.
_PARSE_LOCK = threading.Lock()


def parse_python(source: str | bytes) -> ast.Module | None:
    """``ast.parse`` that returns ``None`` for anything that is not valid Python (never raises)."""
    try:
        with _PARSE_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in scanned code
            return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


def scan_python_source(source: str | bytes, matcher: SecretMatcher) -> list[AstHit] | None:
    """Reassemble and match the string expressions of ``source``; ``None`` when it does not parse.

    Reusable on notebook code cells: lines starting with ``%`` or ``!`` (IPython magics) are commented out
    first when ``source`` is a ``str``, keeping line numbers.
    """
    if isinstance(source, str) and ("%" in source or "!" in source):
        source = "\n".join("#" + ln if ln.lstrip()[:1] in ("%", "!") else ln for ln in source.split("\n"))
    tree = parse_python(source)
    if tree is None:
        return None
    pieces = _pieces(tree, source)
    if not pieces:
        return []
    texts = [p.text.encode("utf-8", "surrogatepass") for p in pieces]
    starts: list[int] = []
    pos = 0
    for t in texts:
        starts.append(pos)
        pos += len(t) + len(_SEP)
    joined = _SEP.encode().join(texts)
    hits: list[AstHit] = []
    seen: set[tuple[str, bytes, int]] = set()
    for m in matcher.find(joined):
        i = bisect_right(starts, m.start) - 1
        if m.end > starts[i] + len(texts[i]):
            continue
        p = pieces[i]
        key = (m.rule.id, m.secret, p.line)
        if key in seen:  # one expression seen as a fold and as a sink argument
            continue
        seen.add(key)
        hits.append(AstHit(SecretMatch(m.rule, m.start - starts[i], m.end - starts[i], m.secret),
                           p.line, p.col, p.end_line))
    return hits


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
    """Hyperscan patterns (with a caseless flag, as their rule) and how their hits admit a file for parsing:
    any hit of a pattern in ``alone``, or, for some ``(context, shape)`` pair, a hit in both sets (a context
    rule's word used as a name in ``patterns``, and a literal piece shaped like that rule's secret in
    ``shapes``). Shapes are character-class runs without a literal to anchor on (slow to scan for), so they
    are a second database, scanned only in a file where some context word matched."""

    patterns: list[tuple[bytes, bool]]
    alone: frozenset[int]
    pairs: list[tuple[frozenset[int], frozenset[int]]]  # (ids in ``patterns``, ids in ``shapes``)
    shapes: list[tuple[bytes, bool]]

    def admits(self, hits: Iterable[int], shape_hits: Callable[[], Iterable[int]]) -> bool:
        got = set(hits)
        if not got.isdisjoint(self.alone):
            return True
        todo = [sh for c, sh in self.pairs if not got.isdisjoint(c)]
        if not todo:
            return False
        shaped = set(shape_hits())
        return any(not shaped.isdisjoint(sh) for sh in todo)


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
    pairs: list[tuple[frozenset[int], frozenset[int]]] = []

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
        for a in sorted(anchors):  # sorted: the database is cached on disk by its pattern list
            lit = _literal(a.encode("latin-1", "replace"))
            if (context or r.left == "word") and a[:1].isalnum():
                lit = rb"\b" + lit
            if context and not a[:1].isalnum():  # a header such as ``"username"``: its presence
                ctx_ids.add(pid(lit, caseless))
            elif context:  # the word used as a name: key of a subscript/dict/setdefault, keyword, call, assignment
                ctx_ids.add(pid(lit + rb"[\w.\-]{0,20}(?:[\x22']\s*[\],:]|\s*[:=(])", caseless))
            else:
                short = max(0, int(sp.parse(r.pattern).getwidth()[0]) - len(a) - 1)
                cls = _token_class(r.pattern)
                body_cls = b"[" + cls + b"]{0,%d}" % short if cls else b""
                alone.add(pid(lit + body_cls + rb"[\x22'{%\\]", caseless))
                # the anchor itself split between two literals: ``"h" + "f_…"``, ``("gh" "p_…")``
                for sp_pat in _split_patterns(a):
                    alone.add(pid(sp_pat, caseless))
        if not ctx_ids:
            continue
        if shape is None:  # the secret's shape is unknown: the context word alone admits the file
            alone |= ctx_ids
        else:
            pairs.append((frozenset(ctx_ids),
                          frozenset(shape_ids.setdefault((p, caseless), len(shape_ids)) for p in shape)))
    for w in SINK_CONTEXT:
        alone.add(pid(w, True))
    pats = [k for k, _v in sorted(ids.items(), key=lambda kv: kv[1])]
    shapes = [k for k, _v in sorted(shape_ids.items(), key=lambda kv: kv[1])]
    return PrefilterPlan(pats, frozenset(alone), pairs, shapes)


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


class PythonAstSecrets:
    name = "python-ast"

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.enabled = bool(ctx.options.python_ast)
        self._pre: Any = None
        if self.enabled:
            active = [r for r in ctx.ruleset.rules if ctx.options.strict_secrets or not r.strict_only]
            self._pre = _prefilter(active)

    def wanted(self, buf: Any) -> bool:
        """Cheap checks before parsing: size, a quote, and a :func:`prefilter_patterns` hit."""
        if len(buf) > MAX_SOURCE or (buf.find(b'"') < 0 and buf.find(b"'") < 0):
            return False
        if self._pre is None:
            return True
        db, shapes, plan = self._pre
        return plan.admits((p for p, _end in db.scan(buf)),
                           lambda: (p for p, _end in shapes.scan(buf)) if shapes is not None else ())

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        if not self.enabled or scan.text_done or not item.path.lower().endswith(PY_EXT):
            return
        if not self.wanted(buf):
            return
        source = bytes(buf)
        hits = scan_python_source(source, self.ctx.matcher)
        if not hits:
            return  # no findings, or not Python: the text pass already covered the file
        prior = {f.fingerprint for f in scan.findings}
        lines: list[bytes] | None = None
        for h in hits:
            fp = fingerprint(h.match.rule.id, h.match.secret)
            if fp in prior:
                continue  # already reported in this file (as a literal by the text pass, or by a parent piece)
            if lines is None:
                lines = source.split(b"\n")
            lb = lines[h.line - 1] if 0 < h.line <= len(lines) else b""
            col = len(lb[:h.col].decode("utf-8", "replace")) + 1
            scan.add_secret(h.match, line=h.line, column=col, decoded="python-ast")
            prior.add(fp)


def _prefilter(rules: list[Rule]) -> tuple[Any, Any, PrefilterPlan] | None:
    """Hyperscan databases of :func:`prefilter_plan`'s patterns and shapes (``None`` without shapes) and the
    plan, or ``None`` (parse every file)."""
    plan = prefilter_plan(rules)
    if plan is None or not plan.patterns:
        return None
    import hyperscan

    from veritensor_fast.kernels.hsdb import Scanner, compile_cached

    def db(pats: list[tuple[bytes, bool]]) -> Any:
        flags = [(hyperscan.HS_FLAG_CASELESS if ci else 0) | hyperscan.HS_FLAG_SINGLEMATCH for _p, ci in pats]
        return Scanner(compile_cached([p for p, _ci in pats], flags))

    return db(plan.patterns), db(plan.shapes) if plan.shapes else None, plan


def _literal(word: bytes) -> bytes:
    return b"".join(b"\\x%02x" % c for c in word)
