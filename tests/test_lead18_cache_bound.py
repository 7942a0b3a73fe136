"""The on-disk cache is bounded (``kernels/diskcache``): a write that finds the directory over its limit removes
the least recently used files, and a file read from the cache counts as used."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from veritensor_fast.kernels import diskcache


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VERITENSOR_FAST_CACHE", str(tmp_path))
    monkeypatch.setattr(diskcache, "MAX_CACHE_BYTES", 10_000)
    d = diskcache.cache_dir()
    d.mkdir(mode=0o700)
    return d


def test_a_write_over_the_bound_removes_the_least_recently_used(cache: Path) -> None:
    for i in range(8):  # 8 x 1,000 bytes: under the 10,000 bound, nothing removed
        diskcache.cache_store(cache / f"f{i}", bytes(1000))
        os.utime(cache / f"f{i}", (1000 + i, 1000 + i))  # f0 oldest
    assert len(list(cache.iterdir())) == 8
    assert diskcache.cache_load(cache / "f1") == bytes(1000)  # f1 used now: newest
    diskcache.cache_store(cache / "big", bytes(4000))  # 12,000 bytes: pruned to at most 5,000
    left = sorted(p.name for p in cache.iterdir())
    assert sum((cache / n).stat().st_size for n in left) <= 5000
    assert "big" in left and "f1" in left  # the file just written and the one just used stay
    assert "f0" not in left and "f2" not in left  # the least recently used went first


def test_under_the_bound_nothing_is_removed(cache: Path) -> None:
    for i in range(5):
        diskcache.cache_store(cache / f"f{i}", bytes(1000))
    assert len(list(cache.iterdir())) == 5
