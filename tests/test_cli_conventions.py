"""Conventions users bring from other tools: -V, -q, completion, case-insensitive choices, ./ excludes,
-j validation, [tool.veritensor_fast], rules check diagnostics, Markdown summaries, pre-push ranges."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from veritensor_fast.cli import Progress

from conftest import git_run, hf_token, init_repo, run_cli, scan_json


def test_short_version_flag() -> None:
    p = run_cli("-V")
    assert p.returncode == 0 and re.match(r"veritensor-fast \d", p.stdout)


def test_shell_completion_is_offered() -> None:
    p = run_cli("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert p.returncode == 0, p.stderr
    assert "complete -o default -F" in p.stdout and "_completion" in p.stdout


@pytest.mark.parametrize(("flag", "value"), [("--format", "JSON"), ("--format", "Json"), ("--fail-severity", "HIGH")])
def test_choices_are_case_insensitive(tmp_path: Path, flag: str, value: str) -> None:
    (tmp_path / "a.env").write_text(f"T={hf_token()}\n")
    p = run_cli("scan", "--no-progress", flag, value, tmp_path)
    assert p.returncode == 1, p.stderr
    if value.lower() == "json":
        assert json.loads(p.stdout)["findings"]


@pytest.mark.parametrize("pattern", ["./sub", "sub/", "./sub/", "sub"])
def test_exclude_dot_slash_is_normalised(tmp_path: Path, pattern: str) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.env").write_text(f"T={hf_token()}\n")
    (tmp_path / "b.env").write_text(f"T={hf_token()}\n")
    code, doc = scan_json("--exclude", pattern, ".", cwd=tmp_path)
    assert [f["path"] for f in doc["findings"]] == ["b.env"], pattern


@pytest.mark.parametrize("cmd", [["scan", "--no-progress"], ["baseline", "create"]])
def test_negative_jobs_rejected(tmp_path: Path, cmd: list[str]) -> None:
    p = run_cli(*cmd, "-j", "-1", tmp_path, cwd=tmp_path)
    assert p.returncode == 2 and "--jobs" in p.stderr and "Traceback" not in p.stderr


def test_underscore_tool_table_accepted(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.veritensor_fast]\nexclude = ["skipped"]\n')
    (tmp_path / "skipped").mkdir()
    (tmp_path / "skipped" / "a.env").write_text(f"T={hf_token()}\n")
    (tmp_path / "b.env").write_text(f"T={hf_token()}\n")
    code, doc = scan_json(".", cwd=tmp_path)
    assert [f["path"] for f in doc["findings"]] == ["b.env"]
    assert doc["stats"]["config"] == str(tmp_path / "pyproject.toml")


def test_quiet_prints_findings_only(tmp_path: Path) -> None:
    tok = hf_token()
    (tmp_path / "a.env").write_text(f"T={tok}\n")
    p = run_cli("scan", "-q", tmp_path)
    assert p.returncode == 1 and p.stderr == ""
    assert p.stdout.startswith(f"{tmp_path}/a.env:1:3: CRITICAL")
    assert "scanned" not in p.stdout and "explain" not in p.stdout and tok not in p.stdout
    p = run_cli("scan", "-q", "-o", tmp_path / "r.json", "-f", "json", tmp_path)
    assert p.returncode == 1 and p.stderr == "" and p.stdout == ""
    (tmp_path / "a.env").write_text("clean\n")
    p = run_cli("scan", "-q", tmp_path)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == ""


def _user_rules(tmp_path: Path, examples: list[str], negatives: list[str]) -> Path:
    import yaml

    f = tmp_path / "rules.yaml"
    f.write_text(yaml.safe_dump({"rules": [{"id": "acme.key", "name": "Acme key", "severity": "high",
                                            "pattern": "acme_[A-Za-z0-9]{20}", "min_entropy": 3.0,
                                            "examples": examples, "negative_examples": negatives}]}))
    return f


def test_rules_check_names_failing_example_and_why(tmp_path: Path) -> None:
    good = "acme_Q7xKp2Lm9Vb4Nc6Rt1Yw"
    f = _user_rules(tmp_path, [good, "acme_short", "acme_aaaaaaaaaaaaaaaaaaaa", "acme_EXAMPLEkeyQ7xKp2Lm9V"],
                    ["acme_Zq8x7Kp2Lm9Vb4Nc6Rt1"])
    p = run_cli("rules", "check", "--rules", f)
    assert p.returncode == 1
    lines = [x for x in p.stdout.splitlines() if x.startswith("FAIL acme.key")]
    assert len(lines) == 4, p.stdout
    assert "example #1 'acme_short'" in lines[0] and "pattern" in lines[0] and "does not match" in lines[0]
    assert "example #2" in lines[1] and "entropy floor" in lines[1]
    assert "example #3" in lines[2] and "placeholder filter" in lines[2]
    assert "negative example #0 'acme_Zq8x7Kp2Lm9Vb4Nc6Rt1'" in lines[3] and "Hyperscan and Python re" in lines[3]


def test_markdown_summary(tmp_path: Path) -> None:
    tok = hf_token()
    (tmp_path / "a|b<img src=x>.env").write_text(f"T={tok}\n")
    p = run_cli("scan", "--no-progress", "--format", "markdown", tmp_path)
    assert p.returncode == 1, p.stderr
    out = p.stdout
    assert out.startswith("## veritensor-fast: 1 finding\n")
    rows = [x for x in out.splitlines() if x.startswith("| ")]
    assert len(rows) == 2 and rows[1].count(" | ") == 4  # the pipe in the name cannot add a column
    # HTML and Markdown from a file name stay inside a code span: shown as text, never rendered
    assert re.search(r"\| `[^`|]*a\\\|b<img src=x>\.env:1` \|", out), out
    assert out.count("<img") == 1 and tok not in out
    assert "veritensor-fast explain huggingface.user-token" in out


def test_pre_push_stage_scans_the_pushed_commits(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    base = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    tok = hf_token()
    (repo / "leak.env").write_text(f"T={tok}\n")
    git_run(repo, "add", "leak.env")
    git_run(repo, "commit", "-qm", "add leak")
    (repo / "leak.env").write_text("gone\n")
    git_run(repo, "commit", "-qam", "remove it again")
    head = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    p = run_cli("scan", "--staged", "--no-progress", "-f", "json", cwd=repo)  # the index: nothing staged
    assert p.returncode == 0 and not json.loads(p.stdout)["findings"]
    env = {"PRE_COMMIT_FROM_REF": base, "PRE_COMMIT_TO_REF": head}
    p = run_cli("scan", "--staged", "--no-progress", "-f", "json", cwd=repo, env=env)
    assert p.returncode == 1, p.stderr
    assert [f["path"] for f in json.loads(p.stdout)["findings"]] == ["leak.env"]
    p = run_cli("scan", "--staged", "--no-progress", cwd=repo, env={**env, "PRE_COMMIT_TO_REF": "nope"})
    assert p.returncode == 2 and "unknown revision 'nope'" in p.stderr


def test_progress_shows_total_and_eta_once_listing_is_done() -> None:
    from types import SimpleNamespace

    prog = Progress(enabled=True)
    prog._t0 -= 10  # ten seconds in
    prog(SimpleNamespace(items=5, bytes=50_000_000, findings=[]))
    assert "/" not in prog.line(prog._t0 + 10).split(" files")[0]
    prog.listed(20, 200_000_000)
    line = prog.line(prog._t0 + 10)
    assert line.startswith("scanned 5/20 files, 50.0 MB") and "about 30 s left" in line


def test_counting_source_reports_the_total(tmp_path: Path) -> None:
    from veritensor_fast.sources.fs import FileSource

    for i in range(3):
        (tmp_path / f"{i}.txt").write_text("x" * 10)
    prog = Progress(enabled=True)
    src = prog.counting(FileSource([os.fspath(tmp_path)], (), False, 0))
    assert prog.total_files is None
    list(src.items())
    assert (prog.total_files, prog.total_bytes) == (3, 30)


def test_counting_keeps_directory_shards_and_counts_their_files(tmp_path: Path) -> None:
    """The progress wrapper must not turn the engine's sharded listing back into a per-file one, and its
    total counts the files inside each shard (sizes unknown for name-only entries: the ETA goes by files)."""
    from types import SimpleNamespace

    from veritensor_fast.sources.fs import FileSource

    for i in range(40):
        (tmp_path / f"{i}.txt").write_text("x" * 10)
    prog = Progress(enabled=True)
    src = prog.counting(FileSource([os.fspath(tmp_path)], (), False, 0))
    assert hasattr(type(src), "items_sharded")
    listed = list(src.items_sharded(16, 1 << 20, stat_first=0))
    assert any(getattr(it, "entries", ()) for it in listed)  # shards, not files
    assert prog.total_files == 40 and prog.total_bytes == -1
    prog._t0 -= 10
    prog(SimpleNamespace(items=10, bytes=100, findings=[]))
    line = prog.line(prog._t0 + 10)
    assert line.startswith("scanned 10/40 files") and "about 30 s left" in line
