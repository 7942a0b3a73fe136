"""hrev22: attacks on hist22's one-walk history listing (``sources/git_walk.py``), on real repositories built and
cloned with the real ``git`` CLI."""

from __future__ import annotations

import os
import subprocess
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


def _unborn_head(tmp_path: Path) -> tuple[Path, str]:
    """A repository whose HEAD is on a branch with no commit yet (``git checkout --orphan gh-pages`` before the
    first commit there) while ``main`` holds a token: ``git worktree list`` names the unborn HEAD as the null id."""
    repo = init_repo(tmp_path / "r")
    tok = hf_token()
    (repo / "k.py").write_text(f"T = '{tok}'\n")
    git_run(repo, "add", "k.py")
    git_run(repo, "commit", "-q", "-m", "k")
    git_run(repo, "checkout", "-q", "--orphan", "gh-pages")
    return repo, tok


def test_unborn_head_is_not_a_corrupt_history(tmp_path: Path) -> None:
    # the null id became a tip for the one-walk's extra listing: ``rev-list`` said "bad object 0000...", the sweep
    # reported a corrupt history (exit 3) and fell back to every blob in the database
    repo, _ = _unborn_head(tmp_path)
    code, rep = scan_json("--history", "--no-datastore", repo)
    assert rep["errors"] == [] and code == 1, rep
    assert [(f["path"], f["line"]) for f in rep["findings"]] == [("k.py", 1)]


def test_unborn_head_with_a_datastore_then_incremental(tmp_path: Path) -> None:
    # the same null id went to the datastore sweep's walk (--stdin) since before the one-walk (75722a6 too)
    repo, _ = _unborn_head(tmp_path)
    db = tmp_path / "ds.db"
    code, rep = scan_json("--history", "--datastore", db, repo)
    assert rep["errors"] == [] and [f["path"] for f in rep["findings"]] == ["k.py"], rep
    (repo / "n.py").write_text(f"N = '{hf_token()}'\n")
    git_run(repo, "add", "n.py")
    git_run(repo, "commit", "-q", "-m", "first on gh-pages")
    code, rep = scan_json("--history", "--datastore", db, repo)
    assert rep["errors"] == [] and sorted(f["path"] for f in rep["findings"]) == ["k.py", "n.py"], rep


def test_empty_repository_is_a_clean_sweep(tmp_path: Path) -> None:
    repo = tmp_path / "e"
    repo.mkdir()
    git_run(repo, "init", "-q")
    code, rep = scan_json("--history", "--no-datastore", repo)
    assert (code, rep["errors"], rep["findings"]) == (0, [], []), rep


def test_a_ref_to_a_damaged_tree_does_not_lose_the_annotated_tags(tmp_path: Path) -> None:
    # the extra listing ran ``rev-list`` over the tips naming trees before the one over annotated tags: a subtree
    # missing under ``refs/odd/tree`` failed the first and the tags (a token in a release message) were never
    # listed nor scanned (75722a6's ``rev-list --objects --all`` died on it as well)
    repo = init_repo(tmp_path / "r")
    tok = hf_token()
    git_run(repo, "tag", "-a", "v1", "-m", f"release {tok}")
    (tmp_path / "x.txt").write_text("plain\n")
    blob = git_run(repo, "hash-object", "-w", str(tmp_path / "x.txt")).stdout.strip()
    sub = subprocess.run(["git", "-C", str(repo), "mktree"], input=f"100644 blob {blob}\tx.txt\n",
                         capture_output=True, text=True, check=True).stdout.strip()
    top = subprocess.run(["git", "-C", str(repo), "mktree"], input=f"040000 tree {sub}\tsub\n",
                         capture_output=True, text=True, check=True).stdout.strip()
    git_run(repo, "update-ref", "refs/odd/tree", top)
    os.remove(repo / ".git" / "objects" / sub[:2] / sub[2:])
    code, rep = scan_json("--history", "--no-datastore", repo)
    assert [f["path"].startswith("tag:") for f in rep["findings"]] == [True], rep
    assert len(rep["errors"]) == 1 and rep["errors"][0]["kind"] == "corrupt", rep["errors"]
    assert tok not in str(rep)
