"""Default excludes (virtualenvs, installed packages, build output, caches) and what the exit code counts as
an incomplete scan (policy skips and warnings never do). Issue 15."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from veritensor_fast.cli import EXIT_CLEAN, EXIT_FINDINGS, EXIT_INCOMPLETE, exit_code
from veritensor_fast.engine import ScanResult
from veritensor_fast.findings import Finding, ScanError, error_level
from veritensor_fast.sources.fs import DEFAULT_EXCLUDE_DIRS, FileSource

from conftest import hf_token, run_cli, scan_json

SKIPPED = ["build", "dist", "node_modules", "__pycache__", "site-packages", ".tox", ".nox", ".mypy_cache",
           ".ruff_cache", ".pytest_cache", ".hypothesis"]


def _project(root: Path, tok: str) -> Path:
    """A normal project: one real leak in src/, and copies of it where users never want findings."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text(f'TOKEN = "{tok}"\n')
    for d in SKIPPED:
        (root / "sub" / d).mkdir(parents=True)
        (root / "sub" / d / "copy.py").write_text(f'TOKEN = "{tok}"\n')
    venv = root / "env-3.11"  # a virtualenv under any name: recognised by pyvenv.cfg
    (venv / "lib" / "python3.11" / "site-packages" / "pkg").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "lib" / "python3.11" / "site-packages" / "pkg" / "rules.py").write_text(f'EX = "{tok}"\n')
    (venv / "bin").mkdir()
    (venv / "bin" / "activate").write_text(f'export HF_TOKEN="{tok}"\n')
    return root


def test_default_excludes_skip_venvs_packages_build_output_and_caches(tmp_path: Path) -> None:
    tok = hf_token()
    root = _project(tmp_path / "proj", tok)
    rc, rep = scan_json(root)
    assert rc == EXIT_FINDINGS
    assert [f["path"] for f in rep["findings"]] == ["src/app.py"]
    assert rep["stats"]["skipped_dirs"] == sorted(["env-3.11", *(f"sub/{d}" for d in SKIPPED)])
    assert rep["errors"] == []


def test_no_default_excludes_scans_everything(tmp_path: Path) -> None:
    tok = hf_token()
    root = _project(tmp_path / "proj", tok)
    rc, rep = scan_json("--no-default-excludes", root)
    paths = {f["path"] for f in rep["findings"]}
    assert rc == EXIT_FINDINGS
    assert paths == {"src/app.py", *(f"sub/{d}/copy.py" for d in SKIPPED),
                     "env-3.11/lib/python3.11/site-packages/pkg/rules.py", "env-3.11/bin/activate"}
    assert "skipped_dirs" not in rep["stats"]


def test_text_summary_says_what_was_skipped(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "node_modules" / "x").mkdir(parents=True)
    (root / "node_modules" / "x" / "k.js").write_text(f'k = "{hf_token()}"\n')
    (root / "ok.txt").write_text("fine\n")
    p = run_cli("scan", "--no-progress", root)
    assert p.returncode == EXIT_CLEAN, p.stderr
    assert "skipped 1 directory by default (node_modules; --no-default-excludes scans them)" in p.stdout


def test_an_explicit_root_is_scanned_even_if_it_is_an_excluded_name(tmp_path: Path) -> None:
    tok = hf_token()
    for name in ("build", ".venv"):
        d = tmp_path / name
        d.mkdir()
        if name == ".venv":
            (d / "pyvenv.cfg").write_text("home = /usr/bin\n")
        (d / "k.py").write_text(f'K = "{tok}"\n')
        res = list(FileSource([str(d)]).items())
        assert "k.py" in [getattr(i, "path", None) for i in res], name


def test_user_excludes_and_default_excludes_compose(tmp_path: Path) -> None:
    tok = hf_token()
    root = _project(tmp_path / "proj", tok)
    rc, rep = scan_json("--exclude", "src", root)
    assert rc == EXIT_CLEAN and rep["findings"] == []


def test_api_default_excludes_flag(tmp_path: Path) -> None:
    from veritensor_fast import scan_paths

    root = _project(tmp_path / "proj", hf_token())
    assert [f.path for f in scan_paths(root, jobs=1).findings] == ["src/app.py"]
    assert len(scan_paths(root, jobs=1, default_excludes=False).findings) == 3 + len(SKIPPED)


