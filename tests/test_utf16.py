"""UTF-16 text files (LE/BE, with and without BOM) are decoded and scanned; normal and binary files are not."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from veritensor_fast.detectors import text as textmod
from veritensor_fast.findings import Finding, Item
from veritensor_fast.worker import ScanOptions, WorkerContext

from conftest import hf_token, scan_json

ENCODINGS = [("utf-16-le", b""), ("utf-16-be", b""), ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")]


@pytest.fixture(scope="module")
def ctx() -> WorkerContext:
    return WorkerContext(ScanOptions())


def scan_file(ctx: WorkerContext, path: Path) -> list[Finding]:
    res = ctx.run_batch([Item("file", str(path), path.name, path.stat().st_size)])
    assert res.errors == []
    return res.findings


@pytest.mark.parametrize(("enc", "bom"), ENCODINGS)
def test_utf16_found_with_line_and_column(ctx: WorkerContext, tmp_path: Path, enc: str, bom: bytes) -> None:
    tok = hf_token()
    text = f"# config écrite sous Windows\r\nname = demo\r\n  HF_TOKEN = {tok}\r\nend\r\n"
    p = tmp_path / "settings.ps1"
    p.write_bytes(bom + text.encode(enc))
    assert tok.encode() not in p.read_bytes()
    (f,) = scan_file(ctx, p)
    assert f.secret == tok and f.rule_id == "huggingface.user-token"
    assert (f.line, f.column) == (3, len("  HF_TOKEN = ") + 1)
    assert f.decoded == enc and f.location == {"encoding": enc}


@pytest.mark.parametrize(("enc", "bom"), ENCODINGS)
def test_detection(enc: str, bom: bytes) -> None:
    head = (bom + "plain ascii text, with lines\n".encode(enc) * 50)[:4096]
    assert textmod.utf16_encoding(head) == (enc, len(bom))


def test_normal_and_binary_files_not_utf16() -> None:
    assert textmod.utf16_encoding(b"hello world\n" * 300) is None
    rng = random.Random(4)
    binary = bytes(rng.choice([0, 0, 0, rng.randrange(256)]) for _ in range(4096))
    assert textmod.utf16_encoding(binary) is None
    assert textmod.utf16_encoding(b"\xff\xfe\x00\x00" + "x".encode("utf-32-le") * 10) is None  # UTF-32
    # little-endian int16 sensor data: NUL parity like UTF-16 but not printable text
    ints = b"".join(rng.randrange(1, 32).to_bytes(2, "little") for _ in range(2048))
    assert textmod.utf16_encoding(ints) is None


def test_token_across_chunk_boundary(ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textmod, "UTF16_CHUNK", 1 << 10)
    monkeypatch.setattr(textmod, "UTF16_OVERLAP", 1 << 8)
    toks = [hf_token() for _ in range(6)]
    lines = []
    for i, t in enumerate(toks):
        lines.append("x" * (37 * i + 3) + " " + t)  # different offsets relative to the 512-char chunks
        lines.extend(["filler line of text"] * 9)
    p = tmp_path / "notes.txt"
    p.write_bytes(b"\xff\xfe" + "\n".join(lines).encode("utf-16-le"))
    got = sorted((f.line, f.column, f.secret or "") for f in scan_file(ctx, p))
    assert got == [(10 * i + 1, 37 * i + 5, t) for i, t in enumerate(toks)]


def test_utf16_via_cli(tmp_path: Path) -> None:
    tok = hf_token()
    (tmp_path / "a.reg").write_bytes(b"\xff\xfe" + f"Windows Registry\r\n\"token\"=\"{tok}\"\r\n".encode("utf-16-le"))
    rc, rep = scan_json(tmp_path, "--show-secrets")
    assert rc == 1 and [(f["secret"], f["line"]) for f in rep["findings"]] == [(tok, 2)]
