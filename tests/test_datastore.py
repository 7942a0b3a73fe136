"""The incremental SQLite datastore: memo keys, what is stored (never secrets), sweeps and --new-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from veritensor_fast.datastore import DataStore, DataStoreError, finding_key, memo_key, stats
from veritensor_fast.findings import Finding, fingerprint, redact
from veritensor_fast.worker import ScanOptions

from conftest import hf_token


def _finding(secret: str, path: str = "a.py", line: int = 3) -> Finding:
    rid = "huggingface.user-token"
    return Finding(rule_id=rid, kind="secret", severity="critical", path=path, line=line, column=5,
                   message="Hugging Face user access token", redacted=redact(secret),
                   fingerprint=fingerprint(rid, secret), location={"cell": 2}, decoded="base64", secret=secret)


def test_memo_key_tracks_rules_and_options() -> None:
    base = memo_key(ScanOptions())
    assert base == memo_key(ScanOptions())
    assert base != memo_key(ScanOptions(strict_secrets=True))
    assert base != memo_key(ScanOptions(disabled_rules=("slack.token",)))
    assert base != memo_key(ScanOptions(include_outputs=False))
    assert base != memo_key(ScanOptions(), rules_version="0000")


def test_record_and_load_without_secrets(tmp_path: Path) -> None:
    tok = hf_token()
    ds = DataStore(tmp_path / "d.sqlite")
    ds.record("m1", [("blob1", [_finding(tok)]), ("blob2", [])])
    assert ds.scanned("m1") == {"blob1", "blob2"} and ds.scanned("m2") == set()
    got = ds.findings("m1")
    assert list(got) == ["blob1"]
    [f] = got["blob1"]
    expect = _finding(tok)
    assert f.secret is None and f.redacted == expect.redacted and f.fingerprint == expect.fingerprint
    assert (f.path, f.line, f.column, f.location, f.decoded) == ("a.py", 3, 5, {"cell": 2}, "base64")
    assert ds.findings("m1", {"blob2"}) == {}
    # recording a blob again replaces its findings (no duplicates)
    ds.record("m1", [("blob1", [_finding(tok)])])
    assert len(ds.findings("m1")["blob1"]) == 1
    ds.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert tok.encode() not in raw
    assert stats(tmp_path / "d.sqlite")["scanned"] == 2


def test_wal_and_committed_batches_survive(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    ds = DataStore(path)
    ds.record("m", [("b1", [])])
    # another connection (a second process after a kill) sees the committed batch
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert other.execute("SELECT blob FROM scanned").fetchall() == [("b1",)]
    other.close()
    ds.close()


def test_sweeps_and_new_only(tmp_path: Path) -> None:
    ds = DataStore(tmp_path / "d.sqlite")
    f = _finding(hf_token())
    k = finding_key(f)
    assert k == finding_key(_finding(f.secret or "", line=40))  # an edit that moves the line: same finding
    assert k != finding_key(_finding(f.secret or "", path="elsewhere.py"))  # copied elsewhere: new
    assert k != finding_key(_finding(hf_token()))
    s1 = ds.begin_sweep("/r", "m")
    assert ds.reported_before([k], s1) == set()
    # a killed sweep (never finished) hides nothing later
    s2 = ds.begin_sweep("/r", "m")
    ds.finish_sweep(s2, [k])
    s3 = ds.begin_sweep("/r", "m")
    assert ds.reported_before([k, "other"], s3) == {k}
    assert ds.reported_before([k], s2) == set()
    ds.close()


def test_schema_mismatch_and_unwritable(tmp_path: Path) -> None:
    p = tmp_path / "d.sqlite"
    DataStore(p).close()
    db = sqlite3.connect(p)
    db.execute("UPDATE meta SET value='999' WHERE key='schema'")
    db.commit()
    db.close()
    DataStore(p).close()  # does not verify: moved aside and rebuilt (never believed, never fatal)
    assert (tmp_path / "d.sqlite.invalid").exists()
    assert sqlite3.connect(p).execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0] != "999"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataStoreError):
        DataStore(tmp_path / "file" / "d.sqlite")


def test_sweep_state_and_provenance_cache(tmp_path: Path) -> None:
    from veritensor_fast.datastore import PROVENANCE_SCOPE, Provenance, SweepState

    ds = DataStore(tmp_path / "d.sqlite")
    assert ds.last_state("/r", "s") is None
    s1 = ds.begin_sweep("/r", "m")
    st = SweepState(("a" * 40, "b" * 40), 7, {"c" * 40: ("x.py", -1, False), "d" * 40: ("big", 9000, True)})
    ds.finish_sweep(s1, [], ("/r", "s", st))
    assert ds.last_state("/r", "s") == st and ds.last_state("/other", "s") is None
    s2 = ds.begin_sweep("/r", "m")
    ds.finish_sweep(s2, [], ("/r", "s", SweepState(("e" * 40,), 8, {})))
    assert ds.last_state("/r", "s") == SweepState(("e" * 40,), 8, {})  # replaced, not merged
    p = Provenance(True, 5, {"id": "f" * 40, "author": "Ada", "email": "a@x", "date": "2023", "message": "m"})
    none = Provenance(False, 1 << 62, {})
    ds.save_provenance("/r", {("c" * 40, "x.py"): p, ("d" * 40, "y"): none}, ["t" * 40])
    got = ds.provenance("/r", [("c" * 40, "x.py"), ("c" * 40, "other.py"), ("d" * 40, "y")])
    # author, email and message are not stored (read back from the repository; "/r" is none)
    assert got[("c" * 40, "x.py")] == Provenance(True, 5, {**p.commit, "author": None, "email": None,
                                                            "message": None})
    assert ("c" * 40, "other.py") not in got
    assert ds.db.execute("SELECT COUNT(*) FROM provenance WHERE author IS NOT NULL OR email IS NOT NULL "
                         "OR message IS NOT NULL").fetchone() == (0,)
    assert got[("d" * 40, "y")].commit == {"id": None, "author": None, "email": None, "date": None,
                                           "message": None}
    assert ds.last_state("/r", PROVENANCE_SCOPE) == SweepState(("t" * 40,), 0, {})
    ds.save_provenance("/r", {}, ["u" * 40], clear=True)
    assert ds.provenance("/r", [("c" * 40, "x.py")]) == {}
    ds.close()
