"""The Python-AST prefilter's plan (:func:`pyast_prefilter.prefilter_plan`) memoised on disk, beside the Hyperscan
database cache: deriving it (``sre_parse`` of every rule) costs 0.04-0.12 CPU-s per process. The file is JSON, read
as data only, and trusted only as :mod:`veritensor_fast.kernels.diskcache` allows."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from veritensor_fast.detectors import pyast_prefilter as pf
from veritensor_fast.detectors.pyast_prefilter import PrefilterPlan

if TYPE_CHECKING:
    from veritensor_fast.rules import Rule


def cached_plan(rules: list[Rule]) -> PrefilterPlan | None:
    """:func:`prefilter_plan`, memoised on disk beside the Hyperscan database cache (``sre_parse`` of every rule
    costs 0.04-0.12 CPU-s per process). The key hashes each rule's id, pattern and left boundary, the code that
    derives and stores the plan and the Python version; the file is JSON (read as data only). A missing,
    unreadable or malformed file is recomputed and rewritten."""
    from veritensor_fast.kernels.diskcache import cache_file, cache_load, cache_store

    h = hashlib.sha256(sys.version.encode() + b"\x00")
    here = Path(pf.__file__)  # the plan's derivation
    try:  # the prefilter's code, pyast_stream's (its trigger patterns), pyast_needles' and this module's (the format)
        h.update(b"".join(here.with_name(n).read_bytes()
                          for n in (here.name, "pyast_stream.py", "pyast_needles.py", Path(__file__).name)))
    except OSError:  # pragma: no cover - a zip import: the key still follows the rules
        h.update(b"pyast_prefilter:unknown")
    for r in rules:
        for part in (r.id, r.pattern, r.left):
            h.update(len(part).to_bytes(4, "little") + part.encode("utf-8", "surrogatepass"))
    path = cache_file(f"pyast-plan-{h.hexdigest()[:32]}.json")
    try:  # cache_load: None if missing or not trusted; orjson reads ``json``'s output 3x faster (start-up cost)
        return _plan_from_json(orjson.loads(cache_load(path) or b""))
    except Exception:  # missing, untrusted, unreadable or malformed: derive afresh
        pass
    plan = pf.prefilter_plan(rules)
    cache_store(path, json.dumps(_plan_to_json(plan)).encode())
    return plan


def _plan_to_json(plan: PrefilterPlan | None) -> Any:
    if plan is None:
        return None

    def pats(ps: list[tuple[bytes, bool]]) -> list[list[Any]]:
        return [[p.decode("latin-1"), ci] for p, ci in ps]

    return {"patterns": pats(plan.patterns), "alone": sorted(plan.alone), "shapes": pats(plan.shapes),
            "pairs": [[sorted(c), sorted(sh)] for c, sh in plan.pairs], "cut": sorted(plan.cut),
            "headers": sorted(plan.headers), "groups": [list(g) for g in plan.groups],
            "heads": [list(h) for h in plan.heads], "tails": [list(t) for t in plan.tails], "streams": sorted(plan.streams),
            "late": sorted(plan.late), "needles": pats(list(plan.needles))}


def _plan_from_json(d: Any) -> PrefilterPlan | None:
    if d is None:
        return None

    def pats(ps: Any) -> list[tuple[bytes, bool]]:
        out = [(p.encode("latin-1"), ci) for p, ci in ps]
        if not all(isinstance(ci, bool) for _p, ci in out):
            raise ValueError("malformed plan")
        return out

    def ids(xs: Any, n: int) -> frozenset[int]:
        out = frozenset(xs)
        if not all(isinstance(i, int) and 0 <= i < n for i in out):
            raise ValueError("malformed plan")
        return out

    groups = tuple((str(a), str(c), int(n), bool(ci), bool(w)) for a, c, n, ci, w in d["groups"])

    def split(xs: Any, n: int) -> tuple[tuple[int, int, int], ...]:
        out = tuple((int(p), int(g), int(k)) for p, g, k in xs)
        if not all(0 <= p < n and 0 <= g < len(groups) and 1 <= k <= len(groups[g][0]) for p, g, k in out):
            raise ValueError("malformed plan")
        return out

    patterns, shapes = pats(d["patterns"]), pats(d["shapes"])
    pairs = [(ids(c, len(patterns)), ids(sh, len(shapes))) for c, sh in d["pairs"]]
    return PrefilterPlan(patterns, ids(d["alone"], len(patterns)), pairs, shapes, ids(d["cut"], len(patterns)),
                         ids(d["headers"], len(patterns)), groups, split(d["heads"], len(patterns)),
                         split(d["tails"], len(patterns)), ids(d["streams"], len(patterns)),
                         ids(d["late"], len(patterns)), tuple(pats(d["needles"])))
