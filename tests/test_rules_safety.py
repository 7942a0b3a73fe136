"""User-supplied regexes (rules files, ``allow_secrets``) cannot hang a scan; bad rules, config and baseline
files exit 2 naming the file (and rule) without a traceback; non-regular files are never read (issue 10 §2,
issue 11). Every run has a subprocess timeout, so a regression fails instead of hanging."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from veritensor_fast.findings import fingerprint
from veritensor_fast.rules import Rule, load_rules

from conftest import hf_token, run_cli, scan_json

CATASTROPHIC = "(?:a|a)+b"  # Python re: 28 characters took 13 s, doubling with each one


def _rules_file(path: Path, rid: str, pattern: str, extra: str = "") -> Path:
    path.write_text(f"rules:\n  - id: {rid}\n    name: test rule\n    severity: high\n"
                    f"    pattern: '{pattern}'\n    left: none\n    right: none\n{extra}")
    return path


def test_catastrophic_rule_pattern_is_bounded(tmp_path: Path) -> None:
    tok = hf_token()
    rules = _rules_file(tmp_path / "r.yaml", "custom.aab", CATASTROPHIC)
    (tmp_path / "a.txt").write_text("a" * 60 + "c ab\n" + f"T = '{tok}'\n")
    code, rep = scan_json(tmp_path / "a.txt", "-j1", "--rules", rules, cwd=tmp_path, timeout=60)
    assert code == 1
    assert fingerprint("huggingface.user-token", tok) in {f["fingerprint"] for f in rep["findings"]}


def test_catastrophic_allow_secrets_is_bounded(tmp_path: Path) -> None:
    tok, fixture = hf_token(), "hf_" + "Q" * 3 + hf_token()[6:]
    (tmp_path / ".veritensor-fast.toml").write_text(
        'allow_secrets = ["(?:[A-Za-z0-9_]|[A-Za-z0-9_])+!", "^hf_QQQ"]\n')
    (tmp_path / "a.py").write_text(f"T = '{tok}'\nF = '{fixture}'\n")
    code, rep = scan_json("a.py", "-j1", cwd=tmp_path, timeout=60)
    assert code == 1
    assert [f["fingerprint"] for f in rep["findings"]] == [fingerprint("huggingface.user-token", tok)]


def test_rules_matched_by_re2_find_what_python_re_finds() -> None:
    """The linear-time confirmation gives the same spans as Python re on every built-in rule's examples."""
    from dataclasses import replace

    for r in load_rules().rules:
        py, safe = r.confirm_regex(), replace(r, engine="re2").confirm_regex()
        for ex in (*r.examples, *r.negative_examples):
            for pre, post in (("", ""), ("x", ""), (" ", " "), ("\\n", "_"), ("\\u0022", '"')):
                data = (pre + ex + post).encode()
                for lo in (0, 1):
                    want = [m.span() for m in py.finditer(data, lo, len(data))]
                    assert [m.span() for m in safe.finditer(data, lo, len(data))] == want, (r.id, data)


@pytest.mark.parametrize("pattern,what", [
    ("(ab)\\1", "RE2"),
    ("(?<!x)abc", "RE2"),
    ("abc(?=d)", "RE2"),
    ("x*", "empty"),
])
def test_bad_rule_patterns_exit_2(tmp_path: Path, pattern: str, what: str) -> None:
    rules = _rules_file(tmp_path / "bad.yaml", "custom.bad", pattern)
    (tmp_path / "a.txt").write_text("abc\n")
    p = run_cli("scan", "--no-progress", "--rules", rules, tmp_path / "a.txt", cwd=tmp_path, timeout=60)
    assert p.returncode == 2, p.stderr
    assert str(rules) in p.stderr and "custom.bad" in p.stderr and what in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("extra,what", [
    ("    min_entropy: high\n", "min_entropy"),
    ("    keywords: 5\n", "keywords"),
    ("    strict_only: maybe\n", "strict_only"),
])
def test_bad_rule_fields_exit_2(tmp_path: Path, extra: str, what: str) -> None:
    rules = _rules_file(tmp_path / "bad.yaml", "custom.bad", "tok_[a-z]{20}", extra)
    p = run_cli("scan", "--no-progress", "--rules", rules, tmp_path, cwd=tmp_path, timeout=60)
    assert p.returncode == 2 and "custom.bad" in p.stderr and what in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_non_utf8_rules_file_exit_2(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_bytes(b"rules:\n  - id: custom.x\n    name: \xff\xfe\n")
    p = run_cli("scan", "--no-progress", "--rules", rules, tmp_path, cwd=tmp_path, timeout=60)
    assert p.returncode == 2 and str(rules) in p.stderr and "UTF-8" in p.stderr and "Traceback" not in p.stderr


def test_rules_check_reports_bad_file(tmp_path: Path) -> None:
    rules = _rules_file(tmp_path / "bad.yaml", "custom.bad", "(ab)\\1")
    p = run_cli("rules", "check", "--rules", rules, timeout=60)
    assert p.returncode == 2 and "custom.bad" in p.stderr and "Traceback" not in p.stderr


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("how", ["flag", "config"])
@pytest.mark.parametrize("target", ["/dev/zero", "fifo", "dir"])
def test_non_regular_rules_file_exit_2(tmp_path: Path, how: str, target: str) -> None:
    path = {"/dev/zero": "/dev/zero", "fifo": str(tmp_path / "r.fifo"), "dir": str(tmp_path)}[target]
    if target == "fifo":
        _fifo(Path(path))
    (tmp_path / "a.txt").write_text("x\n")
    if how == "flag":
        p = run_cli("scan", "--no-progress", "--rules", path, "a.txt", cwd=tmp_path, timeout=30)
    else:
        (tmp_path / ".veritensor-fast.toml").write_text(f'rules = ["{path}"]\n')
        p = run_cli("scan", "--no-progress", "a.txt", cwd=tmp_path, timeout=30)
    assert p.returncode == 2, p.stderr
    assert path in p.stderr and "not a regular file" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("opt", ["--config", "--baseline"])
def test_non_regular_config_and_baseline_exit_2(tmp_path: Path, opt: str) -> None:
    fifo = _fifo(tmp_path / "x.fifo")
    (tmp_path / "a.txt").write_text("x\n")
    for path in ("/dev/zero", str(fifo)):
        p = run_cli("scan", "--no-progress", opt, path, "a.txt", cwd=tmp_path, timeout=30)
        assert p.returncode == 2 and path in p.stderr and "not a regular file" in p.stderr, p.stderr


def test_engine_field_defaults() -> None:
    assert all(r.engine == "re" for r in load_rules().rules)
    assert Rule("x", "x", "low", "abc").engine == "re"
