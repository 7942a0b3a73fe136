"""redteam20: a plain (uncompressed) tar's text members are scanned as the files they are.

On 8eea362 a plain tar's members were left to the raw text pass (only nested archives were opened), so no
member got its own detector: a notebook whose token is written with JSON escapes (``\\u0067hp_…``), which the
notebook parser reads as the token, gave no finding inside ``bundle.tar`` while the same notebook inside
``bundle.tar.gz`` or on disk did. Every other finding lost its member location (``line 1, column 1037``
of the tar's raw bytes). A plain tar now behaves like a zip of stored members.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from conftest import hf_token, scan_json


def _notebook(tok: str) -> bytes:
    escaped = "".join(f"\\u{ord(c):04x}" for c in tok[:4]) + tok[4:]
    cell = '{"cell_type": "code", "execution_count": null, "id": "c1", "metadata": {}, "outputs": [], "source": '
    text = '{"cells": [' + cell + '["k = \'' + escaped + '\'\\n"]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    assert json.loads(text)["cells"][0]["source"][0] == f"k = '{tok}'\n"
    return text.encode()


def _tar(path: Path, mode: str, members: dict[str, bytes]) -> None:
    with tarfile.open(path, mode) as t:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))


def _found(tree: Path) -> dict[str, list[tuple[object, ...]]]:
    code, rep = scan_json(tree)
    assert rep["errors"] == []
    out: dict[str, list[tuple[object, ...]]] = {}
    for f in rep["findings"]:
        out.setdefault(f["path"], []).append((f["rule_id"], f["line"], f["column"], f["fingerprint"],
                                              json.dumps(f["location"], sort_keys=True)))
    return {k: sorted(v) for k, v in out.items()}


def test_notebook_in_a_plain_tar_is_parsed_as_a_notebook(tree: Path) -> None:
    tok = hf_token()
    _tar(tree / "bundle.tar", "w", {"nb/train.ipynb": _notebook(tok)})
    code, rep = scan_json(tree)
    got = [(f["path"], f["location"]) for f in rep["findings"]]
    assert got == [("bundle.tar", {"cell": 0, "cell_id": "c1", "part": "source", "member": "nb/train.ipynb"})]
    assert code == 1


def test_plain_tar_and_tar_gz_give_the_same_findings(tree: Path) -> None:
    toks = [hf_token() for _ in range(3)]
    members = {
        "nb/a.ipynb": _notebook(toks[0]),
        "deploy/.env": f"# env\nHF_TOKEN={toks[1]}\n".encode(),
        "src/conf.py": f'X = 1\nTOKEN = "{toks[2][:6]}" "{toks[2][6:]}"\n'.encode(),
    }
    _tar(tree / "b.tar", "w", members)
    _tar(tree / "b.tar.gz", "w:gz", members)
    found = _found(tree)
    assert found["b.tar"] == found["b.tar.gz"]
    assert len(found["b.tar"]) == 3, found


def test_binary_member_of_a_plain_tar_is_left_to_the_raw_pass_and_found_once(tree: Path) -> None:
    tok = hf_token()
    _tar(tree / "w.tar", "w", {"weights.bin": b"\x00\x01\x02" * 10 + f" {tok} ".encode() + b"\x00" * 8})
    code, rep = scan_json(tree)
    assert [(f["path"], f["location"]) for f in rep["findings"]] == [("w.tar", None)]  # the raw pass, once
