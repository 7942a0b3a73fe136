"""Issue 16, giant notebook: a big notebook in the usual layout is cut at its cell boundaries and each cell is
parsed by orjson (``nb_cells.parse_cells``), instead of the nesting pre-pass plus ``ijson`` streaming.

- Findings and errors are exactly those of the streamed path (``parse_cells`` disabled) on every layout and
  perturbation that could fool a cutter: indentation 0/1/2, CRLF, minified, a separator look-alike inside a
  cell, a nested ``"cells"`` key, a second top-level ``"cells"`` key, keys before the cells, nesting exactly at
  and one past the limit, an invalid cell, a truncated file, lone surrogates, big integers.
- The usual layout never runs the slow path: no ``ijson``, no numpy (the pre-pass's import alone was 0.2 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import test_notebook
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veritensor_fast.detectors import nb_cells, nb_guard
from veritensor_fast.detectors import notebook as nbmod
from veritensor_fast.worker import WorkerContext

from conftest import hf_token

ctx, scan, code, nb = test_notebook.ctx, test_notebook.scan_bytes, test_notebook.code, test_notebook.nb


def _key(fs: list[Any], errs: list[Any]) -> tuple[Any, ...]:
    return (sorted((f.rule_id, f.secret, f.line, f.column, json.dumps(f.location, sort_keys=True)) for f in fs),
            [(e.kind, e.reason) for e in errs])


def both(ctx: WorkerContext, tmp_path: Path, raw: bytes, monkeypatch: pytest.MonkeyPatch
         ) -> tuple[tuple[Any, ...], tuple[Any, ...], list[Any]]:
    """(fast path result, streamed path result, walker calls made by the fast path) for ``raw``."""
    monkeypatch.setattr(nbmod, "ORJSON_MAX", 16)  # every test notebook takes the big-notebook path
    monkeypatch.setattr(nb_cells, "CHUNK", 1 << 10)  # cells spanning chunks, boundaries across chunk edges
    calls: list[Any] = []
    real = nb_cells.parse_cells

    def spy(buf: Any, w: Any) -> int | None:
        calls.append(r := real(buf, w))
        return r

    monkeypatch.setattr(nbmod, "parse_cells", spy)
    fast = _key(*scan(ctx, tmp_path, raw, "fast.ipynb"))
    monkeypatch.setattr(nbmod, "parse_cells", lambda buf, w: None)
    slow = _key(*scan(ctx, tmp_path, raw, "slow.ipynb"))
    return fast, slow, calls


def _cells(toks: list[str]) -> list[Any]:
    return [
        code([f"a = '{toks[0]}'\n", "b = 1\n"], cid="c0",
             outputs=[{"output_type": "stream", "name": "stdout", "text": ["x " * 3000, f"k={toks[1]}\n"]}]),
        {"cell_type": "markdown", "id": "m1", "metadata": {"tags": [{"a": [{"b": toks[2]}]}]}, "source": "hi"},
        code(["x = 2\n"] * 50, cid="c2", outputs=[{"output_type": "display_data", "metadata": {},
                                                  "data": {"application/json": {"k": [{"v": toks[3]}, {}]}}}]),
    ]


def _doc(toks: list[str]) -> dict[str, Any]:
    return nb(_cells(toks), {"kernelspec": {"name": "python3"}, "widgets": {"s": toks[4]}})


@pytest.mark.parametrize("indent", [0, 1, 2, 4])
@pytest.mark.parametrize("crlf", [False, True])
def test_layouts_equal_streamed(ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                indent: int, crlf: bool) -> None:
    toks = [hf_token() for _ in range(5)]
    raw = json.dumps(_doc(toks), indent=indent).encode()
    if crlf:
        raw = raw.replace(b"\n", b"\r\n")
    fast, slow, calls = both(ctx, tmp_path, raw, monkeypatch)
    assert fast == slow
    assert sorted(x[1] for x in fast[0] if json.loads(x[4]).get("part") != "raw") == sorted(toks)
    # the layout json.dumps / nbformat write is taken by the fast path; with indent 0 every nested object sits
    # at the cells' own indentation, so cuts fail and the streamed path runs
    assert (calls[0] is not None) is (indent > 0)


def test_generated_corpus_layout(ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``corpora.gen_notebook``'s layout: cells at column 0, their contents indented."""
    toks = [hf_token() for _ in range(5)]
    raw = ('{"cells": [\n' + ",\n".join(json.dumps(c, indent=1) for c in _cells(toks)) + '\n], "metadata": '
           + json.dumps({"widgets": {"s": toks[4]}}, indent=1) + ', "nbformat": 4, "nbformat_minor": 5}').encode()
    fast, slow, calls = both(ctx, tmp_path, raw, monkeypatch)
    assert fast == slow and calls[0] is not None


