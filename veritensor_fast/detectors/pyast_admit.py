"""The AST prefilter's second stage: whether a file's Hyperscan hits (:mod:`pyast_prefilter`) make it worth
parsing, judged from the few bytes around each hit (no parse, no tokenizer).

- **An anchor cut short** (``"hf_abc"``): parsing can complete the token only where a fold can continue the
  literal (``+``, implicit concatenation, ``%``, ``.format``, ``join``, an f-string, a name bound to it). A
  literal that is a dict key or ends a header (``":``), is compared (``==``), is followed by a word (``in``,
  ``if``; or prose: the hit is in a docstring or comment), is exactly a keyword argument's value
  (``f(kw="hf_x")``), a positional argument of a call other than ``.format`` (``s.startswith("hf_")``), a
  subscript (``d["hf_token"]``) or an element of a bracket that folds nothing (a dict or set display, a
  call, a list not given to ``join``), or ends at an escape no token continues (``\\n``), does not admit
  the file; nor does a ``%``/``{`` in a literal that is never formatted, or a name bound to the literal that
  is never used where a fold appends to it.
- **A context word used as a name** (``mistral_api_key=``, ``"together":``, ``Mistral(``): in every text the
  AST pass assembles (``func(kw="value")``, ``NAME = "value"``, ``"key": "value"``, ``K="value"``) the value
  follows the name, so the file is admitted only when the word's own value (:func:`reach`) holds a literal
  piece shaped like that rule's secret, or a name bound in a statement that holds one (:func:`carries`).

Known limits: a value more than ``CONTEXT_REACH`` bytes after its context word is not seen (the file is not
parsed for it); the bracket enclosing a hit more than 16 KiB after a statement's start at column 0, a
triple-quoted string before that start, or more than 64 bindings to follow count as "may fold" (parsed).
"""

from __future__ import annotations

import keyword
import mmap
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from veritensor_fast.detectors.pyast_prefilter import PrefilterPlan

#: How far after a context word its value is looked for (a multi-line call's keywords, a dict entry's value).
CONTEXT_REACH = 320
_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_PREFIX = frozenset(b"rRbBuUfF")
_WORD_DOT = _WORD | {0x2E}
_WORD_BYTES = frozenset(bytes([c]) for c in _WORD)
_KEYWORDS = frozenset(k.encode() for k in keyword.kwlist)
#: A string literal starting right after: an implicit concatenation, even with a prefix (``"hf_" f"{x}"``).
_STRING_NEXT = re.compile(rb"[rRbBuUfF]{0,2}[\x22']")
#: ``NAME =`` / ``NAME: T =`` at a statement start, or ``NAME :=``: a name the file binds.
_BOUND = re.compile(rb"^[ \t]*([A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=(?!=)(?=[ \t]*(?:[rRbBuUfF]{0,2}[\x22'(\\]|"
                    rb"[A-Za-z_][\w.]*[ \t]*(?:[+%#;\r\n]|$)|[A-Za-z_][\w.]*\.(?:join|format)[ \t]*\())"
                    rb"|\(([A-Za-z_]\w*)[ \t]*:=", re.M)
_IDENT = re.compile(rb"[A-Za-z_]\w*")
#: A name read as a whole value: not an attribute (``.x``), a call (``f(``), a keyword argument (``kw=``), nor
#: the object of an attribute or subscript (``self.x``, ``d[k]``: folding reads neither), except ``.join``/``.format``.
_NAME_USE = re.compile(rb"(?<![\w.])([A-Za-z_]\w*)(?![\w(])(?![ \t]*(?:\(|=(?!=)|\[|\.(?!(?:join|format)\b)))")
#: After a name: its binding, ``NAME =``, ``NAME: T =``, ``NAME :=``, to something that may fold (a literal, a
#: bracket, a name, a ``+``/``%`` chain, ``.join``/``.format``).
_BINDING = re.compile(rb"[ \t]*(?::[^=\n]*)?:?=(?!=)(?=[ \t]*(?:[rRbBuUfF]{0,2}[\x22'(\\]|[A-Za-z_]\w*[ \t]*"
                      rb"(?:[+%#;\r\n]|$)|[A-Za-z_][\w.]*\.(?:join|format)[ \t]*\())")
