"""Issue 16, the AST pass's prefilter judged where each hit stands (``pyast_admit``).

On a real site-packages the prefilter used to admit 115 of 12,182 ``.py`` files for parsing, none of which
the AST pass added a finding to: anchors such as ``hf_`` cut short inside literals that no fold can continue
(a dict key, a call's argument, a subscript, prose in a docstring) and context words (``cohere``,
``mistral``) anywhere in a file holding some secret-shaped literal. Each rejected shape below is taken from
that tree; the AST view of each adds nothing (checked). Each accepted shape is a secret that only the AST pass
reassembles; they must all stay admitted and found.
"""

from __future__ import annotations

import mmap
import random
from pathlib import Path

import pytest

from veritensor_fast.detectors.pyast import scan_python_source
from veritensor_fast.findings import Finding, Item
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

from conftest import hf_token, rand

RNG = random.Random(1616)


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    return WorkerContext(ScanOptions())


def wanted(ctx: WorkerContext, src: str | bytes | bytearray | mmap.mmap) -> bool:
    det = next(d for d in ctx.detectors if d.name == "python-ast")
    return bool(det.wanted(src.encode() if isinstance(src, str) else src))  # type: ignore[attr-defined]


def scan(ctx: WorkerContext, source: str) -> list[Finding]:
    buf = source.encode()
    item = Item("file", "app.py", "app.py", len(buf))
    s = ItemScan(ctx, item)
    ctx.scan_buffer(buf, item, s)
    return s.finish(buf)


def ast_only(ctx: WorkerContext, src: str) -> set[tuple[str, bytes]]:
    """What parsing would add: secrets the AST view matches that the plain text does not."""
    hits = scan_python_source(src, ctx.matcher) or []
    text = {(m.rule.id, m.secret) for m in ctx.matcher.find(src.encode())}
    return {(h.match.rule.id, h.match.secret) for h in hits} - text


HOST = 'import os\nDTYPE = "bfloat16"\nSHA = "9d71491b50023b06fc76928e6eddb952"\n'

DEAD = {
    "dict key": 'TOKENS = {\n    "hf_api": ["HfApi"],\n}\n',
    "call argument": 'def f(token):\n    return token.startswith("hf_")\n',
    "getattr argument": 'q = getattr(model, "hf_quantizer", None)\n',
    "get with default": 'token = fields.get("hf_token", "<not set>")\n',
    "subscript": 'def g(self):\n    return self.kwargs["fw_compiler"]\n',
    "keyword argument": 'x = render(inner_class="sk-label", outer="sk-item")\n',
    "prose in a docstring": '"""Install it: the \'hf_xet\' package is not installed."""\n',
    "backquoted in a docstring": '"""\n    username (`str`, defaults to `"hf_user"`):\n"""\n',
    "name never continued": 'USERNAME_PLACEHOLDER = "hf_user"\nprint(USERNAME_PLACEHOLDER)\n',
    "escape that ends it": 'stdin.write("url=https://huggingface.co\\nusername=hf_user\\n\\n")\n',
    "percent not a format": 'log.debug("  Phase 1 group %d SK%s: 1 config, skip", gi, members)\n',
    "dict display in prose": '"""\n    ...    secrets={"MY_SECRET_KEY": "secret_value"},\n"""\n',
    "subscript tuple": 'def m() -> Literal["brew", "hf_installer", "pip", "unknown"]:\n    pass\n',
    "comparison": 'if kind == "hf_api":\n    pass\n',
    "list of context words": 'MODELS = [\n    ("cohere2", "Cohere2Config"),\n    ("mistral4", "Mistral4Config"),\n]\n',
    "__all__": '__all__ = ["Cohere2ForCausalLM", "Cohere2Model", "Mistral3Model"]\n',
    "membership": 'if name in ["mistral", "mistral3", "ministral3"]:\n    pass\n',
    "a call without a shaped value": 'config = load()\nattn = CohereAttention(config=config, layer_idx=3)\n',
    "a method named together": "eq = (target - PID).together()\nS = '0.699525841805253'\n",
}


@pytest.mark.parametrize("name", sorted(DEAD))
def test_hits_that_parsing_cannot_complete_do_not_admit(ctx: WorkerContext, name: str) -> None:
    src = HOST + DEAD[name]
    assert ast_only(ctx, src) == set()  # ground truth: parsing this file would add nothing
    assert not wanted(ctx, src)


