"""hrev22: attacks on hist22's one-walk history listing (``sources/git_walk.py``), on real repositories built and
cloned with the real ``git`` CLI."""

from __future__ import annotations

from pathlib import Path

from conftest import git_run, hf_token, init_repo, scan_json


def _blobless_clone(tmp_path: Path) -> tuple[Path, str, str]:
    """A blobless partial clone (``--filter=blob:none``, as GitHub suggests for big repositories) of a repository
    whose history held a token in ``old.py`` (deleted since) and whose HEAD holds one in ``cur.py``: the clone
    has the HEAD blobs only, the old one is missing (its promisor cannot be fetched from during a scan)."""
    src = init_repo(tmp_path / "src")
    old, cur = hf_token(), hf_token()
    (src / "old.py").write_text(f"T = '{old}'\n")
    git_run(src, "add", "old.py")
    git_run(src, "commit", "-q", "-m", "old")
    git_run(src, "rm", "-q", "old.py")
    (src / "cur.py").write_text(f"T = '{cur}'\n")
    git_run(src, "add", "cur.py")
    git_run(src, "commit", "-q", "-m", "cur")
    git_run(src, "config", "uploadpack.allowFilter", "true")
    clone = tmp_path / "clone"
    git_run(tmp_path, "clone", "-q", "--filter=blob:none", "--no-local", f"file://{src}", str(clone))
    return clone, old, cur


def test_blobless_partial_clone_history_is_scanned_not_a_crash(tmp_path: Path) -> None:
    # one-walk listed the missing blob from ``git log --raw`` (which needs no blob) and asked ``cat-file
    # --batch-check`` its type: cat-file died lazily fetching it, and the whole scan ended in exit 2 with nothing
    clone, old, cur = _blobless_clone(tmp_path)
    code, rep = scan_json("--history", "--no-datastore", clone)
    assert code == 1, rep  # a finding (the errors say the scan is incomplete)
    assert [(f["path"], bool((f.get("commit") or {}).get("id"))) for f in rep["findings"]] == [("cur.py", True)]
    errs = rep["errors"]
    assert any(e["path"] == "old.py" and e["kind"] == "corrupt" and "missing" in e["reason"] for e in errs), errs
    assert old not in str(rep) and cur not in str(rep)
