"""Kernels: numpy entropy against a pure-Python reference; chunked Hyperscan scanning of big buffers."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veritensor_fast.kernels import entropy, hsdb


def ref_entropy(b: bytes) -> float:
    if not b:
        return 0.0
    n = len(b)
    return -sum(c / n * math.log2(c / n) for c in Counter(b).values())


@given(st.lists(st.binary(max_size=80), max_size=20))
def test_entropy_many_matches_reference(tokens: list[bytes]) -> None:
    got = entropy.shannon_many(tokens)
    assert len(got) == len(tokens)
    for t, g in zip(tokens, got, strict=True):
        assert g == pytest.approx(ref_entropy(t), abs=1e-9)


def test_entropy_known_values() -> None:
    assert entropy.shannon(b"aaaa") == 0.0
    assert entropy.shannon(b"abab") == pytest.approx(1.0)
    assert entropy.shannon(bytes(range(256))) == pytest.approx(8.0)
    assert entropy.sequential_fraction(b"abcdefgh") == 1.0
    assert entropy.sequential_fraction(b"a1Zq9x") < 0.3


def test_chunked_scan_finds_matches_across_chunk_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    # Shrink the chunk so a few KB exercise the >4 GiB code path (overlapping chunks).
    monkeypatch.setattr(hsdb, "CHUNK", 4096)
    monkeypatch.setattr(hsdb, "OVERLAP", 256)
    scanner = hsdb.Scanner(hsdb.compile_patterns([rb"hf_[A-Za-z0-9]{34}"]))
    rng = random.Random(5)
    buf = bytearray(b"." * 50_000)
    ends = []
    for pos in [10, 4075, 7920, 12_000, 49_960]:
        tok = b"hf_" + bytes(rng.choice(b"abcdefghijKLMNOP0123") for _ in range(34))
        buf[pos:pos + 37] = tok
        ends.append(pos + 37)
    hits = scanner.scan(bytes(buf))
    assert sorted({e for _, e in hits}) == ends


def test_corrupt_cache_file_is_recompiled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERITENSOR_FAST_CACHE", str(tmp_path))
    pats = [rb"hf_[A-Za-z0-9]{34}"]
    hsdb.compile_cached(pats)
    (cached,) = (tmp_path / "veritensor-fast").iterdir()
    cached.write_bytes(b"garbage")
    scanner = hsdb.Scanner(hsdb.compile_cached(pats))  # no DatabaseError: the garbage was not used
    assert scanner.scan(b"x hf_" + b"aB3" * 11 + b"c") != []
    assert cached.read_bytes() != b"garbage"
