"""The hooks for real: the documented plain git hook (from the README) and ``pre-commit try-repo`` against a
snapshot of this working tree, both in temporary git repositories."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import git_run, hf_token, init_repo

ROOT = Path(__file__).resolve().parent.parent
#: pip / network failures that mean "no index reachable", not a broken hook
OFFLINE = re.compile(r"No matching distribution found|Could not find a version that satisfies|"
                     r"Failed to establish a new connection|Network is unreachable|Temporary failure in name "
                     r"resolution|ConnectionError|Max retries exceeded")


def env_with_cli_on_path() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.pop("NO_COLOR", None)
    return env


git = git_run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "work")


def readme_hook() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Plain git hook", 1)[1]
    m = re.search(r"```sh\n(#!/bin/sh\n.*?)```", section, re.S)
    assert m, "README must document the plain git hook as a sh block"
    return m.group(1)


def test_hooks_manifest() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "veritensor-fast"]
    assert hook["entry"] == "veritensor-fast scan --staged --no-progress"
    assert hook["language"] == "python" and hook["pass_filenames"] is False


def test_plain_git_hook_blocks_staged_token(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(readme_hook())
    hook.chmod(0o755)
    env = env_with_cli_on_path()
    head = git(repo, "rev-parse", "HEAD").stdout
    tok = hf_token()
    (repo / "train.py").write_text(f"login(token='{tok}')\n")
    git(repo, "add", "train.py")
    (repo / "train.py").write_text("login(token=os.environ['HF_TOKEN'])\n")  # fixed only in the work tree
    p = git(repo, "commit", "-m", "leak", check=False, env=env)
    assert p.returncode == 1
    assert git(repo, "rev-parse", "HEAD").stdout == head  # nothing was committed
    out = p.stdout + p.stderr
    assert tok not in out and tok[3:20] not in out
    assert "train.py" in out and "huggingface.user-token" in out
    for advice in ("git restore --staged", "environment variable", "veritensor-fast: ignore", "baseline"):
        assert advice in out
    # stage the fix: the commit goes through
    git(repo, "add", "train.py")
    p = git(repo, "commit", "-q", "-m", "clean", check=False, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert git(repo, "rev-parse", "HEAD").stdout != head


def test_plain_git_hook_honours_inline_ignore(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(readme_hook())
    hook.chmod(0o755)
    (repo / "fixture.py").write_text(f"FAKE = '{hf_token()}'  # veritensor-fast: ignore[huggingface]\n")
    git(repo, "add", "fixture.py")
    p = git(repo, "commit", "-q", "-m", "fixture", check=False, env=env_with_cli_on_path())
    assert p.returncode == 0, p.stdout + p.stderr


def snapshot_project(dst: Path) -> Path:
    """This working tree (committed or not) as a fresh one-commit repository, as try-repo needs a repo."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".mypy_cache", ".ruff_cache")
    dst.mkdir()
    for name in ("veritensor_fast", "kernels"):
        shutil.copytree(ROOT / name, dst / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE", ".pre-commit-hooks.yaml"):
        shutil.copy2(ROOT / name, dst / name)
    git(dst, "init", "-q", "-b", "main")
    git(dst, "add", "-A")
    git(dst, "commit", "-q", "-m", "snapshot")
    return dst


@pytest.mark.slow
def test_pre_commit_try_repo(repo: Path, tmp_path: Path) -> None:
    pytest.importorskip("pre_commit")
    project = snapshot_project(tmp_path / "project")
    tok = hf_token()
    (repo / "leak.py").write_text(f"HF = '{tok}'\n")
    git(repo, "add", "leak.py")
    env = env_with_cli_on_path()
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")  # a fresh environment, built from the snapshot
    p = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(project), "veritensor-fast",
                        "--verbose"], cwd=repo, capture_output=True, text=True, env=env, timeout=600, check=False)
    out = p.stdout + p.stderr
    if p.returncode != 1 and "Installing environment" in out and OFFLINE.search(out):
        pytest.skip("pre-commit could not pip-install the hook environment: no package index reachable")
    log = tmp_path / "pre-commit-home" / "pre-commit.log"
    assert p.returncode == 1, out + (log.read_text() if log.exists() else "")
    assert "Failed" in out and "leak.py" in out and "huggingface.user-token" in out
    assert "git restore --staged" in out
    assert tok not in out
