"""Issue 10 §3 and issue 11: history scans never believe state the scanned repository ships, never write
through a symbolic link, rebuild a datastore that does not verify, and keep commit authors and messages out of
the datastore."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from veritensor_fast.datastore import default_location
from veritensor_fast.findings import fingerprint

from conftest import git_run, hf_token, init_repo, run_cli

RULE = "huggingface.user-token"


@pytest.fixture
def cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # this process (default_location) and the CLI
    return {"XDG_CACHE_HOME": str(tmp_path / "cache")}


def _leaky_repo(root: Path, tok: str, message: str = "add config", author: str = "A U Thor") -> Path:
    repo = init_repo(root / "repo")
    (repo / "leak.py").write_text(f"TOKEN = '{tok}'\n")
    git_run(repo, "add", "-A")
    git_run(repo, "-c", f"user.name={author}", "commit", "-qm", message, "--author", f"{author} <m@x.invalid>")
    return repo


def _history(repo: Path, *extra: str, env: dict[str, str], cwd: Path) -> tuple[int, dict, str]:
    p = run_cli("scan", "--history", "--format", "json", "--no-progress", "-j1", repo, *extra, cwd=cwd, env=env,
                timeout=120)
    assert p.stdout, p.stderr
    return p.returncode, json.loads(p.stdout), p.stderr


def test_shipped_datastore_is_not_believed(tmp_path: Path, cache_env: dict[str, str]) -> None:
    tok = hf_token()
    repo = _leaky_repo(tmp_path, tok)
    shipped = repo / ".git" / "veritensor-fast" / "datastore.sqlite"  # where it used to live by default
    code, _, _ = _history(repo, "--datastore", shipped, env=cache_env, cwd=tmp_path)
    assert code == 1
    db = sqlite3.connect(shipped)
    db.execute("DELETE FROM findings")
    db.commit()
    db.close()
    code, rep, _ = _history(repo, env=cache_env, cwd=tmp_path)
    assert code == 1 and [f["fingerprint"] for f in rep["findings"]] == [fingerprint(RULE, tok)]
    assert rep["stats"]["datastore"] == default_location(os.path.realpath(repo / ".git"))
    assert rep["stats"]["datastore"].startswith(str(tmp_path / "cache"))


@pytest.mark.parametrize("where", ["explicit", "default"])
def test_symlinked_datastore_is_not_written_through(tmp_path: Path, cache_env: dict[str, str], where: str) -> None:
    tok = hf_token()
    repo = _leaky_repo(tmp_path, tok)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    if where == "explicit":
        link = tmp_path / "ds.sqlite"
        extra: tuple[str, ...] = ("--datastore", str(link))
    else:
        link = Path(default_location(os.path.realpath(repo / ".git")))
        assert str(link).startswith(cache_env["XDG_CACHE_HOME"])
        extra = ()
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(victim)
    code, rep, _ = _history(repo, *extra, env=cache_env, cwd=tmp_path)
    assert code == 1 and [f["fingerprint"] for f in rep["findings"]] == [fingerprint(RULE, tok)]
    assert victim.read_text() == "precious\n"
    assert any("symbolic link" in e["reason"] for e in rep["errors"])
    assert not Path(str(link) + "-wal").exists()


def test_corrupt_datastore_is_reported_and_rebuilt(tmp_path: Path, cache_env: dict[str, str]) -> None:
    tok = hf_token()
    repo = _leaky_repo(tmp_path, tok)
    for i in range(30):  # enough rows for several pages
        (repo / f"f{i}.txt").write_text(f"file {i}\n" * 200)
    git_run(repo, "add", "-A")
    git_run(repo, "commit", "-qm", "more")
    ds = tmp_path / "ds.sqlite"
    code, _, _ = _history(repo, "--datastore", ds, env=cache_env, cwd=tmp_path)
    assert code == 1
    sqlite3.connect(ds).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    raw = bytearray(ds.read_bytes())
    assert raw[:16] == b"SQLite format 3\x00" and len(raw) > 3 * 4096
    raw[4096:] = b"\xa5" * (len(raw) - 4096)  # valid header page, every other page damaged
    ds.write_bytes(bytes(raw))
    code, rep, err = _history(repo, "--datastore", ds, env=cache_env, cwd=tmp_path)
    assert code == 1, err
    assert [f["fingerprint"] for f in rep["findings"]] == [fingerprint(RULE, tok)]
    assert "Traceback" not in err and "does not verify" in err and str(ds) in err
    code, rep, err = _history(repo, "--datastore", ds, env=cache_env, cwd=tmp_path)  # the rebuilt one works
    assert code == 1 and "does not verify" not in err and len(rep["findings"]) == 1


def test_commit_author_and_message_are_not_stored(tmp_path: Path, cache_env: dict[str, str]) -> None:
    tok = hf_token()
    repo = _leaky_repo(tmp_path, tok, message="Zanzibar-marker commit", author="Quixote Marker")
    ds = tmp_path / "ds.sqlite"
    for _ in range(2):  # the second run takes provenance from the datastore's cache
        code, rep, _ = _history(repo, "--datastore", ds, env=cache_env, cwd=tmp_path)
        assert code == 1
        assert rep["findings"][0]["commit"]["author"] == "Quixote Marker"
        assert rep["findings"][0]["commit"]["message"] == "Zanzibar-marker commit"
    stored = b"".join(Path(str(ds) + s).read_bytes() for s in ("", "-wal") if Path(str(ds) + s).exists())
    assert b"Zanzibar" not in stored and b"Quixote" not in stored and b"m@x.invalid" not in stored


def test_found_secret_in_a_path_is_not_stored_in_clear(tmp_path: Path, cache_env: dict[str, str]) -> None:
    tok = hf_token()
    repo = init_repo(tmp_path / "repo")
    (repo / f"{tok}.txt").write_text(f"key: {tok}\n")  # a file named after the token it holds
    git_run(repo, "add", "-A")
    git_run(repo, "commit", "-qm", "add")
    ds = tmp_path / "ds.sqlite"
    for _ in range(2):  # the second sweep is incremental: paths come back from the datastore
        code, rep, _ = _history(repo, "--datastore", ds, env=cache_env, cwd=tmp_path)
        assert code == 1 and [f["fingerprint"] for f in rep["findings"]] == [fingerprint(RULE, tok)]
    sqlite3.connect(ds).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    stored = b"".join(Path(str(ds) + s).read_bytes() for s in ("", "-wal") if Path(str(ds) + s).exists())
    assert tok.encode() not in stored
