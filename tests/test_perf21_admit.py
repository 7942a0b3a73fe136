"""perf21: the AST prefilter's name search (``pyast_admit._occurrences``) finds short names with a regex.

A one- or two-character name (``a``, ``f``, ``to``) is found thousands of times inside other words; the
``bytes.find`` loop stepped through each in Python (on the real tree, 67k ``find`` calls for ``a`` alone over
39 lookups). The regex must give exactly the offsets the loop gave: a whole name, not after a word character or a
dot, not before a word character. These tests compare both on real sources (the standard library's) and on the
edge cases of the rule. They pass on the baseline's code too: the change is one of speed, not of behaviour.
"""

from __future__ import annotations

import inspect
import json
import keyword
import re
import textwrap
from collections.abc import Iterator

import pytest

from veritensor_fast.detectors import pyast_admit
from veritensor_fast.detectors.pyast_admit import _bindings, _occurrences

_WORD_DOT = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.")
_WORD = frozenset(bytes([c]) for c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def _reference(buf: bytes, name: bytes) -> Iterator[int]:
    """The ``bytes.find`` loop of the baseline (4863df0), verbatim in behaviour."""
    n = len(name)
    at = buf.find(name)
    while at >= 0:
        if (not at or buf[at - 1] not in _WORD_DOT) and buf[at + n:at + n + 1] not in _WORD:
            yield at
        at = buf.find(name, at + n)


def _sources() -> list[bytes]:
    """Real Python sources of several shapes: the standard library's own files."""
    return [inspect.getsource(m).encode() for m in (re, json, keyword, textwrap, inspect, pytest)]


def _short_names(buf: bytes) -> set[bytes]:
    return {m.group() for m in re.finditer(rb"[A-Za-z_]\w?\b", buf)} | {b"a", b"f", b"to", b"_", b"x1"}


def test_short_names_same_offsets_as_find_loop_on_real_sources() -> None:
    checked = 0
    for src in _sources():
        for name in sorted(_short_names(src)):
            assert list(_occurrences(src, name)) == list(_reference(src, name)), name
            checked += 1
    assert checked > 300


@pytest.mark.parametrize("buf, name", [
    (b"a = 1", b"a"),  # at the buffer's start
    (b"x = a", b"a"),  # at its end
    (b"aaa a aa", b"aa"),  # overlapping occurrences inside a longer name
    (b"obj.a + a", b"a"),  # an attribute is not the name
    (b"9a a9 _a a_ (a) [a]", b"a"),  # after a digit, before a digit or underscore
    (b"to=to;to.to(to)", b"to"),
    (b"\xffa\x00a\xe9", b"a"),  # non-ASCII bytes are no word characters
    (b"", b"a"),
])
def test_edge_cases_same_offsets(buf: bytes, name: bytes) -> None:
    assert list(_occurrences(buf, name)) == list(_reference(buf, name))


def test_bindings_of_a_short_name_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_bindings`` (what ``carries`` follows) gives the same bindings with the regex as with the loop."""
    src = b"a = 'x'\nb = a + 'y'\nif a: a = f(a)\n(a := 'z')\nobj.a = 1\n" * 50
    got = list(_bindings(src, b"a"))
    monkeypatch.setattr(pyast_admit, "_SHORT", 0)  # every name through the find loop
    assert got == list(_bindings(src, b"a"))
    assert got


# --- the tokenizers of reach() and Brackets.opener: unrolled string loops and a first-byte lookahead ---------------

#: The baseline's (4863df0) token patterns, verbatim: the new ones must match exactly the same spans.
_OLD_TOKENS = re.compile(rb"\x22{3}(?:[^\x22\\]|\\.|\x22(?!\x22\x22))*\x22{3}|\x27{3}(?:[^\x27\\]|\\.|\x27(?!\x27\x27))*"
                         rb"\x27{3}|\x22(?:[^\x22\\\n]|\\.)*\x22|'(?:[^'\\\n]|\\.)*'|#[^\n]*|\\\r?\n|[()\[\]{},\n]")
_OLD_BRACKETS = re.compile(_OLD_TOKENS.pattern.replace(rb"|\\\r?\n|[()\[\]{},\n]", rb"|[()\[\]{}]"))


def _spans(rx: re.Pattern[bytes], buf: bytes) -> list[tuple[int, int]]:
    return [m.span() for m in rx.finditer(buf)]


def test_token_patterns_same_spans_on_real_sources() -> None:
    for src in _sources():
        assert _spans(pyast_admit._TOKENS, src) == _spans(_OLD_TOKENS, src)
        assert _spans(pyast_admit._BRACKET_TOKENS, src) == _spans(_OLD_BRACKETS, src)


def test_token_patterns_same_spans_on_hostile_shapes() -> None:
    """Unterminated strings, escapes before a line break, quotes in threes and fours, comments with quotes."""
    import random

    rng = random.Random(21)
    alphabet = b"\"'\\\n\r#()[]{},a \t"
    shapes = [b'"""a\\\n"""', b"'''x''''", b'"ab\\"', b'"a\\\nb"', b'""""', b"'#'(", b"#'\n'x'", b'"""\\"""\'"""',
              b"\\\r\nx(", b'f("a\\\\", \'b\')']
    shapes += [bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 32))) for _ in range(20000)]
    for s in shapes:
        assert _spans(pyast_admit._TOKENS, s) == _spans(_OLD_TOKENS, s), s
        assert _spans(pyast_admit._BRACKET_TOKENS, s) == _spans(_OLD_BRACKETS, s), s
