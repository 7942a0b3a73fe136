"""``scan --staged`` and ``scan --since-commit`` against real git repositories (git CLI in tmp dirs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.sources.staged import GitChangesError, GitChangesSource

from conftest import git_run, hf_token, init_repo, run_cli, scan_json


def git(repo: Path, *args: str) -> str:
    return git_run(repo, *args).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", "hello\n")


def test_staged_blob_is_scanned_not_working_file(repo: Path) -> None:
    tok = hf_token()
    (repo / "app.py").write_text(f"TOKEN = '{tok}'\n")
    git(repo, "add", "app.py")
    (repo / "app.py").write_text("TOKEN = os.environ['HF_TOKEN']\n")  # fixed in the work tree, not staged
    p = run_cli("scan", "--staged", "--no-progress", cwd=repo)
    assert p.returncode == 1
    assert "app.py" in p.stdout and "huggingface.user-token" in p.stdout
    assert tok not in p.stdout + p.stderr
    assert "git restore --staged" in p.stderr and "veritensor-fast: ignore" in p.stderr and "baseline" in p.stderr
    code, rep = scan_json("app.py", cwd=repo)  # the working file itself is clean
    assert code == 0 and rep["findings"] == []


def test_staged_clean_passes_even_if_work_tree_leaks(repo: Path) -> None:
    (repo / "app.py").write_text("x = 1\n")
    git(repo, "add", "app.py")
    (repo / "app.py").write_text(f"x = '{hf_token()}'\n")  # not staged
    (repo / "untracked.py").write_text(f"y = '{hf_token()}'\n")
    code, rep = scan_json("--staged", cwd=repo)
    assert code == 0 and rep["findings"] == []
    assert rep["stats"]["files"] == 1  # only the one staged blob was read


def test_staged_reads_only_changed_blobs(repo: Path) -> None:
    (repo / "old.py").write_text(f"OLD = '{hf_token()}'\n")
    git(repo, "add", "old.py")
    git(repo, "commit", "-q", "-m", "old leak (already committed)")
    (repo / "new.py").write_text(f"NEW = '{hf_token()}'\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "other.py").write_text(f"O = '{hf_token()}'\n")
    git(repo, "add", "new.py", "sub/other.py")
    git(repo, "rm", "-q", "README.md")  # deletions have nothing to scan
    code, rep = scan_json("--staged", cwd=repo)
    assert code == 1
    assert sorted(f["path"] for f in rep["findings"]) == ["new.py", "sub/other.py"]
    # PATHs limit the staged scan (pathspecs), paths stay relative to the top-level; run from a subdirectory
    code, rep = scan_json("--staged", ".", cwd=repo / "sub")
    assert [f["path"] for f in rep["findings"]] == ["sub/other.py"]
    code, rep = scan_json("--staged", "--exclude", "sub", cwd=repo)
    assert [f["path"] for f in rep["findings"]] == ["new.py"]


def test_staged_in_repo_without_commits(tmp_path: Path) -> None:
    r = tmp_path / "fresh"
    r.mkdir()
    git(r, "init", "-q")
    (r / "k.env").write_text(f"HF_TOKEN={hf_token()}\n")
    git(r, "add", "k.env")
    code, rep = scan_json("--staged", cwd=r)
    assert code == 1 and [f["path"] for f in rep["findings"]] == ["k.env"]


def test_since_commit_finds_secret_added_and_removed_in_range(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    tok = hf_token()
    (repo / "cfg.py").write_text(f"T = '{tok}'\n")
    git(repo, "add", "cfg.py")
    git(repo, "commit", "-q", "-m", "add token")
    (repo / "cfg.py").write_text("T = None\n")
    git(repo, "commit", "-q", "-am", "remove token")
    after = git(repo, "rev-parse", "HEAD")
    (repo / "z.txt").write_text("fine\n")
    git(repo, "add", "z.txt")
    git(repo, "commit", "-q", "-m", "clean")
    code, rep = scan_json("--since-commit", base, cwd=repo)
    assert code == 1 and [f["path"] for f in rep["findings"]] == ["cfg.py"]
    # cfg.py twice (two versions) and z.txt, plus the text (message, author) of the 3 commits: nothing else read
    assert rep["stats"]["files"] == 6
    code, rep = scan_json("--since-commit", after, cwd=repo)
    assert code == 0 and rep["stats"]["files"] == 2  # z.txt and its commit
    # uncommitted changes are not part of --since-commit; --staged adds the index
    (repo / "s.py").write_text(f"S = '{hf_token()}'\n")
    git(repo, "add", "s.py")
    code, rep = scan_json("--since-commit", after, cwd=repo)
    assert code == 0
    code, rep = scan_json("--since-commit", after, "--staged", cwd=repo)
    assert code == 1 and [f["path"] for f in rep["findings"]] == ["s.py"]


def test_since_commit_sees_evil_merge(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "side.txt").write_text("side\n")
    git(repo, "add", "side.txt")
    git(repo, "commit", "-q", "-m", "side")
    git(repo, "checkout", "-q", "main")
    (repo / "main.txt").write_text("main\n")
    git(repo, "add", "main.txt")
    git(repo, "commit", "-q", "-m", "main")
    git(repo, "merge", "-q", "--no-commit", "side")
    (repo / "merge-only.py").write_text(f"M = '{hf_token()}'\n")  # exists only in the merge commit
    git(repo, "add", "merge-only.py")
    git(repo, "commit", "-q", "-m", "merge")
    src = GitChangesSource(str(repo), since=base)
    assert sorted(it.path for it in src.items() if it.kind == "blob") == ["main.txt", "merge-only.py", "side.txt"]  # type: ignore[union-attr]


def test_git_errors_are_usage_errors(repo: Path, tmp_path: Path) -> None:
    p = run_cli("scan", "--since-commit", "no-such-rev", cwd=repo)
    assert p.returncode == 2 and "unknown revision" in p.stderr
    p = run_cli("scan", "--since-commit=--output=x", cwd=repo)  # never passed to git as an option
    assert p.returncode == 2 and "invalid revision" in p.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    p = run_cli("scan", "--staged", cwd=plain)
    assert p.returncode == 2 and "not inside a git work tree" in p.stderr
    with pytest.raises(GitChangesError):
        GitChangesSource(str(plain), staged=True)


def test_staged_max_file_size_reported(repo: Path) -> None:
    (repo / "big.txt").write_text("a" * 5000)
    git(repo, "add", "big.txt")
    code, rep = scan_json("--staged", "--max-file-size", "100", cwd=repo)
    assert code == 0 and [e["kind"] for e in rep["errors"]] == ["too-large"]  # a policy skip, not incomplete
