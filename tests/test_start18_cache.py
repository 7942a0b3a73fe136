"""The on-disk cache (``kernels.diskcache``) decides what a scan looks for (the parsed built-in rules, the
Hyperscan databases, the AST prefilter plan), so it is used only when no other user could have written it:

- a cache directory another user could write (world- or group-writable, or owned by someone else) is neither
  read nor written: a poisoned rules file, database or plan planted there loses no finding;
- a cache file that others could write, or a symlink, is not read;
- a directory the cache creates is ``0700`` and its files ``0600``;
- a database validated from the cache is loaded once, not again by the ``Scanner`` built from it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import hf_token, scan_json
from veritensor_fast import rules as rules_mod
from veritensor_fast.detectors import pyast_prefilter as pf
from veritensor_fast.detectors.pyast_plan_cache import _plan_to_json
from veritensor_fast.kernels import hsdb
from veritensor_fast.rules import Rule, builtin_rule_texts, load_rules, rules_cache_path

HF = "huggingface.user-token"


def _parsed() -> list[Rule]:
    return [r for name, text in builtin_rule_texts() for r in rules_mod._parse_file(text, f"builtin:{name}")]


def _fields(rs: Any) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in rs]


def _poisoned_rules() -> bytes:
    """The cache file of the built-in rules with the Hugging Face rule made to match nothing."""
    rows, hit = [], 0
    for r in _parsed():
        if r.id == HF:
            r = dataclasses.replace(r, pattern="hf_NEVER_MATCHES_ANYTHING_[0-9]{99}")
            hit += 1
        rows.append([getattr(r, k) for k in rules_mod._FIELDS])
    assert hit == 1
    return orjson.dumps(rows)


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``$VERITENSOR_FAST_CACHE``; the cache itself is ``base / "veritensor-fast"``."""
    b = tmp_path / "cachebase"
    b.mkdir()
    monkeypatch.setenv("VERITENSOR_FAST_CACHE", str(b))
    yield b
    for d in (b, b / "veritensor-fast"):  # let pytest remove what the tests made read-only or open
        if d.is_dir():
            d.chmod(0o700)


def _hostile_dir(base: Path, how: str) -> Path:
    d = base / "veritensor-fast"
    d.mkdir()
    if how == "world-writable":
        d.chmod(0o777)
    elif how == "group-writable":
        d.chmod(0o770)
    elif how == "other-owner":
        if os.geteuid() != 0:
            pytest.skip("changing a directory's owner needs root")
        os.chown(d, 54321, 54321)
    return d


HOSTILE = ["world-writable", "group-writable", "other-owner"]


@pytest.mark.parametrize("how", HOSTILE)
def test_rules_planted_in_a_directory_others_can_write_are_not_used(base: Path, how: str) -> None:
    d = _hostile_dir(base, how)
    path = rules_cache_path(builtin_rule_texts())
    assert path.parent == d
    path.write_bytes(_poisoned_rules())
    assert _fields(load_rules().rules) == _fields(_parsed())
    assert path.read_bytes() == _poisoned_rules()  # and nothing is written there either


def test_a_hostile_cache_loses_no_finding_end_to_end(base: Path, tmp_path: Path) -> None:
    _hostile_dir(base, "world-writable")
    rules_cache_path(builtin_rule_texts()).write_bytes(_poisoned_rules())
    tok = hf_token()
    target = tmp_path / "t"
    target.mkdir()
    (target / "app.txt").write_text(f"token = {tok}\n")
    env = {**os.environ, "VERITENSOR_FAST_CACHE": str(base)}
    code, rep = scan_json(target, "--jobs", "1", "--no-config", env=env)
    assert code == 1 and [f["rule_id"] for f in rep["findings"]] == [HF]
    assert sorted(p.name for p in (base / "veritensor-fast").iterdir()) == [rules_cache_path(builtin_rule_texts()).name]


@pytest.mark.parametrize("mode", [0o664, 0o646])
def test_a_cache_file_others_can_write_is_not_read(base: Path, mode: int) -> None:
    load_rules()  # creates the trusted directory and the genuine file
    path = rules_cache_path(builtin_rule_texts())
    path.write_bytes(_poisoned_rules())
    path.chmod(mode)
    assert _fields(load_rules().rules) == _fields(_parsed())


