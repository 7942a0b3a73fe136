"""A token split inside its prefix in Python source (``"h" + "f_…"``) is reassembled and found.

Before: the AST pass was skipped for such a file, because its cheap prefilter looked for the complete
prefix (``hf_``) and the text pass cannot see a token split between literals.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import hf_token, rand, scan_json


@pytest.mark.parametrize("template", [
    'T = "{a}" + "{b}"\n',
    'T = ("{a}"\n     "{b}")\n',
    "T = '{a}' 'f{b}'\n".replace("'f{b}'", "f'{b}'"),
    'login(token="{a}" + "{b}")\n',
])
@pytest.mark.parametrize("cut", [1, 2])
def test_hf_token_split_inside_prefix(tmp_path: Path, template: str, cut: int) -> None:
    tok = hf_token()
    (tmp_path / "a.py").write_text(template.format(a=tok[:cut], b=tok[cut:]))
    code, rep = scan_json(tmp_path, "--show-secrets")
    assert code == 1 and [(f["secret"], f["line"]) for f in rep["findings"]] == [(tok, 1)]


def test_github_token_split_inside_prefix(tmp_path: Path) -> None:
    tok = "ghp_" + rand(36)
    (tmp_path / "b.py").write_text(f'GH = "gh" + "{tok[2:]}"\n')
    code, rep = scan_json(tmp_path, "--show-secrets")
    assert [f["secret"] for f in rep["findings"]] == [tok]


def test_prefilter_still_rejects_plain_code() -> None:
    from veritensor_fast.worker import ScanOptions, WorkerContext

    ctx = WorkerContext(ScanOptions())
    det = next(d for d in ctx.detectors if d.name == "python-ast")
    assert det._pre is not None  # every rule has an anchor or an inner literal: not every file is parsed
    assert not det.wanted(b'x = "hello" + "world"\nprint(x)\n')
    assert det.wanted(b'x = "h" + "f_abc"\n')
