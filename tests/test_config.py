"""Configuration: discovery, validation (unknown keys and bad types named), and CLI flags overriding config."""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.config import Config, ConfigError, discover, effective, load_config, load_file
from veritensor_fast.findings import fingerprint

from conftest import hf_token, run_cli, scan_json


def write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def test_pyproject_table_is_parsed(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", """
[project]
name = "x"
[tool.veritensor-fast]
exclude = ["data/*", "*.csv"]
rules = ["more-rules.yaml"]
disabled-rules = ["generic.password"]
fail_severity = "high"
entropy = { "huggingface.user-token" = 4.5 }
allow_globals = ["collections.OrderedDict"]
jobs = 2
strict_secrets = true
include_outputs = false
max_file_size = 1000
baseline = ".veritensor-baseline.json"
ignore_model_findings_inline = true
""")
    cfg = load_config(None, [tmp_path])
    assert cfg.exclude == ("data/*", "*.csv")
    assert cfg.rules == (str(tmp_path / "more-rules.yaml"),)
    assert cfg.disabled_rules == ("generic.password",)
    assert cfg.fail_severity == "high"
    assert cfg.entropy == (("huggingface.user-token", 4.5),)
    assert cfg.allow_globals == ("collections.OrderedDict",)
    assert (cfg.jobs, cfg.strict_secrets, cfg.include_outputs, cfg.max_file_size) == (2, True, False, 1000)
    assert cfg.baseline == str(tmp_path / ".veritensor-baseline.json")
    eff = effective(cfg)
    assert eff.options.entropy_overrides == (("huggingface.user-token", 4.5),)
    assert eff.options.strict_secrets is True and eff.options.include_outputs is False
    assert eff.options.ignore_model_findings_inline is True
    assert eff.fail_severity == "high" and eff.jobs == 2 and eff.max_file_size == 1000


def test_discovery_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    write(a / "pyproject.toml", "[project]\nname = 'no-table'\n")
    assert discover([a]) is None  # a pyproject without our table does not count
    write(b / "pyproject.toml", "[tool.veritensor-fast]\njobs = 3\n")
    assert discover([a, b]) == (b / "pyproject.toml").resolve()
    write(b / ".veritensor-fast.toml", "jobs = 4\n")
    assert discover([a, b]) == (b / ".veritensor-fast.toml").resolve()  # dedicated file wins
    assert load_config(None, [a, b]).jobs == 4
    assert load_config(None, [a]) == Config()


@pytest.mark.parametrize("text, key", [
    ("[tool.veritensor-fast]\nexclued = ['x']\n", "exclued"),
    ("[tool.veritensor-fast]\nshow_secrets = true\n", "show_secrets"),
])
def test_unknown_key_is_named(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown key '{key}'"):
        load_file(write(tmp_path / "pyproject.toml", text))


@pytest.mark.parametrize("text, key", [
    ("exclude = 3\n", "exclude"),
    ("fail_severity = 'urgent'\n", "fail_severity"),
    ("jobs = -1\n", "jobs"),
    ("strict_secrets = 'yes'\n", "strict_secrets"),
    ("entropy = { 'x.y' = 'high' }\n", "entropy.x.y"),
])
def test_bad_values_are_named(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        load_file(write(tmp_path / ".veritensor-fast.toml", text))


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_file(write(tmp_path / ".veritensor-fast.toml", "exclude = [\n"))


def test_cli_unknown_key_exit_2(tree: Path) -> None:
    write(tree / "pyproject.toml", "[tool.veritensor-fast]\nfail-severity = 'high'\nbogus_key = 1\n")
    write(tree / "a.txt", "hello\n")
    from conftest import run_cli

    p = run_cli("scan", ".", "--no-progress", cwd=tree)
    assert p.returncode == 2
    assert "bogus_key" in p.stderr


def test_config_applies_and_cli_overrides(tree: Path) -> None:
    tok = hf_token()
    write(tree / "keep" / "a.py", f"t = '{tok}'\n")
    write(tree / "skipme" / "b.py", f"t = '{hf_token()}'\n")
    write(tree / ".veritensor-fast.toml", 'exclude = ["skipme"]\nfail_severity = "critical"\n'
                                          'disabled_rules = ["huggingface.user-token"]\n')
    # config: the HF rule is disabled -> nothing found
    code, rep = scan_json(".", "-j1", cwd=tree)
    assert code == 0 and rep["findings"] == []
    # an explicit (empty) config file replaces discovery: both files are found again
    empty = write(tree.parent / "empty.toml", "")
    code, rep = scan_json(".", "-j1", "--config", str(empty), cwd=tree)
    assert code == 1
    assert sorted(f["path"] for f in rep["findings"]) == ["keep/a.py", "skipme/b.py"]
    # exclude from the config applies; --exclude on the command line adds to it
    write(tree / ".veritensor-fast.toml", 'exclude = ["skipme"]\nfail_severity = "critical"\nstrict_secrets = true\n')
    code, rep = scan_json(".", "-j1", cwd=tree)
    assert code == 1 and [f["path"] for f in rep["findings"]] == ["keep/a.py"]  # exclude from config applies
    code, rep = scan_json(".", "-j1", "--exclude", "keep", cwd=tree)
    assert code == 0 and rep["findings"] == []


def test_cli_fail_severity_overrides_config(tree: Path) -> None:
    write(tree / "a.py", f"t = '{hf_token()}'\n")  # a critical finding
    write(tree / ".veritensor-fast.toml", 'fail_severity = "critical"\n')
    code, rep = scan_json(".", "-j1", cwd=tree)
    assert code == 1 and len(rep["findings"]) == 1
    # there is no severity above critical, so test the override downwards via a rule file of low severity
    write(tree / "low-rules.yaml", """
rules:
  - id: custom.low-thing
    name: Low thing
    severity: low
    pattern: 'LOWTHING_([A-Za-z0-9]{24})'
""")
    write(tree / "a.py", "t = 'LOWTHING_" + "aB3dE5gH7jK9mN1pQ3sT5vW7' \n")
    write(tree / ".veritensor-fast.toml", 'fail_severity = "high"\nrules = ["low-rules.yaml"]\n')
    code, rep = scan_json(".", "-j1", cwd=tree)
    assert [f["rule_id"] for f in rep["findings"]] == ["custom.low-thing"]
    assert code == 0  # config: low findings do not fail
    code, rep = scan_json(".", "-j1", "--fail-severity", "low", cwd=tree)
    assert code == 1  # the flag overrides the config's threshold


def test_allow_secrets_and_detector_switches(tree: Path) -> None:
    import base64

    fixture, real, hidden = hf_token(), hf_token(), hf_token()
    (tree / "conftest.py").write_text(f"FAKE = '{fixture}'\nREAL = '{real}'\n")
    (tree / "k.env").write_text(f"B64={base64.b64encode(hidden.encode()).decode()}\n")
    cfg = tree / ".veritensor-fast.toml"
    cfg.write_text(f'allow_secrets = ["^{fixture[:12]}"]\n')
    _, rep = scan_json(".", cwd=tree)
    assert sorted(f["fingerprint"] for f in rep["findings"]) == sorted(
        [fingerprint("huggingface.user-token", real), fingerprint("huggingface.user-token", hidden)])
    cfg.write_text(f'allow_secrets = ["^{fixture[:12]}"]\ndecode_base64 = false\n')
    _, rep = scan_json(".", cwd=tree)
    assert [f["fingerprint"] for f in rep["findings"]] == [fingerprint("huggingface.user-token", real)]
    cfg.write_text('allow_secrets = ["(unclosed"]\n')
    p = run_cli("scan", ".", cwd=tree)
    assert p.returncode == 2 and "allow_secrets" in p.stderr
