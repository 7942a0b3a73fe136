"""Annotated tags in --history: a release tag (``git tag -a``) is no corrupt object.

``git rev-list --objects --filter=object:type=blob --all`` still names each annotated tag a ref points to, with
the tag's name as its path; the history source took every named object for a blob and reported each tag as
"missing from the object database" (kind corrupt), so every repository with a release tag gave an incomplete
scan (exit 3 on a clean repository).
"""
from __future__ import annotations

from pathlib import Path

from tests.conftest import git_run, hf_token, init_repo, scan_json


def _tagged(path: Path, secret: str | None = None) -> Path:
    repo = init_repo(path)
    if secret is not None:
        (repo / "k.env").write_text(f"HF_TOKEN={secret}\n")
        git_run(repo, "add", "k.env")
        git_run(repo, "commit", "-q", "-m", "add env")
    git_run(repo, "tag", "-a", "v1.0", "-m", "release 1.0")
    git_run(repo, "tag", "-a", "v1.0-nested", "-m", "a tag of a tag", "v1.0")  # a tag pointing to a tag
    return repo


def test_clean_repository_with_annotated_tags_is_complete(tmp_path: Path) -> None:
    repo = _tagged(tmp_path / "r")
    code, rep = scan_json(repo, "--history", "--no-datastore")
    assert rep["errors"] == []
    assert rep["findings"] == []
    assert code == 0


def test_annotated_tags_keep_findings_and_incremental_sweeps(tmp_path: Path) -> None:
    secret = hf_token()
    repo = _tagged(tmp_path / "r", secret)
    store = tmp_path / "ds.sqlite"
    for _ in range(2):  # a first sweep, then an incremental one from the datastore
        code, rep = scan_json(repo, "--history", "--datastore", store)
        assert rep["errors"] == []
        assert [(f["rule_id"], f["path"]) for f in rep["findings"]] == [("huggingface.user-token", "k.env")]
        assert code == 1
    git_run(repo, "tag", "-a", "v2.0", "-m", "release 2.0")
    code, rep = scan_json(repo, "--history", "--datastore", store)
    assert rep["errors"] == []
    assert code == 1