def test_excluded_names_are_the_documented_ones() -> None:
    assert set(SKIPPED) == DEFAULT_EXCLUDE_DIRS


# --- exit codes: policy skips and warnings are not "could not scan" ---------------------------------------

def _result(*errors: ScanError, findings: int = 0) -> ScanResult:
    fs = [Finding("r", "secret", "high", "a", 1, 1, "m", "x…", "f" * 64) for _ in range(findings)]
    return ScanResult(fs, list(errors))


def test_error_levels() -> None:
    assert error_level(ScanError("a", "too big", "too-large")) == "skipped"
    assert error_level(ScanError("a", "cannot open", "unreadable")) == "error"
    assert error_level(ScanError("a", "scanned as text", "parse", level="warning")) == "warning"


@pytest.mark.parametrize(("errors", "code"), [
    ((), EXIT_CLEAN),
    ((ScanError("a", "too big", "too-large"),), EXIT_CLEAN),
    ((ScanError("a", "scanned as plain text", "parse", level="warning"),), EXIT_CLEAN),
    ((ScanError("a", "too big", "too-large"), ScanError("b", "cannot open", "unreadable")), EXIT_INCOMPLETE),
])
def test_exit_code_counts_only_real_errors(errors: tuple[ScanError, ...], code: int) -> None:
    assert exit_code(_result(*errors)) == code
    assert exit_code(_result(*errors, findings=1)) == EXIT_FINDINGS


def test_exit_code_incomplete_is_configurable() -> None:
    res = _result(ScanError("b", "cannot open", "unreadable"))
    assert exit_code(res, incomplete_code=0) == EXIT_CLEAN
    assert exit_code(res, incomplete_code=7) == 7


def test_max_file_size_skip_is_policy_not_incomplete(tree: Path) -> None:
    (tree / "big.txt").write_bytes(b"a" * 5000)
    (tree / "ok.txt").write_text("fine\n")
    p = run_cli("scan", "--no-progress", "--max-file-size", "1000", tree)
    assert p.returncode == EXIT_CLEAN, p.stdout
    assert "Skipped by policy:" in p.stdout and "1 skipped by policy" in p.stdout
    assert "could not be scanned" not in p.stdout and "incomplete" not in p.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_cli_exit_code_incomplete_option(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    assert run_cli("scan", "--no-progress", tree).returncode == EXIT_INCOMPLETE
    p = run_cli("scan", "--no-progress", "--exit-code-incomplete", "0", tree)
    assert p.returncode == EXIT_CLEAN and "scan incomplete" in p.stdout  # still reported, just not a failure
    (tree / "k.txt").write_text(f"{hf_token()}\n")
    assert run_cli("scan", "--no-progress", "--exit-code-incomplete", "0", tree).returncode == EXIT_FINDINGS
    bad = run_cli("scan", "--exit-code-incomplete", "-1", tree)
    assert bad.returncode == 2


def test_levels_and_skipped_dirs_in_reports_match_the_schema(tmp_path: Path) -> None:
    import json

    import jsonschema

    from veritensor_fast import render_report

    schema = json.loads((Path(__file__).resolve().parent.parent / "veritensor_fast" / "report"
                         / "findings.schema.json").read_text())
    res = ScanResult([], [ScanError("a.ipynb", "invalid JSON; scanned as plain text", "parse", level="warning"),
                          ScanError("big.bin", "too big", "too-large"), ScanError("p", "cannot open", "unreadable")],
                     {"files": 1, "bytes": 1, "seconds": 0.1, "findings": 0, "errors": 3, "jobs": 1,
                      "rules_version": "x", "version": "0", "skipped_dirs": [".venv", "node_modules"]})
    doc = json.loads(render_report(res, "json"))
    jsonschema.validate(doc, schema)
    assert [e["level"] for e in doc["errors"]] == ["warning", "skipped", "error"]
    text = render_report(res, "text")
    assert "Warnings:" in text and "Skipped by policy:" in text and "Could not scan:" in text
    assert "1 input could not be scanned" in text and "1 skipped by policy; 1 warning" in text
    assert "skipped 2 directories by default (.venv, node_modules;" in text
