"""``scan --validate``: live checks against the provider's own endpoint, tested on a loopback server only."""

from __future__ import annotations

import datetime
import json
import socket
from pathlib import Path

import jsonschema
import pytest
from validate_server import fake_provider

from veritensor_fast.findings import Finding, fingerprint, redact
from veritensor_fast.validate import (
    OVERRIDE_ENV,
    RateLimiter,
    ValidateError,
    Validator,
    parse_overrides,
    sigv4_headers,
    validate_findings,
)
from veritensor_fast.validate_table import ENDPOINTS, Endpoint

from conftest import hf_token, rand, run_cli

SCHEMA = json.loads((Path(__file__).parents[1] / "veritensor_fast/report/findings.schema.json").read_text())
HOSTS = ("huggingface.co", "api.github.com", "slack.com", "gitlab.com", "api.stripe.com", "sts.amazonaws.com")


def gh_token() -> str:
    return "ghp_" + rand(36)


def slack_token() -> str:
    return f"xoxb-{rand(12, '0123456789')}-{rand(12, '0123456789')}-{rand(24)}"


def finding(rule_id: str, secret: str, path: str = "a.py", kind: str = "secret") -> Finding:
    return Finding(rule_id, kind, "high", path, 1, 1, "m", redact(secret), fingerprint(rule_id, secret),
                   secret=secret)


def verdicts(findings: list[Finding], v: Validator) -> list[tuple[str | None, str | None]]:
    return [(f.validation, f.validation_reason) for f in validate_findings(findings, v)]


def test_valid_and_invalid_read_from_the_providers_status() -> None:
    ok, revoked, forbidden, broken = hf_token(), hf_token(), gh_token(), gh_token()
    with fake_provider() as fp:
        fp.plan.update({ok: 200, revoked: 401, forbidden: 403, broken: 500})
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)), timeout=5)
        out = verdicts([finding("huggingface.user-token", ok), finding("huggingface.user-token", revoked),
                        finding("github.token", forbidden), finding("github.token", broken)], v)
    assert [s for s, _ in out] == ["valid", "invalid", "invalid", "unknown"]
    assert out[0][1] == "HTTP 200 from huggingface.co" and out[3][1] == "HTTP 500 from api.github.com"
    # each secret went to its own provider's endpoint, with the documented header
    by_host = {(r.host, r.path): r for r in fp.requests}
    assert by_host[("huggingface.co", "/api/whoami-v2")].headers["Authorization"] in (f"Bearer {ok}", f"Bearer {revoked}")
    assert {r.host for r in fp.requests} == {"huggingface.co", "api.github.com"}
    for r in fp.requests:
        sent = " ".join(r.headers.values())
        if r.host == "huggingface.co":
            assert forbidden not in sent and broken not in sent
        else:
            assert r.path == "/user" and ok not in sent and revoked not in sent


def test_slack_reads_ok_from_the_json_body() -> None:
    live, dead = slack_token(), slack_token()
    with fake_provider() as fp:
        fp.plan.update({live: (200, b'{"ok": true, "user": "x"}'),
                        dead: (200, b'{"ok": false, "error": "invalid_auth"}')})
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)))
        out = verdicts([finding("slack.token", live), finding("slack.token", dead)], v)
    assert out == [("valid", "HTTP 200 from slack.com, ok=true"),
                   ("invalid", "HTTP 200 from slack.com, ok=false (invalid_auth)")]
    assert {(r.method, r.path) for r in fp.requests} == {("POST", "/api/auth.test")}


def test_stripe_uses_basic_auth_with_the_key_as_user() -> None:
    key = "sk_live_" + rand(24)
    with fake_provider() as fp:
        fp.plan[key] = 401
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)))
        assert verdicts([finding("stripe.secret-key", key)], v) == [("invalid", "HTTP 401 from api.stripe.com")]
    assert fp.requests[0].headers["Authorization"].startswith("Basic ")


