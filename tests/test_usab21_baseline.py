"""A baseline matches findings by where the file is, not by the PATH a command was given (usab21).

On 4863df0 a baseline held each finding's path as the scan reported it, relative to the PATH given: ``baseline
create .`` then ``scan src --baseline b.json`` reported every known finding as new, and the reverse. Entries are
now location keys: relative to the top of the git work tree the file is in (outside one, to the baseline file's
directory). Real git repositories (``git init``), the real CLI in-process (``-j 1``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from veritensor_fast.cli import app

from conftest import git_run, hf_token, init_repo


def cli(cwd: Path, *args: str | os.PathLike[str]) -> Any:
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, [os.fspath(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


def create(cwd: Path, out: Path, *paths: str | os.PathLike[str]) -> dict[str, Any]:
    r = cli(cwd, "baseline", "create", *paths, "-o", out, "--no-config", "-j", "1")
    assert r.exit_code == 0, r.output
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


def scan(cwd: Path, bl: Path, *paths: str | os.PathLike[str]) -> tuple[int, list[tuple[str, int]]]:
    r = cli(cwd, "scan", *paths, "--baseline", bl, "--no-config", "-j", "1", "-f", "json", "--no-progress")
    rep = json.loads(r.stdout)
    return r.exit_code, sorted((f["path"], f["line"]) for f in rep["findings"])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git work tree with known secrets at the top and in ``src/`` (a real ``git init``)."""
    root = init_repo(tmp_path / "repo")
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "config.py").write_text(f"TOKEN = '{hf_token()}'\n")
    (root / "src" / "pkg" / "a.py").write_text(f"A = '{hf_token()}'\nB = 1\n")
    (root / "src" / "b.yaml").write_text(f"token: {hf_token()}\n")
    return root


def test_created_at_the_root_matches_a_scan_of_a_subdirectory(repo: Path) -> None:
    bl = repo / ".veritensor-baseline.json"
    doc = create(repo, bl, ".")
    assert {e["path"] for e in doc["findings"]} == {"config.py", "src/pkg/a.py", "src/b.yaml"}
    assert scan(repo, bl, "src") == (0, [])  # 4863df0: both src findings reported as new (exit 1)
    assert scan(repo / "src", bl, ".") == (0, [])  # run from inside the subdirectory
    assert scan(repo, bl, "src/pkg/a.py") == (0, [])  # a single file
    assert scan(repo, bl, "src/pkg", "config.py") == (0, [])  # several PATHs


def test_created_in_a_subdirectory_matches_a_scan_of_the_root(repo: Path) -> None:
    bl = repo / ".veritensor-baseline.json"
    doc = create(repo / "src", bl, ".")
    assert {e["path"] for e in doc["findings"]} == {"src/pkg/a.py", "src/b.yaml"}  # 4863df0: pkg/a.py, b.yaml
    assert scan(repo, bl, ".") == (1, [("config.py", 1)])  # only what the baseline does not hold


def test_absolute_and_relative_paths_and_another_working_directory(repo: Path, tmp_path: Path) -> None:
    bl = tmp_path / "outside" / "b.json"  # a baseline kept outside the work tree: paths still repo-relative
    bl.parent.mkdir()
    first = create(repo, bl, repo.resolve())
    second = create(tmp_path, tmp_path / "b2.json", Path("repo"))
    assert first == second
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert scan(elsewhere, bl, repo / "src") == (0, [])
    assert scan(elsewhere, bl, os.path.relpath(repo / "src" / "pkg", elsewhere)) == (0, [])


def test_line_shift_is_known_and_a_new_secret_in_a_known_file_is_new(repo: Path) -> None:
    bl = repo / ".veritensor-baseline.json"
    create(repo, bl, ".")
    a = repo / "src" / "pkg" / "a.py"
    known = a.read_text()
    a.write_text("# moved down\n\n\n" + known + f"C = '{hf_token()}'\n")
    assert scan(repo, bl, "src") == (1, [("pkg/a.py", 6)])
    assert scan(repo, bl, ".") == (1, [("src/pkg/a.py", 6)])


def test_a_known_secret_copied_to_a_same_named_file_in_a_subdirectory_is_new(repo: Path) -> None:
    """The old match compared paths relative to the PATH given: ``config.py`` under ``src`` scanned as ``src``
    had the root ``config.py``'s entry, and a copy of its secret there was hidden (4863df0: exit 0, nothing)."""
    bl = repo / ".veritensor-baseline.json"
    create(repo, bl, ".")
    (repo / "src" / "config.py").write_text((repo / "config.py").read_text())
    assert scan(repo, bl, "src") == (1, [("config.py", 1)])


def test_a_work_tree_moved_or_cloned_elsewhere_still_matches(repo: Path, tmp_path: Path) -> None:
    bl = repo / ".veritensor-baseline.json"
    create(repo, bl, ".")
    git_run(repo, "add", "-A")
    git_run(repo, "commit", "-q", "-m", "secrets and baseline")
    clone = tmp_path / "ci" / "checkout"
    git_run(tmp_path, "clone", "-q", str(repo), str(clone))
    assert scan(clone, clone / ".veritensor-baseline.json", "src") == (0, [])


def test_staged_and_history_paths_match_a_root_baseline(repo: Path) -> None:
    bl = repo / ".veritensor-baseline.json"
    create(repo / "src", bl, ".")
    git_run(repo, "add", "src")
    r = cli(repo / "src", "scan", "--staged", "--baseline", bl, "--no-config", "-f", "json", "--no-progress")
    assert r.exit_code == 0 and json.loads(r.stdout)["findings"] == [], r.output
    git_run(repo, "commit", "-q", "-m", "src")
    r = cli(repo, "scan", "--history", ".", "--no-datastore", "--baseline", bl, "--no-config", "-j", "1",
            "-f", "json", "--no-progress")
    assert r.exit_code == 0 and json.loads(r.stdout)["findings"] == [], r.output


def test_outside_a_work_tree_paths_are_relative_to_the_baseline_file(tmp_path: Path) -> None:
    root = tmp_path / "models"  # no .git anywhere above tmp_path
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "x.txt").write_text(f"key {hf_token()}\n")
    bl = root / ".veritensor-baseline.json"
    doc = create(tmp_path, bl, root)
    assert [e["path"] for e in doc["findings"]] == ["sub/x.txt"]
    assert scan(root / "sub", bl, ".") == (0, [])
    # a baseline outside the scanned tree, tree not under it: paths as reported, as before
    other = tmp_path / "bls" / "b.json"
    other.parent.mkdir()
    assert [e["path"] for e in create(root, other, ".")["findings"]] == ["sub/x.txt"]
    assert scan(root, other, ".") == (0, [])


def test_version_1_baselines_still_match_as_they_did(repo: Path) -> None:
    """A version 1 file (what 4863df0 wrote) holds paths relative to the PATH it was created with."""
    created = create(repo / "src", repo / "tmp.json", ".")
    entries = [{**e, "path": e["path"].removeprefix("src/")} for e in created["findings"]]
    v1 = repo / "v1.json"
    v1.write_text(json.dumps({"format": "veritensor-fast-baseline", "version": 1, "findings": entries}))
    assert scan(repo / "src", v1, ".") == (0, [])  # as on 4863df0
    assert scan(repo, v1, "src") == (0, [])
    # a version 1 file created at the root (as its docs said) now also matches a scan of a subdirectory
    root_v1 = repo / "root_v1.json"
    doc = create(repo, repo / "tmp2.json", ".")
    root_v1.write_text(json.dumps({**doc, "version": 1}))
    assert scan(repo, root_v1, "src") == (0, [])
