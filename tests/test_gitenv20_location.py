"""The repository scanned is the one the user named, whatever git's location variables say (``gitloc``).

Real git repositories and real git hooks: git sets ``GIT_INDEX_FILE`` for a pre-commit hook (``index.lock``
under ``commit -a``, ``next-index-*.lock`` under ``commit PATH``), ``GIT_DIR`` in a linked worktree's hooks and
the push quarantine (``GIT_DIR=.``, ``GIT_OBJECT_DIRECTORY``, ``GIT_ALTERNATE_OBJECT_DIRECTORIES``,
``GIT_QUARANTINE_PATH``) for a pre-receive hook: a scan from there reads what they name. A ``GIT_DIR`` exported
in a shell, or a hook of another repository, must not make a scan of B read A.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import git_run, hf_token, init_repo, run_cli, scan_json, token_repo

ROOT = str(Path(__file__).resolve().parents[1])


def _secrets(report: dict) -> list[str]:
    return sorted(f["secret"] for f in report["findings"])


def _hook(repo_gitdir: Path, name: str, args: str) -> None:
    """A real git hook running the scanner (exit status non-zero blocks the commit or push)."""
    hook = repo_gitdir / "hooks" / name
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m veritensor_fast.cli scan --no-progress "
                    f"--format json --show-secrets -o \"$VF_OUT\" {args}\n")
    hook.chmod(0o755)


def _report(path: Path) -> dict:
    return json.loads(path.read_text())


def test_exported_git_dir_names_another_repository_history(tmp_path: Path) -> None:
    """The lead's reproduction: ``GIT_DIR=<A> scan --history B`` reported A's token as B's (8eea362: 1 finding)."""
    a = token_repo(tmp_path / "a")
    b = init_repo(tmp_path / "b")
    rc, rep = scan_json("--history", b, "--no-datastore", "--show-secrets", env={"GIT_DIR": str(a / ".git")})
    assert rc == 0 and rep["findings"] == [], rep
    assert rep["stats"]["git_env_ignored"] == ["GIT_DIR"]


def test_exported_git_dir_names_another_repository_staged(tmp_path: Path) -> None:
    """``--staged B`` with A's ``GIT_DIR`` exported reads B's index: B's staged token, not A's."""
    ta, tb = hf_token(), hf_token()
    a, b = init_repo(tmp_path / "a"), init_repo(tmp_path / "b")
    for repo, tok in ((a, ta), (b, tb)):
        (repo / "k.txt").write_text(f"token = {tok}\n")
        git_run(repo, "add", "k.txt")
    rc, rep = scan_json("--staged", b, "--show-secrets", env={"GIT_DIR": str(a / ".git")})
    assert rc == 1 and _secrets(rep) == [tb], rep
    assert rep["stats"]["git_env_ignored"] == ["GIT_DIR"]


def test_pre_commit_hook_of_another_repository(tmp_path: Path) -> None:
    """A's pre-commit hook scanning ``--staged B``: git gave it A's ``GIT_INDEX_FILE``; B's own index is read."""
    ta, tb = hf_token(), hf_token()
    a, b = init_repo(tmp_path / "a"), init_repo(tmp_path / "b")
    (b / "k.txt").write_text(f"token = {tb}\n")
    git_run(b, "add", "k.txt")
    out = tmp_path / "r.json"
    _hook(a / ".git", "pre-commit", f"--staged {b}")
    (a / "README.md").write_text(f"token = {ta}\n")
    # ``commit -a``: git names ``<a>/.git/index.lock`` (a plain ``commit`` names ``.git/index``, relative)
    p = git_run(a, "commit", "-q", "-am", "x", check=False, env={**os.environ, "VF_OUT": str(out)})
    assert p.returncode != 0, p.stderr  # B's staged token blocks it
    assert _secrets(_report(out)) == [tb]


def test_pre_commit_hook_reads_the_index_being_committed(tmp_path: Path) -> None:
    """``commit -a`` (``index.lock``) and ``commit PATH`` (``next-index-*.lock``): the token is only in the index
    git is committing (never ``git add``-ed), and the hook finds it."""
    repo = init_repo(tmp_path / "r")
    (repo / "k.txt").write_text("x = 1\n")
    git_run(repo, "add", "k.txt")
    git_run(repo, "commit", "-q", "-m", "k")
    out = tmp_path / "r.json"
    _hook(repo / ".git", "pre-commit", "--staged .")
    env = {**os.environ, "VF_OUT": str(out)}
    for i, commit in enumerate((["-a"], ["k.txt"])):
        tok = hf_token()
        (repo / "k.txt").write_text(f"token = {tok}\n")
        p = git_run(repo, "commit", "-q", "-m", "k2", *commit, check=False, env=env)
        assert p.returncode != 0, (commit, p.stderr)
        assert _secrets(_report(out)) == [tok], commit
        (repo / "k.txt").write_text(f"x = {i + 2}\n")
        out.unlink()
        assert git_run(repo, "commit", "-q", "-m", "clean", *commit, check=False, env=env).returncode == 0


