"""ast22: the AST prefilter's database in two stages (``pyast_needles``).

The patterns of long rule anchors (a Slack webhook's ``https://hooks.slack.com/services/T``, a Bedrock key's
``bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t``, ``github_pat_``) were 1.25 of the database's 2.9 CPU-s to compile
on a first run. They now live in a second database compiled only when a **needle** (a literal each of them holds)
first hits, and scanned only where one does. The claims checked here:

- a buffer's hits are exactly the one database's: every hit of the second database comes with a needle's hit in
  the first (adversarial: every long anchor split at every offset, by every fold the AST pass reassembles);
- the second database is not built for sources without a needle (fails on 75722a6: one database);
- the tokens of every rule with an anchor (its examples), split at every offset inside the anchor, are still
  admitted and found by a scan (a guard: passes on 75722a6 too).
"""

from __future__ import annotations

import random
import re

import pytest
from test_ast16_admit import scan  # a whole .py file through the worker's detectors

from veritensor_fast.detectors.pyast import scan_python_source
from veritensor_fast.worker import ScanOptions, WorkerContext

RNG = random.Random(2222)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    """A context whose prefilter is built, both databases (compiled here on a fresh cache: ~3 CPU-s)."""
    out = WorkerContext(ScanOptions())
    _ = prefilter(out)[0].second  # type: ignore[attr-defined]
    return out


def prefilter(ctx: WorkerContext) -> tuple[object, object, object]:
    det = next(d for d in ctx.detectors if d.name == "python-ast")
    return det._pre  # type: ignore[attr-defined, no-any-return]


def forms(a: str, b: str) -> list[str]:
    """The token ``a + b`` assembled by the folds the AST pass reassembles."""
    return [
        f'T = "{a}" "{b}"\n',
        f'T = "{a}" + "{b}"\n',
        f"T = '{a}' + \\\n    '{b}'\n",
        f'T = "{a}{{}}".format("{b}")\n',
        f'T = "{{}}{{}}".format("{a}", "{b}")\n',
        f'T = "{a}%s" % "{b}"\n',
        f'T = "%s%s" % ("{a}", "{b}")\n',
        f'P = "{b}"\nT = f"{a}{{P}}"\n',
        f'T = "".join(["{a}", "{b}"])\n',
        f'_P = "{b}"\nT = "{a}" + _P\n',
        f'T = "{a}{{}}{b[1:]}".format("{b[:1]}")\n',
    ]


def body(cls: str, n: int) -> str:
    """``n`` characters of a token class (a Hyperscan class body such as ``\\x30-\\x39\\x41-\\x5a``)."""
    rx = re.compile("[" + cls + "]") if cls else re.compile(".")
    chars = [c for c in ALNUM if rx.fullmatch(c)] or list(ALNUM)
    return "".join(RNG.choice(chars) for _ in range(n))


def test_every_hit_of_the_second_database_comes_with_a_needle(ctx: WorkerContext) -> None:
    db, _shapes, plan = prefilter(ctx)
    assert plan.late and plan.needles  # type: ignore[attr-defined]
    base = db.needle_base  # type: ignore[attr-defined]
    late_groups = {g for g, (a, *_r) in enumerate(plan.groups) if len(a) >= 8}  # type: ignore[attr-defined]
    checked = late_hits = 0
    for g in sorted(late_groups):
        anchor, cls, need, _ci, _word = plan.groups[g]  # type: ignore[attr-defined]
        tok = anchor + body(cls, max(need, 24))
        for k in range(1, len(anchor) + 1):
            for src in forms(tok[:k], tok[k:]):
                buf = ("import os\n" + src).encode()
                first = db.first.scan(buf)  # type: ignore[attr-defined]
                second = db.second.scan(buf)  # type: ignore[attr-defined]
                if second:
                    late_hits += 1
                    assert any(p >= base for p, _e in first), (anchor, k, src)
                needled = any(p >= base for p, _e in first)
                expect = [h for h in first if h[0] < base] + second if needled else first
                assert sorted(db.scan(buf)) == sorted(expect), (anchor, k, src)  # type: ignore[attr-defined]
                checked += 1
    assert checked > 1000 and late_hits > 500  # the second database holds what these forms trigger


def test_second_database_is_built_only_when_a_needle_hits() -> None:
    ctx = WorkerContext(ScanOptions())  # its own detectors: a database not yet built
    db, _shapes, _plan = prefilter(ctx)
    plain = b'import os\nTOKEN = os.environ["HF_TOKEN"]\nURL = "https://example.com/x"\nK = "hf_" + x\n'
    db.scan(plain)  # type: ignore[attr-defined]
    assert db._second is None  # type: ignore[attr-defined]
    hook = b'U = "https://hooks.slack.com/servi" "ces/T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx"\n'
    hits = db.scan(hook)  # type: ignore[attr-defined]
    assert db._second is not None  # type: ignore[attr-defined]
    assert hits and all(p < db.needle_base for p, _e in hits)  # type: ignore[attr-defined]


def _anchor_examples(ctx: WorkerContext) -> list[tuple[str, str, str]]:
    """``(rule id, token, anchor)`` from the examples of every rule with an anchor (the prefilter's groups)."""
    _db, _shapes, plan = prefilter(ctx)
    anchors = sorted({g[0] for g in plan.groups}, key=len, reverse=True)  # type: ignore[attr-defined]
    out: dict[str, tuple[str, str, str]] = {}
    for rule in ctx.ruleset.rules:
        for ex in rule.examples:
            for m in ctx.matcher.find(ex.encode()):
                sec = m.secret.decode("latin-1")
                a = next((a for a in anchors if sec.startswith(a)), None)
                if m.rule.id == rule.id and a is not None and '"' not in sec and "'" not in sec and "\\" not in sec:
                    out.setdefault(rule.id, (rule.id, sec, a))
    return sorted(out.values())


def test_anchor_split_at_every_offset_is_found(ctx: WorkerContext) -> None:
    """Every rule with an anchor, its example token split at every offset inside the anchor (``+`` and an
    f-string field): found by a scan wherever the fold gives that rule's token (a guard: 75722a6 passes)."""
    cases = _anchor_examples(ctx)
    assert len(cases) >= 40
    missed = []
    ran = 0
    for rule, tok, anchor in cases:
        for k in range(1, len(anchor)):
            for src in (f'T = "{tok[:k]}" + "{tok[k:]}"\n', f'P = "{tok[k:]}"\nT = f"{tok[:k]}{{P}}"\n'):
                hits = scan_python_source(src, ctx.matcher) or []
                if not any(h.match.rule.id == rule and h.match.secret.decode("latin-1") == tok for h in hits):
                    continue  # the fold does not give this rule's token alone (another rule's wins)
                ran += 1
                got = [f for f in scan(ctx, src) if f.secret == tok and f.decoded == "python-ast"]
                if not got:
                    missed.append((rule, k, src))
    assert missed == [] and ran > 400
