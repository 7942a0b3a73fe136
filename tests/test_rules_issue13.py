"""Issue 13's remaining formats, each in the file where a team would leak it, scanned through the CLI: Slack
legacy bot and xoxe- tokens, webhooks in JSON-escaped and percent-encoded URLs, tokens after a ``%2F``/``%3D``
escape, Azure App Configuration connection strings, OpenAI ``T4BlbkFJ``/``sk-None-`` keys, Stripe test and short
live keys, pre-GOCSPX Google client secrets by variable name and Gemini ``AQ.`` keys; and the made-up examples
that stay silent on principle. Every value is synthetic (random characters in the provider's layout)."""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from pathlib import Path

import pytest

from veritensor_fast.matcher import SecretMatcher
from veritensor_fast.rules import load_rules

from conftest import rand, scan_json

MATCHER = SecretMatcher(load_rules())
HEX = "0123456789abcdef"
B64 = string.ascii_letters + string.digits + "+/"
URLSAFE = string.ascii_letters + string.digits + "_-"


def _findings(tmp_path: Path, files: dict[str, str]) -> list[dict[str, object]]:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    code, report = scan_json(tmp_path, "--no-config")
    assert code == 1, report
    return list(report["findings"])


def _by_path(findings: list[dict[str, object]]) -> dict[str, set[tuple[object, object]]]:
    out: dict[str, set[tuple[object, object]]] = {}
    for f in findings:
        out.setdefault(str(f["path"]), set()).add((f["rule_id"], f["severity"]))
    return out


def test_slack_tokens_and_webhooks_behind_escapes(tmp_path: Path) -> None:
    """A Slack API response as PHP's json_encode writes it (every '/' escaped), a redirect URL inside a query
    string (percent-encoded), and a bot config with a short legacy bot token."""
    team, bot, secret = "T" + rand(9, "ABCDEFGHJK0123456789"), "B" + rand(10, "ABCDEFGHJK0123456789"), rand(24)
    xoxe = f"xoxe-{rand(13, '0123456789')}-{rand(13, '0123456789')}-{rand(13, '0123456789')}-{rand(32, HEX)}"
    legacy_bot = f"xoxb-{rand(12, '123456789')}-{rand(19)}"
    files = {
        "api/files_info.json": json.dumps({"file": {"url_private": f"https://files.slack.com/files-pri/{team}-F0/a.png"
                                                    f"?t={xoxe}"}, "hook": f"https://hooks.slack.com/services/"
                                                    f"{team}/{bot}/{secret}"}).replace("/", "\\/"),
        "logs/access.log": f"GET /oauth/done?next=https%3A%2F%2Fhooks.slack.com%2Fservices%2F{team}%2F{bot}%2F"
                           f"{secret} 302\n",
        "bot/config.json": json.dumps({"bot_token": legacy_bot}, indent=2),
        "ci/notify.sh": f"curl -s \"https://slack.com/api/chat.postMessage?token%3D{legacy_bot}\"\n",
    }
    got = _by_path(_findings(tmp_path, files))
    assert got == {
        "api/files_info.json": {("slack.token", "high"), ("slack.webhook", "medium")},
        "logs/access.log": {("slack.webhook", "medium")},
        "bot/config.json": {("slack.token", "high")},
        "ci/notify.sh": {("slack.token", "high")},
    }


def test_percent_escape_is_a_left_boundary_for_every_rule() -> None:
    """``%2F``/``%3D`` end in a letter or digit; before this they hid any token that followed them."""
    ghp = "ghp_" + rand(36)
    for prefix in ("%2F", "%3D", "%3d", "%22"):
        assert [m.rule.id for m in MATCHER.find(f"u=a{prefix}{ghp}&x=1".encode())] == ["github.token"]
    # still a boundary: a token glued to ordinary letters is not one
    assert MATCHER.find(f"u=abc{ghp}".encode()) == []


