"""A new user's mistakes with ``--history``: a path that is no git repository gets one clear line (what went
wrong, what to do), exit 2, never git's raw ``fatal:`` text (newuser20)."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli


def _one_line_error(p) -> str:  # type: ignore[no-untyped-def]
    err = p.stderr.strip()
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "\n" not in err and "Traceback" not in err and "fatal:" not in err, err
    assert err.startswith("veritensor-fast: error: "), err
    return err


@pytest.mark.parametrize("kind", ["file", "missing", "plain-dir"])
def test_history_on_what_is_no_repository(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("hello\n")
    elif kind == "plain-dir":
        target.mkdir()
        (target / "a.txt").write_text("hello\n")
    p = run_cli("scan", "--history", "--no-progress", "--no-datastore", target, cwd=tmp_path,
                env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    err = _one_line_error(p)
    assert str(target) in err, err
    if kind == "missing":
        assert "does not exist" in err, err
    else:
        assert "is not a git repository" in err, err
        assert "without --history" in err, err


def test_history_on_a_repository_still_scans(tmp_path: Path) -> None:
    from conftest import init_repo

    repo = init_repo(tmp_path / "repo")
    p = run_cli("scan", "--history", "--no-progress", "--no-datastore", repo, cwd=tmp_path)
    assert p.returncode == 0, p.stderr


def test_negative_max_file_size_is_a_usage_error(tmp_path: Path) -> None:
    """``--max-file-size -5`` skipped every file "by policy" and exited 0: a scan of nothing that passed.
    The config key already refuses a negative value; the option now does too."""
    (tmp_path / "a.txt").write_text("hello\n")
    p = run_cli("scan", "--no-progress", "--max-file-size", "-5", tmp_path)
    err = _one_line_error(p)
    assert "--max-file-size" in err and "-5" in err, err


def test_stdin_name_without_dash_is_a_usage_error(tmp_path: Path) -> None:
    """``--stdin-name`` names standard input; given with a PATH that is not ``-`` it was silently ignored."""
    (tmp_path / "a.txt").write_text("hello\n")
    p = run_cli("scan", "--no-progress", "--stdin-name", "secret.yaml", tmp_path)
    err = _one_line_error(p)
    assert "--stdin-name" in err and " - " in err, err


def test_stdin_name_with_dash_still_names_the_input(tmp_path: Path, token: str) -> None:
    import json
    import subprocess

    from conftest import CLI

    for extra, name in ((["--stdin-name", "hf.env"], "hf.env"), ([], "stdin")):
        p = subprocess.run([*CLI, "scan", "-", *extra, "--format", "json", "--no-progress"],
                           input=f"HF_TOKEN={token}\n", capture_output=True, text=True, timeout=60, check=False)
        assert p.returncode == 1, p.stderr
        assert [f["path"] for f in json.loads(p.stdout)["findings"]] == [name]


@pytest.mark.parametrize("flag", [["--staged"], ["--since-commit", "HEAD"]])
def test_git_changes_outside_a_work_tree_says_what_to_do(tmp_path: Path, flag: list[str]) -> None:
    (tmp_path / "plain").mkdir()
    p = run_cli("scan", "--no-progress", *flag, cwd=tmp_path / "plain",
                env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    err = _one_line_error(p)
    assert "is not inside a git work tree;" in err and "run it inside one" in err, err


def test_scan_dash_from_a_terminal_says_it_is_waiting(tmp_path: Path, token: str) -> None:
    """``scan -`` typed at a terminal waited in silence for standard input: it now says so (once, on stderr),
    and still scans what is typed up to Ctrl-D."""
    import json
    import os
    import pty
    import subprocess

    from conftest import CLI

    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([*CLI, "scan", "-", "--stdin-name", "typed.env", "--format", "json", "--no-progress"],
                                stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.close(slave)
        os.write(master, f"HF_TOKEN={token}\n".encode() + b"\x04")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 1, err
    assert [f["path"] for f in json.loads(out)["findings"]] == ["typed.env"]
    assert "Ctrl-D" in err and token not in err, err


@pytest.mark.parametrize(("args", "message"), [
    (["scan", ".", "--no-progres"], "Error: No such option: --no-progres (Possible options: --no-datastore, --no-progress, --progress)"),
    (["scna", "."], "Error: No such command 'scna'. Did you mean 'scan'?"),
    (["scan", ".", "--max-file-size", "10MB"], "Error: Invalid value for '--max-file-size': '10MB' is not a valid int."),
])
def test_a_typo_is_one_plain_line(tmp_path: Path, args: list[str], message: str) -> None:
    """A typo'd flag or command: click's message on one line (not wrapped at 80 columns inside a box of
    line-drawing characters, which split the list of suggestions across lines in a CI log), exit 2."""
    p = run_cli(*args, cwd=tmp_path, env={"LC_ALL": "C", "COLUMNS": "80"})
    assert p.returncode == 2 and p.stdout == ""
    assert message in p.stderr.splitlines(), p.stderr
    assert not any(ord(c) > 127 for c in p.stderr) and "Traceback" not in p.stderr, p.stderr
