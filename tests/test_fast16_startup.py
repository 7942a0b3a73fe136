"""Start-up cost (issue 16): what a plain scan builds before it reads the first file.

- the built-in rules come from a JSON cache keyed by the rule files and the loader's source, so a scan parses
  no YAML (and imports no ``yaml``) once the cache is warm; the cache is exactly what parsing gives, and a
  corrupt or stale one is never used;
- the matcher compiles a rule's confirmation regex on the rule's first candidate, not all of them up front;
- modules a plain scan does not use (``yaml``, ``ijson``, RE2, the baseline module) are not imported.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import hf_token
from veritensor_fast import rules as rules_mod
from veritensor_fast.matcher import SecretMatcher
from veritensor_fast.rules import Rule, builtin_rule_texts, load_rules, rules_cache_path


def _parsed() -> list[Rule]:
    return [r for name, text in builtin_rule_texts() for r in rules_mod._parse_file(text, f"builtin:{name}")]


def _fields(rs: Any) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in rs]  # every field, ``source`` (compare=False) included


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("VERITENSOR_FAST_CACHE", str(d))
    return d / "veritensor-fast"


def test_cached_rules_are_exactly_the_parsed_rules(cache: Path) -> None:
    cold = load_rules()
    path = rules_cache_path(builtin_rule_texts())
    assert path.parent == cache and path.is_file()
    warm = load_rules()
    assert _fields(cold.rules) == _fields(warm.rules) == _fields(_parsed())
    assert cold.version == warm.version
    assert all(type(r.keywords) is tuple and type(r.examples) is tuple for r in warm.rules)


def test_warm_cache_parses_no_yaml(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_rules()
    want = _fields(_parsed())

    def boom(*_: Any, **__: Any) -> Any:
        raise AssertionError("YAML parsed with a warm cache")

    monkeypatch.setattr(rules_mod, "_parse_file", boom)
    assert _fields(load_rules().rules) == want


_WRONG_TYPES = b"[[" + b", ".join([b"1"] * len(rules_mod._FIELDS)) + b"]]"


@pytest.mark.parametrize("junk", [b"", b"not json", b"[]", b'[["x"]]', b"{}", b'[[1, 2, 3]]', _WRONG_TYPES])
def test_corrupt_cache_is_ignored_and_rewritten(cache: Path, junk: bytes) -> None:
    path = rules_cache_path(builtin_rule_texts())
    path.parent.mkdir(parents=True)
    path.write_bytes(junk)
    assert _fields(load_rules().rules) == _fields(_parsed())
    assert path.read_bytes() != junk
    assert _fields(load_rules().rules) == _fields(_parsed())


def test_changed_rule_file_misses_the_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_rules()
    real = builtin_rule_texts()
    name, text = real[0]
    first = _parsed()[0]
    assert f"severity: {first.severity}" in text
    other = "low" if first.severity != "low" else "medium"
    changed = [(name, text.replace(f"severity: {first.severity}", f"severity: {other}", 1)), *real[1:]]
    monkeypatch.setattr(rules_mod, "builtin_rule_texts", lambda: changed)
    assert load_rules().rules[0].severity == other


def test_unwritable_cache_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("VERITENSOR_FAST_CACHE", str(blocker))  # the cache "directory" is a file
    assert _fields(load_rules().rules) == _fields(_parsed())


def test_matcher_compiles_confirmation_regexes_on_first_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    real = Rule.confirm_regex

    def counting(self: Rule) -> Any:
        compiled.append(self.id)
        return real(self)

    monkeypatch.setattr(Rule, "confirm_regex", counting)
    rs = load_rules()
    m = SecretMatcher(rs)
    assert compiled == []
    tok = hf_token()
    found = m.find(f"token = '{tok}'\n".encode())
    assert [f.secret.decode() for f in found] == [tok]
    assert 1 <= len(compiled) < len(rs.rules) and len(set(compiled)) == len(compiled)
    again = m.find(f"x = '{tok}'\n".encode())
    assert [f.secret for f in again] == [f.secret for f in found] and len(set(compiled)) == len(compiled)


_PROBE = """
import atexit, sys
watch = ("yaml", "ijson", "re2", "numpy", "veritensor_fast.baseline", "veritensor_fast.rules.safe_regex")
atexit.register(lambda: print("LOADED", sorted(m for m in watch if m in sys.modules), file=sys.stderr))
from veritensor_fast.cli import main
sys.argv = ["veritensor-fast", "scan", sys.argv[1], "--jobs", sys.argv[2], "-q", "--no-progress"]
main()
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_plain_scan_imports_nothing_it_does_not_use(tmp_path: Path, jobs: str) -> None:
    """Nor does the parent of a pool import, before it forks, what its workers will rarely need (numpy: 0.16
    CPU-s of serial start-up in every ``--jobs 2`` scan)."""
    target = tmp_path / "t"
    target.mkdir()
    (target / "a.txt").write_text("nothing to see\n")
    (target / "b.txt").write_text("nothing to see\n" * 600_000)  # 9 MB: past the small-scan shortcut, a pool runs
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    for _ in range(2):  # the first run may fill the rules cache
        p = subprocess.run([sys.executable, "-c", _PROBE, str(target), jobs], capture_output=True, text=True,
                           cwd=tmp_path, env=env, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    assert "LOADED []" in p.stderr, p.stderr