def _nb_text(cells: list[str], tail: str = '"metadata": {}, "nbformat": 4, "nbformat_minor": 5') -> bytes:
    return ('{\n "cells": [\n  ' + ",\n  ".join(cells) + "\n ],\n " + tail + "\n}\n").encode()


def _cell(src: str, extra: str = "") -> str:
    return '{\n   "cell_type": "code",\n   "metadata": {},\n   "outputs": [],\n   "source": ' + json.dumps(src) \
        + extra + "\n  }"


def _cases() -> dict[str, tuple[bytes, bool]]:
    """name -> (notebook bytes, whether the fast path must take it)"""
    t = [hf_token() for _ in range(4)]
    deep = 998 - 1  # the cell object is level 3 of the document, its "x" value's arrays come below it
    ok_deep = _cell(f"a='{t[0]}'", ', "x": ' + "[" * deep + "]" * deep)
    return {
        # a cell holding the separator text at the cells' own indentation (a nested array of objects)
        "lookalike": (_nb_text([_cell(f"a='{t[0]}'", ',\n   "x": [\n  {\n  },\n  {"k": "' + t[1] + '"}\n  ]'),
                                _cell(f"b='{t[2]}'")]), False),
        "nested-cells-key": (('{\n "metadata": {"cells": [\n  ' + _cell(f"a='{t[0]}'") + '\n ]},\n "cells": [\n  '
                              + _cell(f"b='{t[1]}'") + '\n ], "nbformat": 4}').encode(), False),
        "second-cells-key": (_nb_text([_cell(f"a='{t[0]}'")], '"cells": [{"source": "' + t[1] + '"}], "nbformat": 4'),
                             False),
        "second-cells-key-same": (_nb_text(['0'], '"cells": [0], "metadata": {"k": "' + t[1] + '"}'), False),
        "escaped-cells-key": (_nb_text([_cell(f"a='{t[0]}'")], '"\\u0063ells": [{"source": "' + t[1] + '"}]'),
                              False),
        "keys-before-cells": (('{"metadata": {"k": "' + t[0] + '"},\n "cells": [\n  ' + _cell(f"b='{t[1]}'")
                               + "\n ]}").encode(), False),
        "depth-at-limit": (_nb_text([ok_deep, _cell(f"b='{t[1]}'")]), True),
        "depth-past-limit": (_nb_text([_cell(f"a='{t[0]}'", ', "x": ' + "[" * (deep + 1) + "]" * (deep + 1)),
                                       _cell(f"b='{t[1]}'")]), False),
        "tail-past-limit": (_nb_text([_cell(f"a='{t[0]}'")], '"metadata": ' + "[" * 1000 + "]" * 1000), False),
        "tail-at-limit": (_nb_text([_cell(f"a='{t[0]}'")], '"metadata": {"k": "' + t[1] + '", "d": '
                                   + "[" * 998 + "]" * 998 + "}"), True),
        "invalid-cell": (_nb_text([_cell(f"a='{t[0]}'"), _cell("b", ', "x": [1,]')]), False),
        "truncated": (_nb_text([_cell(f"a='{t[0]}'"), _cell(f"b='{t[1]}'")])[:-40], False),
        "lone-surrogate": (_nb_text([_cell(f"a='{t[0]}'"), _cell("x", ', "y": "\\ud800"')]), False),
        "big-int": (_nb_text([_cell(f"a='{t[0]}'", ', "n": ' + "9" * 40)]), True),  # orjson: a float
        "garbage-after": (_nb_text([_cell(f"a='{t[0]}'")]) + b"}", False),
        "not-an-object-first-cell": (_nb_text(['"' + t[0] + '"', _cell(f"b='{t[1]}'")]), False),
        "not-an-object-cell": (_nb_text([_cell(f"b='{t[1]}'"), "[1, 2]", _cell(f"c='{t[2]}'")]), False),
        "no-tail": (_nb_text([_cell(f"a='{t[0]}'")], '"nbformat": 4'), True),
        "empty-cells": (b'{\n "cells": [\n ],\n "metadata": {"k": "' + t[0].encode() + b'"}\n}', False),
    }


@pytest.mark.parametrize("name", list(_cases()))
def test_perturbations_equal_streamed(ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      name: str) -> None:
    raw, taken = _cases()[name]
    fast, slow, calls = both(ctx, tmp_path, raw, monkeypatch)
    assert fast == slow
    assert (calls[0] is not None) is taken, calls