def test_pre_commit_hook_in_a_linked_worktree(tmp_path: Path) -> None:
    """git sets ``GIT_DIR=<repo>/.git/worktrees/wt`` there: it describes the worktree scanned, and is kept."""
    repo = init_repo(tmp_path / "r")
    git_run(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"))
    out = tmp_path / "r.json"
    _hook(repo / ".git", "pre-commit", "--staged .")
    tok = hf_token()
    (tmp_path / "wt" / "README.md").write_text(f"token = {tok}\n")
    p = git_run(tmp_path / "wt", "commit", "-q", "-am", "k", check=False, env={**os.environ, "VF_OUT": str(out)})
    assert p.returncode != 0, p.stderr
    assert _secrets(_report(out)) == [tok]


def test_pre_receive_hook_under_push_quarantine(tmp_path: Path) -> None:
    """A bare repository's pre-receive hook scans ``--history --range old..new .``: the pushed objects are only in
    the quarantine git names in the hook's environment; the pushed token is found and the push refused."""
    srv = tmp_path / "srv.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(srv)], check=True)
    work = init_repo(tmp_path / "w")
    git_run(work, "push", "-q", str(srv), "main")
    out = tmp_path / "r.json"
    hook = srv / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\nread old new ref\nPYTHONPATH={ROOT} exec {sys.executable} -m veritensor_fast.cli "
                    f"scan --no-progress --format json --show-secrets -o \"$VF_OUT\" --history --no-datastore "
                    f"--range \"$old..$new\" .\n")
    hook.chmod(0o755)
    tok = hf_token()
    (work / "k.txt").write_text(f"token = {tok}\n")
    git_run(work, "add", "k.txt")
    git_run(work, "commit", "-q", "-m", "k")
    p = git_run(work, "push", "-q", str(srv), "main", check=False, env={**os.environ, "VF_OUT": str(out)})
    assert p.returncode != 0, p.stderr
    rep = _report(out)
    assert _secrets(rep) == [tok] and rep["errors"] == []
    assert "git_env_ignored" not in rep["stats"]  # every variable git set describes the repository


def test_several_repositories_with_a_foreign_git_dir(tmp_path: Path) -> None:
    """``--history A B`` with C's ``GIT_DIR`` exported: A's and B's tokens, each labelled with its repository."""
    a, b, c = token_repo(tmp_path / "a"), token_repo(tmp_path / "b"), token_repo(tmp_path / "c")
    want = {str(r): (r / "k.txt").read_text().split()[-1] for r in (a, b)}
    rc, rep = scan_json("--history", a, b, "--no-datastore", "--show-secrets", env={"GIT_DIR": str(c / ".git")})
    assert rc == 1
    assert sorted((f["repo"], f["secret"]) for f in rep["findings"]) == sorted(want.items())


def test_separate_git_dir_and_submodule(tmp_path: Path) -> None:
    """A ``.git`` file (``--separate-git-dir``) and a submodule, scanned while the superproject's ``GIT_DIR`` is
    exported: each scan reads its own repository; ``GIT_DIR`` naming the ``.git`` file's target is kept."""
    tok = hf_token()
    sep = tmp_path / "sep"
    subprocess.run(["git", "init", "-q", "-b", "main", "--separate-git-dir", str(tmp_path / "sep.git"), str(sep)],
                   check=True)
    (sep / "k.txt").write_text(f"token = {tok}\n")
    git_run(sep, "add", "k.txt")
    git_run(sep, "commit", "-q", "-m", "k")
    sup = token_repo(tmp_path / "sup")
    git_run(sup, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sep), "sub")
    git_run(sup, "commit", "-q", "-m", "sub")
    for path, gd in ((sep, sup / ".git"), (sup / "sub", sup / ".git"), (sep, tmp_path / "sep.git")):
        rc, rep = scan_json("--history", path, "--no-datastore", "--show-secrets", env={"GIT_DIR": str(gd)})
        assert rc == 1 and _secrets(rep) == [tok], (path, gd, rep)


def test_since_commit_and_a_work_tree_kept_apart(tmp_path: Path) -> None:
    """``--since-commit`` under a foreign ``GIT_DIR``; and a work tree kept apart from its git directory
    (``GIT_DIR`` + ``GIT_WORK_TREE`` holding the path, no ``.git`` there): both describe what the user named."""
    a, b = token_repo(tmp_path / "a"), init_repo(tmp_path / "b")
    base = git_run(b, "rev-parse", "HEAD").stdout.strip()
    tok = hf_token()
    (b / "k.txt").write_text(f"token = {tok}\n")
    git_run(b, "add", "k.txt")
    git_run(b, "commit", "-q", "-m", "k")
    rc, rep = scan_json("--since-commit", base, b, "--show-secrets", env={"GIT_DIR": str(a / ".git")})
    assert rc == 1 and _secrets(rep) == [tok], rep
    home, gd = tmp_path / "home", tmp_path / "cfg.git"
    home.mkdir()
    subprocess.run(["git", "init", "-q", "--bare", str(gd)], check=True)
    env = {"GIT_DIR": str(gd), "GIT_WORK_TREE": str(home)}
    (home / "rc").write_text(f"token = {tok}\n")
    git_run(home, "add", "rc", env={**os.environ, **env})
    rc, rep = scan_json("--staged", home, "--show-secrets", env=env, cwd=home)
    assert rc == 1 and _secrets(rep) == [tok], rep


def test_cli_help_still_runs_with_hook_variables(tmp_path: Path) -> None:
    """Sanity: git's hook variables naming nothing that exists do not break an ordinary path scan."""
    p = run_cli("scan", "--no-progress", tmp_path, env={"GIT_DIR": "/nonexistent", "GIT_INDEX_FILE": "/nope"})
    assert p.returncode == 0, p.stderr