#: Strings (triple-quoted, then single-line) and comments, skipped whole by :data:`_TOKENS`: each string's body is
#: written as an unrolled loop (``"[^"\\\n]*(?:\\.[^"\\\n]*)*"``), which matches exactly what the alternation
#: ``"(?:[^"\\\n]|\\.)*"`` matched at each offset (its alternatives start with different bytes: the loop is
#: deterministic) but runs the plain bytes as one repeat, not one branch per byte (``tests/test_perf21_admit.py``).
_SKIPPED = (rb"\x22{3}[^\x22\\]*(?:(?:\\.|\x22(?!\x22\x22))[^\x22\\]*)*\x22{3}|"
            rb"\x27{3}[^\x27\\]*(?:(?:\\.|\x27(?!\x27\x27))[^\x27\\]*)*\x27{3}|"
            rb"\x22[^\x22\\\n]*(?:\\.[^\x22\\\n]*)*\x22|'[^'\\\n]*(?:\\.[^'\\\n]*)*'|#[^\n]*")
#: What :func:`reach` steps through: single-line strings and comments (skipped whole), line continuations,
#: brackets, commas and line breaks. The lookahead names every first byte of a token: the search skips to one.
_TOKENS = re.compile(rb"(?=[\x22'#\\()\[\]{},\n])(?:" + _SKIPPED + rb"|\\\r?\n|[()\[\]{},\n])")
#: Before a literal: ``kw=`` (a keyword argument or parameter default, or a tuple assignment).
_KW_BEFORE = re.compile(rb"[A-Za-z_]\w*[ \t]*=\s*\Z")
#: Before a literal: a binding, ``NAME =``, ``NAME: T =``, ``a.b =``, ``NAME :=`` (also in brackets).
_BINDS_BEFORE = re.compile(rb"(?:(?:^|(?<=\n))[ \t]*([A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=|[\w)\]][ \t]*(?::[^=\n]*)?="
                           rb"|:=)[\s(]*\Z")
#: An f-string field right after the anchor: ``{NAME}`` or ``{NAME!s}``.
_FIELD = re.compile(rb"[ \t]*([A-Za-z_]\w*)[ \t]*(?:![sr])?[ \t]*\}")
#: Before a literal: ``func(`` or ``func(name, a.b,`` (a positional argument after plain names).
_CALL_BEFORE = re.compile(rb"([A-Za-z_]\w*)[ \t]*\(\s*(?:[A-Za-z_][\w.]*\s*,\s*)*\Z")
#: Escapes after which no token continues (they decode to a quote, a backslash or a control character).
_DEAD_ESCAPES = frozenset((b"n", b"t", b"r", b"\x22", b"'", b"\\", b"a", b"b", b"f", b"v"))
#: Escapes that decode to a character: hexadecimal, octal, ``\\u``, ``\\U``, ``\\N{…}``.
_ESCAPE = re.compile(rb"x[0-9A-Fa-f]{2}|[0-7]{1,3}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|N\{[A-Z0-9 \-]+\}")
_TOKEN_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.")
#: Before a literal: ``x[``, ``x()[``, ``x[0][`` (a subscript, not a list display).
_SUBSCRIPT_BEFORE = re.compile(rb"[\w)\]]\[\Z")
#: An f-string opening (on the literal's line or a triple-quoted one above it).
_FSTRING = re.compile(rb"(?<!\w)(?:[rR]?[fF]|[fF][rR])(?:[\x22'][^\n]*\Z|\x22{3}|\x27{3})")
#: A line starting at column 0 with a name or a decorator (after a line break: searched by that byte; the start of
#: the searched range counts too, by :data:`_TOP_FIRST`).
_TOP_LINE_NL = re.compile(rb"\n(?=[A-Za-z_@])")
_TOP_FIRST = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_@")
#: :data:`_TOKENS` less what moves no bracket (line continuations, commas, line breaks): the same brackets.
_BRACKET_TOKENS = re.compile(rb"(?=[\x22'#()\[\]{}])(?:" + _SKIPPED + rb"|[()\[\]{}])")
#: An opening bracket whose elements a fold may put side by side.
_FOLDING_OPENER = re.compile(rb"(?:\.(?:format|join)|setdefault|putenv)[ \t]*\([ \t\r\n]*[\[(]?\Z")
#: An opening bracket that is a call's: ``name(`` (a keyword such as ``in (``/``return (`` is not a call).
_CALLED = re.compile(rb"(?<![\w.])(?!(?:" + b"|".join(sorted(k.encode() for k in keyword.kwlist)) +
                     rb")\b)[A-Za-z_][\w.]*[ \t]*\(\Z")


