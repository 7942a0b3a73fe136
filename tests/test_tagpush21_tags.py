"""A pushed annotated tag is scanned by the pre-push hook: ``git tag -a v1 -m "HF_TOKEN=..." && git push origin v1``.

The tag's message lives in a tag object, which no commit or blob of the pushed range holds. pre-commit hands the
hook TO = the tag object's id (a tag bringing new commits) or PRE_COMMIT_LOCAL_BRANCH = refs/tags/v1 (a first
push): the tag object (and each tag it nests) is now scanned as ``--history`` scans one, besides the commits.
Real git, real pre-commit pre-push hook, pushing to a local bare repository (``test_pre_push``'s fixture).

pre-commit itself runs no hook for a push that brings no new commit (a tag on a commit the remote has) and
scans only the first pushed ref's range (``--follow-tags``): ``test_follow_tags_*`` pins what it does see.
"""
from __future__ import annotations

import json
from pathlib import Path

from test_pre_push import push, pushing, remote_has

from conftest import git_run, hf_token, run_cli

__all__ = ["pushing"]  # the fixture, re-exported for pytest

Pushing = tuple[Path, Path, dict[str, str]]


def _commit(repo: Path, name: str, text: str = "ok\n") -> None:
    (repo / name).write_text(text)
    git_run(repo, "add", name)
    git_run(repo, "commit", "-qm", f"add {name}")


def test_token_in_pushed_tag_with_new_commits_blocks_the_push(pushing: Pushing) -> None:
    repo, remote, env = pushing
    assert push(repo, env, "main").returncode == 0
    _commit(repo, "next.txt")
    tok = hf_token()
    git_run(repo, "tag", "-a", "v1", "-m", f"release 1\n\nHF_TOKEN={tok}\n")
    p = push(repo, env, "v1")
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "huggingface.user-token" in out and "tag:" in out and tok not in out
    assert not remote_has(remote, "refs/tags/v1")


def test_first_push_of_a_tag_blocks_on_its_message(pushing: Pushing) -> None:
    """No range from pre-commit (the tag reaches a root commit the remote lacks): PRE_COMMIT_LOCAL_BRANCH is the
    tag's ref."""
    repo, remote, env = pushing
    tok = hf_token()
    git_run(repo, "tag", "-a", "v1", "-m", f"token {tok}")
    p = push(repo, env, "v1")
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "huggingface.user-token" in out and tok not in out
    assert not remote_has(remote, "refs/tags/v1")


def test_nested_tag_inner_message_is_scanned(pushing: Pushing) -> None:
    repo, remote, env = pushing
    assert push(repo, env, "main").returncode == 0
    _commit(repo, "next.txt")
    tok = hf_token()
    git_run(repo, "tag", "-a", "inner", "-m", f"token {tok}")
    git_run(repo, "-c", "advice.nestedTag=false", "tag", "-a", "outer", "-m", "clean outer", "inner")
    git_run(repo, "tag", "-d", "inner")  # only reachable through outer
    p = push(repo, env, "outer")
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert tok not in out and not remote_has(remote, "refs/tags/outer")


def test_clean_annotated_and_lightweight_tags_pass(pushing: Pushing) -> None:
    repo, remote, env = pushing
    assert push(repo, env, "main").returncode == 0
    _commit(repo, "a.txt")
    git_run(repo, "tag", "-a", "v1", "-m", "release 1, nothing secret")
    p = push(repo, env, "v1")
    assert p.returncode == 0 and "Passed" in p.stdout + p.stderr, p.stdout + p.stderr
    _commit(repo, "b.txt")
    git_run(repo, "tag", "light")
    p = push(repo, env, "light")
    assert p.returncode == 0 and "Passed" in p.stdout + p.stderr, p.stdout + p.stderr
    assert remote_has(remote, "refs/tags/v1") and remote_has(remote, "refs/tags/light")
    p = push(repo, env, "--delete", "v1")  # deleting a remote tag scans nothing
    assert p.returncode == 0 and not remote_has(remote, "refs/tags/v1"), p.stdout + p.stderr


def test_lightweight_tag_on_leaky_commit_blocks_as_before(pushing: Pushing) -> None:
    repo, remote, env = pushing
    assert push(repo, env, "main").returncode == 0
    tok = hf_token()
    _commit(repo, "leak.env", f"T={tok}\n")
    git_run(repo, "tag", "light")
    p = push(repo, env, "light")
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "leak.env" in out and tok not in out
    assert not remote_has(remote, "refs/tags/light")


def test_follow_tags_pushing_a_branch_and_a_tag(pushing: Pushing) -> None:
    """``git push --follow-tags origin main rel``: main has nothing new, the branch rel (not checked out) gets a
    commit and an annotated tag on it. git lists rel, then the tag; pre-commit passes rel's range (the hook must
    run although no changed file is in the work tree: ``always_run``), and the tag object is scanned because it
    names a pushed commit and is not on the remote."""
    repo, remote, env = pushing
    git_run(repo, "branch", "rel")
    assert push(repo, env, "main", "rel").returncode == 0
    git_run(repo, "checkout", "-q", "rel")
    _commit(repo, "c.txt")
    tok = hf_token()
    git_run(repo, "tag", "-a", "v2", "-m", f"token {tok}")
    git_run(repo, "checkout", "-q", "main")
    p = push(repo, env, "--follow-tags", "main", "rel")
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert tok not in out and not remote_has(remote, "refs/tags/v2")


def test_tag_range_as_pre_commit_sets_it_reports_the_tag(pushing: Pushing) -> None:
    """PRE_COMMIT_FROM_REF/TO_REF by hand (TO = the tag object): the finding is at ``tag:<id>``, located as
    ``--history`` locates it, the token redacted; a tag FROM already names (the remote has it) is not scanned."""
    repo, _remote, _env = pushing
    base = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    _commit(repo, "n.txt")
    tok = hf_token()
    git_run(repo, "tag", "-a", "v1", "-m", f"token {tok}")
    tag = git_run(repo, "rev-parse", "refs/tags/v1").stdout.strip()
    env = {"PRE_COMMIT": "1", "PRE_COMMIT_FROM_REF": base, "PRE_COMMIT_TO_REF": tag,
           "PRE_COMMIT_REMOTE_NAME": "origin", "PRE_COMMIT_LOCAL_BRANCH": "refs/tags/v1"}
    p = run_cli("scan", "--staged", "--no-progress", "-f", "json", cwd=repo, env=env)
    assert p.returncode == 1, p.stderr
    assert tok not in p.stdout + p.stderr
    [f] = json.loads(p.stdout)["findings"]
    assert (f["path"], f["line"], f["location"]) == (f"tag:{tag}", 4, {"git": "tag message", "object": tag, "tag": "v1"})
    git_run(repo, "-c", "advice.nestedTag=false", "tag", "-a", "v1b", "-m", "clean", "v1")  # v1 moved: FROM has it
    env2 = {**env, "PRE_COMMIT_FROM_REF": tag, "PRE_COMMIT_TO_REF": git_run(repo, "rev-parse", "refs/tags/v1b").stdout.strip()}
    p = run_cli("scan", "--staged", "--no-progress", "-f", "json", cwd=repo, env=env2)
    assert p.returncode == 0 and json.loads(p.stdout)["findings"] == [], p.stdout + p.stderr
