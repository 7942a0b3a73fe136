"""Issue 16: the AST prefilter's plan (``sre_parse`` of every rule, 0.04-0.12 CPU-s in every process) is cached
on disk beside the Hyperscan databases, as JSON, keyed by the rules, the module's code and the Python version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from veritensor_fast.detectors.pyast_prefilter import cached_plan, prefilter_plan
from veritensor_fast.rules import load_rules

CHILD = """
import json, sys, time
from veritensor_fast.rules import load_rules
import veritensor_fast.detectors.pyast_prefilter as pf
calls = []
real = pf.prefilter_plan
pf.prefilter_plan = lambda rules: calls.append(1) or real(rules)
plan = pf.cached_plan(list(load_rules().rules))
print(json.dumps({"derived": len(calls), "patterns": len(plan.patterns), "cut": len(plan.cut)}))
"""


def child(cache: Path) -> dict[str, int]:
    env = dict(os.environ, VERITENSOR_FAST_CACHE=str(cache), PYTHONHASHSEED="7")
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def test_second_process_reads_the_plan_instead_of_deriving_it(tmp_path: Path) -> None:
    first, second = child(tmp_path), child(tmp_path)
    assert first["derived"] == 1 and second["derived"] == 0
    assert first["patterns"] == second["patterns"] > 0 and first["cut"] == second["cut"] > 0
    files = list((tmp_path / "veritensor-fast").glob("pyast-plan-*.json"))
    assert len(files) == 1
    json.loads(files[0].read_text())  # data, never code


def test_cached_plan_equals_the_derived_one_and_survives_a_bad_file(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERITENSOR_FAST_CACHE", str(tmp_path))
    rules = list(load_rules().rules)
    want = prefilter_plan(rules)
    assert cached_plan(rules) == want  # written
    assert cached_plan(rules) == want  # read
    (path,) = (tmp_path / "veritensor-fast").glob("pyast-plan-*.json")
    for bad in (b"", b"{not json", b'{"patterns": [["x", 3]], "alone": [], "shapes": [], "pairs": [], "cut": []}',
                b'{"patterns": [], "alone": [5], "shapes": [], "pairs": [], "cut": [], "headers": []}'):
        path.write_bytes(bad)
        assert cached_plan(rules) == want  # ignored and rewritten
        assert json.loads(path.read_bytes()) is not None


def test_other_rules_get_another_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERITENSOR_FAST_CACHE", str(tmp_path))
    rules = list(load_rules().rules)
    fewer = [r for r in rules if r.id != "huggingface.user-token"]
    assert cached_plan(rules) == prefilter_plan(rules)
    assert cached_plan(fewer) == prefilter_plan(fewer) != prefilter_plan(rules)
    assert len(list((tmp_path / "veritensor-fast").glob("pyast-plan-*.json"))) == 2
