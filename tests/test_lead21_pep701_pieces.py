"""Python 3.12 f-strings (PEP 701) in a source too dense to parse whole: the pieces still come out.

An f-string field may hold strings in the f-string's own quotes (``f"{d["k"]}"``), comments and line breaks from
Python 3.12 on. ``pyast_chunks``' regular-expression lexer cannot follow that and gave up ("it cannot be cut"): a
benign generated 3.12 source over the AST budget was a ``limit`` error, exit 3. It now asks the running
interpreter's tokenizer for the same boundaries (``token_starts``). These tests run the splitter under every newer
interpreter found on the machine (the module needs only the standard library) and compare each piece's tree, lines
and columns shifted, with the whole parse."""

from __future__ import annotations

import glob
import os
import subprocess
import sysconfig
from pathlib import Path

import pytest

from veritensor_fast.detectors import pyast_chunks

ROOT = Path(__file__).resolve().parents[1]


def _newer_pythons() -> list[str]:
    """Interpreters of Python >= 3.12 found here (pyenv installs included), one per minor version."""
    found: dict[str, str] = {}
    cands = [f"python3.{m}" for m in range(12, 16)]
    cands += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
    for c in cands:
        try:
            out = subprocess.run([c, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        v = out.stdout.strip()
        if out.returncode == 0 and v and tuple(map(int, v.split("."))) >= (3, 12):
            found.setdefault(v, c)
    return [found[v] for v in sorted(found)]


NEWER = _newer_pythons()

#: PEP 701 forms at top level and inside statements, between ordinary statements: same quotes nested, a field
#: over lines with a comment, a backslash in a field, a decorator and a clause right after such lines, and the
#: two the lexer cannot follow (a lone quote and an opening bracket in a nested string).
PEP701 = '''\
d = {"k": "v", "a": {"b": "c"}}
x = f"{d["k"]}"
y = f"{d["a"]["b"]!r:>{10}}" + f'{'\\n'.join(["p", "q"])}'


@decorate(f"{d["k"]}")
def f(a):
    return f"""{
        a["k"]  # a comment inside a field
    }"""


if f"{d["k"]}":
    z = 1
else:
    z = f"{"nested " + f"{d["k"]}"}"
w = [f"{i["k"]}" for i in [d]]
q = f"{'"'}" + f"{d.get("(", "")}"
'''

CHECK = r'''
import ast, sys
from veritensor_fast.detectors import pyast_chunks as c
src = open(sys.argv[1], "rb").read()
assert c.statement_starts(src) is None, "the regex lexer now follows PEP 701: this test no longer covers the fallback"
whole = ast.parse(src)
from veritensor_fast.detectors.pyast_budget import UNIT_COST, translate, units_between
starts, t, lo, most = c.token_starts(src), translate(src), 0, 0
for e in [*starts, len(src)]:  # the tightest budget: every statement start is a cut
    most, lo = max(most, units_between(t, lo, e)), e
parts = c.split_source(src, most * UNIT_COST)
assert not isinstance(parts, str), parts
got = []
for text, off in parts:
    t = ast.parse(text)
    ast.increment_lineno(t, off)
    got += t.body
want = [ast.dump(n, include_attributes=True) for n in whole.body]
have = [ast.dump(n, include_attributes=True) for n in got]
assert have == want, (len(have), len(want))
print(len(parts))
'''


def _run(py: str, src: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    f = tmp_path / "gen.py"
    f.write_bytes(src)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([py, "-c", CHECK, str(f)], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.skipif(not NEWER, reason="no Python >= 3.12 on this machine")
@pytest.mark.parametrize("py", NEWER)
def test_pep701_source_is_cut_into_the_pieces_one_parse_gives(py: str, tmp_path: Path) -> None:
    src = (PEP701 * 40).encode()
    r = _run(py, src, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout) > 10


@pytest.mark.skipif(not NEWER, reason="no Python >= 3.12 on this machine")
@pytest.mark.parametrize("py", NEWER)
def test_the_newer_pythons_own_fstring_tests_are_cut_exactly(py: str, tmp_path: Path) -> None:
    out = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                         capture_output=True, text=True, timeout=30)
    path = Path(out.stdout.strip()) / "test" / "test_fstring.py"
    if not path.is_file():
        pytest.skip(f"{path} is not installed")
    r = _run(py, path.read_bytes(), tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout) > 1


def _stdlib(*names: str) -> list[Path]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    return [lib / n for n in names if (lib / n).is_file()]


@pytest.mark.parametrize("path", _stdlib("test/test_grammar.py", "test/test_patma.py", "typing.py", "argparse.py",
                                         "test/test_except_star.py", "tokenize.py", "email/_header_value_parser.py"),
                         ids=lambda p: p.name)
def test_the_tokenizer_gives_the_lexers_boundaries(path: Path) -> None:
    """Where the lexer follows a source, the tokenizer's boundaries are the same (decorators, clauses, strings and
    brackets over lines, comments, a form feed)."""
    src = path.read_bytes()
    want = pyast_chunks.statement_starts(src)
    assert want is not None and len(want) > 1
    got = pyast_chunks.token_starts(src)
    assert got is not None and list(got) == list(want)


@pytest.mark.parametrize("src", [b"x = 1\rdef f():\r  pass\r", b"x = (\n", b"x = '''\n", b"\xff = 1\n",
                                 b"a\nx = )\na\n", b"a\nx = 'open\na\n"])
def test_the_tokenizer_fallback_gives_up_rather_than_guess(src: bytes) -> None:
    """A lone carriage return, an unclosed or unbalanced bracket, an unclosed string, a lone quote, bytes that are
    not UTF-8: no boundaries (the caller reports the source as not cut, a ``limit`` error)."""
    assert pyast_chunks.token_starts(src) is None

