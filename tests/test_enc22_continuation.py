"""A token cut by a line continuation: a backslash ending a line, which the reader removes with the line break.

``export HF_TOKEN="hf_abc\\`` + newline + ``def"`` is ``hf_abcdef`` to every POSIX shell (inside double quotes
and outside), to a Dockerfile's ``ENV``/``RUN``, to C (line splicing happens before anything else) and to a
JavaScript string; Python sources were already read by the AST pass. On 75722a6 only the Python ones gave a
finding. Each reader here is the real program (bash, dash, node, gcc), and the token it prints is the ground
truth; where the reader does not join (an escaped backslash, an indented next line) the scan stays quiet.
"""
from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import hf_token, scan_json

HF = "huggingface.user-token"


def _found(tree: Path) -> dict[str, list[tuple[str, int, int, str | None]]]:
    _code, rep = scan_json(tree)
    assert rep["errors"] == []
    out: dict[str, list[tuple[str, int, int, str | None]]] = {}
    for f in rep["findings"]:
        out.setdefault(f["path"], []).append((f["rule_id"], f["line"], f["column"], f.get("decoded")))
    return {k: sorted(v) for k, v in out.items()}


def _run(*argv: str, cwd: Path) -> str:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def _cut(t: str, at: int = 15, nl: str = "\n") -> str:
    return t[:at] + "\\" + nl + t[at:]


@pytest.mark.skipif(not (shutil.which("bash") and shutil.which("dash")), reason="needs bash and dash")
def test_shell_scripts_join_what_the_scan_joins(tree: Path) -> None:
    t = hf_token(random.Random(11))
    (tree / "quoted.sh").write_text(f'#!/bin/sh\nexport HF_TOKEN="{_cut(t)}"\necho "$HF_TOKEN"\n')
    (tree / "bare.sh").write_text(f"#!/bin/sh\nHF_TOKEN={_cut(t, 3)}\necho $HF_TOKEN\n")
    for shell in ("bash", "dash"):
        assert _run(shell, "quoted.sh", cwd=tree) == t
        assert _run(shell, "bare.sh", cwd=tree) == t
    got = _found(tree)
    assert got == {"quoted.sh": [(HF, 2, 18, "line-continuation")],
                   "bare.sh": [(HF, 2, 10, "line-continuation")]}


@pytest.mark.skipif(not (shutil.which("node") and shutil.which("gcc")), reason="needs node and gcc")
def test_javascript_and_c_strings(tree: Path) -> None:
    t = hf_token(random.Random(12))
    (tree / "app.js").write_text(f'const t = "{_cut(t, 9)}";\nconsole.log(t);\n')
    (tree / "key.c").write_text(f'#include <stdio.h>\nstatic const char *k = "{_cut(t, 30)}";\n'
                                'int main(void) { puts(k); return 0; }\n')
    (tree / "Dockerfile").write_text(f"FROM scratch\nENV HF_TOKEN={_cut(t, 12)}\n")
    crlf = f'var t = "{_cut(t, 20, chr(13) + chr(10))}";\r\nconsole.log(t);\r\n'  # CRLF: a Windows checkout
    (tree / "crlf.js").write_bytes(crlf.encode())
    assert _run("node", "app.js", cwd=tree) == t
    assert _run("node", "crlf.js", cwd=tree) == t
    _run("gcc", "-o", str(tree.parent / "key"), "key.c", cwd=tree)
    assert _run(str(tree.parent / "key"), cwd=tree) == t
    assert _found(tree) == {"app.js": [(HF, 1, 12, "line-continuation")],
                            "crlf.js": [(HF, 1, 10, "line-continuation")],
                            "key.c": [(HF, 2, 25, "line-continuation")],
                            "Dockerfile": [(HF, 2, 14, "line-continuation")]}


@pytest.mark.skipif(not shutil.which("bash"), reason="needs bash")
def test_no_join_no_finding(tree: Path) -> None:
    """An escaped backslash (``\\\\``) ends the line: no continuation; an indented next line keeps its spaces in
    a quoted string: no token. Python sources stay the AST pass's (one finding, ``python-ast``)."""
    t = hf_token(random.Random(13))
    (tree / "escaped.sh").write_text(f'X="{t[:15]}\\\\\n{t[15:]}"\necho "$X"\n')
    (tree / "indented.sh").write_text(f'X="{t[:15]}\\\n    {t[15:]}"\necho "$X"\n')
    assert t not in _run("bash", "escaped.sh", cwd=tree).replace("\n", "")
    assert _run("bash", "indented.sh", cwd=tree) == t[:15] + "    " + t[15:]
    (tree / "lit.py").write_text(f'X = "{_cut(t)}"\n')
    assert _found(tree) == {"lit.py": [(HF, 1, 5, "python-ast")]}


def test_secret_never_in_clear(tree: Path) -> None:
    t = hf_token(random.Random(14))
    (tree / "run.sh").write_text(f'export HF_TOKEN="{_cut(t)}"\n')
    from tests.conftest import run_cli

    for fmt in ("text", "json", "sarif"):
        p = run_cli("scan", "--no-progress", "--format", fmt, tree)
        assert p.returncode == 1
        assert t[3:15] not in p.stdout + p.stderr and t[15:] not in p.stdout + p.stderr
