"""Tokens spelled with escapes in text files other than notebooks and Python sources.

JSON (``"\\u0068f_..."``), JavaScript/C string escapes (``"\\x68\\x66\\x5f..."``) and URL percent-encoding
(``?token=hf%5F...``, as an over-eager encoder or a HAR/access log writes it) are read back as the token by
every parser, interpreter and web server. Notebooks decoded their JSON escapes and the AST pass a Python
literal's, but every other text file gave no finding (betterleaks 2.0 finds all of them).
"""
from __future__ import annotations

from pathlib import Path

from tests.conftest import hf_token, run_cli, scan_json


def _u(s: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in s)


def _found(tree: Path) -> dict[str, list[tuple[str, int, int, str | None]]]:
    code, rep = scan_json(tree)
    assert rep["errors"] == []
    out: dict[str, list[tuple[str, int, int, str | None]]] = {}
    for f in rep["findings"]:
        out.setdefault(f["path"], []).append((f["rule_id"], f["line"], f["column"], f.get("decoded")))
    return out


def test_escaped_tokens_are_found_where_they_stand(tree: Path) -> None:
    t = hf_token()
    (tree / "all.json").write_text(f'{{\n  "token": "{_u(t)}"\n}}\n')
    (tree / "prefix.json").write_text(f'{{"a": "caf\\u00e9", "t": "\\u0068f_{t[3:]}"}}\n')
    (tree / "app.js").write_text('const t = "%s";\n' % ("".join(f"\\x{ord(c):02x}" for c in t[:3]) + t[3:]))
    (tree / "access.log").write_text("GET /api?key=1&token={}&x=2 HTTP/1.1\n".format(t.replace("_", "%5F")))
    (tree / "full.txt").write_text("https://h/?t={}\n".format("".join(f"%{ord(c):02X}" for c in t)))
    got = _found(tree)
    hf = "huggingface.user-token"
    assert got == {
        "all.json": [(hf, 2, 13, "escapes")],
        "prefix.json": [(hf, 1, 26, "escapes")],
        "app.js": [(hf, 1, 12, "escapes")],
        "access.log": [(hf, 1, 22, "escapes")],
        "full.txt": [(hf, 1, 14, "escapes")],
    }


def test_plain_and_python_findings_unchanged(tree: Path) -> None:
    t = hf_token()
    # a plain token on a line with an escape is the plain pass's finding, once
    (tree / "plain.json").write_text(f'{{"a": "\\u0041", "t": "{t}"}}\n')
    # a Python literal stays the AST pass's finding
    (tree / "lit.py").write_text(f't = "{_u(t)}"\n')
    got = _found(tree)
    assert got == {"plain.json": [("huggingface.user-token", 1, 23, None)],
                   "lit.py": [("huggingface.user-token", 1, 5, "python-ast")]}


def test_escape_lookalikes_are_quiet(tree: Path) -> None:
    (tree / "fmt.c").write_text('printf("%5d %6f %2d %5f", a, b, c, d); /* id%2dx */\n')
    (tree / "go.json").write_text('{"html": "\\u003cb\\u003e \\u0026 \\u00e9\\u00e8 hf\\/x"}\n')
    (tree / "bytes.js").write_text('const magic = "\\x7fELF\\x00\\x01\\x41\\x42";\n')
    code, rep = scan_json(tree)
    assert (code, rep["findings"], rep["errors"]) == (0, [], [])


def test_escaped_token_never_printed(tree: Path) -> None:
    t = hf_token()
    (tree / "all.json").write_text(f'{{"token": "{_u(t)}"}}\n')
    for fmt in ("text", "json", "sarif", "markdown"):
        p = run_cli("scan", "--format", fmt, tree)
        assert p.returncode == 1, p.stderr
        assert t not in p.stdout + p.stderr and t[3:] not in p.stdout + p.stderr