def test_limit_error_kept(ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw, _ = _cases()["depth-past-limit"]
    fast, _slow, _ = both(ctx, tmp_path, raw, monkeypatch)
    assert [k for k, _ in fast[1]] == ["limit"]


def test_parse_cells_hands_over_every_cell() -> None:
    class W:
        def __init__(self) -> None:
            self.cells: list[Any] = []

        def cell(self, i: int, c: Any) -> None:
            self.cells.append((i, c))

    doc = {"cells": [{"a": [1, {"b": "}\n,{"}]}, {"e": 1}, {"s": "\n  },\n  {"}, {"c": None}], "metadata": {}}
    for indent in (1, 3):
        raw = json.dumps(doc, indent=indent).encode()
        for chunk in (1, 7, 1 << 20):
            nb_cells.CHUNK, old = chunk, nb_cells.CHUNK
            try:
                w = W()
                end = nb_cells.parse_cells(raw, w)  # type: ignore[arg-type]
            finally:
                nb_cells.CHUNK = old
            assert [c for _, c in w.cells] == doc["cells"] and [i for i, _ in w.cells] == [0, 1, 2, 3]
            assert end is not None and raw[end:].lstrip().startswith(b"]")


PROBE = """
import os, sys
from veritensor_fast.detectors import notebook as nbmod
from veritensor_fast.findings import Item
nbmod.ORJSON_MAX = 1 << 16  # the big-notebook path for a small file
from veritensor_fast.worker import ScanOptions, WorkerContext
ctx = WorkerContext(ScanOptions())
p = sys.argv[1]
res = ctx.run_batch([Item("file", p, "big.ipynb", os.path.getsize(p))])
print(len(res.findings), len(res.errors), "ijson" in sys.modules, "numpy" in sys.modules)
"""


def test_usual_layout_skips_prepass_and_ijson(tmp_path: Path) -> None:
    toks = [hf_token() for _ in range(3)]
    raw = test_notebook.big_notebook(1 << 20, toks, img=50_000)
    p = tmp_path / "big.ipynb"
    p.write_bytes(raw)
    out = subprocess.run([sys.executable, "-c", PROBE, str(p)], capture_output=True, text=True, check=True,
                         timeout=120)
    assert out.stdout.split() == ["3", "0", "False", "False"], out.stdout + out.stderr
    assert nb_guard.MAX_DEPTH - 2 + nb_cells._CELL_WRAP == 1024


@pytest.mark.parametrize("stretch", [1, 64, 1 << 18])
@pytest.mark.parametrize("crlf", [False, True])
def test_dense_and_sparse_lines(ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                stretch: int, crlf: bool) -> None:
    """Cells whose dense source lines (the regex stretch) come before and after long output lines (the newline
    walk), stretches ending anywhere: every cell is found, as the streamed path finds it."""
    monkeypatch.setattr(nb_cells, "_DENSE_STRETCH", stretch)
    toks = [hf_token() for _ in range(6)]
    cells = [code([f"x{j} = {j}\n" for j in range(40)] + [f"t = '{toks[i]}'\n"], cid=f"c{i}",
                  outputs=[{"output_type": "stream", "name": "stdout", "text": "y" * (9000 * i)}])
             for i in range(6)]
    raw = json.dumps(nb(cells), indent=1).encode()
    if crlf:
        raw = raw.replace(b"\n", b"\r\n")
    fast, slow, calls = both(ctx, tmp_path, raw, monkeypatch)
    assert fast == slow and calls[0] is not None
    assert sorted(x[1] for x in fast[0]) == sorted(toks)


_leaf = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", "x", "}\n,{", "\\u0068f_", "a\"b", "é"])
_value = st.recursive(_leaf, lambda kids: st.lists(kids, max_size=3)
                      | st.dictionaries(st.sampled_from(["a", "id", "text", "source", "outputs", "data", "metadata"]),
                                        kids, max_size=3), max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(st.sampled_from(["cell_type", "id", "metadata", "outputs", "source", "x"]), _value,
                                max_size=5) | _value, min_size=1, max_size=5),
       st.sampled_from([0, 1, 2]), st.booleans(), st.integers(0, 4), st.booleans())
def test_random_documents_equal_streamed(ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         cells: list[Any], indent: int, col0: bool, where: int, dup: bool) -> None:
    """Random cells (objects or not, nested look-alikes, escapes) in three layouts, a token in a random cell or
    in the metadata, sometimes a second top-level "cells" key: the fast path's findings and errors are the
    streamed path's, whether it is taken or not."""
    tok = hf_token()
    cells = [dict(c) if isinstance(c, dict) else c for c in cells]
    k = where % len(cells)
    if isinstance(cells[k], dict):
        cells[k]["source"] = f"t = '{tok}'"
    meta: dict[str, Any] = {"w": tok} if where == 4 else {}
    if col0:
        body = ",\n".join(json.dumps(c, indent=max(indent, 1)) for c in cells)
        raw = '{"cells": [\n' + body + '\n], "metadata": ' + json.dumps(meta)
    else:
        raw = json.dumps({"cells": cells, "metadata": meta}, indent=indent or None)[:-1]
    raw += (', "cells": [{"source": "' + tok + '"}]' if dup else "") + ', "nbformat": 4}'
    fast, slow, _ = both(ctx, tmp_path, raw.encode(), monkeypatch)
    assert fast == slow
