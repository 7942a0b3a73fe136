"""The rules' alternation split is read from the on-disk cache (issue 16: the serial start).

``rule_expressions`` cuts a rule that starts with an alternation into one Hyperscan expression per branch, and
checks each cut by compiling every piece with ``re``: ~5 ms of every start, before the rules' database is even
looked up. The split of the same patterns is now memoised in the derived-data cache, so a start that finds it
compiles no piece. These tests call the real ``rule_expressions`` on the built-in rules and a custom rule set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import matcher
from veritensor_fast.kernels import BACKEND
from veritensor_fast.worker import ScanOptions

pytestmark = pytest.mark.skipif(BACKEND != "hyperscan", reason="the split is for Hyperscan only")


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("VERITENSOR_FAST_CACHE", str(d))
    return d


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = matcher._whole

    def whole(pieces: list[bytes]) -> Any:
        calls[0] += 1
        return real(pieces)

    monkeypatch.setattr(matcher, "_whole", whole)
    return calls


def _uncached(rules: Any) -> tuple[list[bytes], list[int]]:
    pats: list[bytes] = []
    ids: list[int] = []
    for i, r in enumerate(rules):
        exprs = matcher.split_alternatives(r.hs_pattern) if r.engine == "re" else [r.hs_pattern]
        pats += exprs
        ids += [i] * len(exprs)
    return pats, ids


def test_a_second_start_compiles_no_piece(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = ScanOptions().ruleset().rules
    calls = _counting(monkeypatch)
    first = matcher.rule_expressions(rules)
    assert calls[0] > 0  # the first start splits (and stores the split)
    calls[0] = 0
    again = matcher.rule_expressions(rules)
    assert calls[0] == 0  # baseline: every start compiles every piece again
    assert again == first == _uncached(rules)
    assert len(first[0]) > len(rules)  # some rules are split


def test_a_damaged_cache_file_is_ignored_and_rewritten(fresh_cache: Path) -> None:
    rules = ScanOptions().ruleset().rules
    want = matcher.rule_expressions(rules)
    files = sorted(fresh_cache.rglob("split-*.json"))
    assert len(files) == 1
    for bad in (b"", b"not json", b"[]", b'[["zz"]]', b"[" + b"[]," * (len(want[0]) - 1) + b"[]]"):
        files[0].write_bytes(bad)
        os.chmod(files[0], 0o600)
        assert matcher.rule_expressions(rules) == want
    assert matcher.rule_expressions(rules) == want


def test_other_patterns_have_their_own_split(fresh_cache: Path, tmp_path: Path) -> None:
    """A custom rule that starts with an alternation gets its own cut, not a cached one of other patterns."""
    extra = tmp_path / "r.yaml"
    extra.write_text("rules:\n  - id: custom.alt\n    name: custom\n    severity: high\n"
                     "    pattern: '(?:foo|bar)_[A-Za-z0-9]{20}'\n")
    base = ScanOptions().ruleset().rules
    custom = ScanOptions(rule_files=(str(extra),)).ruleset().rules
    assert matcher.rule_expressions(base) == _uncached(base)
    got = matcher.rule_expressions(custom)
    assert got == _uncached(custom)
    assert got != matcher.rule_expressions(base)
