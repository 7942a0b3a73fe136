"""``scan --validate``: ask each found credential's own provider whether it is live (off by default).

Runs in the parent after the scan, on the set of distinct secrets (by fingerprint), never in the scan path.
Every finding of a secret rule gains ``validation`` (``valid`` | ``invalid`` | ``unknown``) and a short
``validation_reason`` that never holds the secret or the provider's response body.

Guarantees:
- a secret is sent only to the endpoint its rule names in ``validate_table`` (a constant ``https://`` URL),
  with certificate verification, no proxy, no redirect followed (a 3xx reads "unknown"), no retry except one
  after a 429 (``Retry-After`` honoured, capped);
- connect and read timeouts, a global bound on concurrent requests and a per-provider rate limit;
- ``overrides`` (tests only: ``VERITENSOR_FAST_VALIDATE_OVERRIDE=host=http://127.0.0.1:PORT,...``) may
  only point a provider host at a loopback address; anything else is refused.

HTTP client: urllib3 (pure Python, no dependencies, thread-safe pool, explicit control over redirects,
retries and timeouts). AWS key pairs are signed by hand (SigV4, hmac + hashlib), so botocore is not needed.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import hmac
import ipaddress
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from veritensor_fast.findings import Finding
from veritensor_fast.validate_table import AWS_KEY_ID, AWS_SECRET, AWS_STS, ENDPOINTS, Endpoint

VALID, INVALID, UNKNOWN = "valid", "invalid", "unknown"
OVERRIDE_ENV = "VERITENSOR_FAST_VALIDATE_OVERRIDE"
_SENDABLE = re.compile(r"[\x21-\x7e]{8,4096}")  # printable ASCII, no space: nothing that could split a header
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")
_BODY_LIMIT = 1 << 16
_AWS_PAIRS_PER_SECRET = 4


class ValidateError(Exception):
    """Validation cannot run at all (a bad override, urllib3 missing)."""


@dataclass(frozen=True)
class Verdict:
    status: str  # valid | invalid | unknown
    reason: str


class RateLimiter:
    """At most ``rate`` acquisitions per second (evenly spaced); thread-safe. ``clock``/``sleep`` injectable."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = float("-inf")
        self._lock = threading.Lock()

    def acquire(self, until: float = float("inf")) -> bool:
        """Wait for the next slot; False (at once, nothing reserved) when that slot falls after ``until``."""
        with self._lock:
            now = self._clock()
            at = max(now, self._next)
            if at > until:
                return False
            self._next = at + self.interval
        if at > now:
            self._sleep(at - now)
        return True


