"""Where a Python source too dense to parse whole (:mod:`pyast_budget`) can be cut into pieces parsed one by one.

A piece boundary is the start of a line that starts a top-level statement: a line at column 0, after a complete
logical line (outside every string, bracket and backslash continuation), that is not a comment or blank, not a
clause of the compound statement above it (``else``/``elif``/``except``/``finally``) and does not follow a
decorator line. Between two such lines lie whole top-level statements, so every run of them parses on its own
exactly when the whole source parses, with the same nodes at the same columns (each piece starts at column 0) and
lines shifted by the lines before it.

The lexer is one regular expression (C speed, linear, possessive: strings of any length cost no backtracking
stack) over the UTF-8 bytes: strings (any prefix: a prefix changes no string's extent, raw or not), comments,
brackets, line continuations and the line breaks before a line at column 0 (``\\r\\n``, ``\\r``, ``\\n``, as the
tokenizer counts them). A quote that starts no complete string or a closing bracket that closes nothing means the
source is not Python as lexed here: no boundary is given (the caller then reports the pass as skipped, as before).
Python 3.12 (PEP 701) lets an f-string's fields hold strings in its own quotes (``f"{d["k"]}"``), which this lexer
cannot follow; when it gives up, :func:`token_starts` asks the interpreter's own tokenizer (exact for the running
Python, ~10x slower) for the same boundaries. The pieces are packed greedily in source order, each one's :func:`pyast_budget.units_between` times ``UNIT_COST``
within the budget; a single top-level statement over the budget cannot be cut and is reported.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from array import array
from collections.abc import Callable
from typing import TypeVar

from veritensor_fast.detectors.ast_eval import bindings, fold, may_fold, resolve, walrus_lines
from veritensor_fast.detectors.pyast_budget import UNIT_COST, translate, units_between

_LEX = re.compile(
    rb"'''(?:[^'\\]++|\\(?:\r\n|.)|'(?!''))*+'''"
    rb'|"""(?:[^"\\]++|\\(?:\r\n|.)|"(?!""))*+"""'
    rb"|'(?:[^'\\\r\n]++|\\(?:\r\n|.))*+'"
    rb'|"(?:[^"\\\r\n]++|\\(?:\r\n|.))*+"'
    rb"|\#[^\r\n]*+|\\(?:\r\n|\r|\n)|[()\[\]{}]|(?:\r\n|\r|\n)(?=[^ \t\f#\r\n\\])|['\"]",
    re.S,
)
T = TypeVar("T")
#: A clause continuing the compound statement above it (never the start of a piece).
_CLAUSE = re.compile(rb"(?:else|elif|except|finally)\b")


def statement_starts(buf: bytes) -> array[int] | None:
    """Offsets of the lines of ``buf`` (UTF-8) where a piece may start (see the module's docstring), in order;
    ``None`` when the lexer cannot follow ``buf`` (an unterminated string, an unbalanced closing bracket)."""
    out: array[int] = array("q")
    depth = 0
    first = 3 if buf[:3] == b"\xef\xbb\xbf" else 0
    decorated = buf[first:first + 1] == b"@"  # the logical line above begins with a decorator
    for m in _LEX.finditer(buf):
        at = m.start()
        c = buf[at]
        if c in (0x28, 0x5B, 0x7B):
            depth += 1
        elif c in (0x29, 0x5D, 0x7D):
            depth -= 1
            if depth < 0:
                return None
        elif c in (0x0A, 0x0D):
            if depth:
                continue
            e = m.end()  # a line break before a line at column 0 that is not blank nor a comment (the regex)
            if not decorated and _CLAUSE.match(buf, e) is None:
                out.append(e)
            decorated = buf[e] == 0x40
        elif c in (0x22, 0x27) and m.end() - at == 1:
            return None  # a quote that opens no complete string
    return out if depth == 0 else None


#: A first token that continues the compound statement above it (never the start of a piece).
_CLAUSES = frozenset(("else", "elif", "except", "finally"))


def token_starts(buf: bytes) -> array[int] | None:
    """:func:`statement_starts` by the running interpreter's tokenizer: the first token of a logical line at column
    0 starts a piece unless it is a clause (:data:`_CLAUSES`) or the logical line above began with a decorator.
    ``None`` when the tokenizer fails or finds a lone quote or an unbalanced bracket, or when ``buf`` ends a line with a lone ``\\r`` (the tokenizer's rows would
    not be the lines counted here)."""
    if buf.count(b"\r") != buf.count(b"\r\n"):
        return None
    try:
        text = buf.decode("utf-8-sig" if buf[:3] == b"\xef\xbb\xbf" else "utf-8")
    except UnicodeDecodeError:
        return None
    first = 3 if buf[:3] == b"\xef\xbb\xbf" else 0
    lines: array[int] = array("q", [0, first])  # byte offset of each 1-based row
    at = buf.find(b"\n", first)
    while at >= 0:
        lines.append(at + 1)
        at = buf.find(b"\n", at + 1)
    out: array[int] = array("q")
    skip = (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
    new, decorated = True, False  # at the first token of a logical line; that line follows a decorator's
    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.ERRORTOKEN:
                return None  # a lone quote (the pure-Python tokenizer of 3.11 and older does not raise)
            if tok.type == tokenize.OP and tok.string in "([{)]}":
                depth += 1 if tok.string in "([{" else -1
                if depth < 0:
                    return None
            if tok.type == tokenize.NEWLINE:
                new = True
            elif new and tok.type not in skip:
                new = False
                if tok.type == tokenize.ENDMARKER:
                    break
                row, col = tok.start
                if col == 0 and lines[row] > 0 and not decorated and tok.string not in _CLAUSES:
                    out.append(lines[row])
                decorated = tok.string == "@"
    except (tokenize.TokenError, SyntaxError, IndentationError, IndexError):
        return None
    return out if depth == 0 else None


def line_of(buf: bytes, at: int, start: int = 0, line: int = 1) -> int:
    """The 1-based line of offset ``at`` (a line start), counting from ``line`` at offset ``start``."""
    cr = buf.count(b"\r", start, at)
    return line + buf.count(b"\n", start, at) + cr - (buf.count(b"\r\n", start, at) if cr else 0)


def plan(buf: bytes, budget: int) -> list[tuple[int, int, int]] | tuple[int, int]:
    """Pieces of ``buf`` (UTF-8) each estimated within ``budget`` bytes of parse peak, as ``(start, end, first
    line)``; or, when that cannot be, ``(line, estimated bytes)`` of the statement that does not fit (line 0:
    the source cannot be lexed)."""
    starts = statement_starts(buf)
    if starts is None:
        starts = token_starts(buf)
    if starts is None:
        return 0, 0
    t = translate(buf)
    ends = starts  # an array, not a list: a line of ``a`` costs 8 bytes, not 36
    ends.append(len(buf))
    limit = budget // UNIT_COST
    out: list[tuple[int, int, int]] = []
    lo, line = 0, 1
    i = 0  # ``ends[i:]`` are the piece ends after ``lo``
    n = len(ends)
    while lo < len(buf):
        if units_between(t, lo, ends[i]) > limit:  # even the next statement alone is over the budget
            return line, units_between(t, lo, ends[i]) * UNIT_COST
        # the farthest end whose piece fits (the estimate grows with the end): gallop from ``i``, then bisect; each
        # probe counts from ``lo``, so galloping keeps the probes near the piece's own size
        a, step = i, 1  # ``ends[a]`` fits
        while a + step < n and units_between(t, lo, ends[a + step]) <= limit:
            a, step = a + step, step * 2
        x, y = a + 1, min(n, a + step)  # ``ends[y]`` does not fit (or is past the last)
        while x < y:
            mid = (x + y) // 2
            if units_between(t, lo, ends[mid]) <= limit:
                x = mid + 1
            else:
                y = mid
        hi = ends[x - 1]
        out.append((lo, hi, line))
        line = line_of(buf, hi, lo, line)
        lo, i = hi, x
    return out


def split_source(source: str | bytes, budget: int) -> list[tuple[str | bytes, int]] | str:
    """The pieces of ``source`` to parse one by one, each ``(text, lines before it)``: bytes slices of a UTF-8
    source (the parser reads the BOM of the first), else text (a coding cookie's codec decodes the whole source
    first, as the parser would); or why it cannot be cut."""
    if isinstance(source, str):
        u, codec = source.encode("utf-8", "surrogatepass"), ""
    else:
        try:
            codec = tokenize.detect_encoding(io.BytesIO(source).readline)[0]
            u = source if codec in ("utf-8", "utf-8-sig") else source.decode(codec).encode("utf-8")
        except (SyntaxError, LookupError, UnicodeError):
            return "its encoding cannot be read"
    parts = plan(u, budget)
    if isinstance(parts, tuple):
        line, cost = parts
        if not line:
            return "it cannot be cut into top-level statements"
        return f"its top-level statement at line {line} alone is estimated at ~{cost >> 20} MiB"
    if u is source:
        return [(u[a:b], line - 1) for a, b, line in parts]
    return [(u[a:b].decode("utf-8", "surrogatepass"), line - 1) for a, b, line in parts]


def piece_names(pieces: list[tuple[str | bytes, int]], parse: Callable[[str | bytes], ast.Module | None],
                cap: int) -> dict[str, str] | str:
    """:func:`ast_eval.const_names` of the whole source from its pieces parsed one at a time (each tree dropped
    before the next is parsed): a name counts once in the module only if bound once in all the pieces; its
    value is kept folded when it folds without names (the same string under any names), else as the expression
    (at most ``cap`` nodes in all). The names resolve as in one module: in source order, three rounds. Or why not
    (a piece that does not parse, too many expressions kept)."""
    count: dict[str, int] = {}
    cands: dict[str, tuple[int, int, ast.expr | str]] = {}
    kept = 0
    for src, off in pieces:
        b = src if isinstance(src, bytes) else src.encode("utf-8", "surrogatepass")
        if b.find(b"=") < 0 and b.find(b":") < 0 and b.find(b"for") < 0 and b.find(b"with") < 0:
            continue  # binds no name (an assignment needs ``=`` or ``:``); parsed below if it holds a quote
        tree = parse(src)
        if tree is None:
            return "a piece of it did not parse"
        here, values = bindings(tree, walrus_at=walrus_lines(src))
        del tree
        for k, n in here.items():
            total = count[k] = count.get(k, 0) + n
            if total > 1:
                cands.pop(k, None)
        for k, node in values.items():
            if count[k] != 1 or not may_fold(node):
                continue  # folds to nothing under any names
            s = fold(node)
            if s is None:
                sub = list(ast.walk(node))
                if not any(isinstance(x, ast.Name) for x in sub):
                    continue  # folds to nothing under any names
                kept += len(sub)
                if kept > cap:
                    return "too many names are bound to expressions of other names"
            cands[k] = (node.lineno + off, node.col_offset, node if s is None else s)
    return resolve([(k, line, col, v) for k, (line, col, v) in cands.items()])


def walk_parts(parts: list[tuple[str | bytes, int]], names: dict[str, str],
               parse: Callable[[str | bytes], ast.Module | None],
               walk: Callable[[ast.Module, str | bytes, int], list[T]]) -> list[T] | None:
    """``walk(tree, text, lines before it)`` of each part in turn, parsed one at a time, concatenated (in source
    order); ``None`` if a part does not parse. A part without a quote or one of ``names`` holds no line the walk
    would visit (``pyast._relevant_lines``) and is not parsed again."""
    rx = re.compile(b"|".join(re.escape(n.encode("utf-8", "surrogatepass")) for n in names)) if names else None
    out: list[T] = []
    for src, off in parts:
        b = src if isinstance(src, bytes) else src.encode("utf-8", "surrogatepass")
        if b"'" in b or b'"' in b or (rx is not None and rx.search(b)):
            tree = parse(src)
            if tree is None:
                return None
            out += walk(tree, src, off)
    return out
