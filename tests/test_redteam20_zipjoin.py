"""redteam20: a zip the raw pass cannot read into is opened wherever a zip reader would find it.

On 8eea362 the secrets pass opened a file as a zip only when its first bytes were a zip header, and then only
the last archive in it:
- ``cat a.zip b.zip > joined.zip``: the token in a's deflated ``cfg/.env`` gave no finding and no error (only a
  medium ``zip prefix`` model anomaly);
- a Python zipapp (``zipapp.create_archive(..., interpreter=..., compressed=True)``: a ``#!`` line, then the
  zip), a PEX or a self-extracting script: its deflated members were never read (no finding, no error).
"""

from __future__ import annotations

import io
import zipapp
import zipfile
from pathlib import Path

from conftest import hf_token, scan_json


def _zip(members: dict[str, str]) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members.items():
            z.writestr(n, d)
    return b.getvalue()


def _found(tree: Path) -> list[tuple[str, str, object]]:
    code, rep = scan_json(tree)
    assert rep["errors"] == []
    return sorted((f["path"], f["rule_id"], (f["location"] or {}).get("member")) for f in rep["findings"])


def test_secret_in_an_earlier_archive_of_concatenated_zips(tree: Path) -> None:
    tok = hf_token()
    first = _zip({"cfg/.env": f"A=1\nHF_TOKEN={tok}\n" + "# padding\n" * 20})
    (tree / "joined.zip").write_bytes(first + _zip({"readme.txt": "hello\n"}))
    assert b"hf_" not in first  # deflated: the raw pass cannot see it
    assert _found(tree) == [("joined.zip", "huggingface.user-token", "zip@0!cfg/.env")]


def test_secret_in_a_compressed_python_zipapp(tree: Path, tmp_path: Path) -> None:
    tok = hf_token()
    src = tmp_path / "app"
    src.mkdir()
    (src / "__main__.py").write_text("print('hi')\n")
    (src / "settings.env").write_text(f"HF_TOKEN={tok}\n" + "# padding\n" * 20)
    zipapp.create_archive(src, tree / "tool.pyz", interpreter="/usr/bin/env python3", compressed=True)
    data = (tree / "tool.pyz").read_bytes()
    assert data.startswith(b"#!/usr/bin/env python3\n") and b"hf_" not in data
    assert _found(tree) == [("tool.pyz", "huggingface.user-token", "settings.env")]


def test_bytes_that_only_end_like_a_zip_are_no_archive(tree: Path) -> None:
    (tree / "notes.txt").write_bytes(b"just text\n" * 5 + b"PK\x05\x06" + b"\xff" * 18)
    code, rep = scan_json(tree)
    assert rep["findings"] == [] and rep["errors"] == [] and code == 0
