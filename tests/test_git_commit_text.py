"""Issue 10 §4 (git part): a token in a commit message or in an author/committer name is a leak. ``--history``
scans each commit's text (author, committer, message), reports it at ``commit:<id>`` with the field and the
commit as provenance, and never echoes the full token (in the finding or in another finding's provenance)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from veritensor_fast.history import scan_history
from veritensor_fast.worker import ScanOptions

from conftest import git_run, hf_token, init_repo, run_cli


def _repo(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    repo = init_repo(tmp_path / "r")
    toks = {"message": hf_token(), "author": hf_token(), "file": hf_token()}
    (repo / "a.txt").write_text(f"HF_TOKEN={toks['file']}\n")
    git_run(repo, "add", "a.txt")
    git_run(repo, "commit", "-q", "-m", f"add config\n\nused token {toks['message']} to test")
    msg_commit = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    env = {**os.environ, "GIT_AUTHOR_NAME": f"Eve {toks['author']}", "GIT_AUTHOR_EMAIL": "eve@example.invalid"}
    git_run(repo, "commit", "-q", "--allow-empty", "-m", "empty", env=env)
    author_commit = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    return repo, toks, {"message": msg_commit, "author": author_commit}


def test_commit_message_and_author_are_scanned(tmp_path: Path) -> None:
    repo, toks, commits = _repo(tmp_path)
    ds = tmp_path / "ds.sqlite"
    for extra in (["--no-datastore"], ["--datastore", str(ds)], ["--datastore", str(ds)]):  # 3rd: from the memo
        p = run_cli("scan", "--no-progress", "--format", "json", "--history", *extra, str(repo), cwd=tmp_path)
        assert p.returncode == 1, p.stderr
        for t in toks.values():
            assert t not in p.stdout and t not in p.stderr
        rep = json.loads(p.stdout)
        by_path = {f["path"]: f for f in rep["findings"]}
        for field in ("message", "author"):
            f = by_path[f"commit:{commits[field]}"]
            assert f["commit"]["id"] == commits[field], f
            assert f["location"]["git"] == f"commit {field}", f
        assert by_path["a.txt"]["commit"]["id"] == commits["message"]
        assert len(rep["findings"]) == 3, rep["findings"]
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("ds.sqlite*"))
    assert stored and not any(t.encode() in stored for t in toks.values())


def test_commit_text_library_jobs_2(tmp_path: Path) -> None:
    repo, toks, commits = _repo(tmp_path)
    r = scan_history([str(repo)], ScanOptions(), jobs=2, use_datastore=False)
    assert {f.path for f in r.findings} == {"a.txt", f"commit:{commits['message']}", f"commit:{commits['author']}"}
    assert {f.secret for f in r.findings} == set(toks.values())
    for f in r.findings:
        assert f.commit is not None
        for v in f.commit.values():
            assert not any(t in str(v) for t in toks.values()), f.commit


def test_since_commit_scans_commit_text(tmp_path: Path) -> None:
    """Pre-push / CI (`--since-commit`): the messages and authors of the commits being pushed are scanned."""
    repo, toks, commits = _repo(tmp_path)
    base = git_run(repo, "rev-parse", f"{commits['message']}~1").stdout.strip()
    p = run_cli("scan", "--no-progress", "--format", "json", "--since-commit", base, str(repo), cwd=repo)
    assert p.returncode == 1, p.stderr
    assert not any(t in p.stdout or t in p.stderr for t in toks.values())
    by_path = {f["path"]: f for f in json.loads(p.stdout)["findings"]}
    assert by_path[f"commit:{commits['message']}"]["location"]["git"] == "commit message"
    assert by_path[f"commit:{commits['author']}"]["location"]["git"] == "commit author"
    assert by_path[f"commit:{commits['author']}"]["commit"]["id"] == commits["author"]
    p = run_cli("scan", "--no-progress", "--format", "json", "--since-commit", commits["author"], str(repo), cwd=repo)
    assert p.returncode == 0, p.stdout  # nothing after the last commit: its text is not in the range
