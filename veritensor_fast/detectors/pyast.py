"""Python source: secrets assembled by the code rather than written in one literal.

Runs after the plain text pass on ``.py``/``.pyw``/``.pyi`` files (and is callable on notebook code cells via
:func:`scan_python_source`). The file is parsed with :mod:`ast` (never imported or executed) and these are
reassembled and matched with the same rules:

- string expressions folded to a constant (``"hf_" + "…"``, implicit concatenation across lines, ``%``,
  ``.format``, f-strings and ``"".join`` of constants, ``chr``, ``str``, ``bytes.decode``, names bound once to
  such constants); every string literal is also matched after escape decoding;
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

Cost control: files over ``MAX_SOURCE`` bytes or without a quote are not parsed, nor files whose parse is
estimated over the memory budget (:mod:`pyast_budget`; recorded as a ``limit`` error), and neither are files
where no rule anchor is cut short (or split inside itself, :mod:`pyast_split`, or spread over pieces, escapes
or ``chr``, :mod:`pyast_stream`) where a fold can continue it and no context word's value holds a literal
shaped like that rule's secret or a name bound to one (see
:func:`pyast_prefilter.prefilter_plan` and :mod:`pyast_admit`; measured on a real site-packages: 3 of 12,182
``.py`` files are parsed). Rules active only in strict mode widen the prefilter only when strict mode is on. In a
parsed file, subtrees whose lines hold no quote and no name bound to a constant are not walked. A file that does not parse (Python 2, templates, syntax errors) falls back to the text pass only: no
error is recorded, because the text pass covered it completely (the scan is not incomplete).
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from veritensor_fast.detectors.ast_eval import (
    FOLD_TOTAL,
    FoldBudgetSpent,
    const_names,
    flatten_add,
    fold,
    walrus_lines,
)
from veritensor_fast.detectors.pyast_admit import admits
from veritensor_fast.detectors.pyast_budget import (  # noqa: F401 - parse_python re-exported
    UNIT_COST,
    budget,
    gc_paused,
    over_budget_reason,
    parse_python,
)
from veritensor_fast.detectors.pyast_prefilter import (  # noqa: F401 - re-exported
    PrefilterPlan,
    after_backslash,
    build_prefilter,
    prefilter_patterns,
    prefilter_plan,
    rule_anchors,
)
from veritensor_fast.detectors.pyast_shared import Sharing, joinable, prefilter_hits
from veritensor_fast.detectors.pyast_stream import stream_admits
from veritensor_fast.findings import OUT_OF_MEMORY, Item, fingerprint
from veritensor_fast.kernels.hsdb import CHUNK
from veritensor_fast.matcher import SecretMatch, SecretMatcher

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan, WorkerContext

#: Larger sources are not parsed (parsing runs at ~8 MB/s; the text pass still covers them).
MAX_SOURCE = 5 << 20
#: Shortest literal matched on its own (shorter ones can only matter inside a fold or a context).
MIN_LITERAL = 16
PY_EXT = (".py", ".pyw", ".pyi")
#: Names whose first positional argument is a credential.
POSITIONAL_SINKS = frozenset({"login", "save_token", "Client", "set_api_key", "set_access_token"})
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


def _pieces(tree: ast.AST, source: str | bytes | None = None, names: dict[str, str] | None = None,
            line_offset: int = 0, spent: list[int] | None = None) -> list[_Piece]:
    """Every text worth matching in ``tree``, in source order. With ``source``, subtrees whose lines hold no
    quote and no constant name are skipped (see :func:`_relevant_lines`). ``names``: the constant names (default:
    those of ``tree``); ``line_offset``: lines before ``source`` (a piece of a file, :mod:`pyast_chunks`);
    ``spent``: characters added so far (raises ``FoldBudgetSpent`` past ``FOLD_TOTAL``)."""
    if names is None:
        names = const_names(tree) if source is None else const_names(tree, walrus_at=walrus_lines(source))
    rel = _relevant_lines(source, names) if source is not None else None
    last = len(rel) - 1 if rel is not None else 0
    out: list[_Piece] = []
    total = [0] if spent is None else spent

    def add(text: str | None, node: ast.AST, end: ast.AST | None = None) -> None:
        if text:
            total[0] += len(text)
            if total[0] > FOLD_TOTAL:
                raise FoldBudgetSpent
            e = end if end is not None else node
            line = int(getattr(node, "lineno", 1))
            out.append(_Piece(text, line + line_offset, int(getattr(node, "col_offset", 0)),
                              int(getattr(e, "end_lineno", None) or line) + line_offset))

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


def scan_python_source(source: str | bytes, matcher: SecretMatcher) -> list[AstHit] | None:
    """Reassemble and match the string expressions of ``source``; ``None`` when it does not parse.

    Reusable on notebook code cells: lines starting with ``%`` or ``!`` (IPython magics) are commented out
    first when ``source`` is a ``str``, keeping line numbers.
    """
    source = _magics_out(source)
    with gc_paused():
        tree = parse_python(source)
        if tree is None:
            return None
        pieces = _pieces(tree, source)
        del tree  # freed (no cycle) before the collector counts again
    return _match(pieces, matcher)


def _magics_out(source: str | bytes) -> str | bytes:
    if isinstance(source, str) and ("%" in source or "!" in source):
        source = "\n".join("#" + ln if ln.lstrip()[:1] in ("%", "!") else ln for ln in source.split("\n"))
    return source


def scan_python_bounded(source: str | bytes, matcher: SecretMatcher,
                        limit: int | None = None) -> tuple[list[AstHit] | None, str | None]:
    """:func:`scan_python_source` within the AST memory budget (``limit`` bytes, default :func:`pyast_budget.budget`):
    a source estimated over it is parsed in pieces of whole top-level statements (:mod:`pyast_chunks`), with the
    same hits. ``(hits, None)``, or ``(None, why)`` when that cannot be done (a single statement over the budget):
    the pass was skipped."""
    source = _magics_out(source)
    why = over_budget_reason(source if isinstance(source, bytes) else source.encode("utf-8", "surrogatepass"), limit)
    try:
        return (scan_python_source(source, matcher), None) if why is None else _in_pieces(source, matcher, limit, why)
    except MemoryError:  # no room to parse or walk it (``parse_python``: the parser's own limit is None)
        return None, f"{OUT_OF_MEMORY}: the Python-AST pass skipped it, the text and encoded passes scanned it"
    except FoldBudgetSpent:
        return None, (f"Python source folds to over {FOLD_TOTAL >> 20} Mi characters of constant strings: the "
                      "Python-AST pass skipped it, the text and encoded passes scanned it")


def _in_pieces(source: str | bytes, matcher: SecretMatcher, limit: int | None,
               why: str) -> tuple[list[AstHit] | None, str | None]:
    from veritensor_fast.detectors.pyast_chunks import piece_names, split_source, walk_parts

    lim = budget() if limit is None else limit
    parts = split_source(source, lim)
    with gc_paused():
        names = piece_names(parts, parse_python, max(1 << 16, lim // UNIT_COST)) if not isinstance(parts, str) else parts
        if isinstance(parts, str) or isinstance(names, str):
            return None, why.replace("): the", f") and not in pieces either ({names}): the", 1)
        spent = [0]  # the folded texts of all the parts together (``FOLD_TOTAL``)
        pieces = walk_parts(parts, names, parse_python, lambda t, src, off: _pieces(t, src, names, off, spent))
    if pieces is None:
        return None, why.replace("): the", ") and not in pieces either (a piece did not parse): the", 1)
    return _match(pieces, matcher), None


def _match(pieces: list[_Piece], matcher: SecretMatcher) -> list[AstHit]:
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


def _parsable(buf: Any) -> bool:
    return len(buf) <= MAX_SOURCE and (buf.find(b'"') >= 0 or buf.find(b"'") >= 0)


class PythonAstSecrets:
    name = "python-ast"

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.enabled = bool(ctx.options.python_ast)
        self._built = not self.enabled
        self._prefilter: Any = None
        self._triggers: frozenset[int] | set[int] = frozenset()
        self._joinable_ok: bool | None = None
        self._sharing: Sharing | None = None

    @property
    def _pre(self) -> Any:
        """:func:`build_prefilter` of the active rules, built on the first Python source (~12 ms that a scan
        of no ``.py`` file never spends; a forked pool's workers build it in parallel, not the parent)."""
        if not self._built:
            ctx = self.ctx
            active = [r for r in ctx.ruleset.rules if ctx.options.strict_secrets or not r.strict_only]
            try:
                self._prefilter = build_prefilter(active)
            except MemoryError:  # a worker near its memory cap: parse every file (slower, nothing missed)
                self._prefilter = None  # instead of a failed build (seconds) again on every Python file
            #: Hits that start a literal stream check (:mod:`pyast_stream`): its triggers and the split tails.
            plan = self._prefilter[2] if self._prefilter is not None else None
            self._triggers = plan.streams | {p for p, _g, _k in plan.tails} if plan is not None else frozenset()
            self._sharing = Sharing(ctx.matcher, plan) if plan is not None else None
            self._built = True
        return self._prefilter

    def wanted(self, buf: Any, scan: ItemScan | None = None) -> bool:
        """Cheap checks before parsing: size, a quote, and a :func:`prefilter_patterns` hit (``scan``: the text
        pass's shared scan may hold the hits, :mod:`pyast_shared`)."""
        if not _parsable(buf):
            return False
        if self._pre is None:
            return True
        db, shapes, plan = self._pre
        hits = prefilter_hits(db, buf, scan)
        if not hits:
            return False  # most files: no trigger (neither stage admits a file without a hit)
        if admits(plan, buf, hits, shapes):
            return True
        triggers = self._triggers
        return stream_admits(buf, [e for p, e in hits if p in triggers], self.ctx.matcher)

    def share(self, item: Item, buf: Any) -> Any:
        """The database the text pass scans ``buf`` with when this detector would prefilter it (:mod:`pyast_shared`)."""
        ok = self.enabled and item.path.lower().endswith(PY_EXT) and _parsable(buf) and self._pre is not None
        return self._sharing.get(len(buf)) if ok and self._sharing is not None else None

    def gate_share(self, items: list[Item], datas: list[bytes]) -> tuple[Any, list[bool]] | None:
        """The batch gate's joined scan: :meth:`share`'s database and the ``items`` :meth:`quiet` would prefilter."""
        mask = [self.enabled and it.path[-4:].lower().endswith(PY_EXT) and _parsable(d)
                for it, d in zip(items, datas, strict=True)]
        if True not in mask or self._pre is None or self._sharing is None or not self._joinable():
            return None
        shared = self._sharing.get(sum(len(d) for d, m in zip(datas, mask, strict=True) if m))
        return None if shared is None else (shared, mask)

    def none_wanted(self, bufs: list[bytes]) -> bool:
        """True only when :meth:`wanted` is False for every buffer of ``bufs`` (False: ask each one), proved by one
        prefilter scan of their concatenation joined by NUL bytes: every hit in a buffer alone is one there, since
        the patterns hold no anchor (:meth:`_joinable`). Hits across a NUL only make the answer False."""
        if not bufs:
            return True
        pre = self._pre
        if pre is None or not self._joinable():
            return False
        joined = b"\x00".join(bufs)  # a buffer wanted() turns down for its size or lack of quotes joins too:
        return len(joined) <= CHUNK and not pre[0].scan(joined)  # a hit only makes it False; CHUNK: one Hyperscan call

    def _joinable(self) -> bool:
        """Whether no prefilter pattern may hold an anchor (``pyast_shared.joinable``), asked once."""
        ok = self._joinable_ok
        if ok is None:
            ok = self._joinable_ok = joinable(self._pre[2] if self._pre is not None else None)
        return ok

    #: the batch gate asks :meth:`quiet` after its own scan (it scans the bytes with the prefilter database)
    quiet_cost = 1

    def quiet_test(self) -> Any:
        """The batch gate's question (``batch_gate``): :meth:`quiet`."""
        return self.quiet

    def quiet(self, item: Item, data: bytes, head: bytes) -> bool:
        """True when :meth:`scan` parses nothing: off, not a Python file, or not admitted by the prefilter."""
        return not self.enabled or not item.path[-4:].lower().endswith(PY_EXT) or not self.wanted(data)

    def quiet_batch(self, items: list[Item], datas: list[bytes], heads: list[bytes]) -> list[bool]:
        """:meth:`quiet` for each item of a batch, in one call (``batch_gate``)."""
        if not self.enabled:
            return [True] * len(items)
        wanted, ext = self.wanted, PY_EXT
        return [not it.path[-4:].lower().endswith(ext) or not wanted(d) for it, d in zip(items, datas, strict=True)]

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        if not self.enabled or scan.text_done or not item.path.lower().endswith(PY_EXT):
            return
        if not self.wanted(buf, scan):
            return
        source = bytes(buf)
        hits, why = scan_python_bounded(source, self.ctx.matcher)  # a dense source: in pieces (``pyast_budget``)
        if why is not None:
            scan.error(why, "limit")
            return
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