def _next_token(buf: Any, pos: int) -> tuple[bytes, bool]:
    """The 64 bytes of code from ``pos`` on, after blanks, comments and line breaks, and whether a line break
    (or ``;``) was crossed. ``b""`` when the next code is out of reach."""
    end = min(len(buf), pos + 512)
    crossed = False
    while pos < end:
        c = buf[pos]
        if c in (0x20, 0x09, 0x0C):
            pos += 1
        elif c in (0x0A, 0x0D, 0x3B):
            crossed = True
            pos += 1
        elif c == 0x23:  # a comment
            nl = bytes(buf[pos:end]).find(b"\n")
            if nl < 0:
                return b"", crossed
            pos += nl
        elif c == 0x5C and buf[pos + 1:pos + 2] in (b"\n", b"\r"):  # a line continuation
            pos += 2
        else:
            return bytes(buf[pos:pos + 64]), crossed
    return b"", crossed


def cut_short_dead(buf: Any, start: int, end: int, brackets: Brackets | None = None) -> bool:
    """Whether the anchor hit ``buf[start:end]`` (anchor, a few token characters, then the character that
    stopped them) can never be continued into a token by folding. ``True`` only for a closing quote followed
    or preceded by syntax (or prose) that no fold continues, or an escape that decodes to a character no token
    holds (``\\n``); ``{``, ``%`` and other escapes are never dead."""
    q = buf[end - 1]
    if q == 0x5C:
        return _escape_dead(bytes(buf[end:end + 96]))
    # The literal's start: its opening quote, on the same line, with nothing escaped in between.
    i = start - 1
    while i >= 0 and buf[i] not in (0x22, 0x27, 0x0A, 0x0D, 0x5C) and start - i < 256:
        i -= 1
    if i < 0 or buf[i] not in (0x22, 0x27) or (i > 0 and buf[i - 1] == buf[i]):
        return False
    j = i
    while j > 0 and i - j < 2 and buf[j - 1] in _PREFIX:
        j -= 1
    if j > 0 and buf[j - 1] in _WORD:
        return False
    prefix = bytes(buf[j:i]).lower()
    if q in (0x25, 0x7B):  # ``%`` or ``{``: a format only if the literal is formatted
        if q == 0x7B and b"f" in prefix:  # an f-string: its field must be a name the file binds (or not a name)
            m = _FIELD.match(bytes(buf[end:end + 80]))
            return m is not None and m.group(1) not in bound_names(buf)
        rest = bytes(buf[end:end + 4096])
        close = rest.find(bytes(buf[i:i + 1]))
        if close < 0 or b"\n" in rest[:close] or b"\\" in rest[:close]:
            return False
        after, _crossed = _next_token(buf, end + close + 1)
        return not (after[:1] == b"%" or after.startswith(b".format") or _STRING_NEXT.match(after))
    if q not in (0x22, 0x27):
        return False
    if q != buf[i]:
        return True  # ``"it's hf_x'…"``: the quote is a character of the value, and no token holds one
    after, crossed = _next_token(buf, end)
    nxt = after[:1]
    if not nxt or nxt in b"\x22'\\+%.([{":  # concatenation, a format, a method
        return False
    if nxt == b"}":  # the end of a dict or set display, or of an f-string's field (``f"{'hf_'}…"``)
        return _FSTRING.search(bytes(buf[max(0, j - 4096):j])) is None
    before = bytes(buf[max(0, j - 160):j])
    if crossed and nxt[0] in _WORD:  # the statement ended: only a name bound to the literal carries it on
        m = _BINDS_BEFORE.search(before)
        return m is None or (m.group(1) is not None and not _name_continues(buf, m.group(1)))
    if nxt in b"`$?!@&|^~-*/<>=:":
        return True  # a dict key, a slice, a header (``if x == "hf_":``), a comparison, another operator
    if nxt[0] in _WORD:
        return _STRING_NEXT.match(after) is None  # ``"hf_" in x``, ``… 'hf_xet' package …`` (prose)
    if nxt in (b",", b")"):
        if _KW_BEFORE.search(before):
            return True  # ``f(kw="hf_x")``, ``def f(p="hf_x")``: the value stands alone
        m = _CALL_BEFORE.search(before)
        if m is not None and m.group(1) not in _KEYWORDS and m.group(1) != b"format":
            return True  # a positional argument of a call that folds nothing
        return not folds_elements(buf, j, brackets)
    elif nxt == b"]" and _SUBSCRIPT_BEFORE.search(before):
        return True  # ``d["hf_token"]``: a subscript key
    return False


