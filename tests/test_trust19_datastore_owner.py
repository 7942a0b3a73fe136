"""trust19: the default datastore is believed only when no other user could have written it.

A history sweep does not read again a blob its datastore lists as scanned (it reports the stored findings).
With ``XDG_CACHE_HOME`` on a shared ``/tmp``, another user could create ``veritensor-fast/datastores`` first
(world-writable) and plant a datastore listing a secret's blob as scanned with no findings: on main the secret
was then never reported. Now such a datastore is not used (a ``limit`` error says so) and every blob is read.
The other user is simulated by the directory's mode (world-writable), which the check treats the same way."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from conftest import scan_json, token_repo


def _repo(tmp_path: Path) -> Path:
    return token_repo(tmp_path / "r")


def test_a_planted_datastore_in_a_shared_cache_is_not_believed(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    env = {"XDG_CACHE_HOME": str(tmp_path / "shared")}
    code, rep = scan_json("--history", "--jobs", "1", str(repo), env=env)
    assert code == 1 and len(rep["findings"]) == 1, rep
    stores = list((tmp_path / "shared" / "veritensor-fast" / "datastores").glob("*.sqlite"))
    assert len(stores) == 1
    # another user's doing: the directory is world-writable and the finding is gone from the stored sweep
    os.chmod(stores[0].parent, 0o777)
    db = sqlite3.connect(stores[0])
    db.execute("DELETE FROM findings")
    db.execute("DELETE FROM reported")
    db.commit()
    db.close()
    code, rep = scan_json("--history", "--jobs", "1", str(repo), env=env)
    assert len(rep["findings"]) == 1, rep  # the blob was read again
    assert [e["kind"] for e in rep["errors"]] == ["limit"] and "another user" in rep["errors"][0]["reason"]


def test_our_own_datastore_is_used(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    env = {"XDG_CACHE_HOME": str(tmp_path / "mine")}
    scan_json("--history", "--jobs", "1", str(repo), env=env)
    code, rep = scan_json("--history", "--jobs", "1", str(repo), env=env)
    assert code == 1 and len(rep["findings"]) == 1 and rep["errors"] == [], rep
    assert rep["stats"].get("blobs_from_datastore", 0) >= 1 or rep["stats"].get("datastore"), rep["stats"]
