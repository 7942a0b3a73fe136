"""``explain RULE_ID``: every built-in rule has an entry; the text report points to it; docs/rules.md is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from veritensor_fast.explain import all_rules, explain, explanations, rules_catalogue
from veritensor_fast.models.rule_ids import MODEL_RULES
from veritensor_fast.rules import load_rules

from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = [r.id for r in load_rules().rules] + list(MODEL_RULES)


@pytest.mark.parametrize("rule_id", BUILTIN)
def test_every_builtin_rule_has_an_explanation(rule_id: str) -> None:
    e = explain(rule_id)
    assert len(e.grants) > 40 and len(e.action) > 10, rule_id
    assert all(u.startswith("https://") for u in e.links)
    if e.kind == "secret" and rule_id != "generic.secret-assignment":
        assert e.links, f"{rule_id}: link the provider's page for revoking it"


def test_no_explanation_for_a_rule_that_does_not_exist() -> None:
    assert set(explanations()) == {r[0] for r in all_rules()}
    assert all(set(v) == {"grants", "action", "links"} for v in explanations().values())


def test_explain_cli() -> None:
    p = run_cli("explain", "huggingface.user-token")
    assert p.returncode == 0, p.stderr
    assert "What it grants:" in p.stdout and "https://huggingface.co/settings/tokens" in p.stdout
    assert "Revoke and rotate:" in p.stdout and "ignore[huggingface.user-token]" in p.stdout
    p = run_cli("explain", "model.keras.lambda")
    assert p.returncode == 0 and "What it means:" in p.stdout


def test_explain_unknown_rule_exits_2_with_suggestion() -> None:
    p = run_cli("explain", "huggingface.user-tokn")
    assert p.returncode == 2 and "did you mean huggingface.user-token" in p.stderr and not p.stdout


def test_text_report_points_to_explain(tmp_path: Path) -> None:
    from conftest import hf_token

    (tmp_path / "a.env").write_text(f"T={hf_token()}\n")
    p = run_cli("scan", "--no-progress", tmp_path)
    assert "veritensor-fast explain huggingface.user-token" in p.stdout
    cmd = p.stdout.split("veritensor-fast explain ", 1)[1].split()[0]
    assert run_cli("explain", cmd).returncode == 0


def test_rules_catalogue_is_current() -> None:
    doc = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert doc == rules_catalogue(), "docs/rules.md is stale: run python scripts/gen_rules_doc.py"
    for rid in BUILTIN:
        assert f"### {rid}\n" in doc
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_rules_doc.py"), "--check"],
                       capture_output=True, text=True, check=False)
    assert p.returncode == 0, p.stderr
