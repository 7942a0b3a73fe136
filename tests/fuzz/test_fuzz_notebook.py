"""Fuzzing the notebook parser (detectors/notebook.py) through the worker: generated notebooks of every shape
(odd cell types, sources as lists or garbage, nested outputs, v3 worksheets), mutated bytes of real notebooks,
and both the in-memory (orjson) and the streamed (ijson) paths. Contract: see fuzzkit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fuzzkit import examples, mutate, scan_bytes, secrets_found, token
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from veritensor_fast.detectors import notebook as nbmod

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)
sources = st.one_of(st.text(max_size=40), st.lists(st.text(max_size=20), max_size=4), json_values)
mimes = st.sampled_from(["text/plain", "text/html", "image/png", "application/json", "text/markdown",
                         "application/vnd.jupyter.widget-view+json", "image/svg+xml", "x/y"])
outputs = st.fixed_dictionaries(
    {"output_type": st.sampled_from(["stream", "execute_result", "display_data", "error", "pyout", "weird"])},
    optional={"name": st.sampled_from(["stdout", "stderr"]) | st.text(max_size=6), "text": sources,
              "data": st.dictionaries(mimes, sources | json_values, max_size=3), "metadata": json_values,
              "ename": st.text(max_size=8), "evalue": st.text(max_size=20),
              "traceback": st.lists(st.text(max_size=20), max_size=3)})
cells = st.fixed_dictionaries(
    {"cell_type": st.sampled_from(["code", "markdown", "raw", "heading", "x"]), "source": sources},
    optional={"id": st.text(max_size=8), "metadata": json_values,
              "outputs": st.lists(outputs, max_size=3) | json_values, "execution_count": st.none() | st.integers(0, 9),
              "attachments": st.dictionaries(st.text(max_size=8), st.dictionaries(mimes, sources, max_size=2),
                                             max_size=2)})
notebooks = st.fixed_dictionaries(
    {"cells": st.lists(cells | json_values, max_size=4)},
    optional={"metadata": json_values, "nbformat": st.integers(0, 5) | json_values, "nbformat_minor": json_values,
              "extra": json_values})
v3_notebooks = st.fixed_dictionaries({"worksheets": st.lists(st.fixed_dictionaries(
    {"cells": st.lists(cells.map(lambda c: {**c, "input": c.get("source")}), max_size=3)}), max_size=2)},
    optional={"metadata": json_values, "nbformat": st.just(3)})


@contextmanager
def streamed(on: bool) -> Iterator[None]:
    """Force the streamed (ijson) path for small inputs."""
    old = nbmod.ORJSON_MAX
    if on:
        nbmod.ORJSON_MAX = 0
    try:
        yield
    finally:
        nbmod.ORJSON_MAX = old


def dump(doc: Any, indent: int | None, ascii_: bool) -> bytes:
    return json.dumps(doc, indent=indent, ensure_ascii=ascii_).encode("utf-8", "surrogatepass")


@settings(max_examples=examples(40), **SETTINGS)
@given(st.one_of(notebooks, v3_notebooks), st.sampled_from([None, 1]), st.booleans(), st.booleans(),
       st.sampled_from(["a.ipynb", "a.json", "notebook"]))
def test_generated_notebooks_keep_the_contract(doc: Any, indent: int | None, ascii_: bool, stream: bool,
                                               name: str) -> None:
    with streamed(stream):
        scan_bytes(dump(doc, indent, ascii_), name)


@settings(max_examples=examples(25), **SETTINGS)
@given(notebooks, st.integers(0, 2**32), st.integers(0, 40), st.sampled_from([None, 1]), st.booleans())
def test_token_in_a_code_cell_source_is_found(doc: dict[str, Any], seed: int, at: int, indent: int | None,
                                              stream: bool) -> None:
    tok = token(seed)
    src = f"x = 1\nkey = '{tok}'\n"
    doc = {**doc, "cells": [*doc["cells"][: at % 5], {"cell_type": "code", "metadata": {}, "outputs": [],
                                                      "execution_count": None, "source": src}]}
    with streamed(stream):
        res = scan_bytes(dump(doc, indent, False), "t.ipynb", secrets=(tok,))
    assert tok in secrets_found(res)


def _paths(v: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every string value (not key) in a JSON document."""
    if isinstance(v, str):
        return [path]
    if isinstance(v, list):
        return [p for i, x in enumerate(v) for p in _paths(x, (*path, i))]
    if isinstance(v, dict):
        return [p for k, x in v.items() for p in _paths(x, (*path, k))]
    return []