def parse_overrides(spec: str) -> dict[str, str]:
    """``host=http://127.0.0.1:PORT,host2=...`` -> {host: base}; every base must be a loopback address."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        host, sep, base = part.partition("=")
        if not sep or not host:
            raise ValidateError(f"{OVERRIDE_ENV}: expected host=URL, got {part!r}")
        out[host.strip().lower()] = base.strip()
    for base in out.values():
        check_loopback(base)
    return out


def check_loopback(base: str) -> None:
    u = urlsplit(base)
    host = u.hostname or ""
    try:
        loop = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loop = False
    if u.scheme not in ("http", "https") or not loop or u.path not in ("", "/") or u.query or u.username:
        raise ValidateError(f"validation override {base!r} refused: only http(s)://loopback[:port] is allowed")


def _status_reason(status: int, host: str) -> str:
    return f"HTTP {status} from {host}"


class Validator:
    def __init__(self, *, timeout: float = 10.0, concurrency: int = 8, overrides: Mapping[str, str] | None = None,
                 max_retry_wait: float = 5.0, budget: float = 300.0,
                 endpoints: Mapping[str, Endpoint] = ENDPOINTS,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        try:
            import urllib3
        except ModuleNotFoundError:  # pragma: no cover - the [validate] extra
            raise ValidateError("--validate needs urllib3: pip install urllib3 (the validate extra: pip install '.[validate]' in a checkout)") from None
        self._urllib3 = urllib3
        self.concurrency = max(1, concurrency)
        self.endpoints = endpoints
        self.overrides = {k.lower(): v.rstrip("/") for k, v in (overrides or {}).items()}
        for base in self.overrides.values():
            check_loopback(base)
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._clock = clock
        self._deadline = clock() + budget  # past it, the remaining checks read "unknown" without a request
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()
        # retries=False: no retry and no redirect is ever followed; proxies from the environment are not used.
        self._pool = urllib3.PoolManager(num_pools=16, maxsize=self.concurrency, retries=False,
                                         timeout=urllib3.Timeout(connect=timeout, read=timeout),
                                         cert_reqs="CERT_REQUIRED")

    def _limiter(self, ep: Endpoint) -> RateLimiter:
        with self._lock:
            lim = self._limiters.get(ep.provider)
            if lim is None:
                lim = self._limiters[ep.provider] = RateLimiter(ep.rate, self._clock, self._sleep)
            return lim

    def check(self, ep: Endpoint, secret: str) -> Verdict:
        """One credential against its endpoint (``{secret}`` / ``{secret_b64}`` in the templates)."""
        if not _SENDABLE.fullmatch(secret):
            return Verdict(UNKNOWN, "not sent: the value is not a well-formed token")
        b64 = base64.b64encode(f"{secret}:".encode()).decode()
        headers = {k: v.replace("{secret_b64}", b64).replace("{secret}", secret) for k, v in ep.headers.items()}
        body = ep.body.replace("{secret}", secret).encode() if ep.body is not None else None
        return self._send(ep, headers, body)

    def check_aws(self, key_id: str, secret: str, now: datetime.datetime | None = None) -> Verdict:
        """An AWS key pair against STS GetCallerIdentity, signed with SigV4 (us-east-1)."""
        if not (_SENDABLE.fullmatch(key_id) and _SENDABLE.fullmatch(secret)):
            return Verdict(UNKNOWN, "not sent: the value is not a well-formed key")
        body = (AWS_STS.body or "").encode()
        headers = dict(AWS_STS.headers)
        headers.update(sigv4_headers(AWS_STS.method, AWS_STS.url, headers, body, key_id, secret,
                                     region="us-east-1", service="sts", now=now))
        return self._send(AWS_STS, headers, body)

    def _send(self, ep: Endpoint, headers: dict[str, str], body: bytes | None) -> Verdict:
        u = urlsplit(ep.url)
        host = (u.hostname or "").lower()
        if u.scheme != "https" or not host:
            return Verdict(UNKNOWN, "not sent: the endpoint is not https")
        url = ep.url
        base = self.overrides.get(host)
        if base is not None:  # tests: the same request, to a loopback server, still naming the provider's host
            url = base + (u.path or "/") + (f"?{u.query}" if u.query else "")
            headers = {**headers, "Host": u.netloc}
        exc_mod = self._urllib3.exceptions
        for attempt in (0, 1):
            if not self._limiter(ep).acquire(until=self._deadline):
                return Verdict(UNKNOWN, "not checked: the validation time budget is spent")
            try:
                r = self._pool.request(ep.method, url, headers=headers, body=body, redirect=False, retries=False,
                                       preload_content=False)
            except exc_mod.NewConnectionError:  # before TimeoutError: urllib3 2 derives it from ConnectTimeoutError
                return Verdict(UNKNOWN, f"could not reach {host} (connection failed)")
            except exc_mod.TimeoutError:
                return Verdict(UNKNOWN, f"timeout talking to {host}")
            except exc_mod.HTTPError as exc:
                return Verdict(UNKNOWN, f"could not reach {host} ({type(exc).__name__})")
            except Exception as exc:  # never a traceback that could carry request headers
                return Verdict(UNKNOWN, f"could not check with {host} ({type(exc).__name__})")
            try:
                data = r.read(_BODY_LIMIT)
            except exc_mod.HTTPError:
                data = b""
            finally:
                r.close()
            status = r.status
            if status == 429 and attempt == 0:
                wait = _retry_after(r.headers.get("Retry-After"))
                if wait is not None and wait <= self.max_retry_wait:
                    self._sleep(wait)
                    continue
            return _read_verdict(ep, host, status, data)
        raise AssertionError("unreachable")  # pragma: no cover


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: do not wait that long


def _read_verdict(ep: Endpoint, host: str, status: int, data: bytes) -> Verdict:
    if 300 <= status < 400:
        return Verdict(UNKNOWN, f"HTTP {status} redirect from {host} not followed")
    if status == 429:
        return Verdict(UNKNOWN, f"rate limited by {host} (HTTP 429)")
    if status in ep.invalid:
        return Verdict(INVALID, _status_reason(status, host))
    if status in ep.valid:
        if ep.json_ok is None:
            return Verdict(VALID, _status_reason(status, host))
        try:
            doc: Any = json.loads(data)
        except ValueError:
            return Verdict(UNKNOWN, f"unreadable answer from {host}")
        if isinstance(doc, dict) and doc.get(ep.json_ok) is True:
            return Verdict(VALID, f"{_status_reason(status, host)}, {ep.json_ok}=true")
        if isinstance(doc, dict) and doc.get(ep.json_ok) is False:
            err = doc.get("error")
            code = f" ({err})" if isinstance(err, str) and _ERROR_CODE.fullmatch(err) else ""
            return Verdict(INVALID, f"{_status_reason(status, host)}, {ep.json_ok}=false{code}")
        return Verdict(UNKNOWN, f"unreadable answer from {host}")
    return Verdict(UNKNOWN, _status_reason(status, host))


def sigv4_headers(method: str, url: str, headers: Mapping[str, str], body: bytes, key_id: str, secret: str, *,
                  region: str, service: str, now: datetime.datetime | None = None) -> dict[str, str]:
    """AWS Signature Version 4 (``X-Amz-Date`` and ``Authorization``) for one request."""
    u = urlsplit(url)
    t = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = t.strftime("%Y%m%dT%H%M%SZ"), t.strftime("%Y%m%d")
    signed = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    signed["host"] = u.netloc
    signed["x-amz-date"] = amz_date
    names = sorted(signed)
    canonical = "\n".join([method, u.path or "/", u.query, "".join(f"{n}:{signed[n]}\n" for n in names),
                           ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return {"X-Amz-Date": amz_date,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={';'.join(names)}, "
                             f"Signature={sig}"}


def _combine(verdicts: list[Verdict]) -> Verdict:
    for status in (VALID, UNKNOWN):
        for v in verdicts:
            if v.status == status:
                return v
    return verdicts[0]


def validate_findings(findings: Iterable[Finding], validator: Validator, *, max_secrets: int = 500) -> list[Finding]:
    """Return ``findings`` with ``validation`` set on every secret finding (model findings are unchanged).

    Each distinct secret (fingerprint) is checked once; at most ``max_secrets`` distinct requests are made,
    the rest read "unknown". AWS secret keys are paired with the access key ids found in the same file.
    """
    findings = list(findings)
    jobs: dict[tuple[str, ...], Callable[[], Verdict]] = {}
    plan: dict[str, list[tuple[str, ...]]] = {}  # fingerprint -> job keys its verdict combines
    preset: dict[str, Verdict] = {}
    key_ids: dict[str, dict[str, str]] = {}  # path -> {fingerprint: key id}
    for f in findings:
        if f.kind == "secret" and f.rule_id == AWS_KEY_ID and f.secret:
            key_ids.setdefault(f.path, {})[f.fingerprint] = f.secret

    def add(fp: str, key: tuple[str, ...], job: Callable[[], Verdict]) -> None:
        if key not in jobs and len(jobs) >= max_secrets:
            preset.setdefault(fp, Verdict(UNKNOWN, f"not checked: more than {max_secrets} distinct secrets"))
            return
        jobs.setdefault(key, job)
        plan.setdefault(fp, []).append(key)

    for f in findings:
        if f.kind != "secret" or f.fingerprint in plan or f.fingerprint in preset:
            continue
        if f.secret is None:
            continue  # restored from the datastore: takes the verdict of a fresh finding of the same secret, if any
        if f.rule_id == AWS_SECRET:
            for kfp, kid in list(key_ids.get(f.path, {}).items())[:_AWS_PAIRS_PER_SECRET]:
                add(f.fingerprint, ("aws", kid, f.secret), _bind_aws(validator, kid, f.secret))
                add(kfp, ("aws", kid, f.secret), _bind_aws(validator, kid, f.secret))
        elif f.rule_id == AWS_KEY_ID:
            pass  # checked in a pair, when the AWS secret key finding of its file is planned
        elif (ep := validator.endpoints.get(f.rule_id)) is not None:
            add(f.fingerprint, (f.rule_id, f.secret), _bind(validator, ep, f.secret))
        else:
            preset[f.fingerprint] = Verdict(UNKNOWN, "no validator for this rule")
    results: dict[tuple[str, ...], Verdict] = {}
    if jobs:
        with ThreadPoolExecutor(max_workers=min(validator.concurrency, len(jobs))) as pool:
            for key, verdict in zip(jobs, pool.map(lambda job: job(), jobs.values()), strict=True):
                results[key] = verdict
    verdicts = {fp: _combine([results[k] for k in keys]) for fp, keys in plan.items()}
    out = []
    for f in findings:
        v = verdicts.get(f.fingerprint) or preset.get(f.fingerprint)
        if v is None and f.kind == "secret":
            reason = ("no AWS secret access key in the same file" if f.rule_id == AWS_KEY_ID and f.secret
                      else "no AWS access key id in the same file" if f.rule_id == AWS_SECRET and f.secret
                      else "secret not available (restored from the datastore)" if f.secret is None
                      else "no validator for this rule")
            v = Verdict(UNKNOWN, reason)
        out.append(dataclasses.replace(f, validation=v.status, validation_reason=v.reason) if v else f)
    return out


def _bind(validator: Validator, ep: Endpoint, secret: str) -> Callable[[], Verdict]:
    return lambda: validator.check(ep, secret)


def _bind_aws(validator: Validator, key_id: str, secret: str) -> Callable[[], Verdict]:
    return lambda: validator.check_aws(key_id, secret)


def validate_result(result: Any, env: Mapping[str, str], **kw: Any) -> Any:
    """The CLI's entry point: a new ``ScanResult`` with validated findings and ``stats["validation"]`` counts.
    ``env[OVERRIDE_ENV]`` (tests) maps provider hosts to loopback servers."""
    from veritensor_fast.findings import ScanResult

    overrides = parse_overrides(env.get(OVERRIDE_ENV, ""))
    findings = validate_findings(result.findings, Validator(overrides=overrides, **kw))
    counts = {s: sum(1 for f in findings if f.validation == s) for s in (VALID, INVALID, UNKNOWN)}
    return ScanResult(findings, result.errors, {**result.stats, "validation": counts})