def test_azure_app_configuration_connection_string(tmp_path: Path) -> None:
    secret = rand(43, B64) + "="
    conn = f"Endpoint=https://featureflags-prod.azconfig.io;Id={rand(4, 'abcdefghijklmnopqrstuvwxyz0123456789')}" \
           f"-l1-s0:{rand(20, B64)};Secret={secret}"
    files = {
        "appsettings.json": json.dumps({"ConnectionStrings": {"AppConfig": conn}}, indent=2),
        "Program.cs": f'builder.Configuration.AddAzureAppConfiguration("{conn}");\n',
        "docs/setup.md": "Set `Endpoint=https://<name>.azconfig.io;Id=<id>;Secret=<secret>` in the portal.\n",
    }
    got = _by_path(_findings(tmp_path, files))
    assert got == {"appsettings.json": {("azure.app-configuration", "critical")},
                   "Program.cs": {("azure.app-configuration", "critical")}}


def test_openai_keys_in_every_current_shape(tmp_path: Path) -> None:
    legacy_t4 = f"sk-{rand(20)}T4BlbkFJ{rand(20)}"
    user = f"sk-None-{rand(74, URLSAFE)}T3BlbkFJ{rand(74, URLSAFE)}"
    admin = f"sk-admin-{rand(58, URLSAFE)}T3BlbkFJ{rand(58, URLSAFE)}"
    files = {
        "scripts/gen_images.sh": f"curl https://api.openai.com/v1/images/generations -H \"Authorization: Bearer "
                                 f"{legacy_t4}\"\n",
        ".env": f"OPENAI_API_KEY={user}\nOPENAI_ADMIN_KEY={admin}\n",
    }
    got = _by_path(_findings(tmp_path, files))
    assert got == {"scripts/gen_images.sh": {("openai.legacy-key", "critical")},
                   ".env": {("openai.api-key", "critical")}}
    assert MATCHER.find(f"sk-{rand(20)}T5BlbkFJ{rand(20)}".encode()) == []  # not a marker OpenAI issues


def test_stripe_test_keys_low_and_short_live_keys_critical(tmp_path: Path) -> None:
    files = {
        "web/checkout.js": f'const stripe = require("stripe")("sk_test_{rand(24)}");\n',
        "config/billing.yml": f"stripe:\n  restricted_key: rk_test_{rand(99)}\n",
        "legacy/settings.py": f"STRIPE_SECRET_KEY = 'sk_live_Q{rand(14)}'\n",
        "pay/paystack.env": f"PAYSTACK_TEST_KEY=sk_test_{rand(40, HEX)}\n",  # another vendor's key shape
    }
    got = _by_path(_findings(tmp_path, files))
    assert got == {"web/checkout.js": {("stripe.test-key", "low")},
                   "config/billing.yml": {("stripe.test-key", "low")},
                   "legacy/settings.py": {("stripe.secret-key", "critical")}}


def test_google_client_secret_by_variable_name(tmp_path: Path) -> None:
    def sec() -> str:
        return rand(10, URLSAFE) + "-" + rand(13, URLSAFE)

    files = {
        "oauth.php": f"<?php\n$google_client_secret = '{sec()}';\n",
        "src/auth.js": f"const creds = {{\n  'clientSecret' : '{sec()}',\n}};\n",
        ".env": f"GOOGLE_CLIENT_SECRET={sec()}\n",
        "client_secret.json": json.dumps({"web": {"client_id": "1-x.apps.googleusercontent.com",
                                                  "client_secret": sec()}}),
        # not Google's 24-character format: GitHub (40 hex), a file name, an environment lookup
        "other.env": f"GITHUB_CLIENT_SECRET={rand(40, HEX)}\nCLIENT_SECRET_FILE=client_secret_{rand(6, HEX)}.json\n",
        "settings.py": 'CLIENT_SECRET = os.environ["GOOGLE_CLIENT_SECRET"]\n',
    }
    found = _findings(tmp_path, files)
    got = _by_path([f for f in found if f["rule_id"] == "gcp.oauth-client-secret-legacy"])
    assert set(got) == {"oauth.php", "src/auth.js", ".env", "client_secret.json"}
    assert {f["path"] for f in found} == set(got) | {"other.env"}  # other.env: the GitHub secret only
    assert {f["rule_id"] for f in found if f["path"] == "other.env"} == {"github.oauth-client-secret"}


