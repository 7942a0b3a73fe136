"""Shared pieces of the corpus generators: seeded synthetic secrets for every rule, decoys, filler text and the
ground-truth record format.

Everything here is deterministic for a given ``random.Random`` state and nothing is downloaded. Secrets are
random-looking synthetic values shaped like each provider's format; they are never real credentials.

Ground truth (``ground_truth.json`` next to each corpus) is a dict::

    {"corpus": ..., "seed": ..., "params": {...},
     "secrets": [{"path", "rule_id", "placement", "requires", "line", "check_line", "fingerprint"}, ...],
     "decoys":  [{"path", "kind", "line"}, ...],
     "models":  [{"path", "verdict", "evidence", "placement", "requires"}, ...]}

``requires`` lists the detector modules that must exist for the placement to be findable (empty: the plain
text pass finds it). ``fingerprint`` is ``veritensor_fast.findings.fingerprint(rule_id, secret)``; the secret
itself is never written to the ground truth.
"""

from __future__ import annotations

import base64
import json
import os
import random
import string
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from veritensor_fast.findings import fingerprint

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64 = string.ascii_letters + string.digits + "+/"
URLSAFE = ALNUM + "_-"
UPPER_B32 = string.ascii_uppercase + "234567"

NOTEBOOK = "veritensor_fast.detectors.notebook"
ENCODED = "veritensor_fast.detectors.encoded"
PYAST = "veritensor_fast.detectors.pyast"
MODEL = "veritensor_fast.detectors.model"


def rand(rng: random.Random, alphabet: str, n: int) -> str:
    """``n`` random characters; rejects runs that a placeholder filter would drop (never happens in practice)."""
    return "".join(rng.choices(alphabet, k=n))


@dataclass(frozen=True)
class Secret:
    """One synthetic credential: ``secret`` is what the rule captures, ``name`` a variable name that carries
    any keyword the rule needs, ``value`` the text assigned to it (contains ``secret``)."""

    rule_id: str
    secret: str
    name: str
    value: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule_id, self.secret)


def _simple(rule_id: str, name: str, make: Callable[[random.Random], str]) -> Callable[[random.Random], Secret]:
    def f(rng: random.Random) -> Secret:
        s = make(rng)
        return Secret(rule_id, s, name, s)

    return f


def _azure_storage(rng: random.Random) -> Secret:
    key = rand(rng, B64, 86) + "=="
    value = f"DefaultEndpointsProtocol=https;AccountName=mlartifacts;AccountKey={key};EndpointSuffix=core.windows.net"
    return Secret("azure.storage-account-key", key, "AZURE_STORAGE_CONNECTION_STRING", value)


def _slack_webhook(rng: random.Random) -> Secret:
    s = (f"https://hooks.slack.com/services/T{rand(rng, UPPER_B32, 9)}/B{rand(rng, UPPER_B32, 10)}/"
         f"{rand(rng, ALNUM, 24)}")
    return Secret("slack.webhook", s, "SLACK_WEBHOOK_URL", s)


