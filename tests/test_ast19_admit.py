"""The AST prefilter's admission, made cheaper (ast19): each fast path answers exactly as the step it replaced.

- :func:`pyast_admit._bindings` (a name's bindings: one regex for a short, frequent name) against the loop it
  replaced (every whole-name occurrence, then ``_BINDING`` after it), on random Python-like buffers;
- :class:`pyast_admit.Brackets` (the last top line found by its line break, the triple-quote parity counted in
  place, only brackets tokenized) against the implementation it replaced, for any sequence of queries;
- the admission of whole files (``why``) on a corpus of shapes that each admission path judges.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from veritensor_fast.detectors import pyast_admit as A
from veritensor_fast.detectors.pyast_admit import _BINDING, _TOKENS, Brackets, _bindings, _occurrences


def _bindings_ref(buf: bytes, name: bytes) -> list[tuple[int, int]]:
    """The loop :func:`_bindings` replaced (``carries`` before ast19)."""
    out = []
    for at in _occurrences(buf, name):
        m = _BINDING.match(buf, at + len(name))
        if m is not None:
            out.append((at, m.end()))
    return out


_TOP_LINE = re.compile(rb"(?:\A|\n)(?=[A-Za-z_@])")


class _BracketsRef:
    """``Brackets`` before ast19 (verbatim but for the names)."""

    def __init__(self, buf: Any) -> None:
        self._buf = buf
        self._lo = -1
        self._stack: list[int] = []

    def opener(self, at: int) -> int | None:
        buf = self._buf
        if not (0 <= self._lo <= at and at - self._lo <= 65536):
            lo = max(0, at - 16384)
            starts = [m.end() for m in _TOP_LINE.finditer(bytes(buf[lo:at]))]
            if not starts:
                return None
            lo += starts[-1]
            head = bytes(buf[:lo])
            if head.count(b'"""') % 2 or head.count(b"'''") % 2:
                return None
            self._lo, self._stack = lo, []
        chunk = bytes(buf[self._lo:at])
        stack = self._stack
        base = self._lo
        for m in _TOKENS.finditer(chunk):
            c = chunk[m.start()]
            if c in (0x28, 0x5B, 0x7B):
                stack.append(base + m.start())
            elif c in (0x29, 0x5D, 0x7D) and stack:
                stack.pop()
        self._lo = at
        return stack[-1] if stack else -1


#: Fragments of Python source that move the bindings and brackets logic: names bound and used, keyword
#: arguments, annotations, walrus, comparisons, strings with brackets and quotes inside, comments, line
#: continuations, triple quotes, decorators, carriage returns, attributes.
_FRAGS = ["x", "f", "ab", "token", "config", "the", "x1", "_", " ", "\t", "\n", "\r\n", "\r", "  ", "=", "==",
          " = ", ": int = ", ":=", "(", ")", "[", "]", "{", "}", ",", ".", "+", "%", "#", "# (x = 'a'\n", "\\\n",
          "'", '"', '"""', "'''", "'a(b'", '"x]"', "f(x=", "(x := ", "x.join(", "@", "def ", "class C:\n",
          "x = 'abc'\n", "f = x + y\n", "    f = \"hf_\"\n", "self.x = 1\n", "d['k'] = v\n", "\x0c", "é"]


@st.composite
def _source(draw: Any, frags: list[str] = _FRAGS, most: int = 80) -> bytes:
    return "".join(draw(st.lists(st.sampled_from(frags), max_size=most))).encode()


@given(_source(), st.sampled_from(["x", "f", "ab", "token", "config", "the", "x1", "_", "tok"]), st.integers(1, 4))
def test_bindings_equal_the_occurrence_loop(buf: bytes, name: str, many: int) -> None:
    """Whichever occurrence the regex takes over from (``_MANY``), the bindings are the loop's."""
    saved = A._MANY
    A._MANY = many
    try:
        assert list(_bindings(buf, name.encode())) == _bindings_ref(buf, name.encode())
    finally:
        A._MANY = saved


def test_bindings_of_a_frequent_short_name() -> None:
    """A name found more often than ``_MANY`` (the regex takes over) and rarer ones (the find loop alone);
    ``x = 1`` binds nothing that folds."""
    src = (b"x = 1\nf(x='a')\nx.y = 2\n(x := 'b')\nax = 3\nx == 4\nx: int = 'c'\n" * 80 + b"x")
    for name in (b"x", b"ax", b"config_value"):
        assert list(_bindings(src, name)) == _bindings_ref(src, name)
    assert [at for at, _e in _bindings(src, b"x")][:4] == [8, 24, 48, 69]


@given(_source(most=160), st.lists(st.integers(0, 4000), min_size=1, max_size=8))
def test_brackets_answer_as_before_for_any_queries(buf: bytes, ats: list[int]) -> None:
    ours, ref = Brackets(buf), _BracketsRef(buf)
    for at in ats:
        at = min(at, len(buf))
        assert ours.opener(at) == ref.opener(at), at


def test_brackets_far_queries_restart_alike() -> None:
    """Queries more than 64 KiB apart restart from a top line; a triple quote before it makes it unknown."""
    body = b"def f(a,\n      b=[1, (2,\n" + b"    'x(', \"]\",  # ((\n" * 4000 + b"z"
    for pre in (b"", b'"""\n', b"x = '''\n"):
        buf = pre + body
        ours, ref = Brackets(buf), _BracketsRef(buf)
        for at in (len(buf) - 1, 10, 70000, 150000, 90000, len(buf)):
            assert ours.opener(at) == ref.opener(at)


def test_bracket_tokens_see_the_same_brackets() -> None:
    buf = (b"a = f(x, [1, '(', \"]\"], {k: (v)})  # (\nb = \\\n  ('''(\n]''', \"\"\"{\"\"\")\n" * 50)
    ref = [m.start() for m in _TOKENS.finditer(buf) if buf[m.start()] in b"()[]{}"]
    got = [m.start() for m in A._BRACKET_TOKENS.finditer(buf) if buf[m.start()] in b"()[]{}"]
    assert got == ref and ref
