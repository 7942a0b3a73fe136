"""Encoded secrets: Kubernetes Secrets, Docker configs, Helm values and generic base64/base64url blobs.

Ground truth: every planted secret is found with the exact value, at the line of its encoded form, with the
decoding chain; negatives (random binary, PNGs, hashes, UUIDs, lockfile integrity, placeholders) stay silent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import struct
import uuid
import zlib
from pathlib import Path

import pytest

from veritensor_fast.findings import Finding, Item
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

from conftest import hf_token, rand, scan_json

RNG = random.Random(2024)


def b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def gh_token() -> str:
    return "ghp_" + rand(36, rng=RNG)


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    return WorkerContext(ScanOptions())


def scan(ctx: WorkerContext, path: str, data: str | bytes) -> list[Finding]:
    buf = data.encode() if isinstance(data, str) else data
    item = Item("file", path, path, len(buf))
    s = ItemScan(ctx, item)
    ctx.scan_buffer(buf, item, s)
    return s.finish(buf)


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


def wrap(s: str, width: int, indent: str) -> str:
    return ("\n" + indent).join(s[i:i + width] for i in range(0, len(s), width))


# ---- Kubernetes ------------------------------------------------------------------------------------------

def test_k8s_multidoc_folded_block_and_stringdata(ctx: WorkerContext) -> None:
    t1, t2, t3, t4 = (hf_token(RNG) for _ in range(4))
    folded = b64(f"token={t1} plus enough trailing text to need several wrapped lines of base64 here")
    block = b64(f"{t2}\n")
    text = f"""apiVersion: v1
kind: ConfigMap
data:
  note: {b64('nothing secret in here at all, just text')}
---
apiVersion: v1
kind: Secret
metadata:
  name: app
type: Opaque
data:
  folded: >-
    {wrap(folded, 52, '    ')}
  block: |
    {wrap(block, 30, '    ')}
  plain: "{b64(t3)}"
stringData:
  raw: "{t4}"
"""
    fs = scan(ctx, "deploy/secret.yaml", text)
    by = {f.secret: f for f in fs}
    assert set(by) == {t1, t2, t3, t4}
    assert by[t1].line == line_of(text, folded[:52]) and by[t1].decoded == "base64"
    assert by[t1].location == {"document": 1, "key": "data.folded"}
    assert by[t2].line == line_of(text, block[:30]) and by[t2].decoded == "base64"
    assert by[t3].line == line_of(text, b64(t3)) and by[t3].column == text.splitlines()[by[t3].line - 1].index(
        b64(t3)) + 1
    # stringData: reported once, where the literal stands (merged with the text pass)
    assert by[t4].line == line_of(text, t4) and by[t4].decoded is None
    assert all(f.rule_id == "huggingface.user-token" for f in fs)
    assert "(decoded: base64)" in by[t1].message


def test_dockerconfigjson_chain(ctx: WorkerContext) -> None:
    tok = gh_token()
    cfg = json.dumps({"auths": {"ghcr.io": {"username": "bot", "auth": b64(f"bot:{tok}")}}})
    enc = b64(cfg)
    text = f"""apiVersion: v1
kind: Secret
type: kubernetes.io/dockerconfigjson
metadata:
  name: pull
data:
  .dockerconfigjson: {enc}
"""
    fs = scan(ctx, "pull-secret.yml", text)
    assert [(f.rule_id, f.secret, f.line, f.decoded) for f in fs] == [
        ("github.token", tok, 7, "base64 → json → base64")]
    assert fs[0].column == text.splitlines()[6].index(enc) + 1
    assert "base64 → json → base64" in fs[0].message


def test_dockercfg_legacy_and_stringdata_json(ctx: WorkerContext) -> None:
    t1, t2 = gh_token(), gh_token()
    legacy = b64(json.dumps({"https://index.docker.io/v1/": {"auth": b64(f"me:{t1}"), "email": "a@b.c"}}))
    plain = json.dumps({"auths": {"r.io": {"auth": b64(f"me:{t2}")}}})
    text = f"""kind: Secret
data:
  .dockercfg: {legacy}
stringData:
  .dockerconfigjson: '{plain}'
"""
    fs = {f.secret: f for f in scan(ctx, "s.yaml", text)}
    assert fs[t1].decoded == "base64 → json → base64" and fs[t1].line == 3
    assert fs[t2].decoded == "json → base64" and fs[t2].line == 5


def test_helm_values_and_unparseable_template(ctx: WorkerContext) -> None:
    t1, t2, t3 = hf_token(RNG), gh_token(), hf_token(RNG)
    values = f"""image:
  pullSecret:
    dockerconfigjson: {b64(json.dumps({"auths": {"x.io": {"auth": b64("u:" + t2)}}}))}
secrets:
  hfToken: {b64(t1)}
"""
    fs = {f.secret: f for f in scan(ctx, "chart/values.yaml", values)}
    assert fs[t1].line == 5 and fs[t1].decoded == "base64"
    assert fs[t2].line == 3 and fs[t2].decoded == "base64 → json → base64"
    template = f"""apiVersion: v1
kind: Secret
metadata:
  name: {{{{ include "x.fullname" . }}}}
data:
  {{{{- if .Values.enabled }}}}
  token: {b64(t3)}
  {{{{- end }}}}
