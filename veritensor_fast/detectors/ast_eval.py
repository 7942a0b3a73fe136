"""Constant folding of Python string expressions, without executing anything.

Evaluates only string-valued expressions built from literals: ``+`` concatenation, implicit concatenation
(already merged by the parser), ``%`` with plain ``%s``/``%d``/``%r`` specifiers, ``str.format`` with plain
fields, ``"sep".join([...])`` of literals, f-strings whose fields are constants, and names bound exactly once
to such an expression. Width and precision specifiers are refused (``"%999999999s"`` would allocate), and every
result is capped at ``MAX_LEN`` characters, so folding is bounded in time and memory.
"""

from __future__ import annotations

import ast
import re
import string
from bisect import bisect_left
from collections.abc import Collection, Mapping
from typing import cast

#: Longest folded value; longer results are abandoned (bounds ``A = B + B`` doubling chains).
MAX_LEN = 1 << 16
_MAX_DEPTH = 60
_PCT_OK = re.compile(r"%[sdr]")
_FORMATTER = string.Formatter()


#: Most characters the folded values of one source may hold together (its constant names; its matched texts,
#: :func:`pyast._pieces`): each value is capped at ``MAX_LEN``, but names double (``B = A + A``) and every use
#: copies (``B1 = A + "1"``), so a 349 KB source made ~20,000 values of 64 Ki characters (over 2 GB on 8eea362).
FOLD_TOTAL = 32 << 20


class FoldBudgetSpent(Exception):
    """The folded values of one source went over ``FOLD_TOTAL`` characters."""


class _Abort(Exception):
    """Folding gave up (not constant, too long or too deep)."""


def _scalar(node: ast.AST, names: Mapping[str, str], depth: int) -> str | int | float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    return _fold(node, names, depth)


def _fold(node: ast.AST, names: Mapping[str, str], depth: int) -> str:
    if depth > _MAX_DEPTH:
        raise _Abort
    d = depth + 1
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, str):
            return v
        if isinstance(v, bytes):
            return v.decode("latin-1")
        raise _Abort
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Add):
            parts = [_fold(x, names, d) for x in flatten_add(node)]
            return _cap("".join(parts))
        if isinstance(node.op, ast.Mod):
            fmt = _fold(node.left, names, d)
            plain = fmt.replace("%%", "")
            if plain.count("%") != len(_PCT_OK.findall(plain)):  # only bare %s %d %r (no width/precision)
                raise _Abort
            right = node.right
            args: tuple[str | int | float, ...]
            if isinstance(right, ast.Tuple):
                args = tuple(_scalar(x, names, d) for x in right.elts)
            else:
                args = (_scalar(right, names, d),)
            try:
                return _cap(fmt % args)
            except (TypeError, ValueError, OverflowError) as exc:
                raise _Abort from exc
        raise _Abort
    if isinstance(node, ast.JoinedStr):
        out: list[str] = []
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                out.append(part.value)
            elif isinstance(part, ast.FormattedValue) and part.format_spec is None and part.conversion in (-1, 115):
                out.append(str(_scalar(part.value, names, d)))
            else:
                raise _Abort
        return _cap("".join(out))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1 and not node.keywords:
        arg = node.args[0]
        if node.func.id == "chr" and isinstance(arg, ast.Constant) and type(arg.value) is int:
            if not 0 <= arg.value <= 0x10FFFF:
                raise _Abort
            return chr(arg.value)
        if node.func.id == "str" and not (isinstance(arg, ast.Constant) and isinstance(arg.value, bytes)):
            return _cap(str(_scalar(arg, names, d)))  # ``str(b"x")`` is ``"b'x'"``: not folded
        raise _Abort
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not any(
            isinstance(a, ast.Starred) for a in node.args) and all(k.arg for k in node.keywords):
        attr = node.func.attr
        if attr == "format":
            fmt = _fold(node.func.value, names, d)
            pos = [_scalar(a, names, d) for a in node.args]
            kws = {str(k.arg): _scalar(k.value, names, d) for k in node.keywords}
            return _safe_format(fmt, pos, kws)
        if attr == "decode" and len(node.args) + len(node.keywords) <= 1:
            return _decode(node, names, d)
        if attr == "join" and len(node.args) == 1 and not node.keywords and isinstance(
                node.args[0], ast.List | ast.Tuple):
            sep = _fold(node.func.value, names, d)
            return _cap(sep.join(_fold(x, names, d) for x in node.args[0].elts))
        raise _Abort
    if isinstance(node, ast.Name):
        v = names.get(node.id)
        if v is None:
            raise _Abort
        return v
    raise _Abort


#: Codecs ``bytes.decode`` is folded with (what a constant's bytes decode to under each is known).
_CODECS = frozenset({"utf-8", "utf8", "ascii", "latin-1", "latin1", "iso-8859-1"})