def mistral() -> str:
    return rand(16, "abcdefghijklmnopqrstuvwxyz", RNG) + rand(16, "0123456789", RNG)


def cohere() -> str:
    return rand(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", RNG) + rand(20, "0123456789abcdef", RNG)


def wandb_key() -> str:
    return rand(40, "0123456789abcdef", RNG)


def live() -> dict[str, tuple[str, str]]:
    """Source files (with the secret only the AST reassembles), by form."""
    t, m, c, w, k = hf_token(RNG), mistral(), cohere(), wandb_key(), rand(32, "0123456789abcdef", RNG)
    a, b = t[:13], t[13:]
    return {
        "binding used far below": (f'KEY = "{m}"\n' + HOST * 5 + 'os.environ["MISTRAL_API_KEY"] = KEY\n', m),
        "multi-line call": (f'KEY = "{m}"\nclient = Mistral(\n    timeout=30,\n    retries=3,\n    api_key=KEY,\n)\n', m),
        "chain of names": (f'P1 = "{c[:20]}"\nP2 = "{c[20:]}"\nKEY = P1 + P2\nos.environ["COHERE_API_KEY"] = KEY\n', c),
        "setdefault": (f'KEY = "{c}"\nos.environ.setdefault("COHERE_API_KEY", KEY)\n', c),
        "dict value": (f'KEY = "{m}"\nCONFIG = {{"MISTRAL_API_KEY": KEY}}\n', m),
        "bare login": (f'from wandb import login\nKEY = "{w}"\nlogin(key=KEY)\n', w),
        "context inside a literal": (f'KEY = "{k}"\nCRED = \'{{"username": "alice", "key": "\' + KEY + \'"}}\'\n', k),
        "context word ending a literal": (f'KEY = "{m}"\nURL = "mistral_api_key=" + KEY + "&x=1"\n', m),
        "bare login, no import in sight": (f'login(key="{w[:11]}" + "{w[11:]}")\n', w),
        "comment inside a concatenation": (f'TOKEN = ("{a}"  # part one\n         "{b}")\n', t),
        "statement after a semicolon": (f'X = "{a}"; Y = X + "{b}"\n', t),
        "f-string field": (f'P = "{b}"\nT = f"{a}{{P}}"\n', t),
        "format after a brace": (f'T = "{a}{{}}".format("{b}")\n', t),
        "class attribute": (f'class C:\n    KEY = "{a}"\n    FULL = KEY + "{b}"\n', t),
        "multi-line join": (f'TOKEN = "".join([\n    "{a}",\n    "{b}",\n])\n', t),
        "multi-line percent": (f'TOKEN = "%s%s" % (\n    "{a}",\n    "{b}",\n)\n', t),
        "line continuation": (f'TOKEN = "{a}" \\\n    "{b}"\n', t),
        "format arguments": (f'TOKEN = "{{}}{{}}".format("{a}", "{b}")\n', t),
        "name then continued": (f'HEAD = "{a}"\nprint(HEAD)\nTOKEN = HEAD + "{b}"\n', t),
        "escape that continues it": (f'TOKEN = "{a}\\x{ord(b[0]):02x}{b[1:]}"\n', t),
    }


@pytest.mark.parametrize("name", sorted(live()))
def test_secrets_only_the_ast_assembles_stay_admitted(ctx: WorkerContext, name: str) -> None:
    src, secret = live()[name]
    src = HOST + src
    assert any(s == secret.encode() for _r, s in ast_only(ctx, src))  # ground truth: only parsing finds it
    assert wanted(ctx, src)
    assert [(f.secret, f.decoded) for f in scan(ctx, src)] == [(secret, "python-ast")]


def test_mmap_and_bytearray_buffers(ctx: WorkerContext, tmp_path: Path) -> None:
    src, _secret = live()["multi-line call"]
    buf = (HOST + src).encode()
    dead = (HOST + DEAD["getattr argument"]).encode()
    assert wanted(ctx, bytearray(buf)) and not wanted(ctx, bytearray(dead))
    for data, want in ((buf, True), (dead, False)):
        p = tmp_path / "m.py"
        p.write_bytes(data)
        with p.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            assert wanted(ctx, mm) is want
