"""review24: ``--exclude`` matches a name as it is again. Every walker matches a glob against the shown path
(``display_path``), which trust24 made double a backslash before escape-like text: ``--exclude 'sub/a\\x1b.env'``
(the UTF-8 name holding the text backslash, x, 1, b) or ``--exclude 'd\\x41/*'`` no longer excluded the file,
on disk (``--jobs`` 1 and 2), in ``--history`` and in ``--staged`` scans, while at 378526f it did. A shown path
that is not the name as it is is now matched as that name too; a name that is not UTF-8 still matches its shown
``\\xNN`` form (as at 378526f). Real files, a real git repository."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from veritensor_fast.findings import display_path, shown_name

from conftest import git_run, hf_token, init_repo, run_cli

TEXT = b"sub/a\\x1b.env"  # UTF-8: the text backslash, x, 1, b
DIR = b"d\\x41/x.env"  # a directory whose name holds escape-like text
BYTE = b"sub/caf\xe9.env"  # not UTF-8: shown sub/caf\xe9.env
KEEP = b"sub/keep.env"
GLOBS = ("sub/a\\x1b.env", "d\\x41/*", "sub/caf\\xe9.env")


def _tree(root: Path) -> None:
    for raw in (TEXT, DIR, BYTE, KEEP):
        p = root / os.fsdecode(raw)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"HF_TOKEN={hf_token()}\n")


def _paths(*args: str | os.PathLike[str], cwd: Path | None = None) -> set[str]:
    ex = [a for g in GLOBS for a in ("--exclude", g)]
    out = run_cli("scan", "-f", "json", "--no-progress", *ex, *args, cwd=cwd).stdout
    return {f["path"].rsplit("/", 2)[-2] + "/" + f["path"].rsplit("/", 1)[-1] for f in json.loads(out)["findings"]}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_files_on_disk(tmp_path: Path, jobs: str) -> None:
    _tree(tmp_path / "t")
    assert _paths("--jobs", jobs, tmp_path / "t") == {"sub/keep.env"}


def test_history_and_staged(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    _tree(repo)
    git_run(repo, "add", "-A")
    assert _paths("--staged", cwd=repo) == {"sub/keep.env"}
    git_run(repo, "commit", "-q", "-m", "add")
    assert _paths("--history", "--no-datastore", repo) == {"sub/keep.env"}


def test_shown_name_inverts_display_path() -> None:
    for raw in (TEXT, DIR, BYTE, KEEP, b"a\\\\xe9\\\xe9", b"\\u202e\\U0001f600x"):
        name = os.fsdecode(raw)
        assert shown_name(display_path(name)) == name
