"""The big-notebook fast path (``detectors/nb_cells.py``) on a notebook written by nbformat itself
(``tests/fixtures/real_notebooks/make.py``: ``nbformat.write``, as Jupyter saves): the same findings and errors
as the streamed path, and every planted token found where ``expected.json`` says it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_nb17_cells import both
from test_notebook import ctx  # noqa: F401 (the worker context fixture)

from veritensor_fast.worker import WorkerContext

HERE = Path(__file__).parent / "fixtures" / "real_notebooks"


def test_a_notebook_nbformat_wrote_is_cut_at_its_cells_and_finds_every_token(
        ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    raw = (HERE / "tokens.ipynb").read_bytes()
    expected = json.loads((HERE / "expected.json").read_text())["tokens.ipynb"]
    fast, slow, calls = both(ctx, tmp_path, raw, monkeypatch)
    assert calls and calls[0] is not None  # nbformat's layout takes the fast path
    assert fast == slow
    findings, errors = fast
    assert errors == []
    assert {e["token"] for e in expected} <= {f[1] for f in findings}
