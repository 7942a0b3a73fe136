"""bigpy20: a Python source too dense to parse whole within the AST memory budget is parsed in pieces of whole
top-level statements (``pyast_chunks``), with the same findings as one parse.

On 8eea362 such a source was not parsed at all: a ``limit`` error, exit code 3 ("incomplete") on a benign file,
and the secrets only the AST pass reassembles were not reported. The differential tests force the tightest budget
(the densest single statement's estimate), so that real sources are cut at every place they can be, and compare
the constant names, every matched text with its line and column, and the hits with the whole parse."""

from __future__ import annotations

import ast
import io
import os
import sys
import sysconfig
import tokenize
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veritensor_fast.detectors import pyast_chunks
from veritensor_fast.detectors.ast_eval import const_names, walrus_lines
from veritensor_fast.detectors.pyast import (
    _pieces,
    parse_python,
    scan_python_bounded,
    scan_python_source,
)
from veritensor_fast.detectors.pyast_budget import UNIT_COST, translate, units_between
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import hf_token, scan_json, scan_peak

SMALL = {"VERITENSOR_FAST_AST_BUDGET": str(1 << 20)}  # 1 MiB: 630 units, the least the variable allows


@pytest.fixture(scope="module")
def matcher() -> object:
    return WorkerContext(ScanOptions()).matcher


def tightest(src: str | bytes) -> int:
    """The least budget every top-level statement of ``src`` fits in (so it is cut at every boundary)."""
    u = src.encode("utf-8", "surrogatepass") if isinstance(src, str) else src
    starts = pyast_chunks.statement_starts(u)
    assert starts is not None
    t, lo, most = translate(u), 0, 0
    for e in [*starts, len(u)]:
        most, lo = max(most, units_between(t, lo, e)), e
    return most * UNIT_COST


def every_cut(src: bytes) -> list[tuple[str | bytes, int]]:
    """``src`` cut at every statement start: one top-level statement a piece (text pieces in another codec)."""
    codec = tokenize.detect_encoding(io.BytesIO(src).readline)[0]
    u = src if codec in ("utf-8", "utf-8-sig") else src.decode(codec).encode()
    starts = pyast_chunks.statement_starts(u)
    assert starts is not None
    out: list[tuple[str | bytes, int]] = []
    lo, line = 0, 1
    for e in [*starts, len(u)]:
        out.append((u[lo:e] if u is src else u[lo:e].decode(), line - 1))
        line, lo = pyast_chunks.line_of(u, e, lo, line), e
    return out


def same_as_whole(src: bytes, matcher: object) -> int:
    """Assert that ``src`` cut at its tightest budget, and at every statement, gives what one parse gives; the
    number of statements."""
    tree = parse_python(src)
    assert tree is not None
    names = const_names(tree, walrus_at=walrus_lines(src))
    whole = _pieces(tree, src)
    del tree
    parts = pyast_chunks.split_source(src, tightest(src))
    assert not isinstance(parts, str), parts
    each = every_cut(src)
    for cut in (parts, each):
        assert pyast_chunks.piece_names(cut, parse_python, 1 << 30) == names
        walked = pyast_chunks.walk_parts(cut, names, parse_python, lambda t, s, off: _pieces(t, s, names, off))
        assert walked == whole  # texts, lines, columns, end lines: in order
    hits, why = scan_python_bounded(src, matcher, limit=tightest(src))  # type: ignore[arg-type]
    assert why is None and hits == scan_python_source(src, matcher)  # type: ignore[arg-type]
    return len(each)


def _stdlib(*names: str) -> list[Path]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    return [lib / n for n in names if (lib / n).is_file()]


#: Real modules of CPython's library: decorators, ``match`` statements (test_patma), ``try``/``except*``,
#: ``if``/``elif``/``else`` at column 0, long triple-quoted strings, backslash continuations, a ``\x0c`` page break.
REAL = _stdlib("test/test_patma.py", "test/test_grammar.py", "typing.py", "dataclasses.py", "argparse.py",
               "test/test_except_star.py", "_pydecimal.py", "email/_header_value_parser.py", "tokenize.py")


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_modules_cut_everywhere_give_the_same_pieces(path: Path, matcher: object) -> None:
    src = path.read_bytes()
    assert same_as_whole(src, matcher) > 1


