"""The contract every fuzz target checks, shared by the hypothesis suites (tests/fuzz/test_fuzz_*.py) and the
atheris harnesses (fuzz/).

An input is scanned through the worker's real entry point (``WorkerContext.run_batch`` over an in-memory item
with a chosen path, exactly what ``scan -`` and a file scan run), under a hang watchdog, then:

- no exception escapes, and no detector failed (a ScanError of kind ``internal`` is a detector crash that the
  worker caught: a bug);
- the result is a list of ``Finding`` and a list of ``ScanError`` with well-formed fields;
- the JSON, JSONL, SARIF and text reports render (no surrogate or other unserialisable value slipped in);
- no full secret of the input appears in an error reason or a report rendered without ``--show-secrets``.

Budgets: ``FUZZ_SCALE`` multiplies every suite's example count (default 1; 20 under
``HYPOTHESIS_PROFILE=explore``), ``FUZZ_HANG_S`` is the watchdog (default 60 s: only a hang trips it).
``FUZZ_COLLECT=FILE`` records each detector crash (reason, path, input) as a JSON line in FILE instead of
failing on it, so one exploratory run lists every distinct crash.

``KNOWN_OPEN`` lists crashes the fuzzers found that are fixed on another branch or owned elsewhere: each has a
probe input and is tolerated only while its probe still crashes, so once the fix lands the suites check
strictly again (and the matching regression test in test_fuzz_regressions.py, a strict xfail only while the
probe crashes, becomes a plain regression test).
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from veritensor_fast.engine import ScanResult
from veritensor_fast.findings import SEVERITY_ORDER, Finding, ScanError
from veritensor_fast.report import get_reporter
from veritensor_fast.sources.memory import MemorySource
from veritensor_fast.worker import BatchResult, ScanOptions, WorkerContext

ALNUM = string.ascii_letters + string.digits
HF = "huggingface.user-token"

_EXPLORE = os.environ.get("HYPOTHESIS_PROFILE") == "explore"
SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "20" if _EXPLORE else "1")))
HANG_S = float(os.environ.get("FUZZ_HANG_S", "60"))
COLLECT = os.environ.get("FUZZ_COLLECT", "")

_CTX: WorkerContext | None = None


def examples(n: int) -> int:
    """The example budget of a suite: ``n`` in CI, ``n * FUZZ_SCALE`` for a longer run."""
    return n * SCALE


def ctx() -> WorkerContext:
    global _CTX
    if _CTX is None:
        _CTX = WorkerContext(ScanOptions())
    return _CTX


def token(seed: int) -> str:
    """A synthetic Hugging Face user token (never a real one)."""
    rng = random.Random(seed)
    return "hf_" + "".join(rng.choice(ALNUM) for _ in range(34))


class Hang(Exception):
    """The watchdog fired: a scan of a small input ran for ``HANG_S`` seconds."""


@contextmanager
def watchdog(seconds: float = HANG_S) -> Iterator[None]:
    """Turn a hang into an exception (SIGALRM; main thread only, else a no-op)."""
    def fire(_sig: int, _frame: Any) -> None:
        raise Hang(f"scan of a small input still running after {seconds:.0f} s")

    try:
        old = signal.signal(signal.SIGALRM, fire)
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run(data: bytes, path: str) -> BatchResult:
    """Scan ``data`` as a file named ``path`` through the worker (no checks)."""
    c = ctx()
    with MemorySource(data, path) as src, watchdog():
        items = list(src.items())
        return c.run_batch([i for i in items if not isinstance(i, ScanError)])


def scan_bytes(data: bytes, path: str, *, secrets: tuple[str, ...] = (), strict: bool = False) -> BatchResult:
    """Scan ``data`` as a file named ``path`` through the worker and check the contract. ``secrets``: full
    secret values planted in ``data`` (they must not leak into reasons or redacted reports). ``strict``: no
    known open crash is tolerated."""
    res = run(data, path)
    tolerated = () if strict else open_signatures()
    crashes = [e for e in res.errors if e.kind == "internal" and not any(t in e.reason for t in tolerated)]
    if crashes and COLLECT:
        with open(COLLECT, "a") as fh:
            for e in crashes:
                fh.write(json.dumps({"reason": e.reason, "path": path, "size": len(data),
                                     "input": base64.b64encode(data[:1 << 16]).decode()}) + "\n")
        tolerated = tuple(e.reason for e in crashes) + tuple(tolerated)
    check(res, secrets, tolerated)
    return res


@dataclass(frozen=True)
class Known:
    signature: str  # a substring of the ScanError reason of the crash
    why: str
    probe: tuple[bytes, str]  # (input, path) that shows it


def _tgz_truncated() -> bytes:
    """A .tar.gz of one text member, cut inside the deflate stream (deterministic: gzip mtime 0)."""
    import gzip
    import io
    import tarfile

    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w") as t:
        d = b"HF_TOKEN=abc\n" * 20
        ti = tarfile.TarInfo("a.txt")
        ti.size = len(d)
        t.addfile(ti, io.BytesIO(d))
    return gzip.compress(bio.getvalue(), mtime=0)[:90]


_BAD_CRC_TGZ = base64.b64decode(
    "H4sIAMXEDGsC/+2WX0vrMBjGq5f9FCFezAuZretWFERRpoKgCMI5qKNkbebq1qRL0umQgR/5fISTtLH+QcEbJ+r7u0nyJH3e5KV5W9KkbOp8Lp6m"
    "EwRlq3ndel47fOqXeif0fAd5zgIopCJCh3R+J0cH0fnpcfdkezj//////////////////////////////////4jIXivptq+PwpvjzcB/sFS6PQAo"
    "AAA=")

KNOWN_OPEN: list[Known] = [
    Known("detector archive failed: EOFError", "issue 11: a truncated .tar.gz is an internal error, not a corrupt "
          "archive (the archive branch reworks tar reading)", (_tgz_truncated(), "a.tar.gz")),
    Known("detector model failed: EOFError", "issue 11: the same truncated .tar.gz in the model analyser",
          (_tgz_truncated(), "a.tar.gz")),
    # found by atheris (fuzz/scan_target.py tar): a tar.gz whose deflate stream ends inside a member and whose
    # CRC does not match; tarfile's gzip reader raises BadGzipFile from the member read
    Known("detector archive failed: BadGzipFile", "a damaged .tar.gz member read is an internal error",
          (_BAD_CRC_TGZ, "a.tar.gz")),
    Known("detector model failed: BadGzipFile", "the same damaged .tar.gz in the model analyser",
          (_BAD_CRC_TGZ, "a.tar.gz")),
]

_OPEN: tuple[str, ...] | None = None


def open_signatures() -> tuple[str, ...]:
    """Signatures of the KNOWN_OPEN crashes whose probe still crashes."""
    global _OPEN
    if _OPEN is None:
        _OPEN = tuple(k.signature for k in KNOWN_OPEN
                      if any(k.signature in e.reason for e in run(*k.probe).errors if e.kind == "internal"))
    return _OPEN


def check(res: BatchResult, secrets: tuple[str, ...] = (), tolerated: tuple[str, ...] = ()) -> None:
    assert isinstance(res.findings, list) and isinstance(res.errors, list)
    for f in res.findings:
        assert isinstance(f, Finding), f
        assert f.kind in ("secret", "model"), f
        assert f.severity in SEVERITY_ORDER, f
        assert isinstance(f.line, int) and f.line >= 1, f
        assert isinstance(f.column, int) and f.column >= 1, f
        assert f.location is None or isinstance(f.location, dict), f
    for e in res.errors:
        assert isinstance(e, ScanError), e
        assert e.kind != "internal" or any(t in e.reason for t in tolerated), f"a detector crashed: {e.reason}"
        assert isinstance(e.kind, str) and e.kind.replace("-", "").isalpha(), e
        assert isinstance(e.reason, str) and e.reason, e
        for s in secrets:
            assert s not in e.reason, "a secret leaked into an error reason"
    result = ScanResult(list(res.findings), list(res.errors), {"files": res.items, "bytes": res.bytes})
    for fmt in ("json", "jsonl", "sarif", "text"):
        out = get_reporter(fmt)(result, show_secrets=False)
        assert isinstance(out, str)
        for s in secrets:
            assert s not in out, f"a secret leaked into the {fmt} report"


def secrets_found(res: BatchResult) -> set[str]:
    return {f.secret for f in res.findings if f.kind == "secret" and f.secret}


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (position, op, value) edits: op 0 overwrites a byte, 1 inserts one, 2 deletes one, 3 truncates."""
    b = bytearray(data)
    for pos, op, val in edits:
        if not b:
            b.append(val & 0xFF)
            continue
        i = pos % len(b)
        if op == 0:
            b[i] = val & 0xFF
        elif op == 1:
            b.insert(i, val & 0xFF)
        elif op == 2:
            del b[i]
        else:
            del b[i:]
    return bytes(b)
