"""What ``gitloc.locate`` keeps, where it goes, and what the git guard checks because of it.

- The decision travels with each item (its ``origin``): a worker (forked pool, Dask) never uses its own
  inherited ``GIT_DIR``; a push quarantine named only in the parent's environment is read by every worker.
- The guard checks what the kept variables make git open (an index or object directory that is a FIFO), and
  a library caller scanning the same repository twice gets a fresh check (8eea362 cached it per process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from veritensor_fast import gitcmd, gitloc
from veritensor_fast.engine import scan
from veritensor_fast.sources.git import GitHistorySource
from veritensor_fast.worker import ScanOptions

from conftest import git_run, hf_token, init_repo, run_cli, token_repo

ROOT = str(Path(__file__).resolve().parents[1])


def _quarantine(tmp_path: Path) -> tuple[Path, dict[str, str], str, str, str]:
    """A bare repository with a push in quarantine, made as ``receive-pack`` makes it: the new objects only in
    ``objects/tmp_objdir-incoming-*``. Returns (repo, the hook's variables, old, new, the pushed token)."""
    srv = tmp_path / "srv.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(srv)], check=True)
    work = init_repo(tmp_path / "w")
    git_run(work, "push", "-q", str(srv), "main")
    old = git_run(srv, "rev-parse", "main").stdout.strip()
    q = srv / "objects" / "tmp_objdir-incoming-Ab12"
    (q / "pack").mkdir(parents=True)
    env = {"GIT_DIR": ".", "GIT_OBJECT_DIRECTORY": str(q), "GIT_QUARANTINE_PATH": str(q),
           "GIT_ALTERNATE_OBJECT_DIRECTORIES": f"{srv}/./objects"}
    tok = hf_token()
    full = {**os.environ, **env}

    def git(*args: str, stdin: str = "") -> str:
        return subprocess.run(["git", "-c", "user.email=t@x", "-c", "user.name=t", *args], input=stdin,
                              capture_output=True, text=True, check=True, cwd=srv, env=full).stdout.strip()

    blob = git("hash-object", "-w", "--stdin", stdin=f"token = {tok}\n")
    readme = git("rev-parse", f"{old}:README.md")
    tree = git("mktree", stdin=f"100644 blob {readme}\tREADME.md\n100644 blob {blob}\tk.txt\n")
    new = git("commit-tree", tree, "-p", old, "-m", "k")
    assert subprocess.run(["git", "-C", str(srv), "cat-file", "-e", new], capture_output=True).returncode != 0
    return srv, env, old, new, tok


def _located(monkeypatch: pytest.MonkeyPatch, srv: Path, env: dict[str, str], rng: str) -> GitHistorySource:
    monkeypatch.chdir(srv)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    src = GitHistorySource(".", ScanOptions(), rev_range=rng, use_datastore=False)
    for k in env:
        monkeypatch.delenv(k)
    return src


@pytest.fixture
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2, dashboard_address="127.0.0.1:0",
                                  protocol="inproc://") as cluster, \
            distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.mark.parametrize("where", ["jobs1", "pool", "dask"])
def test_quarantine_decision_travels_with_the_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str,
                                                   request: pytest.FixtureRequest) -> None:
    """The quarantine is named in the environment only while the source is made; the workers then inherit
    another repository's ``GIT_DIR`` (and no quarantine): the pushed token is still read, and only it."""
    srv, env, old, new, tok = _quarantine(tmp_path)
    other = token_repo(tmp_path / "other")
    src = _located(monkeypatch, srv, env, f"{old}..{new}")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    kw: dict[str, Any] = {}
    if where == "dask":
        from veritensor_fast.executors_dask import DaskExecutor

        client = request.getfixturevalue("dask_client")
        kw["make_executor"] = lambda o, db: DaskExecutor(client, o, db)
    try:
        r = scan(src, ScanOptions(), jobs=2 if where == "pool" else 1, **kw)
    finally:
        src.close()
    assert sorted(f.secret for f in r.findings) == [tok] and r.errors == []