def test_the_packages_own_sources_give_the_same_pieces(matcher: object) -> None:
    root = Path(__file__).resolve().parents[1] / "veritensor_fast"
    for p in sorted(root.rglob("*.py"))[::4]:
        same_as_whole(p.read_bytes(), matcher)


def _tokens(n: int) -> list[str]:
    return [hf_token() for _ in range(n)]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_placements_and_layouts_at_every_cut(eol: str, matcher: object) -> None:
    """The AST placement cases (a fold, a sink, a name bound in one piece and used in another, decorators,
    clauses at column 0, ``match``, strings and brackets over lines that look like statements) cut at every
    statement: the same hits at the same lines and columns."""
    t = _tokens(9)
    src = eol.join([
        "# -*- coding: utf-8 -*-",
        f'HEAD = "hf_{t[0][3:15]}"',
        "@register(",
        f'    token="hf_" + "{t[1][3:]}")',
        "# a comment between a decorator and its function",
        "@other",
        "def run(x):",
        "    return HEAD + TAIL",
        "if x:",
        "    pass",
        "elif y:",
        "    pass",
        "else:",
        f'    E = "hf_%s" % "{t[2][3:]}"',
        "try:",
        "    pass",
        "except E as e:",
        "    pass",
        "finally:",
        "    pass",
        "match command:",
        "    case [x]:",
        f'        C = "hf_{{}}{{}}".format("{t[3][3:8]}", "{t[3][8:]}")',
        "    case _:",
        "        pass",
        'DOC = """',
        "X = 1",
        'Y = "not a statement"',
        '"""',
        "V = (1,",
        "2)",
        "W = 1 + \\",
        "2",
        f'TAIL = "{t[0][15:]}"',
        f'login(key="hf_" + "{t[4][3:]}")',
        f"F = f'hf_{{TAIL}}' if 0 else ('hf_' '{t[5][3:]}')",
        f'os.environ["HF_TOKEN"] = "hf_" + "{t[6][3:]}"',
        "async def g():",
        "    async with a as b:",
        f'        k = {{"token": "hf_" "{t[7][3:]}"}}',
        f'ONCE = "hf_{t[8][3:20]}"',
        "TWICE = 'x'",
        "TWICE = 'y'",
        f'Z = ONCE + "{t[8][20:]}" + TWICE',
        "",
    ])
    b = src.encode()
    assert same_as_whole(b, matcher) >= 15
    secrets = {h.match.secret.decode() for h in scan_python_source(b, matcher) or []}  # type: ignore[arg-type]
    assert {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8]} <= secrets


def test_a_name_bound_in_two_pieces_is_not_folded_one_bound_later_is(matcher: object) -> None:
    a, b = hf_token(), hf_token()
    filler = "".join(f"v{i} = f(x, y)\n" for i in range(300))
    src = (f'P = "hf_"\nUSE = P + "{a[3:]}"\n' + filler + 'P = "zz"\n' + filler
           + f'LATE = Q + "{b[3:]}"\n' + filler + 'Q = "hf_"\n').encode()
    assert same_as_whole(src, matcher) > 3
    hits, why = scan_python_bounded(src, matcher, limit=1 << 20)  # type: ignore[arg-type]
    assert why is None and {h.match.secret.decode() for h in hits or []} == {b}  # P is bound twice: no fold


def test_a_latin1_source_is_cut_and_read_in_its_codec(matcher: object) -> None:
    tok = hf_token()
    src = ("# -*- coding: latin-1 -*-\n" + "".join(f"v{i} = 'é{i}'\n" for i in range(50))
           + f'K = "é" + "hf_" + "{tok[3:]}"\n').encode("latin-1")
    assert same_as_whole(src, matcher) > 10
    bom = b"\xef\xbb\xbf" + src[26:].decode("latin-1").encode()
    assert same_as_whole(bom, matcher) > 10


def test_what_cannot_be_cut_is_not_cut(matcher: object) -> None:
    """A single statement over the budget, an unterminated string, an unbalanced bracket: reported as skipped."""
    for src, want in [(b"x = [" + b"a," * 2000 + b"]\n", "line 1 alone"),
                      (b"a\n" * 1000 + b"x = 'open\n" + b"a\n" * 1000, "cannot be cut"),
                      (b"a\n" * 1000 + b"x = )\n" + b"a\n" * 1000, "cannot be cut"),
                      (b"a\n" * 1000 + b"print 'py2'\n" + b"a\n" * 1000, "did not parse")]:
        hits, why = scan_python_bounded(src, matcher, limit=1 << 20)  # type: ignore[arg-type]
        assert hits is None and why is not None and want in why and "AST memory budget" in why, why