#: One factory per built-in rule (except ``generic.secret-assignment``, which needs ``--strict-secrets``).
#: Keyword rules get a variable name that carries the keyword.
SECRET_FACTORIES: dict[str, Callable[[random.Random], Secret]] = {
    "huggingface.user-token": _simple("huggingface.user-token", "HF_TOKEN", lambda r: "hf_" + rand(r, ALNUM, 34)),
    "huggingface.org-token": _simple("huggingface.org-token", "HUGGINGFACE_ORG_TOKEN",
                                     lambda r: "api_org_" + rand(r, ALNUM, 34)),
    "openai.api-key": _simple("openai.api-key", "OPENAI_API_KEY",
                              lambda r: "sk-proj-" + rand(r, ALNUM, 48) + "T3BlbkFJ" + rand(r, ALNUM, 48)),
    "openai.legacy-key": _simple("openai.legacy-key", "OPENAI_KEY",
                                 lambda r: "sk-" + rand(r, ALNUM, 20) + "T3BlbkFJ" + rand(r, ALNUM, 20)),
    "anthropic.api-key": _simple("anthropic.api-key", "ANTHROPIC_API_KEY",
                                 lambda r: "sk-ant-api03-" + rand(r, URLSAFE, 93) + "AA"),
    "wandb.api-key": lambda r: (lambda s: Secret("wandb.api-key", s, "WANDB_API_KEY", s))(rand(r, HEX, 40)),
    "kaggle.api-key": lambda r: (lambda s: Secret("kaggle.api-key", s, "KAGGLE_KEY", s))(rand(r, HEX, 32)),
    "replicate.api-token": _simple("replicate.api-token", "REPLICATE_API_TOKEN", lambda r: "r8_" + rand(r, ALNUM, 37)),
    "cohere.api-key": lambda r: (lambda s: Secret("cohere.api-key", s, "COHERE_API_KEY", s))(rand(r, ALNUM, 40)),
    "mistral.api-key": lambda r: (lambda s: Secret("mistral.api-key", s, "MISTRAL_API_KEY", s))(rand(r, ALNUM, 32)),
    "groq.api-key": _simple("groq.api-key", "GROQ_API_KEY", lambda r: "gsk_" + rand(r, ALNUM, 52)),
    "together.api-key": lambda r: (lambda s: Secret("together.api-key", s, "TOGETHER_API_KEY", s))(rand(r, HEX, 64)),
    "databricks.token": _simple("databricks.token", "DATABRICKS_TOKEN", lambda r: "dapi" + rand(r, HEX, 32)),
    "langsmith.api-key": _simple("langsmith.api-key", "LANGCHAIN_API_KEY",
                                 lambda r: f"lsv2_pt_{rand(r, HEX, 32)}_{rand(r, HEX, 10)}"),
    "aws.access-key-id": _simple("aws.access-key-id", "AWS_ACCESS_KEY_ID", lambda r: "AKIA" + rand(r, UPPER_B32, 16)),
    "aws.secret-access-key": lambda r: (lambda s: Secret("aws.secret-access-key", s, "AWS_SECRET_ACCESS_KEY", s))(
        rand(r, B64, 40)),
    "gcp.api-key": _simple("gcp.api-key", "GOOGLE_API_KEY", lambda r: "AIza" + rand(r, URLSAFE, 35)),
    "gcp.oauth-client-secret": _simple("gcp.oauth-client-secret", "GOOGLE_CLIENT_SECRET",
                                       lambda r: "GOCSPX-" + rand(r, URLSAFE, 28)),
    "azure.storage-account-key": _azure_storage,
    "azure.openai-key": lambda r: (lambda s: Secret("azure.openai-key", s, "AZURE_OPENAI_API_KEY", s))(rand(r, HEX, 32)),
    "github.token": _simple("github.token", "GITHUB_TOKEN", lambda r: "ghp_" + rand(r, ALNUM, 36)),
    "github.fine-grained-pat": _simple("github.fine-grained-pat", "GH_TOKEN",
                                       lambda r: f"github_pat_{rand(r, ALNUM, 22)}_{rand(r, ALNUM, 59)}"),
    "gitlab.pat": _simple("gitlab.pat", "GITLAB_TOKEN", lambda r: "glpat-" + rand(r, URLSAFE, 20)),
    "slack.token": _simple("slack.token", "SLACK_BOT_TOKEN",
                           lambda r: f"xoxb-{rand(r, '0123456789', 12)}-{rand(r, '0123456789', 12)}-{rand(r, ALNUM, 24)}"),
    "slack.webhook": _slack_webhook,
    "stripe.secret-key": _simple("stripe.secret-key", "STRIPE_SECRET_KEY", lambda r: "sk_live_" + rand(r, ALNUM, 32)),
    "npm.access-token": _simple("npm.access-token", "NPM_TOKEN", lambda r: "npm_" + rand(r, ALNUM, 36)),
    "pypi.upload-token": _simple("pypi.upload-token", "TWINE_PASSWORD",
                                 lambda r: "pypi-AgEIcHlwaS5vcmc" + rand(r, URLSAFE, 120)),
}
#: Rules whose secrets need a multi-line or structured host (written by dedicated helpers below).
STRUCTURED_RULES = ("private-key.pem", "gcp.service-account-key-id")
#: Rules no corpus plants (need options the default scan does not use).
#: Rules whose ground truth is their own examples plus a dedicated test, not a corpus (private keys: real
#: ssh-keygen / openssl keys in tests/test_private_keys.py).
#: The same for the provider rules of rules/providers.yaml (tests/test_rules.py, tests/test_rules_providers.py).
EXAMPLES_ONLY = (
    "private-key.encrypted", "private-key.putty",
    "perplexity.api-key", "deepseek.api-key", "xai.api-key", "pinecone.api-key",
    "notion.token", "twilio.api-key", "twilio.auth-token", "sendgrid.api-key",
    "dockerhub.token", "fireworks.api-key", "openrouter.api-key", "voyage.api-key",
    "elevenlabs.api-key", "assemblyai.api-key", "stability.api-key", "modal.token",
    "runpod.api-key", "lambda.api-key", "anyscale.api-key", "comet.api-key",
    "neptune.api-token", "clearml.credentials", "mlflow.credentials", "azure.identifiable-key",
    "azure.devops-pat", "azure.ad-client-secret", "azure.shared-access-key", "aws.bedrock-api-key",
    "aws.session-token", "slack.app-token", "slack.config-token", "github.refresh-token",
    "github.oauth-client-secret", "gitlab.token", "npm.legacy-auth-token", "gcp.oauth-access-token",
    "gcp.oauth-client-secret-legacy", "paystack.secret-key", "azure.app-configuration", "stripe.test-key",
    "gcp.gemini-api-key",
)
NOT_PLANTED = ("generic.secret-assignment", *EXAMPLES_ONLY)