def test_gemini_aq_key(tmp_path: Path) -> None:
    key = "AQ.Ab8RN6" + rand(44, URLSAFE)
    files = {"notebooks/chat.py": f'import google.genai as genai\nclient = genai.Client(api_key="{key}")\n'}
    assert _by_path(_findings(tmp_path, files)) == {"notebooks/chat.py": {("gcp.gemini-api-key", "high")}}
    assert MATCHER.find(("AQ.Ab8RN6" + rand(44, URLSAFE) + "x").encode()) == []  # 45 characters: not one


@pytest.mark.parametrize("text", [
    # gitleaks' made-up legacy workspace token: every id segment a repeated digit; the floor applies to the
    # token as written, and lowering it for one example would admit xoxp-111111111111-… placeholders too
    '"access_token": "xoxa-2-511111111-31111111111-3111111111111-e039d02840a0b9379c"',
    # gitleaks' Anthropic sample: abc123xyz, 456def789ghij, klmnopqrstuvwx, 1234fghijklmnop: a placeholder
    "sk-ant-api03-abc123xyz-456def789ghij-klmnopqrstuvwx-3456yza789bcde-1234fghijklmnopby56aaaogaopaaaabc123xyzAA",
    # Betterleaks' Gemini negatives: wrong prefix, too short
    'gemini_api_key = "AQ.Ab8RN5AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AB"',
    'gemini_api_key = "AQ.Ab8RN6AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-"',
    '{"url":"https:\\/\\/hooks.slack.com\\/services\\/T00000000\\/B00000000\\/XXXXXXXXXXXXXXXXXXXXXXXX"}',
])
def test_made_up_examples_stay_silent(text: str) -> None:
    assert MATCHER.find(text.encode()) == []


def test_legacy_npm_uuid_token_still_found() -> None:
    """Nosey Parker lists ``-export NPM_TOKEN="<v4 UUID>"`` as a negative of its fine-grained npm rule only
    (its comment: legacy tokens "appear to be non-prefixed v4 UUIDs"; Kingfisher lists the same line as a
    positive). A real legacy token has the same shape, so it is reported, in .npmrc and in a shell export."""
    uuid = f"{rand(8, HEX)}-{rand(4, HEX)}-4{rand(3, HEX)}-8{rand(3, HEX)}-{rand(12, HEX)}"
    for text in (f"//registry.npmjs.org/:_authToken={uuid}\n", f'-export NPM_TOKEN="{uuid}"\n'):
        assert [m.rule.id for m in MATCHER.find(text.encode())] == ["npm.legacy-auth-token"]


def test_ast_prefilter_plan_is_the_same_in_every_process() -> None:
    """The AST prefilter's Hyperscan database is cached on disk by its pattern list; a rule with several
    literal prefixes (slack.webhook's escaped forms, client_secret spellings) used to list them in set order,
    which changes with the hash seed, so every process compiled the database again (~2 s of CPU each)."""
    code = ("import hashlib\nfrom veritensor_fast.rules import load_rules\n"
            "from veritensor_fast.detectors.pyast import prefilter_plan\n"
            "p = prefilter_plan(load_rules().rules)\n"
            "print(hashlib.sha256(repr((p.patterns, p.shapes, p.pairs)).encode()).hexdigest())\n")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "3")}
    assert len(digests) == 1


def test_percent_escape_boundary_in_user_rules_too(tmp_path: Path) -> None:
    """User rules run in RE2, whose boundary is written as consumed context: it accepts ``%XX`` the same way."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n- id: acme.token\n  name: Acme token\n  severity: high\n"
                     "  pattern: acme_[a-z0-9]{20}\n  examples: [x]\n  negative_examples: [y]\n")
    m = SecretMatcher(load_rules([rules]))
    tok = "acme_" + rand(20, "abcdefghijklmnopqrstuvwxyz0123456789")
    assert [x.rule.id for x in m.find(f"next=%2F{tok}&a=1".encode())] == ["acme.token"]
    assert m.find(f"next=xF{tok}".encode()) == []