class Brackets:
    """The bracket enclosing an offset of one file, found by tokenizing forward from a statement start (a line
    at column 0 outside triple-quoted strings); successive queries at growing offsets continue where the last
    one stopped."""

    __slots__ = ("_buf", "_lo", "_stack")

    def __init__(self, buf: Any) -> None:
        self._buf = buf
        self._lo = -1
        self._stack: list[int] = []

    def opener(self, at: int) -> int | None:
        """Offset of the open bracket enclosing ``at`` (``-1``: none), or ``None`` when it cannot be told."""
        buf = self._buf
        if not (0 <= self._lo <= at and at - self._lo <= 65536):
            lo = max(0, at - 16384)
            chunk = bytes(buf[lo:at])
            top = -1  # the last line start at column 0 with a name or a decorator (or the chunk's start)
            for m in _TOP_LINE_NL.finditer(chunk):
                top = m.end()
            if top < 0:
                if not chunk or chunk[0] not in _TOP_FIRST:
                    return None
                top = 0
            lo += top
            if type(buf) is bytes:
                quotes = (buf.count(b'\x22\x22\x22', 0, lo), buf.count(b"\x27\x27\x27", 0, lo))
            else:
                head = bytes(buf[:lo])
                quotes = (head.count(b'\x22\x22\x22'), head.count(b"\x27\x27\x27"))
            if quotes[0] % 2 or quotes[1] % 2:
                return None  # the line may be inside a triple-quoted string
            self._lo, self._stack = lo, []
        chunk = bytes(buf[self._lo:at])
        stack = self._stack
        base = self._lo
        for m in _BRACKET_TOKENS.finditer(chunk):
            c = chunk[m.start()]
            if c in (0x28, 0x5B, 0x7B):
                stack.append(base + m.start())
            elif c in (0x29, 0x5D, 0x7D) and stack:
                stack.pop()
        self._lo = at
        return stack[-1] if stack else -1


def folds_elements(buf: Any, at: int, brackets: Brackets | None = None) -> bool:
    """Whether the elements of the bracket enclosing offset ``at`` may be folded together: the arguments of
    ``.format(``/``setdefault(``/``putenv(``, the list or tuple given to ``join(``, a tuple after ``%``; or
    the bracket cannot be told (more than 16 KiB back, a triple-quoted string on the way)."""
    o = (brackets or Brackets(buf)).opener(at)
    if o is None or o < 0:
        return True  # unknown, or no bracket (a statement's own commas: ``a = "x", y``)
    head = bytes(buf[max(0, o - 40):o + 1])
    if buf[o] == 0x7B:
        return False  # a dict or set display: its elements are never joined
    if _FOLDING_OPENER.search(head):
        return True
    if buf[o] == 0x28 and _CALLED.search(head):
        return False  # another call's arguments
    return buf[o] == 0x28 and head[:-1].rstrip().endswith(b"%")  # ``"%s%s" % ("a", "hf_")``


