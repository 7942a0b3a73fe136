"""Base64 where it was not looked for: inside binary files, and wrapping a gzip or zlib stream.

Ground truth: the planted token is reported once with the decoding chain. Before, binary files (a NUL in
the first 4 KiB) were never decoded and a compressed payload inside base64 was matched as raw deflate bytes.
"""

from __future__ import annotations

import base64
import gzip
import os
import zlib
from pathlib import Path

from conftest import hf_token, scan_json


def test_base64_token_inside_binary_file(tmp_path: Path) -> None:
    tok = hf_token()
    blob = base64.b64encode(f'{{"token": "{tok}"}}'.encode())
    data = os.urandom(5000).replace(b"\n", b"\x00") + b"\x00\x00cfg=" + blob + b"\x00" + os.urandom(3000)
    (tmp_path / "app.db").write_bytes(b"SQLite format 3\x00" + data)
    code, rep = scan_json(tmp_path, "--show-secrets")
    assert code == 1
    [f] = rep["findings"]
    assert f["secret"] == tok and f["decoded"].startswith("base64")
    assert f["location"]["offset"] == (b"SQLite format 3\x00" + data).index(blob)


def test_base64_of_gzip_and_zlib(tmp_path: Path) -> None:
    t1, t2 = hf_token(), hf_token()
    gz = base64.b64encode(gzip.compress(f"HF_TOKEN={t1}\n".encode() * 3)).decode()
    zl = base64.b64encode(zlib.compress(f"export HF_TOKEN={t2}\n".encode())).decode()
    (tmp_path / "values.yaml").write_text(f"payload: {gz}\nother: {zl}\n")
    code, rep = scan_json(tmp_path, "--show-secrets")
    got = sorted((f["secret"], f["decoded"], f["line"]) for f in rep["findings"])
    assert got == sorted([(t1, "base64 → gzip", 1), (t2, "base64 → zlib", 2)])


def test_gzip_bomb_inside_base64_is_bounded(tmp_path: Path) -> None:
    """100 MiB of zeros gzipped and base64-encoded (~130 KB): inflated to at most 8 MiB, the token beside it
    found (memory-safe: the cap is in ``b64_scan.MAX_INFLATED``)."""
    tok = hf_token()
    bomb = base64.b64encode(gzip.compress(b"\x00" * (100 << 20), 1)).decode()
    (tmp_path / "x.txt").write_text(f"blob = {bomb}\nHF_TOKEN={tok}\n")
    code, rep = scan_json(tmp_path, "--show-secrets")
    assert [f["secret"] for f in rep["findings"]] == [tok]


def test_inflate_is_bounded() -> None:
    from veritensor_fast.detectors.b64_scan import compressed_kind, inflate

    z = zlib.compress(b"a" * (50 << 20))
    assert compressed_kind(z) == "zlib" and len(inflate(z, "zlib", 1 << 20)) == 1 << 20
    assert compressed_kind(b"\x1f\x8b\x08rest") == "gzip" and inflate(b"\x1f\x8b\x08rest", "gzip", 100) == b""
    assert compressed_kind(b"xyz") is None
