"""One pass per buffer (issue 16): base64-encoded secrets in text files are found through the base64 needles
that ride in the secrets database (``detectors/b64_needles``), decoding only around a hit.

Ground truth: every placement below was found by the generic decoder (every base64 run of every text file)
before this change, and must still be found, with the same rule, secret, line and decoding chain. Run against
the code before the change (``PYTHONPATH=<old tree>``), every placement test here passes (checked); the
scan-count test fails there (3-4 scans per text file), and the ``candidates_at`` tests need the new API.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
from pathlib import Path

import pytest
import test_encoded

from veritensor_fast.rules import load_rules
from veritensor_fast.worker import WorkerContext

from conftest import CLI, hf_token

ctx, scan, line_of = test_encoded.ctx, test_encoded.scan, test_encoded.line_of  # a fixture and helpers
RNG = random.Random(1616)
ROOT = Path(__file__).resolve().parent.parent


def plain_hits(ctx: WorkerContext, text: str) -> set[str]:
    return {m.rule.id for m in ctx.matcher.find(text.encode())}


def b64(raw: bytes, url: bool = False) -> str:
    return (base64.urlsafe_b64encode(raw) if url else base64.b64encode(raw)).decode()


#: Every rule with a fixed prefix or infix (no keyword): its first example, found as plain text.
PREFIX_RULES = [r for r in load_rules().rules if r.examples and not r.keywords
                and not r.pattern.startswith("(?i)") and r.id != "twilio.api-key"]


def _example_secret(ctx: WorkerContext, rule_id: str, example: str) -> bytes | None:
    ms = [m for m in ctx.matcher.find(example.encode()) if m.rule.id == rule_id]
    return ms[0].secret if ms else None


@pytest.mark.parametrize("rule", PREFIX_RULES, ids=lambda r: r.id)
def test_every_prefix_rule_at_three_alignments_in_a_long_line(ctx: WorkerContext, rule: object) -> None:
    rid, example = rule.id, rule.examples[0]  # type: ignore[attr-defined]
    secret = _example_secret(ctx, rid, example)
    if secret is None:
        pytest.skip("example not found as plain text")
    for align in range(3):
        raw = b"z" * align + b" " + example.encode() + b"\n"
        enc = b64(raw)
        text = "x = 1\n" + "filler words; " * 40 + f"blob={enc}; " + "more words " * 40 + "\n"
        fs = [f for f in scan(ctx, "notes.txt", text) if f.rule_id == rid and f.decoded == "base64"]
        assert [(f.secret, f.line) for f in fs][:1] == [(secret.decode(), 2)], (rid, align)


@pytest.mark.parametrize("url,sep", [(False, "\n"), (True, "\n"), (False, "\r\n"), (False, "\n  "),
                                     (True, "\n    ")])
def test_hf_token_every_alignment_and_wrap_offset(ctx: WorkerContext, url: bool, sep: str) -> None:
    """MIME-wrapped (76) at every offset, so the needle is cut by the line break at every position (LF, CRLF,
    and a YAML-style indented continuation in a YAML file, which keeps the generic decoder)."""
    name = "values.yaml" if sep.startswith("\n ") else "mail.txt"
    for lead in range(0, 60):
        tok = hf_token(RNG)
        raw = b"\xfb\xff" * (lead % 3) + os.urandom(lead) + b" " + tok.encode() + b" " + os.urandom(20)
        enc = b64(raw, url)
        wrapped = sep.join(enc[i:i + 76] for i in range(0, len(enc), 76))
        text = f"# mail\n\nblob: {wrapped}\n-- end\n"
        fs = [f for f in scan(ctx, name, text) if f.secret == tok]
        assert [(f.line, f.decoded) for f in fs] == [(3, "base64")], lead


def test_yaml_json_and_indented_block(ctx: WorkerContext) -> None:
    t1, t2, t3 = hf_token(RNG), hf_token(RNG), hf_token(RNG)
    e1 = b64(f"HF_TOKEN={t1}\n".encode())
    e3 = b64(("x" * 50 + f" token {t3} " + "y" * 60).encode())
    block = "\n    ".join(e3[i:i + 64] for i in range(0, len(e3), 64))
    yaml_text = f"app:\n  name: demo\n  blob: {e1}\n  cert: |\n    {block}\n"
    fs = {f.secret: f for f in scan(ctx, "values.yaml", yaml_text)}
    assert fs[t1].line == 3 and fs[t1].decoded == "base64"
    assert fs[t3].line == 5 and fs[t3].decoded == "base64"
    e2 = b64(json.dumps({"auth": {"token": t2}}).encode())
    json_text = json.dumps({"a": 1, "nested": {"b": [1, 2, e2]}}, indent=2)
    fs2 = [f for f in scan(ctx, "cfg.json", json_text) if f.secret == t2]
    assert [(f.line, f.decoded) for f in fs2][:1] == [(line_of(json_text, e2), "base64")]


def test_keyword_anchored_lines(ctx: WorkerContext) -> None:
    key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq9Lw8Kd3T"
    assert plain_hits(ctx, f"AWS_SECRET_ACCESS_KEY={key}\n") >= {"aws.secret-access-key"}
    for line in (f"AWS_SECRET_ACCESS_KEY={key}\n", f"aws_secret_access_key = {key}\n",
                 f"export AWS_SECRET_ACCESS_KEY='{key}'\n"):
        for align in range(3):
            enc = b64(("#" * align + line).encode())
            text = f"env:\n  - value: {enc}\n"
            fs = [f for f in scan(ctx, "deploy.yml", text) if f.rule_id == "aws.secret-access-key"]
            assert [(f.secret, f.line, f.decoded) for f in fs] == [(key, 2, "base64")], (line, align)


def test_double_base64_at_every_alignment(ctx: WorkerContext) -> None:
    for a in range(3):
        for b in range(3):
            tok = hf_token(RNG)
            inner = b64(("k" * a + f"={tok}\n").encode())
            outer = b64(("c" * b + f": {inner}\n").encode())
            text = f"data = '{outer}'\n"
            fs = [f for f in scan(ctx, "d.py", text) if f.secret == tok]
            assert [(f.line, f.decoded) for f in fs] == [(1, "base64 → base64")], (a, b)


def test_generic_runs_holding_a_needle_are_the_candidates(ctx: WorkerContext) -> None:
    """``candidates_at`` (decode around needle hits) yields exactly the generic candidates that hold a hit."""
    from veritensor_fast.kernels import BACKEND

    if BACKEND != "hyperscan":
        pytest.skip("needle hits come from the Hyperscan database")
    enc = next(d for d in ctx.detectors if d.name == "encoded")
    dec = enc.decoder  # type: ignore[attr-defined]
    parts = []
    for i in range(40):
        tok = hf_token(RNG)
        raw = os.urandom(i % 7) + f" token={tok} ".encode() + os.urandom(i % 5)
        e = b64(raw, url=bool(i % 2))
        if i % 3 == 0:
            e = "\n    ".join(e[j:j + 60] for j in range(0, len(e), 60))
        parts.append(f"k{i}: {e}")
        parts.append(b64(os.urandom(30 + i)))  # random runs: candidates without a needle (mostly)
    buf = ("\n".join(parts) + "\n").encode()
    _found, hits = ctx.matcher.find_with_hits(buf)
    got = list(dec.candidates_at(buf, hits))
    generic = list(dec.raw_candidates(buf))
    holding = [c for c in generic if any(c.start < h <= c.end for h in hits)]
    assert got == holding and len(got) >= 40


def test_one_hyperscan_scan_per_text_file(ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """A text file without a base64 needle costs one database scan (before: 3-4: secrets, two pre-checks, runs)."""
    from veritensor_fast.kernels import BACKEND, hsdb

    if BACKEND != "hyperscan":
        pytest.skip("counts Hyperscan scans")
    calls = []
    orig = hsdb.Scanner.scan

    def counting(self: object, buf: object) -> object:
        calls.append(len(buf))  # type: ignore[arg-type]
        return orig(self, buf)  # type: ignore[arg-type]

    monkeypatch.setattr(hsdb.Scanner, "scan", counting)
    text = ("def f(x):\n    return SomeClassName.method_name_that_is_long(x) + 'MixedCaseWordsHere'\n" * 50)
    assert scan(ctx, "mod.txt", text) == []
    assert len(calls) == 1
    b = next(d for d in ctx.detectors if d.name == "encoded").decoder  # type: ignore[attr-defined]
    assert b.possible(text.encode())  # the old path would have run its candidate search here too


def test_fallback_backend_identical(tmp_path: Path) -> None:
    """``VERITENSOR_FAST_MATCHER=python`` finds the same encoded secrets (needles searched inside each run)."""
    toks = [hf_token(RNG) for _ in range(4)]
    (tmp_path / "a.txt").write_text(f"x={b64(('zz ' + toks[0]).encode())}\n")
    wrapped = b64(os.urandom(50) + f" {toks[1]} ".encode())
    (tmp_path / "b.txt").write_text("\n".join(wrapped[i:i + 76] for i in range(0, len(wrapped), 76)) + "\n")
    (tmp_path / "c.yaml").write_text(f"v: {b64(b64(('t=' + toks[2]).encode()).encode())}\n")
    (tmp_path / "d.json").write_text(json.dumps({"x": b64(base64.b64encode(toks[3].encode()))}))
    (tmp_path / "noise.txt").write_text("\n".join(b64(os.urandom(40)) for _ in range(30)))
    out = {}
    for matcher in ("hyperscan", "python"):
        p = subprocess.run([*CLI, "scan", "--format", "json", "--no-progress", "--jobs", "1", str(tmp_path)],
                           capture_output=True, text=True, timeout=300, check=False,
                           env={**os.environ, "VERITENSOR_FAST_MATCHER": matcher})
        out[matcher] = sorted((f["path"], f["line"], f["rule_id"], f["fingerprint"], f.get("decoded"))
                              for f in json.loads(p.stdout)["findings"])
    assert out["python"] == out["hyperscan"]
    assert len(out["python"]) >= 3


_PIECES = ["aGZf", "hmX", "oZl", "QUtJQ", "YXdz", "dG9rZW4", "H4sIA", "eJ", "Zm9v", "YmFy", "AAAA", "q+/", "-_",
           "=", "==", "\n", "\r\n", "\n  ", " ", "\t", ":", '"', "x" * 40, "Ab1" * 14]


@pytest.mark.parametrize("seed", range(3))
def test_candidates_at_equals_generic_on_random_text(ctx: WorkerContext, seed: int) -> None:
    """Random mixes of needle pieces, alphabet runs, wraps, padding and separators: the runs decoded around the
    needle hits are exactly the generic candidates holding a hit."""
    from veritensor_fast.kernels import BACKEND

    if BACKEND != "hyperscan":
        pytest.skip("needle hits come from the Hyperscan database")
    dec = next(d for d in ctx.detectors if d.name == "encoded").decoder  # type: ignore[attr-defined]
    rng = random.Random(seed)
    total = 0
    for _ in range(150):
        buf = "".join(rng.choice(_PIECES) for _ in range(rng.randint(5, 120))).encode()
        _found, hits = ctx.matcher.find_with_hits(buf)
        got = list(dec.candidates_at(buf, hits))
        holding = [c for c in dec.raw_candidates(buf) if any(c.start < h <= c.end for h in hits)]
        assert got == holding, buf
        total += len(got)
    assert total >= 20  # the mixes do hold needles inside candidates
