"""Command-line gaps a gitleaks or TruffleHog user trips over (usab21), each failing on 4863df0:

- ``-o -`` wrote a file named ``-``; it is now standard output (as a PATH of ``-`` is standard input);
- ``--allow-global os.system`` (any global on the built-in denylist) was ignored without a word;
- a misspelt PATH with ``-f json`` and ``--exit-code-incomplete 0`` reached nobody; ``--staged nope.txt``
  scanned nothing and exited 0 without a note.

The real CLI in a subprocess, real git repositories.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import git_run, hf_token, init_repo, run_cli

# A pickle (protocol 0) whose one global is os.system: written by hand, never loaded.
OS_SYSTEM_PICKLE = b"cos\nsystem\n(S'echo hi'\ntR."


def test_dash_output_is_standard_output(tmp_path: Path) -> None:
    tok = hf_token()
    (tmp_path / "a.env").write_text(f"HF_TOKEN={tok}\n")
    p = run_cli("scan", "a.env", "-o", "-", "-f", "json", "--no-progress", "--no-config", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert [f["path"] for f in json.loads(p.stdout)["findings"]] == ["a.env"]
    assert not (tmp_path / "-").exists()  # 4863df0: the report went to a file named "-", stdout empty
    assert "report written to" not in p.stderr
    assert tok not in p.stdout + p.stderr


def test_dash_output_of_baseline_create_is_standard_output(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(f"HF_TOKEN={hf_token()}\n")
    p = run_cli("baseline", "create", ".", "-o", "-", "-j", "1", "--no-config", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["format"] == "veritensor-fast-baseline" and [e["path"] for e in doc["findings"]] == ["a.env"]
    assert not (tmp_path / "-").exists()
    assert "standard output" in p.stderr


def test_a_file_named_dash_is_written_by_its_full_path(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("nothing\n")
    p = run_cli("scan", "a.txt", "-o", tmp_path / "-", "-f", "json", "--no-progress", "--no-config", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "-").read_text())["findings"] == []


@pytest.mark.parametrize("entry", ["os.system", "os:system", "builtins.eval"])
def test_allowing_a_denylisted_global_says_it_has_no_effect(tmp_path: Path, entry: str) -> None:
    (tmp_path / "m.pkl").write_bytes(OS_SYSTEM_PICKLE)
    p = run_cli("scan", "m.pkl", "--allow-global", entry, "--allow-global", "collections.OrderedDict",
                "-f", "json", "--no-progress", "--no-config", cwd=tmp_path)
    notes = [ln for ln in p.stderr.splitlines() if "allow-global" in ln]
    assert len(notes) == 1, p.stderr  # 4863df0: nothing
    assert entry in notes[0] and "no effect" in notes[0] and "denylist" in notes[0], notes
    assert "collections.OrderedDict" not in p.stderr
    rules = {(f["rule_id"], f["severity"]) for f in json.loads(p.stdout)["findings"]}
    assert any(sev == "critical" for _r, sev in rules), rules  # still reported: the allow is not applied
    assert p.returncode == 1


def test_a_denylisted_global_in_the_config_is_named_too(tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(OS_SYSTEM_PICKLE)
    (tmp_path / ".veritensor-fast.toml").write_text('allow_globals = ["posix.system", "mypkg.os.thing"]\n')
    p = run_cli("scan", "m.pkl", "-f", "json", "--no-progress", cwd=tmp_path)
    notes = [ln for ln in p.stderr.splitlines() if "allow-global" in ln]
    # mypkg.os.thing can be read as module mypkg.os, name thing: allowed as such, no note
    assert len(notes) == 1 and "posix.system" in notes[0], p.stderr
    assert p.returncode == 1


@pytest.mark.parametrize("entry", ["OrderedDict", "collections.", ":OrderedDict"])
def test_an_allow_entry_without_module_and_name_says_it_has_no_effect(tmp_path: Path, entry: str) -> None:
    (tmp_path / "a.txt").write_text("nothing\n")
    p = run_cli("scan", "a.txt", "--allow-global", entry, "-f", "json", "--no-progress", "--no-config",
                cwd=tmp_path)
    notes = [ln for ln in p.stderr.splitlines() if "allow-global" in ln]
    assert len(notes) == 1 and entry in notes[0] and "module.qualname" in notes[0], p.stderr  # 4863df0: nothing
    assert p.returncode == 0


def test_a_misspelt_path_reaches_stderr_whatever_the_exit_code_options(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("nothing\n")
    p = run_cli("scan", "real.txt", "rael.txt", "-f", "json", "--exit-code-incomplete", "0", "--no-progress",
                "--no-config", cwd=tmp_path)
    assert p.returncode == 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "rael.txt" in lines[0] and "does not exist" in lines[0], p.stderr  # 4863df0: ""
    assert [e["path"] for e in json.loads(p.stdout)["errors"]] == ["rael.txt"]  # still in the report
    q = run_cli("scan", "rael.txt", "-f", "json", "--no-progress", "--no-config", "--quiet", cwd=tmp_path)
    assert q.returncode == 3 and "rael.txt" in q.stderr


def test_staged_path_that_matches_nothing_gets_a_note(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    (repo / "a.py").write_text("x = 1\n")
    (repo / "gone.py").write_text("y = 2\n")
    git_run(repo, "add", "a.py", "gone.py")
    (repo / "gone.py").unlink()  # staged, then deleted from the work tree: the index still has it
    p = run_cli("scan", "--staged", "a.py", "nope.py", "gone.py", "-f", "json", "--no-progress", "--no-config",
                cwd=repo)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "nope.py" in lines[0] and "matches no staged change" in lines[0], p.stderr
    assert p.stdout and json.loads(p.stdout)["stats"]["files"] == 2


def test_the_misspelt_path_line_cannot_drive_the_terminal(tmp_path: Path) -> None:
    p = run_cli("scan", "no\x1b[2Jpe.txt", "-f", "json", "--no-progress", "--no-config", cwd=tmp_path)
    assert p.returncode == 3
    assert "\x1b" not in p.stderr and "does not exist" in p.stderr, p.stderr
