"""Tokens in quoted-printable text: mail bodies, MIME parts and RFC 2047 encoded-word headers.

Quoted-printable (RFC 2045) cuts every line longer than 76 columns with a soft line break (``=`` at the end of
the line), so a token in a long line of an ``.eml``/``.mbox`` or MIME part is split in two; an encoded-word
header (``=?utf-8?q?...?=``) writes ``_`` as ``=5F`` and folds long headers into several encoded words. Each
message here is written by Python's own ``email`` package; on 413ad37 none of them gave a finding.
"""
from __future__ import annotations

import email.charset
import email.header
import email.message
import email.policy
import random
from email.mime.text import MIMEText
from pathlib import Path

from tests.conftest import hf_token, run_cli, scan_json

HF = "huggingface.user-token"
_BODY = "Hello,\n\nPlease use this key for the deploy job, it is the new one for the team: {} thanks.\n"


def _found(tree: Path) -> dict[str, list[tuple[str, int, int, str | None]]]:
    _code, rep = scan_json(tree)
    assert rep["errors"] == []
    out: dict[str, list[tuple[str, int, int, str | None]]] = {}
    for f in rep["findings"]:
        out.setdefault(f["path"], []).append((f["rule_id"], f["line"], f["column"], f.get("decoded")))
    return {k: sorted(v) for k, v in out.items()}


def _where(raw: bytes, encoded_start: bytes) -> tuple[int, int]:
    """Line and column (1-based) of the first occurrence of ``encoded_start`` in ``raw``."""
    i = raw.index(encoded_start)
    return raw.count(b"\n", 0, i) + 1, i - (raw.rfind(b"\n", 0, i) + 1) + 1


def test_mail_bodies_cut_by_soft_line_breaks(tree: Path) -> None:
    t = hf_token(random.Random(7))
    m = email.message.EmailMessage()  # the modern API, LF line ends
    m["Subject"], m["From"], m["To"] = "deploy", "a@b.example", "c@d.example"
    m.set_content(_BODY.format(t), cte="quoted-printable")
    lf = m.as_bytes()
    cs = email.charset.Charset("utf-8")  # the legacy API, QP body, CRLF as sent over SMTP
    cs.body_encoding = email.charset.QP
    crlf = MIMEText(_BODY.format(t) + "caf\u00e9\n", _charset=cs).as_bytes(policy=email.policy.SMTP)
    for raw in (lf, crlf):
        assert t.encode() not in raw and b"=\n" in raw.replace(b"\r", b"")  # the producer cut the token
    (tree / "lf.eml").write_bytes(lf)
    (tree / "crlf.mbox").write_bytes(b"From a@b.example Mon Nov 30 21:00:00 2026\r\n" + crlf)
    got = _found(tree)
    assert got == {"lf.eml": [(HF, *_where(lf, b"hf_"), "quoted-printable")],
                   "crlf.mbox": [(HF, 1 + _where(crlf, b"hf_")[0], _where(crlf, b"hf_")[1], "quoted-printable")]}


def test_encoded_word_headers(tree: Path) -> None:
    t = hf_token(random.Random(8))
    one = email.header.Header(f"token {t} \u00e9", "utf-8").encode()
    folded = email.header.Header(f"Votre cl\u00e9 pour le d\u00e9ploiement de demain matin: {t} merci", "utf-8").encode()
    assert "hf=5F" in one and "?=\n =?" in folded and t not in folded
    (tree / "one.eml").write_text(f"From: a@b.example\nSubject: {one}\n\nhi\n")
    (tree / "folded.eml").write_text(f"From: a@b.example\nSubject: {folded}\n\nhi\n")
    got = _found(tree)
    assert got == {"one.eml": [(HF, 2, 9 + one.index("hf=5F") + 1, "quoted-printable")],
                   "folded.eml": [(HF, 2, 9 + folded.index("hf=5F") + 1, "quoted-printable")]}


def test_secret_never_shown(tree: Path) -> None:
    t = hf_token(random.Random(9))
    m = email.message.EmailMessage()
    m.set_content(_BODY.format(t), cte="quoted-printable")
    (tree / "m.eml").write_bytes(m.as_bytes())
    for fmt in ("json", "text", "sarif"):
        p = run_cli("scan", "--no-progress", "-f", fmt, tree)
        assert p.returncode == 1, p.stderr
        assert t not in p.stdout and t not in p.stderr and t[3:20] not in p.stdout


def test_plain_token_in_a_qp_mail_is_reported_once(tree: Path) -> None:
    t = hf_token(random.Random(10))
    m = email.message.EmailMessage()
    m.set_content(f"key: {t}\n" + "word " * 40 + "\n", cte="quoted-printable")
    raw = m.as_bytes()
    assert t.encode() in raw and b"=\n" in raw
    (tree / "m.eml").write_bytes(raw)
    assert _found(tree) == {"m.eml": [(HF, *_where(raw, t.encode()), None)]}


def test_equals_signs_in_code_and_config_stay_quiet(tree: Path) -> None:
    t = hf_token(random.Random(11))
    long = "x" * 70
    (tree / "a.env").write_text(f"a=5F\nx==3D\nCOLOR=5F9EA0\nEMPTY=\nNEXT=2D\n{long}=\nTOKEN={t}\n")
    (tree / "style.css").write_text("a { color: #5F9EA0; } b { color: #2D2D2D; }\n")
    (tree / "urls.txt").write_text("https://h.example/p?a=5F&b=2D&c=3D%3D\n" + "q" * 66 + "v=\n=5Fabc\n")
    (tree / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\n" + "QUJD" * 15 + "QQ==\n"
                                   "-----END CERTIFICATE-----\n")
    got = _found(tree)
    assert got == {"a.env": [(HF, 7, 7, None)]}
