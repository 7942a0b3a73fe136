"""``scan --pre-push REMOTE`` in a plain git pre-push hook: git's own list of pushed refs on stdin.

pre-commit runs no hook for a push that brings no new commit (a new tag on a commit the remote has) and names
only the first pushed ref: those pushes are seen only by a hook that reads git's pre-push input itself. Real git
pushing to a local bare repository through a real ``.git/hooks/pre-push`` script.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import git_run, hf_token, init_repo, on_remote, plain_hook_repo, run_cli


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return plain_hook_repo(tmp_path)


def push(repo: Path, *args: str) -> tuple[int, str]:
    p = git_run(repo, "push", "origin", *args, check=False)
    return p.returncode, p.stdout + p.stderr


def commit(repo: Path, name: str, text: str = "ok\n") -> None:
    (repo / name).write_text(text)
    git_run(repo, "add", name)
    git_run(repo, "commit", "-qm", f"add {name}")


def test_tag_on_a_commit_the_remote_has_blocks(repo: Path) -> None:
    tok = hf_token()
    git_run(repo, "tag", "-a", "v1", "-m", f"release\n\nHF_TOKEN={tok}\n")
    code, out = push(repo, "v1")
    assert code != 0 and "huggingface.user-token" in out and "tag:" in out, out
    assert tok not in out and not on_remote(repo, "refs/tags/v1")
    git_run(repo, "tag", "-d", "v1")
    git_run(repo, "tag", "-a", "v1", "-m", "clean release")
    code, out = push(repo, "v1")
    assert code == 0 and on_remote(repo, "refs/tags/v1"), out
    code, out = push(repo, "--delete", "v1")  # a deletion scans nothing
    assert code == 0 and not on_remote(repo, "refs/tags/v1"), out


def test_push_tags_and_follow_tags(repo: Path) -> None:
    tok = hf_token()
    git_run(repo, "tag", "-a", "a-clean", "-m", "clean")
    git_run(repo, "tag", "-a", "b-leak", "-m", f"token {tok}")  # on an old commit, after a clean tag
    code, out = push(repo, "--tags")
    assert code != 0 and "tag:" in out and tok not in out, out
    git_run(repo, "tag", "-d", "b-leak")
    commit(repo, "n.txt")
    git_run(repo, "tag", "-a", "v2", "-m", f"token {tok}")
    code, out = push(repo, "--follow-tags", "main")  # the branch first, then the tag
    assert code != 0 and "tag:" in out and tok not in out, out
    assert not on_remote(repo, "refs/tags/v2")


def test_branch_pushes_scan_commits_as_before(repo: Path) -> None:
    commit(repo, "clean.txt")
    git_run(repo, "tag", "light")  # a lightweight tag: its commits only
    code, out = push(repo, "main", "light")
    assert code == 0 and on_remote(repo, "refs/tags/light"), out
    tok = hf_token()
    commit(repo, "leak.env", f"T={tok}\n")
    git_run(repo, "rm", "-q", "leak.env")
    git_run(repo, "commit", "-qm", "remove it again")
    code, out = push(repo, "main")
    assert code != 0 and "leak.env" in out and tok not in out, out
    assert "clean.txt" not in out


def test_pre_push_input_checked_and_never_echoed(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    tok = hf_token()
    p = subprocess.run([*shlex.split(f"{shlex.quote(sys.executable)} -m veritensor_fast.cli"), "scan", "--pre-push",
                        "origin", "--no-progress"], input=f"refs/tags/{tok} nothex refs/tags/x 00\n", cwd=repo,
                       capture_output=True, text=True, check=False)
    assert p.returncode == 2 and "line 1" in p.stderr and tok not in p.stdout + p.stderr
    q = run_cli("scan", "--pre-push", "origin", "--staged", cwd=repo)
    assert q.returncode == 2 and "cannot be combined" in q.stderr