def _escape_dead(esc: bytes) -> bool:
    """Whether the escape after a backslash (``esc``, its first bytes) decodes to a character no token holds."""
    if esc[:1] in _DEAD_ESCAPES:
        return True
    m = _ESCAPE.match(esc)
    if m is None:
        return False  # a line continuation, or something unknown: it may continue the token
    try:
        text = (b"\\" + m.group(0)).decode("unicode_escape")
    except (UnicodeDecodeError, ValueError):
        return False
    return not text or ord(text[0]) >= 128 or ord(text[0]) not in _TOKEN_CHARS


def bound_names(buf: Any) -> set[bytes]:
    """Names bound by an assignment statement or a ``:=`` in ``buf`` to something that may fold (a literal,
    a bracket, a name, a ``+``/``%`` chain, ``.join``/``.format``): a superset of what
    :func:`ast_eval.const_names` can resolve."""
    return {a or b for a, b in _BOUND.findall(buf)}


def _name_continues(buf: Any, name: bytes) -> bool:
    """Whether ``name`` is used, anywhere in ``buf``, where a fold could append to its value (``name +``,
    ``[name, …]``, ``f"{name}…"``, ``name.join``) or where that cannot be told (rebinding, a line end)."""
    for at in _occurrences(buf, name):
        after, crossed = _next_token(buf, at + len(name))
        nxt = after[:1]
        if crossed or not nxt:
            return True
        if nxt in (b"]", b":") or after[:2] in (b"==", b"!="):
            continue
        if nxt == b")" and b"format" not in bytes(buf[max(0, at - 160):at]):
            continue
        if nxt == b"=":  # its own binding (``NAME =``; ``NAME: T =`` stops at ``:``)
            continue
        if nxt == b"." and not (after.startswith(b".join") or after.startswith(b".format")):
            continue
        if nxt[0] in _WORD and not _STRING_NEXT.match(after):
            continue
        return True
    return False


def reach(buf: Any, at: int, mode: str) -> bytes:
    """The code from ``at`` to the end of what starts there, at most ``CONTEXT_REACH`` bytes: a call's arguments
    (``mode="call"``, ``at`` just after its ``(``: up to its ``)``), a value (``"value"``: up to a comma, a
    closing bracket it did not open, or a line break outside brackets once the value has started and does
    not end in an operator), or a statement (``"statement"``: the same without commas)."""
    region = bytes(buf[at:at + CONTEXT_REACH])
    depth = 0
    for m in _TOKENS.finditer(region):
        c = region[m.start()]
        if c in (0x28, 0x5B, 0x7B):
            depth += 1
        elif c in (0x29, 0x5D, 0x7D):
            depth -= 1
            if depth < 0:
                return region[:m.end()]
        elif depth or mode == "call":
            continue
        elif c == 0x2C and mode == "value":
            return region[:m.start()]
        elif c == 0x0A:
            done = region[:m.start()].rstrip()
            if done and done[-1:] not in b"+%=:,([{\\|&*/-<>":
                return region[:m.start()]
    return region


def _occurrences(buf: Any, name: bytes) -> Iterator[int]:
    """Offsets of ``name`` in ``buf`` as a whole name (not part of a longer name, not an attribute). A short name
    (:data:`_SHORT`: ``a``, ``f``, ``to``, found thousands of times inside other words, each a step in Python)
    is looked for with a regex (:func:`_whole_rx`): the same offsets, since a name is word characters only."""
    n = len(name)
    if n <= _SHORT and type(buf) is bytes and _IDENT.fullmatch(name) is not None:
        for m in _whole_rx(name).finditer(buf):
            yield m.start()
        return
    at = buf.find(name)
    while at >= 0:
        if (not at or buf[at - 1] not in _WORD_DOT) and buf[at + n:at + n + 1] not in _WORD_BYTES:
            yield at
        at = buf.find(name, at + n)


