"""The pre-push stage for real: ``git push`` to a local bare repository through pre-commit's own pre-push hook
(``pre-commit install -t pre-push``), running the hook's entry from ``.pre-commit-hooks.yaml``.

pre-commit passes PRE_COMMIT_FROM_REF / PRE_COMMIT_TO_REF for most pushes, but a push whose branch reaches a root
commit the remote lacks (every first push of a repository, an orphan branch) gets no range: pre-commit runs the
hooks with ``--all-files`` and sets only PRE_COMMIT_LOCAL_BRANCH / PRE_COMMIT_REMOTE_NAME. The scan must then
read the commits being pushed, not the index (empty at push time)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import git_run, hf_token, init_repo, run_cli

ROOT = Path(__file__).resolve().parent.parent
HOOK_ENTRY = "veritensor-fast scan --staged --no-progress"


def hook_config() -> str:
    """The manifest's hook as a local hook (no environment to pip-install): same entry, this interpreter."""
    (hook,) = [h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text()) if h["id"] == "veritensor-fast"]
    assert hook["entry"] == HOOK_ENTRY and "pre-push" in hook["stages"]
    entry = hook["entry"].replace("veritensor-fast", f"{shlex.quote(sys.executable)} -m veritensor_fast.cli", 1)
    local = {"id": hook["id"], "name": hook["name"], "entry": entry, "language": "system",
             "pass_filenames": hook["pass_filenames"], "always_run": hook.get("always_run", False),
             "require_serial": True, "stages": ["pre-push"]}
    return yaml.safe_dump({"repos": [{"repo": "local", "hooks": [local]}]})


@pytest.fixture
def pushing(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """(work repository with pre-commit's pre-push hook installed, bare remote 'origin', environment)."""
    pytest.importorskip("pre_commit")
    env = dict(os.environ)
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pc-home")
    env.pop("NO_COLOR", None)
    for k in [k for k in env if k.startswith("PRE_COMMIT_") and k != "PRE_COMMIT_HOME"]:
        del env[k]
    remote = tmp_path / "remote.git"
    git_run(tmp_path, "init", "-q", "--bare", str(remote))
    repo = init_repo(tmp_path / "work")
    (repo / ".pre-commit-config.yaml").write_text(hook_config())
    git_run(repo, "add", ".pre-commit-config.yaml")
    git_run(repo, "commit", "-qm", "hook config")
    git_run(repo, "remote", "add", "origin", str(remote))
    subprocess.run([sys.executable, "-m", "pre_commit", "install", "-t", "pre-push"], cwd=repo, env=env,
                   check=True, capture_output=True)
    return repo, remote, env


def push(repo: Path, env: dict[str, str], *refspec: str) -> subprocess.CompletedProcess[str]:
    return git_run(repo, "push", "origin", *refspec, check=False, env=env)


def leak_then_remove(repo: Path, name: str = "leak.env") -> str:
    tok = hf_token()
    (repo / name).write_text(f"T={tok}\n")
    git_run(repo, "add", name)
    git_run(repo, "commit", "-qm", "add a token")
    git_run(repo, "rm", "-q", name)
    git_run(repo, "commit", "-qm", "remove it again")  # index and work tree are clean again
    return tok


def remote_has(remote: Path, ref: str) -> bool:
    return git_run(remote, "rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0


def test_first_push_scans_all_pushed_history(pushing: tuple[Path, Path, dict[str, str]]) -> None:
    repo, remote, env = pushing
    tok = leak_then_remove(repo)
    assert run_cli("scan", "--staged", "--no-progress", cwd=repo).returncode == 0  # the index holds nothing
    p = push(repo, env, "main")
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "leak.env" in out and "huggingface.user-token" in out
    assert tok not in out
    assert not remote_has(remote, "refs/heads/main")  # the push was refused


def test_first_push_of_clean_history_goes_through(pushing: tuple[Path, Path, dict[str, str]]) -> None:
    repo, remote, env = pushing
    p = push(repo, env, "main")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Passed" in p.stdout + p.stderr  # the hook ran (not skipped for want of files)
    assert remote_has(remote, "refs/heads/main")


def test_rootless_push_scans_only_commits_the_remote_lacks(pushing: tuple[Path, Path, dict[str, str]]) -> None:
    """An orphan branch merged with main reaches a new root: no range from pre-commit. main's old (removed) leak
    is already on the remote and is not the push's business; a leak on the new branch is."""
    repo, remote, env = pushing
    leak_then_remove(repo, "old.env")
    assert push(repo, env, "--no-verify", "main").returncode == 0  # accepted earlier, e.g. before the hook
    git_run(repo, "checkout", "-q", "--orphan", "side")
    git_run(repo, "rm", "-rqf", ".")
    (repo / "side.txt").write_text("side\n")
    git_run(repo, "add", "side.txt")
    git_run(repo, "commit", "-qm", "side root")
    git_run(repo, "merge", "-q", "--allow-unrelated-histories", "-m", "join", "main")
    p = push(repo, env, "side")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Passed" in p.stdout + p.stderr and "old.env" not in p.stdout + p.stderr
    assert remote_has(remote, "refs/heads/side")
    git_run(repo, "checkout", "-q", "--orphan", "side2")
    git_run(repo, "rm", "-rqf", ".")
    tok = leak_then_remove(repo, "new.env")
    git_run(repo, "merge", "-q", "--allow-unrelated-histories", "-m", "join", "main")
    p = push(repo, env, "side2")
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "new.env" in out and "old.env" not in out and tok not in out
    assert not remote_has(remote, "refs/heads/side2")


def test_pre_push_env_without_range_as_pre_commit_sets_it(tmp_path: Path) -> None:
    """The values pre-commit 4's ``_pre_push_ns`` sets for an all-files pre-push (no FROM/TO), by hand: a remote
    given as a URL has no remote-tracking refs, so all of the branch's history is scanned."""
    repo = init_repo(tmp_path / "r")
    leak_then_remove(repo)
    env = {"PRE_COMMIT": "1", "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/main", "PRE_COMMIT_REMOTE_BRANCH": "refs/heads/main",
           "PRE_COMMIT_REMOTE_NAME": str(tmp_path / "remote.git"), "PRE_COMMIT_REMOTE_URL": str(tmp_path / "remote.git")}
    p = run_cli("scan", "--staged", "--no-progress", "-f", "json", cwd=repo, env=env)
    assert p.returncode == 1, p.stderr
    p = run_cli("scan", "--staged", "--no-progress", cwd=repo, env={**env, "PRE_COMMIT_LOCAL_BRANCH": "refs/heads/nope"})
    assert p.returncode == 2 and "unknown pushed ref 'refs/heads/nope'" in p.stderr


def test_pre_push_range_unit() -> None:
    from veritensor_fast.cli_git import pre_push_range

    push_env = {"PRE_COMMIT_LOCAL_BRANCH": "refs/heads/main", "PRE_COMMIT_REMOTE_NAME": "origin"}
    r = pre_push_range(True, None, push_env)
    assert (r.git_changes, r.staged, r.since, r.pushed) == (True, False, None, ("refs/heads/main", "origin"))
    r = pre_push_range(True, None, {**push_env, "PRE_COMMIT_FROM_REF": "a" * 40, "PRE_COMMIT_TO_REF": "b" * 40})
    assert (r.since, r.until, r.pushed) == ("a" * 40, "b" * 40, None)
    r = pre_push_range(True, None, {})  # a commit: the index
    assert (r.git_changes, r.staged, r.pushed) == (True, True, None)
    r = pre_push_range(False, None, push_env)  # not a hook scan
    assert (r.git_changes, r.pushed) == (False, None)
