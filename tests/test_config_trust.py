"""Issue 10 §2: a scanned tree does not configure its own audit. Only ``--config FILE`` or a config in the
current directory applies; a config committed inside a scanned target elsewhere is ignored (one stderr note),
``--no-config`` ignores all, and the report names the config used (``stats.config``, text summary)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from veritensor_fast.findings import fingerprint

from conftest import git_run, hf_token, init_repo, run_cli, scan_json

RULE = "huggingface.user-token"


def _hostile_settings(tok: str) -> dict[str, str]:
    """Each value alone makes today's scan report nothing (exit 0) when the config is applied."""
    baseline = {"format": "veritensor-fast-baseline", "version": 1,
                "findings": [{"fingerprint": fingerprint(RULE, tok), "path": "leak.py", "rule_id": RULE}]}
    return {
        "allow_secrets": 'allow_secrets = ["."]\n',
        "exclude": 'exclude = ["*"]\n',
        "disabled_rules": f'disabled_rules = ["{RULE}"]\n',
        # a rules file that disables nothing but would be loaded from the scanned tree: it must not be read
        "rules": 'rules = ["evil.yaml"]\ndisabled_rules = ["' + RULE + '"]\n',
        "baseline": 'baseline = "known.json"\n' + "#" + json.dumps(baseline) + "\n",
    }


def _target(root: Path, tok: str, cfg_name: str, body: str) -> Path:
    repo = init_repo(root / "vendor")
    (repo / "leak.py").write_text(f"TOKEN = '{tok}'\n")
    (repo / "evil.yaml").write_text("rules: []\n")
    baseline = {"format": "veritensor-fast-baseline", "version": 1,
                "findings": [{"fingerprint": fingerprint(RULE, tok), "path": "leak.py", "rule_id": RULE}]}
    (repo / "known.json").write_text(json.dumps(baseline))
    if cfg_name == "pyproject.toml":
        body = "[tool.veritensor-fast]\n" + body
    (repo / cfg_name).write_text(body)
    git_run(repo, "add", "-A")
    git_run(repo, "commit", "-qm", "vendor drop")
    return repo


@pytest.mark.parametrize("cfg_name", [".veritensor-fast.toml", "pyproject.toml"])
@pytest.mark.parametrize("key", ["allow_secrets", "exclude", "disabled_rules", "rules", "baseline"])
def test_config_in_scanned_target_is_not_applied(tmp_path: Path, cfg_name: str, key: str) -> None:
    tok = hf_token()
    repo = _target(tmp_path, tok, cfg_name, _hostile_settings(tok)[key])
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    for extra in ([], ["--history", "--no-datastore"]):
        p = run_cli("scan", "--format", "json", "--no-progress", "-j1", repo, *extra, cwd=elsewhere)
        assert p.returncode == 1, (extra, p.stderr)
        rep = json.loads(p.stdout)
        assert fingerprint(RULE, tok) in {f["fingerprint"] for f in rep["findings"]}, extra
        assert rep["stats"]["config"] is None
        notes = [ln for ln in p.stderr.splitlines() if "ignoring config" in ln]
        assert len(notes) == 1 and str(repo / cfg_name) in notes[0] and "--config" in notes[0], p.stderr


def test_named_config_applies_and_is_reported(tmp_path: Path) -> None:
    tok = hf_token()
    repo = _target(tmp_path, tok, ".veritensor-fast.toml", 'exclude = ["*"]\n')
    code, rep = scan_json(repo, "-j1", "--config", repo / ".veritensor-fast.toml", cwd=tmp_path)
    assert code == 0 and rep["findings"] == []
    assert rep["stats"]["config"] == str(repo / ".veritensor-fast.toml")


def test_config_in_cwd_applies_and_no_config_ignores_it(tmp_path: Path) -> None:
    tok = hf_token()
    repo = _target(tmp_path, tok, ".veritensor-fast.toml", 'exclude = ["*"]\n')
    code, rep = scan_json(".", "-j1", cwd=repo)
    assert code == 0 and rep["stats"]["config"] == str(repo / ".veritensor-fast.toml")
    p = run_cli("scan", "--no-progress", "-j1", ".", cwd=repo)
    assert "config: " + str(repo / ".veritensor-fast.toml") in p.stdout
    code, rep = scan_json(".", "-j1", "--no-config", cwd=repo)
    assert code == 1 and rep["stats"]["config"] is None
    assert fingerprint(RULE, tok) in {f["fingerprint"] for f in rep["findings"]}
    p = run_cli("scan", "--no-progress", "-j1", "--no-config", ".", cwd=repo)
    assert "config: none" in p.stdout and "ignoring config" not in p.stderr


def test_baseline_and_rules_resolve_against_the_trusted_config(tmp_path: Path) -> None:
    tok = hf_token()
    repo = _target(tmp_path, tok, ".veritensor-fast.toml", 'baseline = "known.json"\n')
    # the same names in the current directory must not be used: the paths are the config's
    (tmp_path / "known.json").write_text("not json")
    code, rep = scan_json(repo, "-j1", "--config", repo / ".veritensor-fast.toml", cwd=tmp_path)
    assert code == 0 and rep["stats"]["baselined"] == 1


def test_broken_unrelated_pyproject_in_cwd_warns_and_goes_on(tmp_path: Path) -> None:
    tok = hf_token()
    (tmp_path / "pyproject.toml").write_text("[project\nname = 'x'\n")
    (tmp_path / "a.py").write_text(f"T = '{tok}'\n")
    p = run_cli("scan", "--no-progress", "-j1", "a.py", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert "pyproject.toml" in p.stderr and "Traceback" not in p.stderr
    (tmp_path / "pyproject.toml").write_text("[tool.veritensor-fast\nexclude = 3\n")
    p = run_cli("scan", "--no-progress", "-j1", "a.py", cwd=tmp_path)
    assert p.returncode == 2 and "pyproject.toml" in p.stderr and "Traceback" not in p.stderr


def test_staged_trusts_repo_config_only_from_inside(tmp_path: Path) -> None:
    tok = hf_token()
    repo = init_repo(tmp_path / "r")
    (repo / ".veritensor-fast.toml").write_text('exclude = ["*"]\n')
    (repo / "leak.py").write_text(f"T = '{tok}'\n")
    git_run(repo, "add", "-A")
    (repo / "sub").mkdir()
    p = run_cli("scan", "--no-progress", "--staged", cwd=repo / "sub")  # the user's own repository
    assert p.returncode == 0, p.stderr
    p = run_cli("scan", "--no-progress", "--staged", repo, cwd=tmp_path)  # someone else's
    assert p.returncode == 1 and "ignoring config" in p.stderr, p.stderr
