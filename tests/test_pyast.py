"""Python AST pass: secrets reassembled from constant expressions and sink calls, at the expression's line,
never twice with the text pass, never by importing or running the scanned code."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from veritensor_fast.detectors.ast_eval import fold
from veritensor_fast.detectors.pyast import parse_python, scan_python_source
from veritensor_fast.findings import Finding, Item
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

from conftest import hf_token, rand

RNG = random.Random(99)


def hexkey() -> str:
    return rand(40, "0123456789abcdef", RNG)


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    return WorkerContext(ScanOptions())


def scan(ctx: WorkerContext, source: str, path: str = "app.py") -> list[Finding]:
    buf = source.encode()
    item = Item("file", path, path, len(buf))
    s = ItemScan(ctx, item)
    ctx.scan_buffer(buf, item, s)
    return s.finish(buf)


def found(fs: list[Finding]) -> list[tuple[str, str, int, int, str | None]]:
    return [(f.rule_id, f.secret or "", f.line, f.column, f.decoded) for f in fs]


HF = "huggingface.user-token"


def test_concatenation_forms(ctx: WorkerContext) -> None:
    toks = [hf_token(RNG) for _ in range(7)]
    b = [t[3:] for t in toks]
    src = "\n".join([
        "import os",
        f'A = "hf_" + "{b[0][:10]}" + "{b[0][10:]}"',
        f'B = ("hf_{b[1][:12]}"',
        f'     "{b[1][12:]}")',
        f'C = "hf_{{}}{{}}".format("{b[2][:5]}", "{b[2][5:]}")',
        f'D = "hf_%s" % "{b[3]}"',
        f'E = "hf_%s%s" % ("{b[4][:3]}", "{b[4][3:]}")',
        f'PART = "{b[5]}"',
        'F = f"hf_{PART}"',
        f'G = "".join(["hf_", "{b[6]}"])',
        "",
    ])
    fs = scan(ctx, src)
    assert sorted(found(fs)) == sorted([
        (HF, toks[0], 2, 5, "python-ast"), (HF, toks[1], 3, 6, "python-ast"), (HF, toks[2], 5, 5, "python-ast"),
        (HF, toks[3], 6, 5, "python-ast"), (HF, toks[4], 7, 5, "python-ast"), (HF, toks[5], 9, 5, "python-ast"),
        (HF, toks[6], 10, 5, "python-ast"),
    ])


def test_partly_dynamic_chain(ctx: WorkerContext) -> None:
    tok = hf_token(RNG)
    src = f'url = base + "?t=" + "hf_{tok[3:20]}" + "{tok[20:]}" + suffix\n'
    assert found(scan(ctx, src)) == [(HF, tok, 1, 14, "python-ast")]


def test_sinks_with_context(ctx: WorkerContext) -> None:
    k1, k2, k3, k4 = hexkey(), hexkey(), hexkey(), hexkey()
    t1, t2, t3 = hf_token(RNG), hf_token(RNG), hf_token(RNG)
    src = "\n".join([
        "import os, wandb, openai",
        "from huggingface_hub import login, HfApi",
        f'wandb.login(anonymous="never", key="{k1}")',
        f'os.environ["WANDB_API_KEY"] = "{k2}"',
        f'os.environ.setdefault("WANDB_API_KEY", "{k3}")',
        f'os.putenv("WANDB_API_KEY", "{k4}")',
        f'login(token="hf_" + "{t1[3:]}")',
        f'api = HfApi(endpoint="https://hf.co", token="hf_{{}}".format("{t2[3:]}"))',
        f'client = openai.OpenAI(api_key="hf_" "{t3[3:]}")',
        "",
    ])
    fs = found(scan(ctx, src))
    wb = "wandb.api-key"
    assert sorted(fs) == sorted([
        (wb, k1, 3, 36, "python-ast"), (wb, k2, 4, 31, "python-ast"), (wb, k3, 5, 40, "python-ast"),
        (wb, k4, 6, 28, "python-ast"), (HF, t1, 7, 13, "python-ast"), (HF, t2, 8, 45, "python-ast"),
        (HF, t3, 9, 32, "python-ast"),
    ])


def test_openai_key_sink_and_bare_wandb_login(ctx: WorkerContext) -> None:
    key = "sk-proj-" + rand(48, rng=RNG)
    k = hexkey()
    src = (f'from wandb import login\nimport openai\nlogin(relogin=True, key="{k}")\n'
           f'c = openai.OpenAI(api_key="{key[:20]}" + "{key[20:]}")\n')
    fs = found(scan(ctx, src))
    assert sorted(fs) == sorted([("wandb.api-key", k, 3, 25, "python-ast"),
                                 ("openai.api-key", key, 4, 27, "python-ast")])


def test_no_duplicate_with_text_pass(ctx: WorkerContext) -> None:
    tok, k = hf_token(RNG), hexkey()
    src = (f'from huggingface_hub import login\nimport wandb\nTOKEN = "{tok}"\nlogin(token=TOKEN)\n'
           f'login(token="{tok}")\nwandb.login(key="{k}")\nX = ("prefix " + "{tok}")\n')
    fs = scan(ctx, src)
    # the literal token: text pass only (lines 3, 5, 7); the wandb key: text pass only (line 6)
    assert sorted((f.rule_id, f.line, f.decoded) for f in fs) == sorted([
        (HF, 3, None), (HF, 5, None), (HF, 7, None), ("wandb.api-key", 6, None)])


def test_syntax_error_falls_back_to_text(ctx: WorkerContext) -> None:
    tok, t2 = hf_token(RNG), hf_token(RNG)
    src = f'print "python 2"\nA = "hf_" + "{t2[3:]}"\nB = "{tok}"\n'
    assert parse_python(src) is None
    fs = scan(ctx, src)
    assert [(f.secret, f.line, f.decoded) for f in fs] == [(tok, 3, None)]
    s = ItemScan(ctx, Item("file", "x.py", "x.py"))
    ctx.scan_buffer(src.encode(), Item("file", "x.py", "x.py"), s)
    assert s.errors == []  # not an incomplete scan: the text pass covered the file


def test_only_python_files_and_option(ctx: WorkerContext) -> None:
    t = hf_token(RNG)
    src = f'A = "hf_" + "{t[3:]}"\n'
    assert scan(ctx, src, "notes.txt") == []
    assert scan(WorkerContext(ScanOptions(python_ast=False)), src) == []
    assert [f.secret for f in scan(ctx, src, "pkg/mod.pyw")] == [t]


def test_never_executes(ctx: WorkerContext, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    t = hf_token(RNG)
    src = (f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n"
           f'raise SystemExit("hf_" + "{t[3:]}")\n')
    assert [f.secret for f in scan(ctx, src)] == [t]
    assert not marker.exists()


def test_notebook_cell_function(ctx: WorkerContext) -> None:
    t = hf_token(RNG)
    cell = f'%pip install huggingface_hub\n!ls\nfrom huggingface_hub import login\nlogin(token="hf_" + "{t[3:]}")\n'
    hits = scan_python_source(cell, ctx.matcher)
    assert hits is not None
    assert [(h.match.secret.decode(), h.line, h.col) for h in hits] == [(t, 4, 12)]
    assert scan_python_source("def (:\n", ctx.matcher) is None


@pytest.mark.parametrize("expr", [
    '"%999999999s" % "x"', '"{:>999999999}".format("x")', '"{0.__class__}".format("x")', 'x + "a"',
    '"a" * 3', 'f"{x}"', 'f"{1:>99999}"',
])
def test_fold_refuses_unsafe_or_dynamic(expr: str) -> None:
    tree = parse_python(expr)
    assert tree is not None
    assert fold(tree.body[0].value) is None  # type: ignore[attr-defined]


def test_fold_bounded_doubling() -> None:
    lines = ['A0 = "xy"'] + [f"A{i} = A{i - 1} + A{i - 1}" for i in range(1, 40)] + ["Z = A39"]
    from veritensor_fast.detectors.ast_eval import const_names

    tree = parse_python("\n".join(lines))
    assert tree is not None
    names = const_names(tree)
    assert "A39" not in names and len(names["A10"]) == 2 * 2 ** 10


def wanted(ctx: WorkerContext, src: str) -> bool:
    det = next(d for d in ctx.detectors if d.name == "python-ast")
    return bool(det.wanted(src.encode()))  # type: ignore[attr-defined]


def test_prefilter_follows_the_rules_token_class(ctx: WorkerContext) -> None:
    t = hf_token(RNG)
    # a placeholder whose characters cannot continue an hf_ token: the file is not worth parsing
    assert not wanted(ctx, 'HF_TOKEN = "hf_YOUR_TOKEN_HERE"\nprint(HF_TOKEN)\n')
    assert wanted(ctx, f'A = "hf_{t[3:12]}" + B\n')  # a token cut short: parsed
    assert wanted(ctx, 'P = "hf_"\n')  # a bare anchor may be completed through a name
    assert wanted(ctx, f'A = "hf_{t[3:8]}\\x41{t[9:]}"\n')  # an escape inside the literal: parsed
    assert not wanted(ctx, f'A = "{t}"\n')  # a complete literal token is the text pass's job
    src = f'X = "hf_{t[3:10]}"\nY = "hf_NOT_A_TOKEN"\nT = X + "{t[10:]}"\n'
    assert [(f.secret, f.line) for f in scan(ctx, src)] == [(t, 3)]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_quote_less_lines_through_names_and_decorators(ctx: WorkerContext, eol: str) -> None:
    t1, t2, t3 = hf_token(RNG), hf_token(RNG), hf_token(RNG)
    src = eol.join([
        f'HEAD = "hf_{t1[3:15]}"',
        f'TAIL = "{t1[15:]}"',
        "",
        "class C:",
        f'    @register(token="hf_" + "{t2[3:]}")',
        "    def run(self, x):",
        "        return x + 1",
        "    def get(self):",
        "        return HEAD + TAIL",
        "",
        "def f(a,",
        f'      b="hf_{t3[3:9]}"',
        f'        "{t3[9:]}"):',
        "    return a",
        "",
    ])
    assert sorted((f.secret, f.line) for f in scan(ctx, src)) == sorted([(t1, 9), (t2, 5), (t3, 12)])


def test_pruned_walk_finds_the_same_pieces() -> None:
    """The subtree skip (no quote and no constant name on a node's lines) changes nothing: same pieces as the
    full walk on every source file of the package and on tricky layouts."""
    from veritensor_fast.detectors.pyast import _pieces

    root = Path(__file__).resolve().parents[1] / "veritensor_fast"
    sources = [p.read_bytes() for p in sorted(root.rglob("*.py"))]
    sources += [b'@d("a literal long enough to match")\n@e\nclass K:\n    pass\n', b'@d("x")\n@e\ndef f():\n    return g(\n        1,\n        "y" + Z)\nZ = "w"\n',
                b'if (n := "abc"):\n    v = n + n\n', b'x = f"""{\n a\n}""" + "t"\r\ny = x\r\n',
                b'try:\n    pass\nexcept E as e:\n    k = {"a": P}\nP = "q"\n']
    for src in sources:
        tree = parse_python(src)
        assert tree is not None
        assert _pieces(tree, src) == _pieces(tree)
