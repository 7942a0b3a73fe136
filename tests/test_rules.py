"""Rules are data: every rule's examples match and negative examples don't, in BOTH engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.kernels import hsdb
from veritensor_fast.kernels.hsdb import compile_patterns
from veritensor_fast.matcher import SecretMatcher, python_only_match
from veritensor_fast.rules import RuleError, load_rules

from conftest import hf_token, rand, run_cli

RULES = load_rules()
MATCHER = SecretMatcher(RULES, strict=True)
CASES = [(r.id, ex, True) for r in RULES.rules for ex in r.examples] + [
    (r.id, ex, False) for r in RULES.rules for ex in r.negative_examples
]


def hs_hits(rule_id: str, text: str) -> bool:
    return any(m.rule.id == rule_id for m in MATCHER.find(text.encode()))


@pytest.mark.parametrize(("rule_id", "text", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_examples_in_both_engines(rule_id: str, text: str, expected: bool) -> None:
    rule = RULES.by_id()[rule_id]
    assert hs_hits(rule_id, text) is expected
    assert python_only_match(rule, text) is expected


def test_every_rule_has_examples_and_negatives() -> None:
    for r in RULES.rules:
        assert r.examples, r.id
        assert r.negative_examples, r.id


def test_ids_unique_and_one_database() -> None:
    ids = [r.id for r in RULES.rules]
    assert len(ids) == len(set(ids))
    blob = compile_patterns([r.hs_pattern for r in RULES.rules])
    # the engine compile_patterns used: real Hyperscan, or the pure-Python fallback when it is forced
    db = hsdb.hyperscan.loadb(blob, hsdb.hyperscan.HS_MODE_BLOCK)
    assert db is not None


def test_required_families_present() -> None:
    ids = set(RULES.by_id())
    for family in ["huggingface.user-token", "huggingface.org-token", "openai.api-key", "openai.legacy-key",
                   "anthropic.api-key", "aws.access-key-id", "aws.secret-access-key", "gcp.api-key",
                   "gcp.service-account-key-id", "azure.storage-account-key", "github.token",
                   "github.fine-grained-pat", "gitlab.pat", "slack.token", "stripe.secret-key", "wandb.api-key",
                   "kaggle.api-key", "replicate.api-token", "cohere.api-key", "mistral.api-key", "groq.api-key",
                   "together.api-key", "npm.access-token", "pypi.upload-token", "private-key.pem"]:
        assert family in ids


@pytest.mark.parametrize("body", [
    "x" * 34, ("abc" * 12)[:34], "*" * 34, "abcdefghijklmnopqrstuvwxyzABCDEFGH", "0123456789" * 3 + "0123",
    "YOUR_TOKEN_HERE_YOUR_TOKEN_HERE_YO",
])
def test_hf_placeholders_rejected(body: str) -> None:
    assert not hs_hits("huggingface.user-token", f'token = "hf_{body}"')


@pytest.mark.parametrize("word", ["EXAMPLE", "example", "Placeholder", "DUMMY", "sample", "changeme", "REDACTED",
                                  "xxxxxx", "YOUR_TOKEN"])
def test_placeholder_words_rejected_even_with_high_entropy(word: str) -> None:
    body = (rand(10) + word + rand(34))[:34]
    assert not hs_hits("huggingface.user-token", f"hf_{body}")
    assert hs_hits("huggingface.user-token", f"hf_{rand(34)}")


def test_hf_letters_only_and_mixed_tokens_found() -> None:
    letters = "hf_" + rand(34, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert hs_hits("huggingface.user-token", letters)
    assert hs_hits("huggingface.user-token", hf_token())


@pytest.mark.parametrize("wrap", ["x{}", "{}x", "_{}", "{}_", "9{}"])
def test_hf_longer_identifiers_rejected(wrap: str) -> None:
    assert not hs_hits("huggingface.user-token", wrap.format(hf_token()))


@pytest.mark.parametrize("wrap", ['"{}"', "'{}'", "\\n{}\\n", "\\u0022{}\\u0022", "({})", "={}", "`{}`", "{}"])
def test_hf_boundaries_accept_quotes_and_escapes(wrap: str) -> None:
    tok = hf_token()
    found = [m for m in MATCHER.find(wrap.format(tok).encode()) if m.rule.id == "huggingface.user-token"]
    assert [m.secret.decode() for m in found] == [tok]


def test_strict_only_rule_needs_strict() -> None:
    text = f'db_password = "{rand(32)}"'
    assert hs_hits("generic.secret-assignment", text)
    lax = SecretMatcher(RULES, strict=False)
    assert not any(m.rule.id == "generic.secret-assignment" for m in lax.find(text.encode()))


def test_exact_span_reported() -> None:
    tok = hf_token()
    buf = f"prefix {tok} suffix".encode()
    (m,) = MATCHER.find(buf)
    assert buf[m.start:m.end].decode() == tok == m.secret.decode()


def test_many_overlapping_candidates_deduplicated() -> None:
    toks = [hf_token() for _ in range(50)]
    buf = " ".join(toks).encode()
    assert [m.secret.decode() for m in MATCHER.find(buf)] == toks


def test_extra_rules_file_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "extra.yaml"
    good.write_text(
        "rules:\n- id: acme.key\n  name: ACME key\n  severity: high\n  pattern: acme_[a-z0-9]{20}\n"
        "  min_entropy: 3.0\n  examples: ['acme_k3j5h2g7f8d9s0a1q2w3']\n  negative_examples: ['acme_aaaaaaaaaaaaaaaaaaaa']\n"
    )
    rs = load_rules([good])
    assert "acme.key" in rs.by_id()
    assert rs.version != RULES.version
    dup = tmp_path / "dup.yaml"
    dup.write_text("rules:\n- id: huggingface.user-token\n  name: x\n  severity: high\n  pattern: abc\n")
    with pytest.raises(RuleError, match="duplicate rule id"):
        load_rules([dup])
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n- id: x.y\n  name: x\n  severity: high\n  pattern: abc\n  colour: red\n")
    with pytest.raises(RuleError, match="colour"):
        load_rules([bad])
    p = run_cli("rules", "check", "--rules", good)
    assert p.returncode == 0, p.stdout
    p = run_cli("rules", "check", "--rules", bad)
    assert p.returncode == 2 and "colour" in p.stderr


def test_disable_and_entropy_override_change_version() -> None:
    rs = load_rules(disabled=["gitlab.pat"], entropy_overrides={"huggingface.user-token": 5.5})
    assert "gitlab.pat" not in rs.by_id()
    assert rs.by_id()["huggingface.user-token"].min_entropy == 5.5
    assert rs.version != RULES.version
    with pytest.raises(RuleError):
        load_rules(disabled=["no.such.rule"])
