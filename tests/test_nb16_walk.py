"""Issue 16 (notebook CPU): the shortcuts of the notebook walk and of the raw-bytes pass give the findings of the
long way.

- ``nb_walk._string_items`` (no generator for flat objects and scalars) lists exactly what ``iter_strings`` does,
  in the same order with the same key paths (property test over JSON values).
- A notebook none of whose strings holds a candidate skips the per-string matching (``Walker.flush``), but the
  handlers still run: a token that only the Python-AST helper reassembles is still found, with its line, column
  and key; falsy fields (``{}``, ``[]``, ``""``, ``null``) next to it change nothing.
- The raw-bytes pass no longer counts the last window's lines: raw findings in the first, a middle and the last
  2 MiB window of a big notebook keep the line and column counted from the raw bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import test_notebook
from hypothesis import given, settings
from hypothesis import strategies as st

from veritensor_fast.detectors import nb_guard
from veritensor_fast.detectors.nb_walk import _string_items, iter_strings
from veritensor_fast.worker import WorkerContext

from conftest import hf_token

ctx, scan, code, nb = test_notebook.ctx, test_notebook.scan_bytes, test_notebook.code, test_notebook.nb

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=3), kids, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_json, st.sampled_from(["", "text", "a.b"]))
def test_string_items_equal_iter_strings(value: Any, path: str) -> None:
    assert _string_items(value, path) == list(iter_strings(value, path))


def test_flat_and_empty_shapes() -> None:
    assert _string_items({"a": "x", "b": "y"}, "") == [("a", "x"), ("b", "y")]
    assert _string_items({"a": "x"}, "m") == [("m.a", "x")]
    assert _string_items({}, "m") == [] and _string_items([], "") == [] and _string_items(0, "") == []
    assert _string_items("", "k") == [("k", "")] and _string_items(None, "k") == []


def test_candidate_free_notebook_still_runs_python_ast(ctx: WorkerContext, tmp_path: Path) -> None:
    tok = hf_token()
    src = ["from huggingface_hub import login\n", f'login(token="{tok[:10]}" + "{tok[10:]}")\n']
    cells = [
        {"cell_type": "markdown", "id": "m0", "metadata": {}, "source": ""},
        code([], cid="e0", metadata={"tags": []}),
        code(src, cid="py", outputs=[{"output_type": "stream", "name": "stdout", "text": []},
                                     {"output_type": "display_data", "data": {}, "metadata": {}}]),
        {"cell_type": "raw", "id": "r0", "metadata": {"k": None, "n": 0}, "source": None, "attachments": {}},
    ]
    doc = nb(cells, {"kernelspec": {"name": "python3", "display_name": "Python 3"}, "empty": {}})
    fs, errs = scan(ctx, tmp_path, json.dumps(doc, indent=1).encode())
    assert errs == []
    assert [(f.secret, f.line, f.column, f.decoded, (f.location or {}).get("cell"), (f.location or {}).get("part"))
            for f in fs] == [(tok, 2, len("login(token=") + 1, "python-ast", 2, "source")]


def test_raw_pass_lines_and_columns_across_windows(ctx: WorkerContext, tmp_path: Path) -> None:
    """Tokens in cell ids (the structured walk skips ids, the raw pass reports them) in the first, a middle and
    the last raw window of a notebook over three windows; line and column counted here from the raw bytes."""
    win = nb_guard._RAW_WINDOW
    toks = [hf_token() for _ in range(4)]
    filler = "é" * 300 + "\n"  # multi-byte characters: columns are characters, not bytes
    cells: list[Any] = []
    for i, tok in enumerate(toks):
        cells.append({"cell_type": "markdown", "id": f"x-{tok}", "metadata": {}, "source": [filler] * 3})
        if i < len(toks) - 1:
            cells += [{"cell_type": "markdown", "id": f"f{i}.{j}", "metadata": {}, "source": [filler] * 200}
                      for j in range(22 if i else 5)]
    data = json.dumps(nb(cells), indent=1, ensure_ascii=False).encode()
    assert len(data) > 2 * win
    starts = [data.index(t.encode()) for t in toks]
    assert starts[0] < win and starts[-1] > 2 * win and len({s // win for s in starts}) >= 3
    fs, errs = scan(ctx, tmp_path, data)
    assert errs == []
    got = sorted((f.secret or "", f.line, f.column) for f in fs if (f.location or {}).get("part") == "raw")
    want = []
    for tok, s in zip(toks, starts, strict=True):
        line_start = data.rfind(b"\n", 0, s) + 1
        want.append((tok, data.count(b"\n", 0, s) + 1, len(data[line_start:s].decode()) + 1))
    assert got == sorted(want)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=8), st.sampled_from(["", ".ipynb", ".IPYNB", ".IpYnB", "İpynb", ".ipynb\u0130", "ΣΣ"]))
def test_notebook_extension_check_is_lower_endswith(stem: str, suffix: str) -> None:
    from veritensor_fast.detectors.notebook import looks_like_notebook

    path = stem + suffix
    assert looks_like_notebook(path, b"x", b"x") == path.lower().endswith(".ipynb")