def test_a_dense_benign_source_is_complete_with_its_findings(tmp_path: Path) -> None:
    """End to end under the least budget: no ``limit`` error, exit 1, the same findings (rule, line, column,
    fingerprint) as with the default budget, where it is parsed whole. On 8eea362: exit 1 only through the text
    pass's finding, a ``limit`` error, the AST-only findings missing."""
    t = _tokens(3)
    body = "".join(f"value_{i} = table[{i}] + offset({i}, 'x')\n" for i in range(400))
    (tmp_path / "gen_pb2.py").write_text(f'PREFIX = "hf_"\nKEY = "{t[0]}"\n' + body
                                         + f'TOKEN = PREFIX + "{t[1][3:]}"\n' + body
                                         + f'login(token="hf_" + "{t[2][3:]}")\n')
    env = {k: v for k, v in os.environ.items() if k != "VERITENSOR_FAST_AST_BUDGET"}
    code, rep = scan_json("--jobs", "1", str(tmp_path), env=SMALL)
    code0, rep0 = scan_json("--jobs", "1", str(tmp_path), env=env)
    assert rep["errors"] == [] and code == 1, rep["errors"]
    key = [(f["rule_id"], f["line"], f["column"], f["fingerprint"]) for f in rep["findings"]]
    assert key == [(f["rule_id"], f["line"], f["column"], f["fingerprint"]) for f in rep0["findings"]]
    assert [k[1] for k in key] == [2, 403, 804]


def test_a_dense_notebook_cell_is_parsed_in_pieces(tmp_path: Path) -> None:
    import json

    tok = hf_token()
    cells = [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
              "source": "%matplotlib inline\n" + "a\n" * 2000 + f't = "hf_" + "{tok[3:]}"\n'}]
    (tmp_path / "n.ipynb").write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                                  "nbformat_minor": 5}))
    code, rep = scan_json("--jobs", "1", str(tmp_path), env=SMALL)
    assert code == 1 and rep["errors"] == [] and [f["line"] for f in rep["findings"]] == [2002], rep


def test_a_hostile_dense_file_is_parsed_in_bounded_memory(tmp_path: Path) -> None:
    """1.5 MiB of ``a`` lines (~1.57 M units: ~2.6 GB to parse whole) under a 64 MiB budget: every piece's
    parse stays within it, and the secret the AST pass reassembles at the end is found."""
    tok = hf_token()
    (tmp_path / "dense.py").write_bytes(b"a\n" * (3 << 18) + f't = "hf_" + "{tok[3:]}"\n'.encode())
    env = {**os.environ, "VERITENSOR_FAST_AST_BUDGET": str(64 << 20)}
    out = scan_peak(tmp_path, env)
    assert out["errors"] == [] and out["findings"] == 1, out
    assert out["rss_kb"] < 200_000, out  # the scan itself ~100 MB, plus one piece's parse within 64 MiB


def test_the_lexer_agrees_with_the_tokenizer_on_statement_starts() -> None:
    """Every boundary given is a line where the real tokenizer starts a top-level statement (after a NEWLINE token,
    no INDENT, at column 0)."""
    for path in REAL[:4]:
        src = path.read_bytes()
        starts = set(pyast_chunks.statement_starts(src) or ())
        lines = src.splitlines(keepends=True)
        offs = [0]
        for ln in lines:
            offs.append(offs[-1] + len(ln))
        real = set()
        prev = None
        for tk in tokenize.tokenize(io.BytesIO(src).readline):
            if tk.start[1] == 0 and prev in (tokenize.NEWLINE, tokenize.NL, tokenize.COMMENT, tokenize.DEDENT) \
                    and tk.type not in (tokenize.NL, tokenize.COMMENT, tokenize.DEDENT, tokenize.ENDMARKER):
                real.add(offs[tk.start[0] - 1])
            prev = tk.type
        assert starts <= real and len(starts) > 10
        assert ast.parse(src)  # and the file is valid Python
    assert sys.version_info >= (3, 10)


