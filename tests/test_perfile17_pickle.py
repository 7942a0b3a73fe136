"""SETITEM, the commonest dict opcode of real pickles (networkx graphs: 8k of 77k opcodes), updates the walker's
symbolic dict with ``Dict.set`` instead of ``Dict.add([k, v])``: the two must leave the same expanded size and
the same kept entries for any keys and values (strings, containers, opaque values), past ``KEEP`` and near
``CAP`` too; and a real pickle's verdict stays the same."""

from __future__ import annotations

import pickle
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from veritensor_fast.models import pickle_values as pv
from veritensor_fast.models.analyzer import Analyzer
from veritensor_fast.models.base import AnalyzeOptions


def _value(kind: int, n: int) -> Any:
    if kind == 0:
        return f"k{n}"
    if kind == 1:
        return n
    if kind == 2:
        v = pv.List(n + 1)
        return v
    if kind == 3:
        d = pv.Dict()
        d.n = n + 1
        return d
    if kind == 4:
        return pv.tup([pv.List(n + 2), n])  # a Tup
    if kind == 5:
        return (n, n + 1)  # a plain tuple: counts as one element in a dict, as in ``grown``
    return pv.Opaque("x")


_pairs = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1 << 20), st.integers(0, 6), st.integers(0, 1 << 20)),
                  max_size=150)


@settings(max_examples=200, deadline=None)
@given(_pairs, st.sampled_from([1, 1 << 61, pv.CAP - 3]))
def test_set_equals_add_of_one_pair(pairs: list[tuple[int, int, int, int]], start: int) -> None:
    a, b = pv.Dict(), pv.Dict()
    a.n = b.n = start
    for kk, kn, vk, vn in pairs:
        k, v = _value(kk, kn), _value(vk, vn)
        a.add([k, v])
        b.set(k, v)
        assert (a.n, list(a.items)) == (b.n, list(b.items))
        assert all(a.items[x] is b.items[x] for x in a.items)


def test_real_pickles_keep_their_verdict() -> None:
    an = Analyzer(AnalyzeOptions())
    graph = {i: {j: {"weight": j, "capacity": (i, j)} for j in range(30)} for i in range(200)}
    assert an.analyze(pickle.dumps(graph, protocol=2), "g.pkl") == []
    # a dict set into itself 40 times by SETITEM: 2**40 elements once expanded ("billion laughs")
    bomb = b"\x80\x02}q\x00" + b"".join(b"X\x01\x00\x00\x00" + bytes([65 + i]) + b"h\x00s" for i in range(40)) + b"."
    assert [(i.rule_id, i.severity) for i in an.analyze(bomb, "b.pkl")] == [("model.pickle.dos", "high")]

    class Evil:
        def __reduce__(self) -> Any:
            import os

            return (os.system, ("true",))  # pickled only, never loaded

    found = an.analyze(pickle.dumps({"a": {"b": Evil()}}, protocol=2), "e.pkl")
    assert any("system" in (i.evidence or "") for i in found)