"""
    fs2 = scan(ctx, "chart/templates/secret.yaml", template)
    assert [(f.secret, f.line, f.decoded) for f in fs2] == [(t3, 7, "base64")]


# ---- generic base64 --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,fmt", [
    (".env", "A=1\nHF_B64={enc}\nB=2\n"),
    ("conf.py", "import os\n\nBLOB = '{enc}'\n"),
    ("README.md", "# Setup\n\nPaste this: `{enc}` into the form.\n"),
    ("config.json", '{{"a": 1,\n "blob": "{enc}"}}\n'),
])
def test_generic_base64_placements(ctx: WorkerContext, name: str, fmt: str) -> None:
    tok = hf_token(RNG)
    enc = b64(f"export HF_TOKEN={tok}\n")
    text = fmt.format(enc=enc)
    fs = scan(ctx, name, text)
    assert [(f.rule_id, f.secret, f.line, f.decoded) for f in fs] == [
        ("huggingface.user-token", tok, line_of(text, enc), "base64")]
    assert fs[0].column == text.splitlines()[fs[0].line - 1].index(enc) + 1


def test_base64url_unpadded_and_mime_wrapped(ctx: WorkerContext) -> None:
    t1, t2 = hf_token(RNG), hf_token(RNG)
    # bytes chosen so that the URL-safe alphabet is really used
    raw = b"\xfb\xff\xfe " + t1.encode() + b" \xfb\xef"
    url = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert "-" in url or "_" in url
    mime = base64.encodebytes((" " * 3 + t2 + " and a long tail of text. " * 6).encode()).decode()
    text = f"x = {url}\n\nmail body:\n{mime}\nend\n"
    fs = {f.secret: f for f in scan(ctx, "notes.txt", text)}
    assert fs[t1].line == 1 and fs[t1].decoded == "base64"
    assert fs[t2].line == 4


def test_nested_depth_and_limit(ctx: WorkerContext, tmp_path: Path) -> None:
    t2, t3 = hf_token(RNG), hf_token(RNG)
    text = f"two={b64(b64(t2))}\nthree={b64(b64(b64(t3)))}\n"
    fs = scan(ctx, "n.txt", text)
    assert [(f.secret, f.line, f.decoded) for f in fs] == [(t2, 1, "base64 → base64")]
    deeper = WorkerContext(ScanOptions(base64_depth=3))
    fs3 = {f.secret: f for f in scan(deeper, "n.txt", text)}
    assert fs3[t3].decoded == "base64 → base64 → base64" and fs3[t3].line == 2
    off = WorkerContext(ScanOptions(decode_base64=False))
    assert scan(off, "n.txt", text) == []


def test_literal_and_encoded_on_one_line_no_duplicates(ctx: WorkerContext) -> None:
    tok = hf_token(RNG)
    text = f"token={tok} copy={b64(tok)} again={b64(tok)}\n"
    fs = scan(ctx, "x.cfg", text)
    assert len(fs) == 1 and fs[0].secret == tok


# ---- negatives -------------------------------------------------------------------------------------------

def _png(w: int, h: int, rng: random.Random) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes(rng.getrandbits(8) for _ in range(w * 3)) for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_negatives_are_silent(ctx: WorkerContext) -> None:
    rng = random.Random(7)
    parts = []
    for n in (18, 27, 48, 300, 5000):
        parts.append(b64(os.urandom(n)))
        parts.append(base64.urlsafe_b64encode(os.urandom(n)).decode())
    png = b64(_png(40, 30, rng))
    parts.append(f"![img](data:image/png;base64,{png})")
    parts.append(wrap(png, 76, ""))
    parts += [hashlib.sha256(os.urandom(8)).hexdigest() for _ in range(5)]
    parts += [hashlib.sha1(os.urandom(8)).hexdigest().upper() for _ in range(5)]
    parts += [str(uuid.uuid4()) for _ in range(5)]
    parts.append(b64("hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"))
    parts.append(b64("HF_TOKEN=hf_YOUR_TOKEN_HERE and more words"))
    parts.append(b64("token: hf_**********************************"))
    parts.append("some_really_long_python_identifier_name_here AndSomeCamelCaseIdentifiersAsWell")
    parts.append("/usr/local/lib/python3.11/site-packages/numpy/core/_multiarray_umath.so")
    text = "\n".join(parts) + "\n"
    assert scan(ctx, "mixed.md", text) == []
    lock = {"packages": {f"node_modules/p{i}": {
        "integrity": "sha512-" + b64(hashlib.sha512(os.urandom(8)).digest()),
        "resolved": f"https://registry.npmjs.org/p{i}/-/p{i}-1.0.{i}.tgz"} for i in range(20)}}
    assert scan(ctx, "package-lock.json", json.dumps(lock, indent=2)) == []
    yaml_neg = "kind: Secret\ndata:\n  a: " + b64(os.urandom(64)) + "\n  b: " + b64("just a password: hunter2") + "\n"
    assert scan(ctx, "neg.yaml", yaml_neg) == []


def test_bad_yaml_with_secret_marker_still_generic(ctx: WorkerContext) -> None:
    tok = hf_token(RNG)
    text = f"kind: Secret\ndata: [unclosed\n  token: {b64(tok)}\n"
    fs = scan(ctx, "broken.yaml", text)
    assert [(f.secret, f.line, f.decoded) for f in fs] == [(tok, 3, "base64")]


def test_cli_end_to_end(tmp_path: Path) -> None:
    tok = gh_token()
    cfg = b64(json.dumps({"auths": {"ghcr.io": {"auth": b64(f"ci:{tok}")}}}))
    (tmp_path / "pull.yaml").write_text(f"kind: Secret\ndata:\n  .dockerconfigjson: {cfg}\n")
    code, rep = scan_json(str(tmp_path), "--show-secrets")
    fs = rep["findings"]
    assert code != 0 and len(fs) == 1
    assert fs[0]["secret"] == tok and fs[0]["line"] == 3 and fs[0]["decoded"] == "base64 → json → base64"
    code, rep = scan_json(str(tmp_path))
    assert tok not in json.dumps(rep)
