"""review18: the literal stream (``pyast_stream``) stays bounded on hostile Python, and finds what it found.

- each ``= "`` inside a long literal re-matched the simple-binding pattern from the file's start (no line start
  within reach): a 24 KB file took 6 CPU-s in one worker, 90 KB 33 s (quadratic, up to the 32 KiB reach);
- the binding pattern's literal kept a backtracking state per character: 465 MB for one 3 MB literal;
- a binding's value is still what it was: a long literal's first ``MAX_VALUE`` characters, escapes decoded, now
  from a prefix of the literal cut between two escapes (the whole was decoded and then cut).
"""

from __future__ import annotations

import re
import tracemalloc
from typing import Any

import pytest
from test_ast16_admit import wanted
from test_ast17_split import TOKENS

from veritensor_fast.detectors import pyast_stream as ps
from veritensor_fast.worker import ScanOptions, WorkerContext

HF = TOKENS["huggingface.user-token"]


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    return WorkerContext(ScanOptions())


class _CountingPattern:
    """A compiled pattern that counts its ``match`` calls."""

    def __init__(self, pat: re.Pattern[bytes]) -> None:
        self.pat, self.calls = pat, 0

    def match(self, *a: Any) -> Any:
        self.calls += 1
        return self.pat.match(*a)

    def finditer(self, *a: Any) -> Any:
        return self.pat.finditer(*a)


def _hostile(n: int) -> str:
    """A long literal full of ``= '`` (each looks like a binding's start), then pieces bound and used."""
    return 's = "' + "= '" * n + '"\n' + f'A = "{HF[:1]}"\nB = "{HF[1:6]}"\nT = A + B + s\n'


def test_each_line_is_matched_once_whatever_its_literal_holds(ctx: WorkerContext,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    counting = _CountingPattern(ps._SIMPLE)
    monkeypatch.setattr(ps, "_SIMPLE", counting)
    src = _hostile(8000)
    wanted(ctx, src)
    assert 0 < counting.calls <= src.count("\n") + 1  # was one per ``= '``: 8000


def test_a_long_literal_is_matched_in_bounded_memory() -> None:
    lit = b's = "' + b"\\x68\\x66\\N{LATIN SMALL LETTER H}" * 30000 + b'"\n'  # 0.96 MB of escapes
    tracemalloc.start()
    try:
        m = ps._SIMPLE.match(lit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert m is not None and m.end(2) == len(lit) - 1
    assert peak < 40 << 20  # was about 150 MB


@pytest.mark.parametrize("cut_at", [0, 1, 2, 3, 5, 50, 95])
def test_a_long_literal_is_cut_between_escapes(cut_at: int) -> None:
    """Wherever the cut falls in an escape, the decoded prefix is the whole literal's decoded prefix."""
    esc = "\\N{LATIN SMALL LETTER H}\\\\\\x66"
    pad = "a" * (ps._BODY_MAX - cut_at)
    body = pad + esc * 200
    whole = (body.encode().decode("unicode_escape"))
    got = ps._literal(b"", b'"' + body.encode() + b'"')
    assert whole.startswith(got) and len(got) > ps.MAX_VALUE
