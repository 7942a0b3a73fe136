"""review21: what a real ``git push`` sends through the plain pre-push hook (``scan --pre-push REMOTE``) and the
pre-commit pre-push stage, attacked with real git.

- a pushed annotated tag may name a blob or a tree, not a commit (``git tag -a v1 <blob-id>``): git sends that
  blob (or every file of the tree) and no commit walk sees it; it was pushed unscanned.
- tags nest at any depth (``git tag -a outer inner``): the chain was followed 32 deep only, so a token in the
  33rd tag was pushed unscanned (``--history`` found it); 10,000 deep is read by one ``rev-list``.
- git's pre-push input holds ref names, which may be any bytes: ``caf\\xe9`` under a strict UTF-8 locale was a
  traceback and exit 1 (the push blocked), a name with U+2028 split the line (exit 2, the push blocked).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import git_run, hf_token, on_remote, plain_hook_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return plain_hook_repo(tmp_path)


def push(repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    p = subprocess.run(["git", "-C", str(repo), "push", "origin", *args], capture_output=True, env=env,
                       check=False)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def blob(repo: Path, text: str) -> str:
    p = subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--stdin"], input=text, capture_output=True,
                       text=True, check=True)
    return p.stdout.strip()


def test_tag_naming_a_blob_is_scanned(repo: Path) -> None:
    tok = hf_token()
    git_run(repo, "tag", "-a", "keyblob", "-m", "a key", blob(repo, f"HF_TOKEN={tok}\n"))
    code, out = push(repo, "keyblob")
    assert code != 0 and "huggingface.user-token" in out and "blob/" in out, out
    assert tok not in out and not on_remote(repo, "refs/tags/keyblob")


def test_tag_naming_a_tree_is_scanned(repo: Path, tmp_path: Path) -> None:
    tok = hf_token()
    (repo / "cfg").mkdir()
    (repo / "cfg" / "k.py").write_text(f'TOKEN = "{tok}"\n')
    git_run(repo, "add", "cfg")
    tree = git_run(repo, "write-tree").stdout.strip()
    git_run(repo, "reset", "-q")
    git_run(repo, "tag", "-a", "snapshot", "-m", "a tree", tree)
    code, out = push(repo, "snapshot")
    assert code != 0 and "cfg/k.py" in out and tok not in out, out
    assert not on_remote(repo, "refs/tags/snapshot")


def test_deeply_nested_tag_is_scanned(repo: Path) -> None:
    tok = hf_token()
    git_run(repo, "tag", "-a", "t0", "-m", f"inner\n\nHF_TOKEN={tok}\n")
    for i in range(1, 40):  # each a real ``git tag -a`` of the previous tag
        git_run(repo, "-c", "advice.nestedTag=false", "tag", "-a", f"t{i}", "-m", f"level {i}", f"t{i - 1}")
    for i in range(39):
        git_run(repo, "tag", "-d", f"t{i}")  # only the outermost is a ref
    code, out = push(repo, "t39")
    assert code != 0 and "tag:" in out and "huggingface.user-token" in out and tok not in out, out
    assert not on_remote(repo, "refs/tags/t39")


@pytest.mark.parametrize("name", [b"caf\xe9", "a\u2028b".encode(), "x\x85y".encode()])
def test_ref_names_that_are_not_clean_utf8_push(repo: Path, name: bytes) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}  # as under a real en_US.UTF-8 locale
    branch = os.fsdecode(name)
    subprocess.run(["git", "-C", str(repo), "branch", name], check=True)
    code, out = push(repo, branch, env=env)
    assert code == 0 and "Traceback" not in out and on_remote(repo, f"refs/heads/{branch}"), out
