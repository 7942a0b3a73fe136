"""perf20: a built-in rule that starts with an alternation is compiled as one Hyperscan expression per alternative
(``matcher.rule_expressions``), all reporting the rule's index. Speed only: the database must report the same
(rule, end) pairs as the one expression per rule it replaces, on real files and on every rule's examples, and the
base64 needles appended after the rules keep ids from ``len(rules)`` on."""

from __future__ import annotations

import base64
import random
from pathlib import Path

import pytest

from veritensor_fast.kernels import BACKEND
from veritensor_fast.kernels.hsdb import Scanner, compile_cached
from veritensor_fast.matcher import SecretMatcher, compile_ruleset, rule_expressions, split_alternatives
from veritensor_fast.worker import ScanOptions

RS = ScanOptions().ruleset()
ROOT = Path(__file__).resolve().parents[1]
#: the fallback backend reports leftmost matches, not every end: nothing is split there (nothing scans for them)
hyperscan_only = pytest.mark.skipif(BACKEND != "hyperscan", reason="rules are split for Hyperscan only")


@pytest.fixture(scope="module")
def dbs() -> tuple[Scanner, Scanner]:
    pats, ids = rule_expressions(RS.rules)
    return Scanner(compile_cached(pats, ids=ids)), Scanner(compile_cached([r.hs_pattern for r in RS.rules]))


def _corpus() -> list[bytes]:
    """Real text: this package's sources and tests, the real notebooks and ssh keys; every rule's examples and
    negative examples alone, after a context word and glued to each other."""
    bufs = [p.read_bytes() for d in ("veritensor_fast", "tests/fixtures/real_notebooks", "tests/fixtures/ssh_keys")
            for p in sorted((ROOT / d).rglob("*")) if p.is_file() and p.stat().st_size < 1 << 20]
    ex = [e.encode() for r in RS.rules for e in (*r.examples, *r.negative_examples)]
    bufs += ex + [b"azure_devops_token = " + e for e in ex] + [b"\n".join(ex), b"".join(ex)]
    return bufs


@hyperscan_only
def test_devops_pat_is_split_into_its_alternatives() -> None:
    by_id = {r.id: r for r in RS.rules}
    exprs = split_alternatives(by_id["azure.devops-pat"].hs_pattern)
    assert len(exprs) == 5
    assert all(e.startswith(b"(?i)(?:") and e.endswith(b"(?P<secret>[a-z0-9]{52})") for e in exprs)
    pats, ids = rule_expressions(RS.rules)
    assert sorted(set(ids)) == list(range(len(RS.rules))) and len(pats) == len(ids) > len(RS.rules)


@hyperscan_only
def test_same_rule_ends_as_one_expression_per_rule(dbs: tuple[Scanner, Scanner]) -> None:
    split, whole = dbs
    bufs = _corpus()
    assert len(bufs) > 300
    hits = 0
    for b in bufs:
        got = set(split.scan(b))
        assert got == set(whole.scan(b)), b[:80]
        hits += len(got)
    assert hits > 100  # the corpus exercises the rules


def test_no_split_with_the_fallback_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from veritensor_fast import matcher

    monkeypatch.setattr(matcher, "BACKEND", "python")
    assert rule_expressions(RS.rules) == ([r.hs_pattern for r in RS.rules], list(range(len(RS.rules))))


def test_every_rule_example_is_still_found() -> None:
    m = SecretMatcher(RS, strict=True)
    for r in RS.rules:
        for e in r.examples:
            assert any(x.rule.id == r.id for x in m.find(e.encode())), (r.id, e)


def test_devops_pat_each_branch_found() -> None:
    m = SecretMatcher(RS)
    rng = random.Random(20)
    tok = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz234567") for _ in range(52))
    for ctx in ("AZURE_DEVOPS_PAT", "ado_token", "vsts-key", "personal_access_token", "pat_token", "$token",
                "SYSTEM_ACCESSTOKEN"):
        found = [x for x in m.find(f'{ctx} = "{tok}"\n'.encode()) if x.rule.id == "azure.devops-pat"]
        assert [x.secret for x in found] == [tok.encode()], ctx


@hyperscan_only
def test_needles_keep_ids_after_the_rules() -> None:
    """A base64 needle is never taken for a rule (ids from ``len(rules)`` on) and a rule's hit keeps its index."""
    db = Scanner(compile_ruleset(RS))
    n = len(RS.rules)
    enc = base64.b64encode(b"token hf_" + b"a" * 34)
    hits = db.scan(b"x " + enc + b" y")
    assert hits and all(pid >= n for pid, _e in hits)
    tok = "ghp_" + "".join(random.Random(1).choice("ABCDEFGHabcdefgh0123456789") for _ in range(36))
    idx = [r.id for r in RS.rules].index("github.token")
    assert (idx, 4 + len(tok)) in db.scan(b"t = " + tok.encode())


@pytest.mark.parametrize("pattern", [
    rb"(?:a[|)]|b\|)c",  # a class and an escape hold the bars
    rb"(?i)(?:a|(?:b|c))d",  # a nested group stays whole
    rb"(?:[]|]|b)c", rb"(?:[^]|]|b)c",  # ``]`` first in a class is literal
])
def test_split_cuts_only_at_the_leading_groups_bars(pattern: bytes) -> None:
    import re

    exprs = split_alternatives(pattern)
    assert len(exprs) == 2
    for e in exprs:
        re.compile(e)
    sample = [b"a|c", b"a)c", b"b|c", b"bd", b"cd", b"ad", b"]c", b"|c", b"xc", b"ABD", b"AD"]
    flags = re.I if pattern.startswith(b"(?i)") else 0
    for s in sample:
        assert bool(re.fullmatch(pattern, s, flags)) == any(re.fullmatch(e, s, flags) for e in exprs), (pattern, s)


@pytest.mark.parametrize("pattern", [
    rb"(?:ab)c",  # no alternation
    rb"x(?:a|b)", rb"(a|b)c",  # not a leading non-capturing group
    rb"(?:a\Q|\E|b)",  # quoting: left whole
    rb"(?:a|b",  # unbalanced
    rb"(?:a|[b)c",  # a class that never ends
])
def test_split_leaves_other_shapes_whole(pattern: bytes) -> None:
    assert split_alternatives(pattern) == [pattern]


def test_user_rules_are_not_split() -> None:
    """A user's rule (confirmed by RE2, ``engine="re2"``) keeps its one expression: only the vetted built-in
    rules are cut."""
    from dataclasses import replace

    rule = replace(RS.rules[0], id="user.x", pattern=r"(?:abc|def)ghi[0-9]{8}", engine="re2")
    assert rule_expressions([rule]) == ([rule.hs_pattern], [0])
