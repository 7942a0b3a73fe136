"""Provider endpoints for ``--validate``: data, one entry per rule id; read by ``veritensor_fast.validate``.

Each entry says how to ask the credential's *own* provider "is this credential live?" with a request that
reads identity or lists resources and changes nothing. ``{secret}`` in a header or body template is
replaced by the secret (``{secret_b64}`` by base64 of ``secret:``, for HTTP basic auth with an empty
password). The URL is a constant ``https://`` address: nothing the scanned content holds can change where
a secret is sent.

How a response reads: a status in ``valid`` means live, a status in ``invalid`` means revoked or wrong;
``json_ok`` names a top-level JSON key that must be ``true`` for "valid" (Slack answers 200 either way and
says ``{"ok": false, "error": "invalid_auth"}``). Anything else (5xx, 429 after one retry, a redirect, a
timeout, a refused connection) reads "unknown".

Rules without an entry are not sent anywhere: Slack webhooks (a request would post a message), PyPI upload
tokens and GCP/Azure keys (no read-only identity endpoint that takes the bare key), generic assignments.
AWS key pairs are checked with STS GetCallerIdentity, signed in ``veritensor_fast.validate`` (SigV4).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoint:
    provider: str  # also the rate-limit bucket
    method: str
    url: str  # https:// only
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    valid: frozenset[int] = frozenset({200})
    invalid: frozenset[int] = frozenset({401, 403})
    json_ok: str | None = None
    rate: float = 2.0  # requests per second to this provider, at most


def _bearer(provider: str, url: str, *, method: str = "GET", json_ok: str | None = None,
            extra: dict[str, str] | None = None) -> Endpoint:
    headers = {"Authorization": "Bearer {secret}", "Accept": "application/json", **(extra or {})}
    return Endpoint(provider, method, url, headers, json_ok=json_ok)


_HF = _bearer("huggingface", "https://huggingface.co/api/whoami-v2")
_OPENAI = _bearer("openai", "https://api.openai.com/v1/models")
_GITHUB = Endpoint("github", "GET", "https://api.github.com/user",
                   {"Authorization": "Bearer {secret}", "Accept": "application/vnd.github+json",
                    "X-GitHub-Api-Version": "2022-11-28"})

#: rule id -> endpoint. AWS (``aws.access-key-id`` + ``aws.secret-access-key``) is handled separately.
ENDPOINTS: dict[str, Endpoint] = {
    "huggingface.user-token": _HF,
    "huggingface.org-token": _HF,
    "openai.api-key": _OPENAI,
    "openai.legacy-key": _OPENAI,
    "anthropic.api-key": Endpoint("anthropic", "GET", "https://api.anthropic.com/v1/models",
                                  {"x-api-key": "{secret}", "anthropic-version": "2023-06-01",
                                   "Accept": "application/json"}),
    "github.token": _GITHUB,
    "github.fine-grained-pat": _GITHUB,
    "gitlab.pat": Endpoint("gitlab", "GET", "https://gitlab.com/api/v4/user",
                           {"PRIVATE-TOKEN": "{secret}", "Accept": "application/json"}),
    "slack.token": _bearer("slack", "https://slack.com/api/auth.test", method="POST", json_ok="ok",
                           extra={"Content-Type": "application/x-www-form-urlencoded"}),
    "stripe.secret-key": Endpoint("stripe", "GET", "https://api.stripe.com/v1/balance",
                                  {"Authorization": "Basic {secret_b64}"}),
    "npm.access-token": _bearer("npm", "https://registry.npmjs.org/-/whoami"),
    "replicate.api-token": _bearer("replicate", "https://api.replicate.com/v1/account"),
    "mistral.api-key": _bearer("mistral", "https://api.mistral.ai/v1/models"),
    "groq.api-key": _bearer("groq", "https://api.groq.com/openai/v1/models"),
    "together.api-key": _bearer("together", "https://api.together.xyz/v1/models"),
    "cohere.api-key": _bearer("cohere", "https://api.cohere.com/v1/models"),
}

#: AWS STS GetCallerIdentity (SigV4, region us-east-1); 403 InvalidClientTokenId / SignatureDoesNotMatch: invalid.
AWS_STS = Endpoint("aws", "POST", "https://sts.amazonaws.com/",
                   {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                   body="Action=GetCallerIdentity&Version=2011-06-15")
AWS_KEY_ID, AWS_SECRET = "aws.access-key-id", "aws.secret-access-key"