def test_locate_keeps_what_describes_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv, env, _old, _new, _tok = _quarantine(tmp_path)
    other = init_repo(tmp_path / "other")
    monkeypatch.chdir(srv)
    given = {**env, "GIT_ALTERNATE_OBJECT_DIRECTORIES": f"{other}/.git/objects:{srv}/./objects",
             "GIT_NAMESPACE": "x", "GIT_CEILING_DIRECTORIES": str(tmp_path), "GIT_INDEX_FILE": str(other / ".git/index")}
    target, dropped = gitloc.locate(".", given)
    path, kept = gitloc.split(target)
    q = str((srv / "objects" / "tmp_objdir-incoming-Ab12").resolve())
    assert path == str(srv) and gitloc.has_token(target)
    assert kept == {"GIT_DIR": str(srv.resolve()), "GIT_OBJECT_DIRECTORY": q, "GIT_QUARANTINE_PATH": q,
                    "GIT_ALTERNATE_OBJECT_DIRECTORIES": str((srv / "objects").resolve())}
    assert dropped == ["GIT_CEILING_DIRECTORIES", "GIT_INDEX_FILE", "GIT_NAMESPACE"]
    # seen from the other repository: its index and object directory are its own, the rest names srv.git
    target, dropped = gitloc.locate(str(other), given)
    assert gitloc.split(target) == (str(other), {"GIT_INDEX_FILE": str(other.resolve() / ".git/index"),
                                                 "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(other.resolve() / ".git/objects")})
    assert dropped == ["GIT_CEILING_DIRECTORIES", "GIT_DIR", "GIT_NAMESPACE", "GIT_OBJECT_DIRECTORY",
                       "GIT_QUARANTINE_PATH"]


def test_no_location_variable_runs_no_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def boom(*_a: Any, **_k: Any) -> bytes:
        raise AssertionError("git run")

    monkeypatch.setattr(gitcmd, "run", boom)
    target, dropped = gitloc.locate(str(tmp_path), {"HOME": "/root", "GIT_AUTHOR_NAME": "x"})
    assert gitloc.split(target) == (str(tmp_path), {}) and dropped == []


def test_git_children_get_only_the_kept_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/elsewhere")
    monkeypatch.setenv("GIT_OBJECT_DIRECTORY", "/elsewhere/objects")
    env = gitcmd.git_env(gitloc.split(gitloc.join("/r", {"GIT_INDEX_FILE": "/r/.git/index.lock"}, "1"))[1])
    assert "GIT_DIR" not in env and "GIT_OBJECT_DIRECTORY" not in env
    assert env["GIT_INDEX_FILE"] == "/r/.git/index.lock"


def _fifo_cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return run_cli("scan", "--no-progress", *args, cwd=cwd, env=env, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the scan hung on a FIFO the environment names")


def test_fifo_index_named_by_the_environment(tmp_path: Path) -> None:
    """``GIT_INDEX_FILE`` inside the repository's git directory (kept) is a FIFO: refused (exit 2), no hang."""
    repo = init_repo(tmp_path / "r")
    (repo / ".git" / "tmp").mkdir()
    os.mkfifo(repo / ".git" / "tmp" / "index")
    p = _fifo_cli(["--staged", "."], repo, {"GIT_INDEX_FILE": str(repo / ".git" / "tmp" / "index")})
    assert p.returncode == 2 and "FIFO" in p.stderr, p.stderr
    # outside the repository's git directory it describes another one: dropped, never opened
    os.mkfifo(tmp_path / "index")
    p = _fifo_cli(["--staged", ".", "--format", "json"], repo, {"GIT_INDEX_FILE": str(tmp_path / "index")})
    assert p.returncode == 0 and json.loads(p.stdout)["stats"]["git_env_ignored"] == ["GIT_INDEX_FILE"], p.stderr


def test_fifo_object_directory_named_by_the_environment(tmp_path: Path) -> None:
    """A quarantine-like ``GIT_OBJECT_DIRECTORY`` whose loose object (the one git reads first) is a FIFO."""
    srv, env, old, new, _tok = _quarantine(tmp_path)
    q = Path(env["GIT_OBJECT_DIRECTORY"])
    for sub in q.iterdir():
        if len(sub.name) == 2 and (sub / new[2:]).exists():
            (sub / new[2:]).unlink()
            os.mkfifo(sub / new[2:])
    p = _fifo_cli(["--history", "--no-datastore", "--range", f"{old}..{new}", "."], srv, env)
    assert p.returncode == 2 and "FIFO" in p.stderr, p.stderr


_TWICE = textwrap.dedent("""
    import os, sys
    from veritensor_fast.history import scan_history
    from veritensor_fast.worker import ScanOptions
    repo = sys.argv[1]
    r = scan_history([repo], ScanOptions(), jobs=1, use_datastore=False)
    print("first", len(r.findings), flush=True)
    os.mkfifo(os.path.join(repo, ".git", "refs", "heads", "zz"))
    try:
        scan_history([repo], ScanOptions(), jobs=1, use_datastore=False)
    except Exception as exc:
        print("second", type(exc).__name__, exc)
""")


def test_guard_checks_a_repository_again_on_the_next_scan(tmp_path: Path) -> None:
    """A library caller scans a repository, which then gains a FIFO ref: the second scan refuses it (8eea362
    answered from its per-process cache and git blocked forever)."""
    repo = token_repo(tmp_path / "r")
    try:
        p = subprocess.run([sys.executable, "-c", _TWICE, str(repo)], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": ROOT})
    except subprocess.TimeoutExpired:
        pytest.fail("the second scan hung on the FIFO ref")
    assert "first 1" in p.stdout and "second GitError" in p.stdout and "FIFO" in p.stdout, (p.stdout, p.stderr)
