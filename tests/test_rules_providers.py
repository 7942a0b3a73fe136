"""Provider coverage: every provider and token format of issue 13 has a rule, and every rule's examples are
labelled by that rule alone (a key of another vendor with a look-alike prefix is not reported as the first).

The per-example ground truth (each example matches, each negative example does not, in both engines) is
``tests/test_rules.py::test_examples_in_both_engines``; here are the cross-rule properties it cannot see.
"""

from __future__ import annotations

import pytest

from veritensor_fast.matcher import SecretMatcher
from veritensor_fast.rules import load_rules

from conftest import rand

RULES = load_rules()
MATCHER = SecretMatcher(RULES, strict=False)
IDS = set(RULES.by_id())

PROVIDERS = [
    "perplexity.api-key", "deepseek.api-key", "xai.api-key", "pinecone.api-key", "notion.token", "twilio.api-key",
    "twilio.auth-token", "sendgrid.api-key", "dockerhub.token", "cohere.api-key", "mistral.api-key",
    "together.api-key", "fireworks.api-key", "openrouter.api-key", "voyage.api-key", "elevenlabs.api-key",
    "assemblyai.api-key", "stability.api-key", "modal.token", "runpod.api-key", "lambda.api-key",
    "anyscale.api-key", "comet.api-key", "neptune.api-token", "clearml.credentials", "mlflow.credentials",
    "azure.openai-key", "azure.identifiable-key", "gcp.api-key",
    # formats of providers that had a rule
    "slack.app-token", "slack.config-token", "github.refresh-token", "github.oauth-client-secret", "gitlab.token",
    "npm.legacy-auth-token", "gcp.oauth-access-token", "gcp.oauth-client-secret-legacy", "azure.ad-client-secret",
    "azure.devops-pat", "azure.shared-access-key", "aws.bedrock-api-key", "aws.session-token",
    "private-key.encrypted", "private-key.putty", "azure.app-configuration", "stripe.test-key", "gcp.gemini-api-key",
]


def test_every_issue_provider_has_a_rule() -> None:
    assert sorted(set(PROVIDERS) - IDS) == []


@pytest.mark.parametrize("rule_id", sorted(r.id for r in RULES.rules if not r.strict_only))
def test_examples_labelled_by_their_own_rule_only(rule_id: str) -> None:
    for ex in RULES.by_id()[rule_id].examples:
        assert {m.rule.id for m in MATCHER.find(ex.encode())} == {rule_id}, ex[:40]


@pytest.mark.parametrize("text", [
    "xoxp-123456789012-123456789012-123456789012-" + "#" * 32,  # redacted in a bug report
    "xoxb-" + "X" * 12 + "-" + "X" * 12 + "-" + "X" * 24,
    "AIzaSyabcdefghijklmnopqrstuvwxyz1234567",  # SDK test key
    "AIzaSyDOCAbC123dEf456GhI789jKl012-MnO",  # documentation key
])
def test_public_and_redacted_examples_are_not_findings(text: str) -> None:
    assert MATCHER.find(text.encode()) == []


def test_stripe_like_prefix_of_another_vendor() -> None:
    paystack = "sk_live_" + rand(40, "0123456789abcdef")
    stripe = "sk_live_" + rand(24) + "Q"
    assert [m.rule.id for m in MATCHER.find(paystack.encode())] == ["paystack.secret-key"]
    assert [m.rule.id for m in MATCHER.find(stripe.encode())] == ["stripe.secret-key"]


def test_slack_formats() -> None:
    found = {m.rule.id for m in MATCHER.find((
        f"xapp-1-A{rand(10, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789')}-{rand(13, '0123456789')}-"
        f"{rand(64, '0123456789abcdef')}\n"
        f"xoxe.xoxp-1-{rand(160)}\nxoxe-1-{rand(147)}\n"
        f"https://hooks.slack.com/workflows/T{rand(10, 'ABCDEFGHJK0123')}/A{rand(10, 'ABCDEFGHJK0123')}/"
        f"{rand(18, '0123456789')}/{rand(24)}\n").encode())}
    assert found == {"slack.app-token", "slack.config-token", "slack.webhook"}


#: Peer examples this scanner does not report, and why (bench/conformance/**/*.yaml; bench/README.md), keyed by
#: (file, provider, index of the positive).
KNOWN_MISSES = {
    ("kingfisher_examples", "assemblyai", 0): "abcd1234efgh5678… is a sequential placeholder",
    ("kingfisher_examples", "azure-connection-string", 1): "AccountKey of 74 characters: not a storage key length",
    ("kingfisher_examples", "azure-connection-string", 4): "AccountKey of 106 characters, sequential: made up",
    ("kingfisher_examples", "azure-openai", 1): "abcdef0123456789… is a sequential placeholder",
    ("gitleaks_examples", "anthropic", 0): "sk-ant-api03-abc123xyz-456def789ghij-klmnopqrstuvwx…: a placeholder",
    ("gitleaks_examples", "slack", 20): "xoxb-123456789012-…: the id is the documentation run 1234567890",
    ("gitleaks_examples", "slack", 26): "xoxa-2-511111111-31111111111-3111111111111-…: made-up ids, below the floor",
    ("noseyparker_examples", "aws", 0): "A3T0ABCDEFGHIJKLMNOP: alphabet run",
    ("noseyparker_examples", "aws", 1): "AKIADEADBEEFDEADBEEF: repeated word",
    ("noseyparker_examples", "aws", 2): "40 × 'a'",
    ("noseyparker_examples", "aws", 3): "40 × 'a'",
    ("noseyparker_examples", "google", 1): "client_secret of 23 × 'a': a placeholder",
}
#: Peer negatives this scanner reports on purpose, and why.
KNOWN_REPORTED = {
    ("noseyparker_examples", "npm", 0): "a legacy (v4 UUID) npm token: Nosey Parker's own comment says so; its "
                                        "fine-grained rule cannot match it (Kingfisher lists the same line as a "
                                        "positive)",
}


def test_peer_conformance_examples() -> None:
    """The peers' published examples (bench/conformance, every file): every positive found but the known misses
    above, every negative (redacted tokens, documentation keys, look-alikes) silent but the one reported on
    purpose."""
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent / "bench" / "conformance"
    missed, noisy = set(), set()
    for spec in sorted(root.rglob("*.yaml")):
        for prov, sets in yaml.safe_load(spec.read_text())["examples"].items():
            for i, text in enumerate(sets.get("positive") or []):
                if not MATCHER.find(text.encode()):
                    missed.add((spec.stem, prov, i))
            for i, text in enumerate(sets.get("negative") or []):
                if MATCHER.find(text.encode()):
                    noisy.add((spec.stem, prov, i))
    assert missed == set(KNOWN_MISSES)
    assert noisy == set(KNOWN_REPORTED)