def test_timeout_is_unknown() -> None:
    slow = hf_token()
    with fake_provider() as fp:
        fp.plan[slow] = ("sleep", 2.0)
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)), timeout=0.3)
        assert verdicts([finding("huggingface.user-token", slow)], v) == [("unknown", "timeout talking to huggingface.co")]


def test_connection_refused_is_unknown() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    v = Validator(overrides={"huggingface.co": f"http://127.0.0.1:{port}"}, timeout=2)
    [(status, reason)] = verdicts([finding("huggingface.user-token", hf_token())], v)
    assert status == "unknown" and reason.startswith("could not reach huggingface.co")


def test_429_is_retried_once_after_retry_after_then_unknown() -> None:
    once, always = hf_token(), hf_token()
    with fake_provider() as fp:
        fp.plan.update({once: "429-once", always: "429"})
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)))
        out = verdicts([finding("huggingface.user-token", once), finding("huggingface.user-token", always)], v)
    assert out == [("valid", "HTTP 200 from huggingface.co"), ("unknown", "rate limited by huggingface.co (HTTP 429)")]
    assert fp.seen[once] == 2 and fp.seen[always] == 2  # one retry, never more


def test_redirect_to_a_foreign_host_is_not_followed() -> None:
    token = hf_token()
    with fake_provider() as foreign, fake_provider() as fp:
        fp.plan[token] = ("redirect", f"{foreign.base}/steal")
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)))
        assert verdicts([finding("huggingface.user-token", token)], v) == [
            ("unknown", "HTTP 302 redirect from huggingface.co not followed")]
    assert len(fp.requests) == 1 and foreign.requests == []


def test_concurrency_is_bounded() -> None:
    tokens = [hf_token() for _ in range(8)]
    fast = {"huggingface.user-token": Endpoint("hf", "GET", "https://huggingface.co/api/whoami-v2",
                                               {"Authorization": "Bearer {secret}"}, rate=0)}
    with fake_provider() as fp:
        fp.plan.update({t: ("sleep", 0.2) for t in tokens})
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)), concurrency=2, endpoints=fast)
        out = verdicts([finding("huggingface.user-token", t) for t in tokens], v)
    assert [s for s, _ in out] == ["valid"] * 8
    assert len(fp.requests) == 8 and fp.max_inflight <= 2


def test_rate_limiter_spaces_requests_per_provider() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    lim = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        lim.acquire()
    assert slept == [0.25] * 4  # the first goes at once, then one every 1/rate seconds
    now[0] += 10  # idle: no debt is carried, the next one goes at once
    lim.acquire()
    assert len(slept) == 4


def test_every_table_entry_is_https_and_keyed_by_a_real_rule() -> None:
    from veritensor_fast.rules import load_rules

    ids = {r.id for r in load_rules().rules}
    assert set(ENDPOINTS) <= ids
    for ep in ENDPOINTS.values():
        assert ep.url.startswith("https://") and ep.rate > 0
        assert any("{secret" in h for h in ep.headers.values())


def test_non_https_endpoint_and_malformed_secret_are_never_sent() -> None:
    plain = {"huggingface.user-token": Endpoint("hf", "GET", "http://huggingface.co/api/whoami-v2",
                                                {"Authorization": "Bearer {secret}"})}
    with fake_provider() as fp:
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)), endpoints=plain)
        assert verdicts([finding("huggingface.user-token", hf_token())], v)[0][0] == "unknown"
        v2 = Validator(overrides=parse_overrides(fp.override(*HOSTS)))
        bad = "hf_" + rand(30) + "\r\nX-Evil: 1"
        assert verdicts([finding("huggingface.user-token", bad)], v2)[0] == (
            "unknown", "not sent: the value is not a well-formed token")
    assert fp.requests == []


@pytest.mark.parametrize("spec", ["huggingface.co=https://evil.example", "huggingface.co=http://10.0.0.1:80",
                                  "huggingface.co=http://127.0.0.1:1/x", "huggingface.co"])