#: Names of at most this many characters are found by a regex (:func:`_occurrences`); a longer name's plain
#: occurrences are few enough for ``bytes.find`` (a regex costs ~0.1 ms to compile, once per name).
_SHORT = 2
_WHOLE_RX: dict[bytes, re.Pattern[bytes]] = {}


def _whole_rx(name: bytes) -> re.Pattern[bytes]:
    """A regex of ``name`` as a whole name: not after a word character or a dot, not before a word character
    (the literal first, so that the search looks for it; the lookbehind checks the byte before it)."""
    rx = _WHOLE_RX.get(name)
    if rx is None:
        if len(_WHOLE_RX) >= 1024:
            _WHOLE_RX.clear()
        lit = re.escape(name)
        rx = _WHOLE_RX[name] = re.compile(lit + rb"(?<![\w.]" + lit + rb")(?!\w)")
    return rx


#: Per name, a regex finding its bindings in one pass (see :func:`_bindings`); frequent names recur across files.
_BINDINGS_RX: dict[bytes, re.Pattern[bytes]] = {}
#: After this many occurrences of a name in a file (``x``, ``f``, ``self``: each one a step in Python), the rest of
#: its bindings are found by a regex (compiled once per process, ~0.2-0.4 ms: worth it only for frequent names).
_MANY = 200


def _bindings(buf: Any, name: bytes) -> Iterator[tuple[int, int]]:
    """``(offset, end of its binding)`` of each whole-name occurrence of ``name`` (:func:`_occurrences`) that
    :data:`_BINDING` matches right after, in order. Past :data:`_MANY` occurrences, the rest are searched with
    one regex (the same occurrences: a name is word characters only, so two of them never overlap)."""
    n = len(name)
    fast = type(buf) is bytes and _IDENT.fullmatch(name) is not None
    seen = 0
    for at in _occurrences(buf, name):
        m = _BINDING.match(buf, at + n)
        if m is not None:
            yield at, m.end()
        seen += 1
        if fast and seen >= _MANY:
            rx = _BINDINGS_RX.get(name)
            if rx is None:
                if len(_BINDINGS_RX) >= 1024:
                    _BINDINGS_RX.clear()
                lit = re.escape(name)  # first: the search looks for the literal (``(?<!…)``: the byte before it)
                rx = _BINDINGS_RX[name] = re.compile(lit + rb"(?<![\w.]" + lit + rb")(?=(" + _BINDING.pattern
                                                     + rb"))")
            for r in rx.finditer(buf, at + n):
                yield r.start(), r.end(1)
            return


def carries(buf: Any, names: set[bytes], shape_ids: frozenset[int], shapes: Any,
            memo: dict[bytes, set[bytes] | None] | None = None) -> bool:
    """Whether one of ``names`` may carry a secret-shaped value: it is bound (``NAME =``, ``NAME: T =``,
    ``NAME :=``) in a statement holding a literal piece shaped like one of ``shape_ids`` or, through up to
    four bindings (``KEY = PREFIX + REST``), another such name. A superset of what
    :func:`ast_eval.const_names` can resolve to such a value."""
    seen: set[bytes] = set()
    todo = {n for n in names if n not in _KEYWORDS}
    budget = 64
    for _ in range(5):
        seen |= todo
        more: set[bytes] = set()
        for name in sorted(todo):
            if memo is not None and name in memo:  # this file's earlier answer for ``shape_ids``
                used = memo[name]
                if used is None:
                    return True
                more |= used
                continue
            used = set()
            for at, bound in _bindings(buf, name):
                budget -= 1
                if budget < 0:
                    return True  # too many bindings to follow: parse
                line = bytes(buf[max(0, at - 200):at]).rsplit(b"\n", 1)[-1]
                if line.strip(b" \t") and not line.rstrip().endswith(b"("):
                    continue  # not at a statement's start (a keyword argument, a comparison) nor a ``(x :=``
                region = reach(buf, bound, "statement")
                if not shape_ids.isdisjoint(s for s, _e in shapes.scan(region)):
                    if memo is not None:
                        memo[name] = None
                    return True
                used.update(_NAME_USE.findall(region))
            if memo is not None:
                memo[name] = used
            more |= used
        todo = more - seen
        if not todo:
            break
    return False