def test_constant_folding_is_bounded_in_total(tmp_path: Path) -> None:
    """Names double (``A1 = A0 + A0``) up to the 64 Ki characters one value may hold, and each use copies
    (``B1 = A12 + ""``): on 8eea362 this 349 KB source (under the AST budget, parsed whole) drove one worker over
    2 GB ("detector python-ast: out of memory" under the cap; unbounded without one). Now the folded values of
    one source are bounded (``ast_eval.FOLD_TOTAL``): a ``limit`` error, the text still scanned."""
    lines = ['A0 = "hf_xxxxxxxxxxxxx"'] + [f"A{i} = A{i - 1} + A{i - 1}" for i in range(1, 13)]
    (tmp_path / "amp.py").write_text("\n".join(lines + [f'B{i} = A12 + ""' for i in range(20000)]) + "\n")
    out = scan_peak(tmp_path, dict(os.environ))
    assert [k for k, _ in out["errors"]] == ["limit"] and "constant strings" in out["errors"][0][1], out
    assert out["rss_kb"] < 400_000, out


#: Top-level fragments whose joins are cut in every way that matters: decorators, clauses at column 0, ``match``,
#: strings, brackets and continuations over lines that look like statements, comments, blank lines, page breaks.
FRAGMENTS = [
    "x = 1\n", "@d\n# c\n\n@e(\n  1)\ndef h():\n    pass\n", "def f():\n    return X\n", "@d\nclass C:\n    pass\n",
    "if a:\n    pass\nelif b:\n    pass\nelse:\n    E = 'hf_' + TAIL\n", "try:\n    pass\nexcept E:\n    pass\n"
    "else:\n    pass\nfinally:\n    pass\n", "match m:\n    case 1:\n        pass\n", 'S = """\nT = "hf_" + N\n"""\n',
    "U = ('hf_xyz',\n'abcdefghijklmnopqrstu')\n", "V = 1 + \\\n2\n", "# c ' \"\n", "\n", "  \n", 'N = "hf_" + TAIL\n',
    'TAIL = "aB3dE5gH7jK9mN1pQ3sT5vW7xY9zA1bC3d"\n', 'TAIL = "x"\n', 'W = f"{N}x"\n', "\x0cz = 2\n", "Q = \'\'\'\n@x\n\'\'\'\n",
    "async def g():\n    pass\n", "for i in r:\n    pass\nelse:\n    pass\n", "with a as b:\n    pass\n",
    "R = [\n# ]\n1]\n", "K = 'a\\\nb'\n", "(y := N)\n", 'login(key=N + "0123456789abcdef")\n', "L: str\n",
    "M: str = TAIL + TAIL\n", "elsewhere = 3\n", "while 0:\n    pass\nelse:\n    pass\n",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=2, max_size=30), st.sampled_from(["\n", "\r\n", "\r"]))
def test_any_valid_join_of_fragments_gives_the_same_pieces(frags: list[str], eol: str) -> None:
    src = "".join(frags).replace("\n", eol).encode()
    if parse_python(src) is None:
        return  # not Python: nothing to compare
    same_as_whole(src, _MATCHER)


_MATCHER = WorkerContext(ScanOptions()).matcher


def _greedy(buf: bytes, budget: int) -> list[tuple[int, int, int]] | tuple[int, int]:
    """``pyast_chunks.plan`` the plain way: extend each piece one statement at a time while it fits."""
    starts = pyast_chunks.statement_starts(buf)
    assert starts is not None
    ends, t, lim = [*starts, len(buf)], translate(buf), budget // UNIT_COST
    out: list[tuple[int, int, int]] = []
    lo, line, i = 0, 1, 0
    while lo < len(buf):
        if units_between(t, lo, ends[i]) > lim:
            return line, units_between(t, lo, ends[i]) * UNIT_COST
        while i + 1 < len(ends) and units_between(t, lo, ends[i + 1]) <= lim:
            i += 1
        out.append((lo, ends[i], line))
        line, lo, i = pyast_chunks.line_of(buf, ends[i], lo, line), ends[i], i + 1
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a\n", "x = [1, 2, 3]\n", "def f():\n  return 1\n", "# c\n", "y = 'a b'\r\n",
                                 "z = (1,\n 2)\n", "\n", "@d\ndef g():\n  pass\n"]), min_size=1, max_size=200),
       st.integers(5, 300))
def test_the_packing_is_the_plain_greedy_one(lines: list[str], units: int) -> None:
    buf = "".join(lines).encode()
    assert pyast_chunks.plan(buf, units * UNIT_COST) == _greedy(buf, units * UNIT_COST)
