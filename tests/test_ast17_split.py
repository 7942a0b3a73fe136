"""ast17: recall gaps of the Python AST pass's prefilter (found by last session's fuzz, also on main).

The fold reassembled each of these tokens, but the prefilter never let the file be parsed:

- (a) a literal holding a rule's anchor and *enough* characters for the rule's shortest match, continued by a
  fold into a longer token: ``"sk-proj-<50 chars>" + "…T3BlbkFJ…"`` (the cut-short bound used the rule's
  shortest match; the text pass reports only the first piece, a different secret);
- (b)/(c) an anchor split inside itself by anything but ``+``/implicit concatenation of two literals: a
  ``.format`` field or argument, ``%``, an f-string field, ``"".join``, a name bound to a piece, a line
  continuation, a comment, a semicolon (``"https://hooks.sla" + P``, ``"h{}".format("f_…")``,
  ``"h{}_…".format("f")``).

Every form is checked against ground truth (the AST view finds the token, the plain text does not), then
admitted by the prefilter and found by a full scan, for several rules; the same in a notebook code cell. The
shapes that made the first drafts admit thousands of real files (an f-string prefix ``f"``, a raw string's
backslash, the last element of a list) stay rejected.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import test_notebook
from test_ast16_admit import scan  # a whole .py file through the worker's detectors

from veritensor_fast.detectors.pyast import scan_python_source
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import rand

RNG = random.Random(1717)
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
TOKENS = {
    "huggingface.user-token": "hf_" + rand(34, rng=RNG),
    "github.token": "ghp_" + rand(36, rng=RNG),
    "aws.access-key-id": "AKIA" + rand(16, UPPER + "234567", RNG),
    "openai.api-key": "sk-proj-" + rand(74, rng=RNG) + "T3BlbkFJ" + rand(74, rng=RNG),
    "slack.webhook": ("https://hooks.slack.com/services/T" + rand(9, UPPER + "0123456789", RNG) + "/B"
                      + rand(9, UPPER + "0123456789", RNG) + "/" + rand(24, rng=RNG)),
}
#: Where the anchor is split (offsets inside it), per rule.
ANCHOR_CUTS = {"huggingface.user-token": (1, 2), "github.token": (1, 2, 3), "aws.access-key-id": (1, 2, 3),
               "openai.api-key": (1, 2, 5, 7), "slack.webhook": (1, 8, 17, 30, 33)}
HOST = 'import os\nDTYPE = "bfloat16"\nSHA = "9d71491b50023b06fc76928e6eddb952"\n'


def shapes(a: str, b: str) -> dict[str, str]:
    """The token ``a + b`` assembled by a fold, by form."""
    return {
        "plus": f'T = "{a}" + "{b}"\n',
        "format arguments": f'T = "{{}}{{}}".format("{a}", "{b}")\n',
        "format field": f'T = "{a}{{}}".format("{b}")\n',
        "format field holding one character": f'T = "{a}{{}}{b[1:]}".format("{b[0]}")\n',
        "percent": f'T = "%s%s" % ("{a}", "{b}")\n',
        "percent field": f'T = "{a}%s" % "{b}"\n',
        "percent field holding one character": f'T = "{a}%s{b[1:]}" % "{b[0]}"\n',
        "f-string of constants": f"T = f\"{{'{a}'}}{{'{b}'}}\"\n",
        "f-string field": f'P = "{b}"\nT = f"{a}{{P}}"\n',
        "f-string field holding one character": f'P = "{b[0]}"\nT = f"{a}{{P}}{b[1:]}"\n',
        "join of a list": f'T = "".join(["{a}", "{b}"])\n',
        "join of a tuple": f'T = "".join(("{a}", "{b}"))\n',
        "name": f'_P = "{b}"\nT = "{a}" + _P\n',
        "two names": f'P1 = "{a}"\nP2 = "{b}"\nT = P1 + P2\n',
        "line continuation": f'T = "{a}" \\\n    "{b}"\n',
        "comment between": f'T = ("{a}"  # one\n     "{b}")\n',
        "semicolon": f'X = "{a}"; Y = X + "{b}"\n',
        "class attribute": f'class C:\n    K = "{a}"\n    F = K + "{b}"\n',
    }


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    return WorkerContext(ScanOptions())


def wanted(ctx: WorkerContext, src: str) -> bool:
    det = next(d for d in ctx.detectors if d.name == "python-ast")
    return bool(det.wanted(src.encode()))  # type: ignore[attr-defined]


def ast_only(ctx: WorkerContext, src: str) -> set[tuple[str, str]]:
    """What parsing adds: secrets the AST view matches that the plain text does not."""
    hits = scan_python_source(src, ctx.matcher) or []
    text = {(m.rule.id, m.secret) for m in ctx.matcher.find(src.encode())}
    return {(h.match.rule.id, h.match.secret.decode()) for h in hits if (h.match.rule.id, h.match.secret) not in text}


def check(ctx: WorkerContext, rule: str, src: str) -> str | None:
    """``None`` when the token only the AST assembles is admitted and found, else what went wrong."""
    tok = TOKENS[rule]
    src = HOST + src
    if (rule, tok) not in ast_only(ctx, src):
        return "ground truth: the fold does not give the token alone"
    if not wanted(ctx, src):
        return "not admitted"
    got = [(f.rule_id, f.secret, f.decoded) for f in scan(ctx, src) if f.secret == tok]
    return None if got == [(rule, tok, "python-ast")] else f"scan gave {got}"


@pytest.mark.parametrize("rule", sorted(TOKENS))
@pytest.mark.parametrize("form", sorted(shapes("ab", "cd")))
def test_anchor_split_inside_itself_by_a_fold_is_found(ctx: WorkerContext, rule: str, form: str) -> None:
    tok = TOKENS[rule]
    bad = {k: why for k in ANCHOR_CUTS[rule] if (why := check(ctx, rule, shapes(tok[:k], tok[k:])[form]))}
    assert bad == {}


LONG_CUTS = {"openai.api-key": (50, 90, len(TOKENS["openai.api-key"]) - 3),
             "slack.webhook": (len(TOKENS["slack.webhook"]) - 3,)}


@pytest.mark.parametrize("rule", sorted(LONG_CUTS))
@pytest.mark.parametrize("form", ["plus", "format arguments", "percent", "join of a list", "name", "semicolon",
                                  "f-string field", "class attribute"])
def test_first_piece_long_enough_for_a_shorter_match_is_continued(ctx: WorkerContext, rule: str, form: str) -> None:
    tok = TOKENS[rule]
    for k in LONG_CUTS[rule]:
        src = shapes(tok[:k], tok[k:])[form]
        assert ctx.matcher.find((HOST + src).encode()), "the text pass reports the first piece alone"
        assert check(ctx, rule, src) is None, k


def test_in_a_notebook_code_cell(ctx: WorkerContext, tmp_path: Path) -> None:
    hooks, hf = TOKENS["slack.webhook"], TOKENS["huggingface.user-token"]
    src = [f'URL = "{{}}{{}}".format("{hooks[:17]}", "{hooks[17:]}")\n', f'T = "{hf[:2]}{{}}".format("{hf[2:]}")\n']
    doc = test_notebook.nb([test_notebook.code(src)])
    fs, errs = test_notebook.scan_bytes(ctx, tmp_path, json.dumps(doc, indent=1).encode())
    assert errs == []
    assert sorted((f.secret, f.line, f.decoded, (f.location or {}).get("cell")) for f in fs) == sorted(
        [(hooks, 1, "python-ast", 0), (hf, 2, "python-ast", 0)])


#: Shapes from a real site-packages that drafts of the split check admitted: a head (``f``, ``r``, ``A``) beside a
#: tail-shaped literal, where nothing folds into a token.
DEAD = {
    "f-string prefix": 'msg = f"{x}"\nNAME = "w_' + "a1b2c3d4e5f6g7h8i9j0k1l2" + '"\n',
    "raw string backslash": "m = re.search(r'A\\s*', s)\nK = 'KIA" + "ABCDEFGHIJKLMNOP" + "'\n",
    "last element of a list": 'CODES = ["x", "A"]\nK = "KIA' + "ABCDEFGHIJKLMNOP" + '"\n',
    "quote of the other kind": "s = b\"p0\\n(S'U1'\\np2\"\nK = 'K" + "0123456789abcdef0123456789abcdef" + "'\n",
    "in a comment": '# see "h" + "x"\nT = "f_' + "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7" + '"\n',
}


@pytest.mark.parametrize("name", sorted(DEAD))
def test_heads_that_no_fold_continues_do_not_admit(ctx: WorkerContext, name: str) -> None:
    src = HOST + DEAD[name]
    assert ast_only(ctx, src) == set()
    assert not wanted(ctx, src)


@pytest.mark.parametrize(("line", "state"), [
    (b'x = f"abc', False),  # at the prefix: not yet in a literal
    (b'x = "a" + "b', b'"'),
    (b'y = "a#b" + r\'x', b"r'"),
    (b'# hi "x', False),
    (b'"""doc', None),
    (b'z = f"{\'x', None),  # inside an f-string's field: other literals nest
    (b'a = "x\\\n  hf', None),  # a continued line
])
def test_in_literal(line: bytes, state: bytes | bool | None) -> None:
    from veritensor_fast.detectors.pyast_split import in_literal

    at = len(line) - (3 if line.endswith(b"abc") else 1 if not line.endswith(b"hf") else 2)
    if line.startswith(b'x = f"'):
        at = line.index(b"f")
    assert in_literal(line, at) == state
