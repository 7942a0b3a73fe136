"""Fuzzing config and rules loading (config.py, rules/__init__.py): generated and mutated TOML config files
and YAML rules files. Contract: loading returns a Config / RuleSet or raises ConfigError / RuleError (what the
CLI turns into exit 2 with a message); a loaded rule set builds a worker (Hyperscan and RE2 compile) or raises
RuleError; and a worker built from it scans a sample with the fuzzkit contract."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml
from fuzzkit import examples, mutate, scan_bytes, token
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veritensor_fast.config import KNOWN_KEYS, ConfigError, effective, load_file
from veritensor_fast.rules import RuleError, load_rules
from veritensor_fast.worker import ScanOptions, WorkerContext

SETTINGS: dict[str, Any] = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
edits = st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 3), st.integers(0, 255)), max_size=4)


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


scalars = st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats() | st.text(max_size=12) | st.sampled_from(
    ["high", "low", "critical", "*.ipynb", "[", "(a", "(?<=x)y", r"(a)\1", "rules.yaml", "../../etc/passwd"])
values = st.recursive(scalars, lambda i: st.lists(i, max_size=3) | st.dictionaries(
    st.sampled_from(["huggingface.user-token", "x", "generic.api-key"]) | st.text(max_size=5), i, max_size=2),
    max_leaves=5)
keys = st.sampled_from(sorted(KNOWN_KEYS)) | st.sampled_from(["exclude", "rules", "jobs"]).map(
    lambda k: k.replace("_", "-")) | st.text(min_size=1, max_size=6)


@settings(max_examples=examples(60), **SETTINGS)
@given(st.dictionaries(keys, values, max_size=5), st.sampled_from(["pyproject.toml", ".veritensor-fast.toml"]),
       edits)
def test_config_files_load_or_say_why(tmp_path: Path, table: dict[str, Any], fname: str,
                                      ed: list[tuple[int, int, int]]) -> None:
    body = "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in table.items()) + "\n"
    text = ("[tool.veritensor-fast]\n" + body) if fname == "pyproject.toml" else body
    p = tmp_path / fname
    p.write_bytes(mutate(text.encode("utf-8", "surrogatepass"), ed))
    try:
        cfg = load_file(p)
    except ConfigError as exc:
        assert str(exc)
        return
    eff = effective(cfg)
    try:
        WorkerContext(eff.options)
    except RuleError as exc:
        assert str(exc)


patterns = st.sampled_from([
    r"hf_[A-Za-z0-9]{34}", r"abc", r"(a)\1", r"(?<=k)v", r"(?<!k)v", r"a*", r"", r"x{0,}", r"(a|b)+c",
    r"[", r"\b\w+\b", r"(?P<n>x)(?P=n)", r"(?i)tok_[0-9]{8}", r"a{1000}", r"(?s).", r"\x00", r"é+",
]) | st.text(max_size=12)
rule_docs = st.fixed_dictionaries(
    {"id": st.sampled_from(["custom.one", "custom.two", "huggingface.user-token"]) | st.text(max_size=6),
     "pattern": patterns},
    optional={"name": st.text(max_size=8) | values, "severity": st.sampled_from(["high", "low", "bogus"]) | values,
              "min_entropy": st.floats() | st.sampled_from(["high", True]) | st.integers(-3, 12),
              "keywords": st.lists(st.text(max_size=5), max_size=3) | values,
              "left": st.sampled_from(["word", "none", "x"]), "right": st.sampled_from(["word", "none", 5]),
              "right_chars": st.sampled_from(["A-Za-z0-9_", "]", "", "z-a", "\\"]) | values,
              "strict_only": values, "examples": st.lists(st.text(max_size=8), max_size=2) | values,
              "description": values, "unknown": values})


@settings(max_examples=examples(40), **SETTINGS)
@given(st.lists(rule_docs | values, max_size=3), st.booleans(), edits)
def test_rules_files_load_or_say_why(tmp_path: Path, docs: list[Any], wrap: bool,
                                     ed: list[tuple[int, int, int]]) -> None:
    text = yaml.safe_dump({"rules": docs} if wrap else docs, allow_unicode=True)
    p = tmp_path / "rules.yaml"
    p.write_bytes(mutate(text.encode("utf-8", "surrogatepass"), ed))
    try:
        load_rules([p])
        ctx = WorkerContext(ScanOptions(rule_files=(str(p),)))
    except RuleError as exc:
        assert str(exc)
        return
    tok = token(len(docs))
    with_ctx(ctx, f"key = '{tok}'\nabc tok_12345678 hf_x\n".encode(), tok)


def with_ctx(ctx: WorkerContext, data: bytes, tok: str) -> None:
    import fuzzkit

    old = fuzzkit._CTX
    fuzzkit._CTX = ctx
    try:
        scan_bytes(data, "a.py", secrets=(tok,))
    finally:
        fuzzkit._CTX = old


@settings(max_examples=examples(30), **SETTINGS)
@given(st.binary(max_size=200))
def test_rules_files_of_random_bytes_load_or_say_why(tmp_path: Path, raw: bytes) -> None:
    p = tmp_path / "rules.yaml"
    p.write_bytes(raw)
    try:
        load_rules([p])
    except RuleError as exc:
        assert str(exc)
