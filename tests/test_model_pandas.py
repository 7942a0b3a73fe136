"""pandas ``to_pickle(compression=...)`` files written by real pandas (``tests/fixtures/pandas_pickles/make.py``).

A benign DataFrame gives no finding whatever the compression; a malicious object pickled next to it gives its
CRITICAL ``posix.system`` finding (``pandas.read_pickle`` would run it), never "corrupt".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.models import analyze

from conftest import scan_json

FIX = Path(__file__).parent / "fixtures" / "pandas_pickles"
SUFFIXES = ("gz", "bz2", "xz", "zst", "zip")


def test_fixture_set_is_complete() -> None:
    listed = set((FIX / "VERSIONS").read_text().split("files:")[1].split())
    assert listed == {f"{k}.pkl.{s}" for k in ("frame", "evil") for s in SUFFIXES}


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_benign_pandas_frame_has_no_finding(suffix: str) -> None:
    name = f"frame.pkl.{suffix}"
    assert analyze((FIX / name).read_bytes(), name) == []


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_malicious_pandas_pickle_is_critical(suffix: str) -> None:
    name = f"evil.pkl.{suffix}"
    issues = analyze((FIX / name).read_bytes(), name)
    assert [i.evidence for i in issues if i.severity == "critical"] == ["posix.system"], issues
    assert [i for i in issues if i.severity != "critical"] == [], issues  # the DataFrame beside it is data


def test_pandas_fixtures_by_cli_without_names(tmp_path: Path) -> None:
    # content decides, not the name: the same bytes under names that say nothing
    for p in FIX.glob("*.pkl.*"):
        (tmp_path / p.name.replace(".pkl.", "_")).write_bytes(p.read_bytes())
    code, rep = scan_json(tmp_path)
    crit = sorted(f["path"] for f in rep["findings"] if f["kind"] == "model" and f["severity"] == "critical")
    assert crit == sorted(f"evil_{s}" for s in SUFFIXES)
    assert not [f for f in rep["findings"] if f["kind"] == "model" and f["path"].startswith("frame")]
    assert code == 1
