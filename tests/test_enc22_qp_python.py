"""Quoted-printable mail kept in a Python source: test fixtures of mail code hold whole messages in string
literals (CPython's ``test_email``, Django's mail tests), and a token in such a message is cut by the encoder's
soft line breaks. The AST pass reads the literal as written (``=`` and a line break inside the token), so on
75722a6 a ``.py`` file gave no finding where the same message as an ``.eml`` gave one. The messages here are
written by Python's own ``email`` package.
"""
from __future__ import annotations

import email.message
import random
from pathlib import Path

from tests.conftest import hf_token, scan_json

HF = "huggingface.user-token"
_BODY = "Hello,\n\nPlease use this key for the deploy job, it is the new one for the team: {} thanks.\n"


def _message(t: str) -> str:
    m = email.message.EmailMessage()
    m["Subject"], m["From"], m["To"] = "deploy", "a@b.example", "c@d.example"
    m.set_content(_BODY.format(t), cte="quoted-printable")
    raw = m.as_string()
    assert t not in raw and "=\n" in raw  # the encoder cut the token
    return raw


def _where(text: str, part: str) -> tuple[int, int]:
    i = text.index(part)
    return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1


def test_a_mail_fixture_in_a_python_source(tree: Path) -> None:
    t = hf_token(random.Random(31))
    src = f'import email\n\nSAMPLE = """\\\n{_message(t)}"""\n\nmsg = email.message_from_string(SAMPLE)\n'
    (tree / "test_mail.py").write_text(src)
    crlf = src.replace("\n", "\r\n")  # a Windows checkout (core.autocrlf)
    (tree / "test_mail_crlf.py").write_bytes(crlf.encode())
    _code, rep = scan_json(tree)
    assert rep["errors"] == []
    got = sorted((f["path"], f["rule_id"], f["line"], f["column"], f.get("decoded")) for f in rep["findings"])
    assert got == [("test_mail.py", HF, *_where(src, "hf_"), "quoted-printable"),
                   ("test_mail_crlf.py", HF, *_where(src, "hf_"), "quoted-printable")]
    assert all(t[3:] not in str(f) for f in rep["findings"])


def test_python_code_with_equals_stays_quiet(tree: Path) -> None:
    """Assignments, comparisons, keyword arguments and a long line ending in ``=`` inside a string are no mail."""
    (tree / "code.py").write_text(
        "x=5\nX_5F = 1\nY = {'a': 1}\nif x==3:\n    pass\nf(a=1, b=2)\n"
        "HELP = \"\"\"a long line of help text that goes on and on and on and on and on and on=\nnext_token_here\"\"\"\n")
    _code, rep = scan_json(tree)
    assert rep["errors"] == [] and rep["findings"] == []