def _set(doc: Any, path: tuple[Any, ...], value: str) -> None:
    for k in path[:-1]:
        doc = doc[k]
    doc[path[-1]] = value


def _hiding_place_open() -> bool:
    """Whether a token in a non-canonical notebook field (here: a cell's ``cell_type``) is still missed."""
    tok = token(3)
    doc = {"cells": [{"cell_type": tok, "source": "x"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return tok not in secrets_found(scan_bytes(dump(doc, None, False), "h.ipynb"))


@pytest.mark.xfail(_hiding_place_open(), strict=True, reason="open on this branch: notebook hiding places (a "
                   "token in a cell_type, a cell id, a stream output's name is never scanned as text); fixed by the "
                   "secrets branch (raw notebook bytes always go through the text pass)")
@settings(max_examples=examples(40), phases=[Phase.explicit, Phase.generate], **SETTINGS)
@given(st.one_of(notebooks, v3_notebooks), st.integers(0, 2**32), st.integers(0, 2**16), st.booleans())
def test_token_in_any_string_of_a_notebook_is_found(doc: Any, seed: int, pick: int, stream: bool) -> None:
    spots = _paths(doc)
    if not spots:
        return
    tok = token(seed)
    _set(doc, spots[pick % len(spots)], f"{tok}")
    with streamed(stream):
        res = scan_bytes(dump(doc, None, False), "t.ipynb", secrets=(tok,))
    assert tok in secrets_found(res)


def _seeds() -> list[bytes]:
    out = [p.read_bytes() for p in sorted((ROOT / "corpora" / "demo").rglob("*.ipynb"))]
    tok = token(7)
    out.append(dump({"cells": [{"cell_type": "code", "id": "a", "metadata": {}, "execution_count": 1,
                                "source": ["import os\n", f"os.environ['HF_TOKEN'] = '{tok}'\n"],
                                "outputs": [{"output_type": "stream", "name": "stdout", "text": [tok]},
                                            {"output_type": "display_data", "metadata": {},
                                             "data": {"image/png": "iVBORw0KGgo=", "text/plain": ["x"]}}]}],
                     "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5},
                    1, False))
    return out


SEEDS = _seeds()
edits = st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 3), st.integers(0, 255)), min_size=1, max_size=8)


@settings(max_examples=examples(50), **SETTINGS)
@given(st.sampled_from(range(len(SEEDS))), edits, st.booleans())
def test_mutated_notebooks_keep_the_contract(which: int, ed: list[tuple[int, int, int]], stream: bool) -> None:
    with streamed(stream):
        scan_bytes(mutate(SEEDS[which], ed), "m.ipynb")


@settings(max_examples=examples(15), **SETTINGS)
@given(st.integers(1, 300), st.sampled_from(["[", "{\"a\":"]), st.booleans(), st.booleans())
def test_nested_outputs_keep_the_contract(depth: int, opener: str, closed: bool, stream: bool) -> None:
    closer = "]" if opener == "[" else "}"
    nest = opener * depth + "1" + (closer * depth if closed else "")
    raw = ('{"cells":[{"cell_type":"code","source":"x","metadata":{},"outputs":[{"output_type":"execute_result",'
           '"data":{"application/json":' + nest + '}}]}],"metadata":{},"nbformat":4,"nbformat_minor":5}')
    with streamed(stream):
        scan_bytes(raw.encode(), "deep.ipynb")