def make_secret(rng: random.Random, rule_id: str = "huggingface.user-token") -> Secret:
    return SECRET_FACTORIES[rule_id](rng)


def pem_block(rng: random.Random, kind: str = "RSA PRIVATE KEY", lines: int = 6) -> tuple[str, str]:
    """A PEM-looking private key (random base64, not a key). Returns ``(text, secret)`` where the secret is
    the block from BEGIN to END armour, which is what ``private-key.pem`` captures."""
    body = [rand(rng, B64, 64) for _ in range(lines)]
    text = f"-----BEGIN {kind}-----\n" + "\n".join(body) + f"\n-----END {kind}-----\n"
    return text, text.rstrip("\n")


def service_account_json(rng: random.Random, project: str) -> tuple[str, list[tuple[str, str]]]:
    """A GCP service-account key file; returns the text and ``[(rule_id, secret)]`` it contains."""
    key_id = rand(rng, HEX, 40)
    pem, pem_secret = pem_block(rng, "PRIVATE KEY", 8)
    doc = {
        "type": "service_account", "project_id": project, "private_key_id": key_id, "private_key": pem,
        "client_email": f"trainer@{project}.iam.gserviceaccount.com", "client_id": rand(rng, "0123456789", 21),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token",
    }
    escaped = json.dumps(pem_secret)[1:-1]  # found in the raw JSON text, escapes and all
    return json.dumps(doc, indent=2) + "\n", [("gcp.service-account-key-id", key_id), ("private-key.pem", escaped)]


# ---- decoys: must never be reported -------------------------------------------------------------------------

def decoy_lines(rng: random.Random) -> list[tuple[str, str]]:
    """``(kind, line)`` pairs that look like secrets but are placeholders, digests or identifiers."""
    return [
        ("placeholder-x", "HF_TOKEN=hf_" + "x" * 34),
        ("placeholder-repeat", 'token = "hf_' + "abc" * 11 + 'a"'),
        ("redacted-stars", "HF_TOKEN=hf_" + "*" * 34),
        ("placeholder-words", "HF_TOKEN=hf_YOUR_TOKEN_HERE"),
        ("env-reference", 'OPENAI_API_KEY="${OPENAI_API_KEY}"'),
        ("angle-placeholder", "GITHUB_TOKEN=<your-github-token>"),
        ("overlong-identifier", "model_ref = hf_" + rand(rng, ALNUM, 41)),
        ("prefixed-identifier", "cache_key = myhf_" + rand(rng, ALNUM, 34)),
        ("sha1-digest", "commit " + rand(rng, HEX, 40)),
        ("sha256-digest", "sha256: " + rand(rng, HEX, 64)),
        ("md5-digest", '"md5": "' + rand(rng, HEX, 32) + '"'),
        ("uuid", f"run_id: {rand(rng, HEX, 8)}-{rand(rng, HEX, 4)}-4{rand(rng, HEX, 3)}-a{rand(rng, HEX, 3)}-"
                 f"{rand(rng, HEX, 12)}"),
        ("lockfile-integrity", f'"integrity": "sha512-{base64.b64encode(rng.randbytes(64)).decode()}"'),
        ("openai-placeholder", "OPENAI_API_KEY=sk-proj-..."),
        ("openai-masked", "OPENAI_API_KEY=sk-proj-" + "x" * 60),
        ("aws-zeros", "aws_secret_access_key = " + "A" * 40),
        ("slack-short", "SLACK_BOT_TOKEN=xoxb-123"),
        ("password-weak", 'password = "changeme"'),
    ]