def admits(plan: PrefilterPlan, buf: Any, hits: Iterable[tuple[int, int]], shapes: Any) -> bool:
    """Whether the file ``buf``, with the prefilter database's ``hits`` (pattern id, end offset), is worth
    parsing (see the module's docstring). ``shapes`` is the shape database's scanner (or ``None``)."""
    return why(plan, buf, hits, shapes) is not None


def why(plan: PrefilterPlan, buf: Any, hits: Iterable[tuple[int, int]], shapes: Any) -> tuple[str, int] | None:
    """What admits ``buf`` (see :func:`admits`): ``(reason, end offset of the admitting hit)``, or ``None``."""
    if not isinstance(buf, bytes | mmap.mmap):
        buf = bytes(buf)  # a memoryview or bytearray: searched with ``find``, sliced to bytes
    by_id: dict[int, list[int]] = {}
    for p, end in hits:
        if p in plan.alone:
            return "alone", end
        by_id.setdefault(p, []).append(end)
    if not by_id:
        return None
    brackets = Brackets(buf)
    for p in plan.cut.intersection(by_id):
        rx = _regex(plan, p)
        for end in by_id[p]:
            m = rx.search(buf, max(0, end - 256), end) or rx.search(buf, max(0, end - CUT_WINDOW), end)
            if m is None or not cut_short_dead(buf, m.start(), end, brackets):
                return "cut", end
    if plan.groups:  # an anchor split inside itself by a fold (``"h{}".format("f_…")``)
        from veritensor_fast.detectors.pyast_split import split_end

        head = split_end(plan, buf, by_id, brackets)
        if head is not None:
            return "split", head
    if shapes is None:
        return next((("context", by_id[min(c & by_id.keys())][0]) for c, _s in plan.pairs
                     if not c.isdisjoint(by_id)), None)
    memos: dict[frozenset[int], dict[bytes, set[bytes] | None]] = {}
    for ctx_ids, shape_ids in plan.pairs:
        for p in sorted(ctx_ids.intersection(by_id)):
            # ``"together",``: a list element or argument, relevant only where elements are folded together
            ends = [e for e in by_id[p] if buf[e - 1] != 0x2C or folds_elements(buf, e, brackets)]
            if p in plan.headers:  # text inside a literal (``'{"username": "a", "key": "' + KEY``): a plain window
                regions = [bytes(buf[end:end + CONTEXT_REACH]) for end in ends]
            else:
                regions = [reach(buf, end, "call" if buf[end - 1] == 0x28 else "value") for end in ends]
            for end, region in zip(ends, regions, strict=True):
                if not shape_ids.isdisjoint(s for s, _e in shapes.scan(region)):
                    return "shape", end
            memo = memos.setdefault(shape_ids, {})
            for end, region in zip(ends, regions, strict=True):
                if carries(buf, set(_NAME_USE.findall(region)), shape_ids, shapes, memo):
                    return "name", end
    return None


#: How far back from a cut-short hit's end its anchor is looked for (longer: the file is parsed).
CUT_WINDOW = 1024
_REGEX: dict[tuple[bytes, bool], re.Pattern[bytes]] = {}


def _regex(plan: PrefilterPlan, p: int) -> re.Pattern[bytes]:
    """Pattern ``p`` of ``plan`` as a Python regex anchored at the end of the searched range (its start)."""
    key = plan.patterns[p]
    rx = _REGEX.get(key)
    if rx is None:
        rx = _REGEX[key] = re.compile(key[0] + rb"\Z", re.I if key[1] else 0)
    return rx
