"""ast22: a split's tail that the prefilter database holds is not searched for again in Python where the database
saw none (``pyast_split._Split.tail``).

The database holds, for a split of an anchor, the longer of its head and tail (``split_triggers``); a tail it
holds is a prefix of what ``_Split._tail`` looks for (the same start, the anchor's rest, at most ``TAIL_CAP`` of the
token's characters), so a file where that pattern has no hit has no such tail, and the regex search over the whole
file (a quarter of the split check's time on the real tree) is skipped. Checked here:

- the invariant on adversarial sources: every anchor of the built-in rules split at every offset, by every fold
  the AST pass reassembles, with decoys: wherever ``_tail`` finds a tail the database holds, the database hit it;
- the search is skipped where the database saw no such tail (fails on 75722a6: ``_tail`` ran for it);
- admission is unchanged: the same answer as with every tail searched, on the same sources.
"""

from __future__ import annotations

import random
import re

import pytest

from veritensor_fast.detectors import pyast_split
from veritensor_fast.detectors.pyast_admit import Brackets, why
from veritensor_fast.worker import ScanOptions, WorkerContext

RNG = random.Random(2223)
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture(scope="module")
def pre() -> tuple[object, object, object]:
    ctx = WorkerContext(ScanOptions())
    det = next(d for d in ctx.detectors if d.name == "python-ast")
    return det._pre  # type: ignore[attr-defined, no-any-return]


def body(cls: str, n: int) -> str:
    rx = re.compile("[" + cls + "]") if cls else re.compile(".")
    chars = [c for c in ALNUM if rx.fullmatch(c)] or list(ALNUM)
    return "".join(RNG.choice(chars) for _ in range(n))


def sources(plan: object) -> list[tuple[int, bytes]]:
    """Each anchor (its group) split at each offset by several folds, plus a decoy: the head alone (no tail)."""
    out: list[tuple[int, bytes]] = []
    for g, (anchor, cls, need, _ci, _word) in enumerate(plan.groups):  # type: ignore[attr-defined]
        tok = anchor + body(cls, max(need, 30))
        for k in range(1, len(anchor) + 1):
            a, b = tok[:k], tok[k:]
            for src in (f'T = "{a}" + "{b}"\n', f'T = "{a}{{}}".format("{b}")\n', f'T = "{a}%s" % "{b}"\n',
                        f'P = "{b}"\nT = f"{a}{{P}}"\n', f'T = "{a}{{}}{b[1:]}".format("{b[:1]}")\n',
                        f'T = "".join(["{a}", "{b}"])\n', f'T = "{a}" + x\n'):
                out.append((g, ("import os\n" + src).encode("utf-8", "replace")))
    return out


def test_a_tail_found_in_python_is_a_hit_of_the_database(pre: tuple[object, object, object]) -> None:
    db, _shapes, plan = pre
    held: dict[int, list[tuple[int, int]]] = {}
    for p, g, j in plan.tails:  # type: ignore[attr-defined]
        held.setdefault(g, []).append((j, p))
    checked = found = 0
    for g, buf in sources(plan):
        hit_ids = {p for p, _e in db.scan(buf)}  # type: ignore[attr-defined]
        split = pyast_split._Split(plan, buf, Brackets(buf), {p: [0] for p in hit_ids})  # type: ignore[arg-type]
        for j, p in held.get(g, []):
            if split._tail(g, j):
                found += 1
                assert p in hit_ids, (plan.groups[g][0], j, buf)  # type: ignore[attr-defined]
            checked += 1
    assert found > 300 and checked > 5000


def test_a_tail_the_database_did_not_see_is_not_searched(pre: tuple[object, object, object],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    db, shapes, plan = pre
    searched: list[tuple[int, int]] = []
    real = pyast_split._Split._tail

    def spy(self: pyast_split._Split, g: int, j: int) -> bool:
        searched.append((g, j))
        return real(self, g, j)

    monkeypatch.setattr(pyast_split._Split, "_tail", spy)
    # ``"hf"`` ending a literal: a head of ``hf_`` (k = 2); no ``_`` and token characters start a piece anywhere
    buf = b'import os\nFORMATS = {"hf": 1, "gguf": 2}\nname = "hf"\n' + b"x = 1\n" * 50
    hits = db.scan(buf)  # type: ignore[attr-defined]
    assert why(plan, buf, hits, shapes) is None  # type: ignore[arg-type]
    held = {(g, j) for _p, g, j in plan.tails}  # type: ignore[attr-defined]
    assert not set(searched) & held, "a tail the database holds and did not see was searched for"


def test_admission_is_the_same_as_with_every_tail_searched(pre: tuple[object, object, object],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    db, shapes, plan = pre
    bufs = [b for _g, b in sources(plan)[::7]]
    ours = [why(plan, b, db.scan(b), shapes) is not None for b in bufs]  # type: ignore[arg-type, attr-defined]
    monkeypatch.setattr(pyast_split, "_index", lambda p, _real=pyast_split._index: (*_real(p)[:2], {}))
    every = [why(plan, b, db.scan(b), shapes) is not None for b in bufs]  # type: ignore[arg-type, attr-defined]
    assert ours == every and sum(ours) > 100
