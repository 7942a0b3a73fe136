"""Fuzzing the container readers and the decompression layer on mutated real archives (issue 11).

Whatever the bytes, the archive detector and the model analyser must end with findings or ``errors`` entries,
never an exception (an ``internal`` error) and never unbounded work. Deterministic (derandomized hypothesis
profile in conftest); ``HYPOTHESIS_PROFILE=explore pytest tests/test_archive_fuzz.py`` searches further.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import py7zr
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veritensor_fast import decompress
from veritensor_fast.findings import Item
from veritensor_fast.models import analyze
from veritensor_fast.worker import ItemScan, ScanOptions, WorkerContext

from conftest import hf_token, zip_bytes

TOK = hf_token()
TEXT = f"user=a\ntoken={TOK}\n".encode() * 20


def _tar(mode: str) -> bytes:
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode=mode) as t:  # type: ignore[call-overload]
        for name in ("a/.env", "b/cfg.yaml"):
            ti = tarfile.TarInfo(name)
            ti.size = len(TEXT)
            t.addfile(ti, io.BytesIO(TEXT))
    return bio.getvalue()


def _7z() -> bytes:
    bio = io.BytesIO()
    with py7zr.SevenZipFile(bio, "w") as z:
        z.writestr(TEXT, "notes.txt")
        z.writestr(b"\x80\x02}q\x00.", "m.pkl")
    return bio.getvalue()


SEEDS = [
    zip_bytes({"a.env": TEXT, "m/data.pkl": b"\x80\x02}q\x00."}, zipfile.ZIP_DEFLATED),
    zip_bytes({"a.env": TEXT}, zipfile.ZIP_BZIP2),
    zip_bytes({"a.env": TEXT}, zipfile.ZIP_LZMA),
    zip_bytes({"inner.zip": zip_bytes({"x.env": TEXT}, zipfile.ZIP_DEFLATED)}),
    _tar("w:gz"), _tar("w:bz2"), _tar("w:xz"), _tar("w"),
    gzip.compress(TEXT) + gzip.compress(TEXT), bz2.compress(TEXT), lzma.compress(TEXT),
    lzma.compress(TEXT, format=lzma.FORMAT_ALONE), _7z(),
]

_CTX: list[WorkerContext] = []


def _ctx() -> WorkerContext:
    if not _CTX:
        _CTX.append(WorkerContext(ScanOptions()))
    return _CTX[0]


def _scan(data: bytes, name: str) -> ItemScan:
    item = Item("file", name, name, len(data), None)
    scan = ItemScan(_ctx(), item)
    scan.budgets["secrets"] = decompress.Budget(16 << 20)
    scan.budgets["model"] = decompress.Budget(16 << 20)
    _ctx().scan_buffer(data, item, scan)
    return scan


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.integers(0, 3))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == 0 and data:
            data[i] = draw(st.integers(0, 255))
        elif op == 1:
            del data[i:i + draw(st.integers(1, 64))]
        elif op == 2:
            data[i:i] = draw(st.binary(min_size=1, max_size=32))
        else:
            data = data[:i]  # truncation
    return bytes(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutated(), st.sampled_from(["x.zip", "x.tar.gz", "x.bin", "model.pt", "log.gz"]))
def test_mutated_archives_never_crash(data: bytes, name: str) -> None:
    scan = _scan(data, name)
    assert not [e for e in scan.errors if e.kind == "internal"], scan.errors
    with decompress.scope(decompress.Budget(16 << 20)):
        analyze(data, name)  # never raises for bad input


def test_seeds_find_their_tokens() -> None:
    for seed in SEEDS:
        scan = _scan(seed, "seed.bin")
        found = [f.secret for f in scan.findings + scan.finished if f.kind == "secret"]
        assert TOK in found, seed[:8]
        assert scan.errors == []


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs the zip command")
def test_real_password_protected_zip(tmp_path: Path) -> None:
    """``zip -e`` (ZipCrypto): a text member is no model anomaly; a model-named one could not be analysed."""
    (tmp_path / "test.txt").write_bytes(TEXT)
    (tmp_path / "model.pkl").write_bytes(b"\x80\x02}q\x00." * 50)
    subprocess.run(["zip", "-q", "-P", "pw", str(tmp_path / "t.zip"), "test.txt"], cwd=tmp_path, check=True)
    subprocess.run(["zip", "-q", "-P", "pw", str(tmp_path / "m.zip"), "model.pkl"], cwd=tmp_path, check=True)
    assert analyze((tmp_path / "t.zip").read_bytes(), "t.zip") == []
    issues = analyze((tmp_path / "m.zip").read_bytes(), "m.zip")
    assert [(i.rule_id, i.severity) for i in issues] == [("model.zip.anomaly", "medium")]
    assert "could not be analysed" in issues[0].message
    scan = _scan((tmp_path / "t.zip").read_bytes(), "t.zip")
    assert [e.kind for e in scan.errors] == ["unreadable"] and "encrypted" in scan.errors[0].reason


# ---- crashes the fuzzer found (regressions) ---------------------------------------------------------------------

def _tar_header_with_size(raw_size: bytes) -> bytes:
    ti = tarfile.TarInfo("a.txt")
    ti.size = 10
    h = bytearray(ti.tobuf(format=tarfile.GNU_FORMAT))
    h[124:136] = raw_size
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\x00 " % sum(h[:512])
    return bytes(h[:512])


@pytest.mark.parametrize("size", [(-4096).to_bytes(12, "big", signed=True), b"%011o\x00" % 1_000_000],
                         ids=["negative", "past-the-end"])
def test_tar_header_with_a_bad_size_is_corrupt_not_a_crash(size: bytes) -> None:
    data = _tar_header_with_size(size) + b"x" * 1024  # a plain tar cut short (or lying about its size)
    scan = _scan(data, "x.tar")
    assert not [e for e in scan.errors if e.kind == "internal"], scan.errors
    analyze(data, "x.tar")
    analyze(gzip.compress(data), "x.tar.gz")


def test_lzma_member_asking_for_a_huge_dictionary_is_a_limit() -> None:
    import struct
    import zlib

    payload = struct.pack("<BBH", 9, 4, 5) + b"\x5d" + b"\xff\xff\xff\xff" + b"\x00" * 64
    nm = b"data.pkl"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 63, 0, 14, 0, 0, 0, len(payload), 1 << 20, len(nm), 0) + nm
    cd = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 63, 63, 0, 14, 0, 0, 0, len(payload), 1 << 20, len(nm), 0, 0,
                     0, 0, 0, 0) + nm
    z = local + payload + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), len(local + payload), 0)
    assert zlib.crc32(z) is not None
    issues = analyze(z, "model.pt")  # no MemoryError: a 4 GiB dictionary is refused before it is allocated
    assert not any(i.severity == "critical" for i in issues)
    scan = _scan(z, "model.zip")
    assert not [e for e in scan.errors if e.kind == "internal"]
