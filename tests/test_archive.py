"""Secrets inside compressed archive members (zip, tar.gz, 7z, gzip), found once, with the member named."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import py7zr
import pytest

from veritensor_fast.detectors import archive
from veritensor_fast.engine import scan
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions

from conftest import hf_token, scan_json, zip_bytes


def deflated(members: dict[str, bytes]) -> bytes:
    return zip_bytes(members, zipfile.ZIP_DEFLATED)


def findings(root: Path) -> list[dict[str, object]]:
    _, rep = scan_json(root)
    return rep["findings"]


def test_zip_tar_gz_7z_and_gzip_members(tree: Path) -> None:
    toks = [hf_token() for _ in range(4)]
    (tree / "bundle.zip").write_bytes(deflated({"cfg/.env": f"# env\nHF_TOKEN={toks[0]}\n".encode()}))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        data = f"a\nb\ntoken: {toks[1]}\n".encode()
        ti = tarfile.TarInfo("deploy/values.yaml")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    (tree / "chart.tgz").write_bytes(buf.getvalue())
    with py7zr.SevenZipFile(tree / "backup.7z", "w") as z:
        z.writestr(f"k={toks[2]}\n", "notes.txt")
    (tree / "app.log.gz").write_bytes(gzip.compress(f"start\nlogin ok {toks[3]}\n".encode()))
    got = {(f["path"], f["line"], f["location"]["member"], f["redacted"]) for f in findings(tree)}  # type: ignore[index]
    assert got == {
        ("bundle.zip", 2, "cfg/.env", toks[0][:5] + "…" + toks[0][-2:]),
        ("chart.tgz", 3, "deploy/values.yaml", toks[1][:5] + "…" + toks[1][-2:]),
        ("backup.7z", 1, "notes.txt", toks[2][:5] + "…" + toks[2][-2:]),
        ("app.log.gz", 2, "app.log", toks[3][:5] + "…" + toks[3][-2:]),
    }


def test_exact_secret_nested_archive_and_notebook_member(tree: Path) -> None:
    tok, tok2 = hf_token(), hf_token()
    inner = deflated({"config/.env": f"T={tok}\n".encode()})
    nb = {"cells": [{"cell_type": "code", "source": ["x = 1\n"], "outputs": [
        {"output_type": "stream", "name": "stdout", "text": [f"Token: {tok2}\n"]}]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tree / "outer.zip").write_bytes(deflated({"inner.zip": inner, "nb/train.ipynb": json.dumps(nb).encode()}))
    res = scan(FileSource([str(tree)]), ScanOptions(), jobs=1)
    by_member = {f.location["member"]: f for f in res.findings if f.location}
    assert by_member["inner.zip!config/.env"].secret == tok
    assert by_member["nb/train.ipynb"].secret == tok2
    assert by_member["nb/train.ipynb"].location["part"] == "output"  # the notebook detector parsed it
    assert res.errors == []


def test_stored_members_found_once_with_their_member(tree: Path) -> None:
    """The raw pass misses a token glued to the member name ("a.txthf_…") and sees one in the middle of a
    member: either way it is reported once, with the member's own location."""
    first, middle = hf_token(), hf_token()
    members = {"a.txt": f"{first}\n".encode(), "b.txt": f"x\nkey {middle}\n".encode()}
    (tree / "stored.zip").write_bytes(zip_bytes(members, zipfile.ZIP_STORED))
    got = sorted((f["location"]["member"], f["line"]) for f in findings(tree))  # type: ignore[index]
    assert got == [("a.txt", 1), ("b.txt", 2)]


def test_inline_ignore_inside_a_member(tree: Path) -> None:
    tok = hf_token()
    data = f"T={tok}  # veritensor-fast: ignore\n".encode()
    (tree / "ok.zip").write_bytes(deflated({"x.py": data}))
    assert findings(tree) == []


def test_member_over_the_limit_is_reported_not_silently_skipped(tree: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive, "MAX_MEMBER_BYTES", 1000)
    (tree / "big.zip").write_bytes(deflated({"big.txt": b"a" * 5000, "small.txt": f"{hf_token()}\n".encode()}))
    res = scan(FileSource([str(tree)]), ScanOptions(), jobs=1)
    assert [f.location["member"] for f in res.findings if f.location] == ["small.txt"]
    assert [(e.path, e.kind) for e in res.errors] == [("big.zip", "limit")]
    assert "big.txt" in res.errors[0].reason