def test_a_symlinked_cache_file_is_not_followed(base: Path, tmp_path: Path) -> None:
    load_rules()
    path = rules_cache_path(builtin_rule_texts())
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(_poisoned_rules())
    path.unlink()
    path.symlink_to(elsewhere)
    assert _fields(load_rules().rules) == _fields(_parsed())


def test_a_new_cache_is_private(base: Path) -> None:
    load_rules()
    d = base / "veritensor-fast"
    assert d.stat().st_mode & 0o777 == 0o700
    files = list(d.iterdir())
    assert files and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert not [f for f in files if f.name.endswith(".tmp")]


TOKEN_DB = [rb"hf_[A-Za-z0-9]{34}"]


@pytest.mark.parametrize("how", HOSTILE)
def test_a_database_planted_where_others_can_write_is_not_loaded(base: Path, how: str) -> None:
    hsdb.compile_cached(TOKEN_DB)  # learn the file name the key gives
    (name,) = [p.name for p in (base / "veritensor-fast").iterdir()]
    for p in (base / "veritensor-fast").iterdir():
        p.unlink()
    (base / "veritensor-fast").rmdir()
    d = _hostile_dir(base, how)
    (d / name).write_bytes(hsdb.compile_patterns([rb"never_matches_[0-9]{99}"]))
    scanner = hsdb.Scanner(hsdb.compile_cached(TOKEN_DB))
    assert scanner.scan(b"x hf_" + b"aB3" * 11 + b"c\n") != []


def test_a_plan_planted_where_others_can_write_is_not_used(base: Path) -> None:
    rules = list(load_rules().rules)
    want = pf.prefilter_plan(rules)
    pf.cached_plan(rules)
    (plan_file,) = (base / "veritensor-fast").glob("pyast-plan-*.json")
    other = pf.prefilter_plan([r for r in rules if r.id == HF])  # a plan that admits far fewer files
    assert other != want
    name = plan_file.name
    for p in (base / "veritensor-fast").iterdir():
        p.unlink()
    (base / "veritensor-fast").rmdir()
    d = _hostile_dir(base, "world-writable")
    (d / name).write_text(json.dumps(_plan_to_json(other)))
    assert pf.cached_plan(rules) == want


def test_a_cached_database_is_loaded_once(base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hsdb.compile_cached(TOKEN_DB)  # fills the cache
    calls: list[int] = []
    real = hsdb.hyperscan.loadb

    def counting(*a: Any, **k: Any) -> Any:
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(hsdb.hyperscan, "loadb", counting)
    scanner = hsdb.Scanner(hsdb.compile_cached(TOKEN_DB))
    assert len(calls) == 1
    assert scanner.scan(b"x hf_" + b"aB3" * 11 + b"c\n") != []
    other = hsdb.Scanner(hsdb.compile_patterns(TOKEN_DB))  # bytes not from the cache: loaded as before
    assert len(calls) == 2 and other.scan(b"hf_" + b"aB3" * 11 + b"c") != []


def test_cache_load_refuses_what_it_cannot_trust(tmp_path: Path) -> None:
    from veritensor_fast.kernels import diskcache

    d = tmp_path / "c"
    diskcache.cache_store(d / "x.bin", b"data")
    assert diskcache.cache_load(d / "x.bin") == b"data"
    assert diskcache.cache_load(d / "missing.bin") is None
    (d / "dir.bin").mkdir()
    assert diskcache.cache_load(d / "dir.bin") is None
    d.chmod(0o777)
    try:
        assert diskcache.cache_load(d / "x.bin") is None
        diskcache.cache_store(d / "y.bin", b"data")
        assert not (d / "y.bin").exists()
    finally:
        d.chmod(0o700)


def test_reading_a_small_cache_file_allocates_about_its_size(tmp_path: Path) -> None:
    """Not the size limit: ``read(limit)`` allocates the whole limit up front (64 MiB for every cache read)."""
    import tracemalloc

    from veritensor_fast.kernels import diskcache

    d = tmp_path / "c"
    diskcache.cache_store(d / "x.bin", b"x" * 100_000)
    tracemalloc.start()
    try:
        assert diskcache.cache_load(d / "x.bin") == b"x" * 100_000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