# ---- filler -------------------------------------------------------------------------------------------------

WORDS = ("model train eval loss batch epoch tokenizer dataset layer attention head embedding optimizer "
         "scheduler gradient checkpoint config feature label metric accuracy precision recall sample split "
         "vocab sequence encoder decoder logits weights bias dropout norm residual warmup cosine linear step "
         "device cuda shard rank world seed cache path bucket artifact registry pipeline stage job run").split()


def ident(rng: random.Random) -> str:
    return "_".join(rng.choices(WORDS, k=rng.randint(1, 3)))


def _py_line(rng: random.Random) -> str:
    k = rng.randrange(9)
    if k == 0:
        return f"def {ident(rng)}({ident(rng)}, {ident(rng)}=None):"
    if k == 1:
        return f"    {ident(rng)} = {ident(rng)}.{ident(rng)}({ident(rng)}, dim={rng.randint(0, 3)})"
    if k == 2:
        return f"    # {' '.join(rng.choices(WORDS, k=rng.randint(4, 12)))}"
    if k == 3:
        return f"    return {ident(rng)}[{rng.randint(0, 64)}:{rng.randint(64, 512)}]"
    if k == 4:
        return f"import {ident(rng).replace('_', '')}"
    if k == 5:
        return f"    logger.info(\"{' '.join(rng.choices(WORDS, k=5))} %s\", {ident(rng)})"
    if k == 6:
        return f"    for {ident(rng)} in range({rng.randint(1, 1000)}):"
    if k == 7:
        return f"        {ident(rng)} += {rng.random():.6f} * {ident(rng)}"
    return ""


def _yaml_line(rng: random.Random) -> str:
    k = rng.randrange(4)
    if k == 0:
        return f"{ident(rng)}:"
    if k == 1:
        return f"  {ident(rng)}: {rng.random():.5f}"
    if k == 2:
        return f"  {ident(rng)}: {ident(rng)}"
    return f"  - {ident(rng)}-{rng.randint(0, 99)}"


def _md_line(rng: random.Random) -> str:
    k = rng.randrange(5)
    if k == 0:
        return "## " + " ".join(rng.choices(WORDS, k=3)).title()
    if k == 1:
        return ""
    return " ".join(rng.choices(WORDS, k=rng.randint(8, 20))) + "."


def _csv_line(rng: random.Random) -> str:
    return ",".join([str(rng.randint(0, 99999)), f"{rng.random():.6f}", f"{rng.random():.6f}",
                     rng.choice(WORDS), str(rng.randint(0, 9)), f"{rng.gauss(0, 1):.4f}"])


def _log_line(rng: random.Random) -> str:
    lvl = rng.choice(("INFO", "INFO", "INFO", "DEBUG", "WARNING"))
    return (f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 1{rng.randint(0, 9)}:{rng.randint(10, 59)}:"
            f"{rng.randint(10, 59)},{rng.randint(100, 999)} {lvl} {ident(rng)}: step={rng.randint(0, 99999)} "
            f"loss={rng.random() * 4:.4f} lr={rng.random() * 1e-3:.2e} {' '.join(rng.choices(WORDS, k=4))}")


def _sh_line(rng: random.Random) -> str:
    k = rng.randrange(4)
    if k == 0:
        return f"python -m {ident(rng)}.{ident(rng)} --{ident(rng).replace('_', '-')} {rng.randint(1, 512)}"
    if k == 1:
        return f"export {ident(rng).upper()}={rng.randint(0, 9999)}"
    if k == 2:
        return f"# {' '.join(rng.choices(WORDS, k=6))}"
    return f"mkdir -p /data/{ident(rng)}/{ident(rng)}"


def _env_line(rng: random.Random) -> str:
    return f"{ident(rng).upper()}={rng.choice(WORDS)}{rng.randint(0, 999)}"