def test_overrides_may_only_point_at_loopback(spec: str) -> None:
    with pytest.raises(ValidateError):
        parse_overrides(spec)


def test_one_request_per_distinct_secret_and_no_validator_reads_unknown() -> None:
    token = hf_token()
    with fake_provider() as fp:
        fp.plan[token] = 200
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)))
        fs = [finding("huggingface.user-token", token, p) for p in ("a", "b", "c")]
        fs.append(finding("gcp.api-key", "AIza" + rand(35)))
        fs.append(Finding("model.pickle.global", "model", "critical", "m.pkl", 1, 1, "x", "", "0" * 64))
        out = verdicts(fs, v)
    assert len(fp.requests) == 1
    assert out[:3] == [("valid", "HTTP 200 from huggingface.co")] * 3
    assert out[3] == ("unknown", "no validator for this rule") and out[4] == (None, None)


def test_sigv4_matches_the_aws_test_suite_vector() -> None:
    # AWS SigV4 test suite, "get-vanilla"
    h = sigv4_headers("GET", "https://example.amazonaws.com/", {}, b"", "AKIDEXAMPLE",
                      "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region="us-east-1", service="service",
                      now=datetime.datetime(2015, 8, 30, 12, 36, 0, tzinfo=datetime.timezone.utc))
    assert h["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")


def test_aws_pair_in_one_file_is_checked_with_sts() -> None:
    kid, secret = "AKIA" + rand(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), rand(40)
    lone = "AKIA" + rand(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    with fake_provider() as fp:
        fp.plan[kid] = (200, b"<GetCallerIdentityResponse/>")
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)))
        out = verdicts([finding("aws.access-key-id", kid, "creds"), finding("aws.secret-access-key", secret, "creds"),
                        finding("aws.access-key-id", lone, "other")], v)
    assert out[0] == out[1] == ("valid", "HTTP 200 from sts.amazonaws.com")
    assert out[2] == ("unknown", "no AWS secret access key in the same file")
    [r] = fp.requests
    assert (r.method, r.host, r.body) == ("POST", "sts.amazonaws.com", b"Action=GetCallerIdentity&Version=2011-06-15")
    assert f"Credential={kid}/" in r.headers["Authorization"] and secret not in " ".join(r.headers.values())


# ----------------------------------------------------------------------------------------------- the CLI


def _tree(tmp_path: Path) -> tuple[Path, str, str]:
    live, dead = hf_token(), gh_token()
    d = tmp_path / "proj"
    d.mkdir()
    (d / "a.py").write_text(f'HF_TOKEN = "{live}"\n')
    (d / "b.env").write_text(f"GITHUB_TOKEN={dead}\n")
    return d, live, dead