def _decode(node: ast.Call, names: Mapping[str, str], depth: int) -> str:
    """``<bytes>.decode()``, ``.decode("ascii")``, ``.decode(encoding="utf-8")``: bytes fold to their latin-1
    text (see :func:`_fold`), decoded again under the named codec; anything else is not folded."""
    assert isinstance(node.func, ast.Attribute)
    args = list(node.args) + [k.value for k in node.keywords if k.arg == "encoding"]
    if len(args) != len(node.args) + len(node.keywords):
        raise _Abort
    codec = "utf-8"
    if args:
        if not (isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)):
            raise _Abort
        codec = args[0].value.lower().replace("_", "-")
    if codec not in _CODECS:
        raise _Abort
    try:
        return _fold(node.func.value, names, depth).encode("latin-1").decode(codec)
    except UnicodeError as exc:  # not bytes (``"é".decode()`` is not Python), or not valid in that codec
        raise _Abort from exc


def _safe_format(fmt: str, pos: list[str | int | float], kws: dict[str, str | int | float]) -> str:
    try:
        fields = list(_FORMATTER.parse(fmt))
    except ValueError as exc:
        raise _Abort from exc
    out = []
    auto = 0
    for lit, field, spec, conv in fields:
        out.append(lit)
        if field is None:
            continue
        if spec or conv not in (None, "s"):
            raise _Abort
        if field == "":
            if auto >= len(pos):
                raise _Abort
            out.append(str(pos[auto]))
            auto += 1
        elif field.isdigit():
            i = int(field)
            if i >= len(pos):
                raise _Abort
            out.append(str(pos[i]))
        elif field.isidentifier() and field in kws:
            out.append(str(kws[field]))
        else:
            raise _Abort
    return _cap("".join(out))


def _cap(s: str) -> str:
    if len(s) > MAX_LEN:
        raise _Abort
    return s


def may_fold(node: ast.AST, depth: int = 0) -> bool:
    """False only when :func:`fold` gives ``None`` for ``node`` under any names (its shape is never folded): the
    shapes :func:`_fold` accepts, checked without values (a name may be bound to anything)."""
    if depth > _MAX_DEPTH:
        return False
    d = depth + 1
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str | bytes)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Add):
            return all(may_fold(x, d) for x in flatten_add(node))
        if isinstance(node.op, ast.Mod):
            right = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
            return may_fold(node.left, d) and all(_may_scalar(x, d) for x in right)
        return False
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(p, ast.Constant) or (isinstance(p, ast.FormattedValue) and _may_scalar(p.value, d))
                   for p in node.values)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in ("chr", "str") and len(node.args) == 1 and _may_scalar(node.args[0], d)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        attr = node.func.attr
        if attr == "join":
            return len(node.args) == 1 and isinstance(node.args[0], ast.List | ast.Tuple) and may_fold(
                node.func.value, d) and all(may_fold(x, d) for x in node.args[0].elts)
        return attr in ("format", "decode") and may_fold(node.func.value, d) and all(
            _may_scalar(a, d) for a in node.args) and all(_may_scalar(k.value, d) for k in node.keywords)
    return False


def _may_scalar(node: ast.AST, depth: int) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, int | float)) or may_fold(node, depth)


def flatten_add(node: ast.AST) -> list[ast.expr]:
    """Operands of a ``+`` chain, left to right, without recursion (chains can be thousands long)."""
    out: list[ast.expr] = []
    stack: list[ast.AST] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
            stack.append(n.right)
            stack.append(n.left)
        else:
            assert isinstance(n, ast.expr)
            out.append(n)
    return out


def fold(node: ast.AST, names: Mapping[str, str] | None = None) -> str | None:
    """The constant string value of ``node``, or ``None`` when it is not a foldable constant string."""
    try:
        return _fold(node, names or {}, 0)
    except (_Abort, RecursionError):
        return None


#: Fields of a statement that hold nested statements (``handlers``/``cases`` hold objects with a ``body``).
_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


#: Node types with a field of ``_BODIES`` (every other statement is simple).
_COMPOUND = frozenset(t for t in (getattr(ast, n, None) for n in (
    "Module", "Interactive", "FunctionDef", "AsyncFunctionDef", "ClassDef", "If", "For", "AsyncFor", "While", "With",
    "AsyncWith", "Try", "TryStar", "Match")) if t is not None)
_ASSIGNS = frozenset({ast.Assign, ast.AnnAssign, ast.AugAssign})
_TARGETS = frozenset({ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.NamedExpr})