def _py_block(rng: random.Random) -> str:
    """A syntactically valid top-level function (so that AST-based detectors parse the filler)."""
    args = ", ".join(dict.fromkeys(ident(rng) for _ in range(rng.randint(0, 3))))
    body: list[str] = []
    for _ in range(rng.randint(2, 10)):
        k = rng.randrange(6)
        if k == 0:
            body.append(f"    {ident(rng)} = {ident(rng)}.{ident(rng)}({ident(rng)}, dim={rng.randint(0, 3)})")
        elif k == 1:
            body.append(f"    # {' '.join(rng.choices(WORDS, k=rng.randint(4, 12)))}")
        elif k == 2:
            body.append(f"    logger.info(\"{' '.join(rng.choices(WORDS, k=5))} %s\", {ident(rng)})")
        elif k == 3:
            body.append(f"    for {ident(rng)} in range({rng.randint(1, 1000)}):\n"
                        f"        {ident(rng)} = {ident(rng)} + {rng.random():.6f}")
        elif k == 4:
            body.append(f"    {ident(rng)} = {{'{ident(rng)}': {rng.random():.4f}, 'n': {rng.randint(0, 99)}}}")
        else:
            body.append(f"    {ident(rng)} = {ident(rng)}[{rng.randint(0, 64)}:{rng.randint(64, 512)}]")
    body.append(f"    return {ident(rng)}")
    return f"def {ident(rng)}({args}):\n" + "\n".join(body) + "\n\n"


LINE_MAKERS: dict[str, Callable[[random.Random], str]] = {
    "pyblock": _py_block,
    "py": _py_line, "yaml": _yaml_line, "md": _md_line, "csv": _csv_line, "log": _log_line, "sh": _sh_line,
    "env": _env_line,
}


class Filler:
    """Pools of pre-generated lines per file type, so that hundreds of MB are assembled quickly."""

    def __init__(self, rng: random.Random, pool: int = 4000) -> None:
        self.rng = rng
        self.pools = {k: [f(rng) for _ in range(pool)] for k, f in LINE_MAKERS.items()}
        self.avg = {k: max(1.0, sum(len(x) + 1 for x in v) / len(v)) for k, v in self.pools.items()}

    def lines(self, kind: str, nbytes: int) -> list[str]:
        n = max(1, int(nbytes / self.avg[kind]))
        return self.rng.choices(self.pools[kind], k=n)


def png_b64(rng: random.Random, nbytes: int) -> str:
    """Base64 of a PNG-looking image (PNG signature and IHDR, then random bytes)."""
    raw = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(max(0, nbytes - 16))
    return base64.b64encode(raw).decode()


# ---- ground truth -------------------------------------------------------------------------------------------

@dataclass
class Truth:
    corpus: str
    seed: int
    params: dict[str, object]
    secrets: list[dict[str, object]] = field(default_factory=list)
    decoys: list[dict[str, object]] = field(default_factory=list)
    models: list[dict[str, object]] = field(default_factory=list)

    def secret(self, path: str, rule_id: str, secret: str, placement: str, requires: Sequence[str] = (),
               line: int | None = None, check_line: bool = False) -> None:
        self.secrets.append({
            "path": path, "rule_id": rule_id, "placement": placement, "requires": list(requires),
            "line": line, "check_line": check_line and line is not None,
            "fingerprint": fingerprint(rule_id, secret),
        })

    def decoy(self, path: str, kind: str, line: int | None = None) -> None:
        self.decoys.append({"path": path, "kind": kind, "line": line})

    def write(self, root: Path) -> Path:
        out = root / "ground_truth.json"
        data = asdict(self)
        data["secrets"].sort(key=lambda d: (d["path"], d["line"] or 0, d["rule_id"], d["fingerprint"]))
        data["decoys"].sort(key=lambda d: (d["path"], d["line"] or 0, d["kind"]))
        data["models"].sort(key=lambda d: d["path"])
        out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return out


def line_of(text: str, needle: str) -> int | None:
    """1-based line of the first occurrence of ``needle`` in ``text`` (None if absent)."""
    i = text.find(needle)
    return None if i < 0 else text.count("\n", 0, i) + 1


def write_file(root: Path, rel: str, data: str | bytes) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    p.write_bytes(data)


def default_out(name: str) -> Path:
    """``corpora/out/<name>`` (git-ignored)."""
    return Path(os.path.dirname(os.path.abspath(__file__))) / "out" / name
