"""Linear-time regular expressions for patterns the user supplies (``--rules`` files, ``allow_secrets``).

Python's ``re`` backtracks: ``(?:a|a)+b`` against 28 ``a`` takes seconds and doubles with each character, so a
pattern from a config or rules file could hang a scan on content the scanned repository controls. These
patterns run in RE2 (google-re2), whose matching time is linear in the input for every pattern it accepts; it
rejects what cannot be matched in linear time (back-references, look-around). The built-in rules, which are
reviewed and benchmarked, keep Python ``re``.

``BoundedConfirm`` reproduces a rule's word boundaries (which ``Rule.confirm_regex`` writes as look-around
for Python ``re``) with consumed context characters and an explicit search loop, so the results match.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # errors are raised (and reported by us), not logged to stderr by RE2
_OPTIONS.max_mem = 64 << 20  # a pattern whose automaton needs more is rejected at compile time

#: What may precede a match when the rule's left boundary is ``word``: start of input, a non-word character,
#: or the end of a backslash, percent or terminal colour escape (``\n``, ``\u0022``, ``%2F``, ``ESC[1m``), as
#: ``rules._LEFT_WORD`` says for Python ``re``.
_LEFT = rb"(?:^|[^A-Za-z0-9_]|\\[nrt]|\\u[0-9a-fA-F]{4}|%[0-9a-fA-F]{2}|\[[0-9;]{0,16}m)"
_LEFT_REACH = 18  # the longest left context (``[`` + 16 colour parameters + ``m``)
_BODY = "vtf_body"


class UnsafePattern(Exception):
    """The pattern is not accepted by the linear-time engine (message says why)."""


def _compile(pattern: str | bytes) -> Any:
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        msg = exc.args[0] if exc.args else exc
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        raise UnsafePattern(f"{_short(pattern)} is not supported by the linear-time engine RE2 ({msg}); "
                            "back-references and look-around are not allowed") from None


def _short(pattern: str | bytes) -> str:
    text = pattern if isinstance(pattern, str) else pattern.decode("utf-8", "replace")
    return repr(text if len(text) <= 80 else text[:77] + "...")


def check_pattern(pattern: str) -> None:
    """Raise ``UnsafePattern`` unless ``pattern`` compiles in RE2."""
    _compile(pattern)


def compile_any(patterns: Sequence[str]) -> Any:
    """One RE2 regex matching when any of ``patterns`` matches (``search`` on ``str``), for ``allow_secrets``."""
    return _compile("|".join(f"(?:{p})" for p in patterns))


class _Match:
    __slots__ = ("_spans", "_data", "_base", "re")

    def __init__(self, spans: dict[str | int, tuple[int, int]], data: bytes, base: int, owner: BoundedConfirm
                 ) -> None:
        self._spans, self._data, self._base, self.re = spans, data, base, owner

    def span(self, group: str | int = 0) -> tuple[int, int]:
        return self._spans.get(group, (-1, -1))

    def start(self, group: str | int = 0) -> int:
        return self.span(group)[0]

    def end(self, group: str | int = 0) -> int:
        return self.span(group)[1]

    def group(self, group: str | int = 0) -> bytes | None:
        s, e = self.span(group)
        return None if s < 0 else self._data[s - self._base:e - self._base]


class BoundedConfirm:
    """A rule's confirmation regex in RE2, with the ``re.Pattern`` subset the matcher uses: ``groupindex`` and
    ``finditer(buf, lo, hi)`` (absolute offsets, spans by group name)."""

    def __init__(self, pattern: str, left_word: bool, right_chars: str | None) -> None:
        body = pattern.encode()
        left = _LEFT if left_word else b""
        right = b"(?:$|[^" + right_chars.encode() + b"])" if right_chars is not None else b""
        self._rx = _compile(left + b"(?P<" + _BODY.encode() + b">" + body + b")" + right)
        self._reach = _LEFT_REACH if left_word else 0
        gi = self._rx.groupindex
        self._groups = {(k.decode() if isinstance(k, bytes) else k): v for k, v in gi.items()}
        self._body = self._groups.pop(_BODY)
        self.groupindex = dict(self._groups)

    def finditer(self, buf: Any, lo: int = 0, hi: int | None = None) -> Iterator[_Match]:
        """Non-overlapping matches whose body starts in ``[lo, hi)``; ``hi`` ends the input, as ``endpos``
        does for ``re``. Each RE2 search is linear; the loop advances by at least one byte per search."""
        n = len(buf)
        hi = n if hi is None else min(hi, n)
        base = max(0, lo - self._reach)
        data = bytes(buf[base:hi])
        pos = 0
        first = lo - base
        while pos <= len(data):
            m = self._rx.search(data, pos)
            if m is None:
                return
            bs, be = m.span(self._body)
            if bs < first:  # the body must start at or after lo (context before lo is only looked at)
                pos = max(pos + 1, m.start() + 1)
                continue
            spans: dict[str | int, tuple[int, int]] = {0: (bs + base, be + base)}
            for name, idx in self._groups.items():
                s, e = m.span(idx)
                spans[name] = (s + base, e + base) if s >= 0 else (-1, -1)
            yield _Match(spans, data, base, self)
            pos = be if be > bs else bs + 1
