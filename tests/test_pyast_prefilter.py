"""The Python AST pass parses a file only when it could add a finding the text pass cannot.

Before: a context rule's word used as a name (``token_id=``, ``together(``, ``cohere:``) admitted a file on its
own, so tokenizer and library code with no secret-shaped literal was parsed (437 files of a real site-packages
instead of 114). Now such a file needs a literal shaped like that rule's secret too. Parses are counted, not
timed."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

from veritensor_fast.detectors import pyast
from veritensor_fast.detectors.ast_eval import const_names, walrus_lines
from veritensor_fast.findings import Item
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

from conftest import rand

RNG = random.Random(16)


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    return WorkerContext(ScanOptions())


def parses(ctx: WorkerContext, src: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[tuple[str, str]]]:
    """How many times the AST pass parsed ``src`` (as ``app.py``), and its findings (rule, secret)."""
    calls: list[int] = []
    real = pyast.parse_python

    def counting(source: str | bytes) -> ast.Module | None:
        calls.append(1)
        return real(source)

    monkeypatch.setattr(pyast, "parse_python", counting)
    buf = src.encode()
    item = Item("file", "app.py", "app.py", len(buf))
    s = ItemScan(ctx, item)
    ctx.scan_buffer(buf, item, s)
    return len(calls), [(f.rule_id, f.secret or "") for f in s.finish(buf)]


LIBRARY_CODE = [
    # tokenizer code: ``token_id`` as a keyword and a name, no secret-shaped literal
    'def encode(self, text, token_id=None):\n    out = self.convert(text, token_id=token_id)\n'
    '    return {"input_ids": out, "attention_mask": [1] * len(out)}\n',
    # a provider name used as a name, with ordinary short literals only
    'from itertools import chain\ntogether = list(chain(a, b))\nmode = "fast"\n',
    'cohere = {"model": "command", "name": "x"}\nmistral = cohere.get("model", "none")\n',
    'deepseek_cfg = dict(model="deepseek-chat", temperature=0.2)\n',
    # long words (no digit) in literals do not look like an alphanumeric key
    'mistral_models = ["MistralForCausalLM", "MistralModel"]\ncohere_cfg = {"architecture": "transformer"}\n',
]


@pytest.mark.parametrize("src", LIBRARY_CODE)
def test_context_word_without_secret_literal_is_not_parsed(
        ctx: WorkerContext, src: str, monkeypatch: pytest.MonkeyPatch) -> None:
    n, found = parses(ctx, src, monkeypatch)
    assert (n, found) == (0, [])


def test_context_rules_still_reassembled(ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> None:
    hexkey = rand(64, "0123456789abcdef", RNG)
    alnum = rand(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", RNG)
    ds = "sk-" + rand(32, "0123456789abcdef", RNG)
    cases = [
        (f'together_key = "{hexkey[:30]}" + "{hexkey[30:]}"\n', "together.api-key", hexkey),
        (f'PART = "{alnum[20:]}"\ncohere_api_key = f"{alnum[:20]}{{PART}}"\n', "cohere.api-key", alnum),
        (f'deepseek_key = "s" + "{ds[1:]}"\n', "deepseek.api-key", ds),
    ]
    for src, rule, secret in cases:
        n, found = parses(ctx, src, monkeypatch)
        assert n == 1 and (rule, secret) in found, src


def test_counts_on_a_small_tree(ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Representative files: only the one holding a secret-shaped literal is parsed."""
    files = LIBRARY_CODE + ['x = "hello" + "world"\n', f'together_api_key = "{rand(64, "0123456789abcdef", RNG)}"\n']
    total = sum(parses(ctx, src, monkeypatch)[0] for src in files)
    assert total == 1


def test_walrus_lines_and_targeted_search(tmp_path: Path) -> None:
    src = 'import re\r\nA = "x"\r\nif (m := re.match("a", "b")):\r\n    pass\r\n@deco(k := "v")\r\ndef f(): pass\r\n'
    assert walrus_lines(src) == [3, 5]
    tree = ast.parse(src)
    assert const_names(tree, walrus_at=walrus_lines(src)) == const_names(tree) == {"A": "x"}
    # a name bound by ``:=`` is bound twice (not a constant) only if the search finds that binding
    src2 = 'K = "hf_"\nif (K := other()):\n    pass\n'
    tree2 = ast.parse(src2)
    assert const_names(tree2, walrus_at=walrus_lines(src2)) == {}
    assert const_names(tree2, walrus_at=[]) == {"K": "hf_"}  # proof that the lines steer the search