@pytest.mark.parametrize("fmt", ["json", "jsonl", "sarif", "text"])
def test_cli_validate_reports_status_and_never_prints_the_secret(tmp_path: Path, fmt: str) -> None:
    d, live, dead = _tree(tmp_path)
    with fake_provider() as fp:
        fp.plan.update({live: 200, dead: 401})
        p = run_cli("scan", "--no-progress", "-j", "1", "--format", fmt, "--validate", d,
                    env={OVERRIDE_ENV: fp.override(*HOSTS)}, cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    for secret in (live, dead):
        assert secret not in p.stdout and secret not in p.stderr
    assert len(fp.requests) == 2
    if fmt == "json":
        doc = json.loads(p.stdout)
        jsonschema.validate(doc, SCHEMA)
        got = {f["rule_id"]: (f["validation"], f["validation_reason"]) for f in doc["findings"]}
        assert got == {"huggingface.user-token": ("valid", "HTTP 200 from huggingface.co"),
                       "github.token": ("invalid", "HTTP 401 from api.github.com")}
        assert doc["stats"]["validation"] == {"valid": 1, "invalid": 1, "unknown": 0}
    elif fmt == "jsonl":
        rows = [json.loads(x) for x in p.stdout.splitlines()]
        assert sorted(r["validation"] for r in rows if r["type"] == "finding") == ["invalid", "valid"]
    elif fmt == "sarif":
        res = json.loads(p.stdout)["runs"][0]["results"]
        assert sorted(r["properties"]["validation"] for r in res) == ["invalid", "valid"]
    else:
        assert "live: valid: HTTP 200 from huggingface.co" in p.stdout
        assert "live: invalid: HTTP 401 from api.github.com" in p.stdout


def test_cli_without_validate_sends_nothing(tmp_path: Path) -> None:
    d, live, dead = _tree(tmp_path)
    with fake_provider() as fp:
        fp.plan.update({live: 200, dead: 401})
        p = run_cli("scan", "--no-progress", "-j", "1", "--format", "json", d,
                    env={OVERRIDE_ENV: fp.override(*HOSTS)}, cwd=tmp_path)
    assert p.returncode == 1 and fp.requests == []
    assert all("validation" not in f for f in json.loads(p.stdout)["findings"])


def test_cli_refuses_a_foreign_override(tmp_path: Path) -> None:
    d, _, _ = _tree(tmp_path)
    p = run_cli("scan", "--no-progress", "-j", "1", "--validate", d,
                env={OVERRIDE_ENV: "huggingface.co=https://collector.example"}, cwd=tmp_path)
    assert p.returncode == 2 and "only http(s)://loopback" in p.stderr and "Traceback" not in p.stderr


def test_time_budget_turns_the_rest_into_unknown_without_requests() -> None:
    tokens = [hf_token() for _ in range(4)]
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    with fake_provider() as fp:
        fp.plan.update({t: 200 for t in tokens})
        # 2 requests a second to huggingface.co, 1.2 s of budget: slots at 0, 0.5, 1.0 fit, the fourth does not
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)), concurrency=1, budget=1.2,
                      clock=lambda: now[0], sleep=sleep)
        out = verdicts([finding("huggingface.user-token", t) for t in tokens], v)
    assert [s for s, _ in out] == ["valid"] * 3 + ["unknown"]
    assert out[3][1] == "not checked: the validation time budget is spent" and len(fp.requests) == 3


def test_aws_secret_without_a_key_id_says_so() -> None:
    v = Validator()
    assert verdicts([finding("aws.secret-access-key", rand(40))], v) == [
        ("unknown", "no AWS access key id in the same file")]


def test_a_finding_restored_without_its_secret_takes_the_verdict_of_the_same_secret() -> None:
    token = hf_token()
    fresh = finding("huggingface.user-token", token, "new.py")
    restored = Finding(fresh.rule_id, "secret", "high", "old.py", 1, 1, "m", fresh.redacted, fresh.fingerprint)
    alone = Finding(fresh.rule_id, "secret", "high", "x.py", 1, 1, "m", "…", "1" * 64)
    with fake_provider() as fp:
        fp.plan[token] = 200
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)))
        out = verdicts([restored, fresh, alone], v)
    assert out[:2] == [("valid", "HTTP 200 from huggingface.co")] * 2 and len(fp.requests) == 1
    assert out[2] == ("unknown", "secret not available (restored from the datastore)")


def test_a_provider_answer_that_echoes_the_secret_never_reaches_the_reason() -> None:
    tok, hf = slack_token(), hf_token()
    with fake_provider() as fp:
        fp.plan[tok] = (200, json.dumps({"ok": False, "error": tok}).encode())
        fp.plan[hf] = (500, json.dumps({"error": f"bad token {hf}"}).encode())
        v = Validator(overrides=parse_overrides(fp.override(*HOSTS)))
        out = verdicts([finding("slack.token", tok), finding("huggingface.user-token", hf)], v)
    assert out == [("invalid", "HTTP 200 from slack.com, ok=false"), ("unknown", "HTTP 500 from huggingface.co")]