def _statements(tree: ast.AST) -> list[ast.AST]:
    """Every statement of ``tree`` (any nesting), without visiting expressions: binding sites are statements."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        out.append(node)
        if type(node) not in _COMPOUND:
            continue  # a simple statement: no nested statement (most of a module)
        for f in _BODIES:
            sub = getattr(node, f, None)
            if isinstance(sub, list):
                for s in reversed(sub):
                    if isinstance(s, ast.stmt):
                        stack.append(s)
                    elif isinstance(s, ast.ExceptHandler | ast.match_case):
                        stack.extend(reversed(s.body))
    return out


def _walrus_sites(stmts: list[ast.AST], lines: Collection[int]) -> list[ast.AST]:
    """``NamedExpr`` nodes in the statements whose lines (decorators included) hold one of ``lines``.

    Only each statement's own expressions are walked (not its nested statements, which are in ``stmts``
    themselves), so the cost follows the statements on a ``:=`` line, not the module."""
    want = sorted(set(lines))
    if not want:
        return []
    out: list[ast.AST] = []
    for st in stmts:
        lo = getattr(st, "lineno", None)
        if lo is None:
            continue
        hi = getattr(st, "end_lineno", None) or lo
        for d in getattr(st, "decorator_list", ()):
            lo = min(lo, d.lineno)
        i = bisect_left(want, lo)
        if i == len(want) or want[i] > hi:
            continue
        roots: list[ast.AST] = []
        for f in st._fields:
            if f in _BODIES:
                for h in getattr(st, f, None) or ():  # except handlers' types, match cases' patterns/guards
                    if isinstance(h, ast.ExceptHandler | ast.match_case):
                        roots.extend(getattr(h, g) for g in ("type", "pattern", "guard") if getattr(h, g, None))
                continue
            v = getattr(st, f, None)
            if isinstance(v, ast.AST):
                roots.append(v)
            elif isinstance(v, list):
                roots.extend(x for x in v if isinstance(x, ast.AST))
        for r in roots:
            out.extend(n for n in ast.walk(r) if isinstance(n, ast.NamedExpr))
    return out


def walrus_lines(source: str | bytes) -> list[int]:
    """1-based numbers of the lines of ``source`` that hold ``:=`` (line breaks counted as the tokenizer
    counts them: ``\\r\\n``, ``\\r``, ``\\n``)."""
    if isinstance(source, str):
        source = source.encode("utf-8", "surrogatepass")
    if b":=" not in source:
        return []
    if b"\r" in source:
        source = source.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    out: list[int] = []
    line, pos = 1, 0
    i = source.find(b":=")
    while i >= 0:
        line += source.count(b"\n", pos, i)
        pos = i
        if not out or out[-1] != line:
            out.append(line)
        i = source.find(b":=", i + 2)
    return out


def const_names(tree: ast.AST, walrus: bool = True, walrus_at: Collection[int] | None = None) -> dict[str, str]:
    """Names bound exactly once in the module (any scope), to a foldable string: ``PREFIX = "hf_"``.

    Binding sites are found by walking statements only (assignments, ``for``, ``with``); ``walrus=False``
    (the source has no ``:=``) skips the search for ``NamedExpr``; with ``walrus_at`` (the lines holding
    ``:=``, see :func:`walrus_lines`) only the statements on those lines are searched.
    """
    count, value = bindings(tree, walrus, walrus_at)
    return resolve([(k, v.lineno, v.col_offset, v) for k, v in value.items() if count.get(k) == 1])


def bindings(tree: ast.AST, walrus: bool = True,
             walrus_at: Collection[int] | None = None) -> tuple[dict[str, int], dict[str, ast.expr]]:
    """How many times each name is bound in ``tree`` (a ``for``/``with``/``:=`` target counts twice: never
    constant) and the value of its last plain assignment (see :func:`const_names`)."""
    count: dict[str, int] = {}
    value: dict[str, ast.expr] = {}
    nodes = _statements(tree)
    if walrus and walrus_at is not None:
        nodes += _walrus_sites(nodes, walrus_at)
    elif walrus:
        nodes += [n for n in ast.walk(tree) if isinstance(n, ast.NamedExpr)]
    for node in nodes:
        tp = type(node)
        if tp in _ASSIGNS:
            node = cast("ast.Assign | ast.AnnAssign | ast.AugAssign", node)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):  # the common case, without a walk
                    count[t.id] = count.get(t.id, 0) + 1
                    if tp is not ast.AugAssign and node.value is not None:
                        value[t.id] = node.value
                    continue
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        count[n.id] = count.get(n.id, 0) + 1
        elif tp in _TARGETS:
            node = cast("ast.For | ast.AsyncFor | ast.With | ast.AsyncWith | ast.NamedExpr", node)
            for n in ast.walk(node.target if isinstance(node, ast.For | ast.AsyncFor | ast.NamedExpr)
                              else ast.Tuple([i.optional_vars for i in node.items if i.optional_vars])):
                if isinstance(n, ast.Name):
                    count[n.id] = count.get(n.id, 0) + 2
    return count, value


def resolve(todo: list[tuple[str, int, int, ast.expr | str]]) -> dict[str, str]:
    """The constant names of ``(name, line, column, value)`` (names bound exactly once), a value being the
    expression or its folded string (when it folds without any name, so with every one): folded in source order,
    repeated while it resolves more (a name defined from another one: ``PREFIX + "rest"``), at most three times.
    Raises :class:`FoldBudgetSpent` when their values pass ``FOLD_TOTAL`` characters."""
    names: dict[str, str] = {}
    items = sorted(todo, key=lambda kv: (kv[1], kv[2]))
    total = 0
    for _ in range(3):
        left = []
        for item in items:
            v = item[3]
            s = v if isinstance(v, str) else fold(v, names)
            if s is not None:
                names[item[0]] = s
                total += len(s)
                if total > FOLD_TOTAL:
                    raise FoldBudgetSpent
            else:
                left.append(item)
        if len(left) == len(items):
            break
        items = left
    return names
