"""review24: a directory that keeps changing during a scan is not listed again for every batch. model24's
``DcpDirs`` asks :func:`sniff.listed_metadata_names` once per directory and batch, which lists the directory again
whenever its mtime moved (or is within 2 s of now): a 100,000-file directory that something wrote to during the
scan (a log, a temporary file every 0.5 s) was listed for each of its ~400 batches, 3.0 s -> 22.5 s for
``--jobs 1`` (quadratic in the directory's size). A changed directory whose listing took more than 1 ms is now
listed again only once ten times that listing's own time has passed since it: the listing is at most 10 % of the
time spent, and its answer at most that old (a small directory is listed again at once, as before)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from veritensor_fast.models import sniff


def _slow(monkeypatch: pytest.MonkeyPatch, cost_ns: int) -> tuple[list[int], list[str]]:
    """A fake clock and a listing that takes ``cost_ns`` on it (a huge directory); the listings made."""
    clock = [10**15]
    listings: list[str] = []
    real = sniff.metadata_names

    def listing(directory: str) -> tuple[str, ...]:
        listings.append(directory)
        clock[0] += cost_ns
        return real(directory)

    monkeypatch.setattr(sniff, "metadata_names", listing)
    monkeypatch.setattr(sniff, "_clock", lambda: clock[0], raising=False)
    monkeypatch.setattr(sniff, "_LISTED", {})
    return clock, listings


def test_a_changing_directory_is_listed_a_bounded_number_of_times(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    clock, listings = _slow(monkeypatch, 50_000_000)  # 50 ms a listing
    d = tmp_path / "logs"
    d.mkdir()
    dirs = sniff.DcpDirs()
    for batch in range(100):
        (d / f"tmp{batch}").write_bytes(b"x")  # the directory's mtime moves between batches
        dirs.clear()  # a new batch (``ModelDetector.quiet_batch``)
        assert not dirs.storage_file(str(d / "f0.txt"))
        clock[0] += 5_000_000  # the batch's own scan: 5 ms
    assert len(listings) <= 12  # the merged model24 code: 100 (each listing 50 ms, each batch 5 ms)


def test_metadata_added_is_seen_once_the_window_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, listings = _slow(monkeypatch, 50_000_000)
    d = tmp_path / "ck"
    d.mkdir()
    (d / "shard0").write_bytes(b"x")
    dirs = sniff.DcpDirs()
    assert not dirs.storage_file(str(d / "shard0"))
    (d / "__1.metadata").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    clock[0] += 600_000_000  # more than ten times the listing's 50 ms
    dirs.clear()
    assert dirs.storage_file(str(d / "shard0")) and len(listings) == 2


def test_a_cheap_listing_is_taken_again_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock, listings = _slow(monkeypatch, 100_000)  # 0.1 ms: an ordinary directory
    d = tmp_path / "ck"
    d.mkdir()
    (d / "shard0").write_bytes(b"x")
    old = 10**18
    os.utime(d, ns=(old, old))
    assert not sniff.holds_metadata(str(d))
    (d / ".metadata").write_bytes(pickle.dumps({"a": 1}, protocol=4))  # no time passes on the clock
    assert sniff.holds_metadata(str(d)) and len(listings) == 2
