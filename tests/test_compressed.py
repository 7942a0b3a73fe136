"""Compressed files and archive defects (issues 11, 12, 13): content-routed, bounded decompression.

Plain ``.bz2``/``.xz``/``.zst``/``.lz4`` files are scanned like gzip; every member of a concatenated gzip is
read; a truncated ``.tar.gz`` is reported as corrupt and what was read before the damage is kept; member names are
scanned; compressed pickles (``.pkl.gz/.bz2/.xz/.zst``, pandas ``to_pickle(compression=...)``, joblib
``compress=...``, ``.tar.bz2``/``.tar.xz``) reach the model analyser whatever their name; encrypted zip members are
judged by what they could be.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veritensor_fast import decompress
from veritensor_fast.models import analyze

from conftest import hf_token, scan_json, zip_bytes

CMD = b"touch PWNED"
EVIL = b"\x80\x02cposix\nsystem\nq\x00X" + struct.pack("<I", len(CMD)) + CMD + b"q\x01\x85q\x02Rq\x03."


def _zstd(data: bytes) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    return bytes(zstandard.ZstdCompressor().compress(data))


def _lz4(data: bytes) -> bytes:
    lz4frame = pytest.importorskip("lz4.frame")
    return bytes(lz4frame.compress(data))


CODECS = {
    "gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "zlib": zlib.compress,
    "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE), "zstd": _zstd, "lz4": _lz4,
}


def _tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode=mode) as t:  # type: ignore[call-overload]
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def _secret_findings(rep: dict) -> list[tuple[str, str, str]]:
    return sorted((Path(f["path"]).name, (f.get("location") or {}).get("member", ""), f["secret"])
                  for f in rep["findings"] if f["kind"] == "secret")


# ---- secrets ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ext,codec", [("bz2", "bz2"), ("xz", "xz"), ("zst", "zstd"), ("lz4", "lz4"),
                                       ("gz", "gzip")])
def test_plain_compressed_files_are_scanned(tree: Path, ext: str, codec: str) -> None:
    tok = hf_token()
    (tree / f"app.log.{ext}").write_bytes(CODECS[codec](f"start\nlogin {tok}\n".encode()))
    code, rep = scan_json(tree, "--show-secrets")
    assert _secret_findings(rep) == [(f"app.log.{ext}", "app.log", tok)]
    assert [f["line"] for f in rep["findings"]] == [2]
    assert code == 1 and rep["errors"] == []


def test_compressed_file_routed_by_content_not_name(tree: Path) -> None:
    tok = hf_token()
    (tree / "notes.dat").write_bytes(bz2.compress(f"key {tok}\n".encode()))
    _, rep = scan_json(tree, "--show-secrets")
    assert [f["secret"] for f in rep["findings"]] == [tok]


@pytest.mark.parametrize("codec", ["gzip", "bz2", "xz", "zstd", "lz4"])
def test_every_member_of_concatenated_streams_is_read(tree: Path, codec: str) -> None:
    t1, t2, t3 = hf_token(), hf_token(), hf_token()
    c = CODECS[codec]
    (tree / "multi.bin").write_bytes(c(f"a {t1}\n".encode()) + c(f"b {t2}\n".encode()) + c(f"c {t3}\n".encode()))
    code, rep = scan_json(tree, "--show-secrets")
    assert sorted(f["secret"] for f in rep["findings"]) == sorted([t1, t2, t3])
    assert sorted(f["line"] for f in rep["findings"]) == [1, 2, 3]
    # found in the decompressed content (short literals of zstd/lz4 are also visible to the raw pass)
    assert {f["location"]["member"] for f in rep["findings"]} == {f"multi.bin ({codec} content)"}
    assert code == 1 and rep["errors"] == []


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_compressed_tars_are_walked(tree: Path, mode: str) -> None:
    tok = hf_token()
    (tree / "chart.tar.x").write_bytes(_tar({"a/values.yaml": f"x: 1\ntoken: {tok}\n".encode()}, mode))
    code, rep = scan_json(tree, "--show-secrets")
    assert _secret_findings(rep) == [("chart.tar.x", "a/values.yaml", tok)]
    assert code == 1 and rep["errors"] == []


def test_truncated_tar_gz_is_corrupt_and_keeps_what_was_read(tree: Path) -> None:
    tok = hf_token()
    import random

    noise = random.Random(3).randbytes(400_000)  # incompressible: the cut lands inside this member
    data = _tar({"first/.env": f"T={tok}\n".encode(), "second.bin": noise, "third.txt": b"x\n"}, "w:gz")
    (tree / "cut.tar.gz").write_bytes(data[:len(data) // 2])
    code, rep = scan_json(tree, "--show-secrets")
    assert _secret_findings(rep) == [("cut.tar.gz", "first/.env", tok)]
    assert [e["kind"] for e in rep["errors"]] == ["corrupt"], rep["errors"]
    assert "internal" not in rep["errors"][0]["reason"] and "EOFError" not in rep["errors"][0]["reason"]
    assert code == 1


def test_truncated_gzip_text_keeps_the_part_before_the_cut(tree: Path) -> None:
    tok = hf_token()
    import random

    data = gzip.compress(f"k {tok}\n".encode() + random.Random(5).randbytes(300_000))
    (tree / "log.gz").write_bytes(data[:len(data) // 2])
    code, rep = scan_json(tree, "--show-secrets")
    assert [f["secret"] for f in rep["findings"]] == [tok]
    assert [e["kind"] for e in rep["errors"]] == ["corrupt"]


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_member_names_are_scanned(tree: Path, compression: int) -> None:
    tok = hf_token()
    (tree / "names.zip").write_bytes(zip_bytes({f"backup/{tok}.txt": b"hello\n", "b.txt": b"x\n"}, compression))
    code, rep = scan_json(tree, "--show-secrets")
    got = [(f["secret"], f["location"]["member"], f["location"].get("part")) for f in rep["findings"]]
    assert got == [(tok, f"backup/{tok}.txt", "member-name")]
    assert code == 1


def test_tar_gz_and_7z_member_names_are_scanned(tree: Path) -> None:
    import py7zr

    t1, t2 = hf_token(), hf_token()
    (tree / "a.tgz").write_bytes(_tar({f"keys/{t1}": b"hello\n"}, "w:gz"))
    with py7zr.SevenZipFile(tree / "b.7z", "w") as z:
        z.writestr(b"x\n", f"keys/{t2}")
    _, rep = scan_json(tree, "--show-secrets")
    assert sorted(f["secret"] for f in rep["findings"]) == sorted([t1, t2])


def test_five_nested_zips_are_expanded(tree: Path) -> None:
    tok = hf_token()
    data = zip_bytes({"deep/.env": f"HF_TOKEN={tok}\n".encode()}, zipfile.ZIP_DEFLATED)
    for i in range(5):
        data = zip_bytes({f"level{i}.zip": data}, zipfile.ZIP_DEFLATED if i % 2 else zipfile.ZIP_STORED)
    (tree / "nest.zip").write_bytes(data)
    code, rep = scan_json(tree, "--show-secrets")
    assert [f["secret"] for f in rep["findings"]] == [tok]
    assert rep["findings"][0]["location"]["member"].count("!") == 5
    assert code == 1 and rep["errors"] == []


def test_nesting_beyond_the_hard_cap_is_reported(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from veritensor_fast.detectors import archive
    from veritensor_fast.engine import scan
    from veritensor_fast.sources.fs import FileSource
    from veritensor_fast.worker import ScanOptions

    monkeypatch.setattr(archive, "MAX_DEPTH", 2)
    data = zip_bytes({"x.env": f"T={hf_token()}\n".encode()}, zipfile.ZIP_DEFLATED)
    for i in range(4):
        data = zip_bytes({f"l{i}.zip": data}, zipfile.ZIP_DEFLATED)
    (tree / "nest.zip").write_bytes(data)
    res = scan(FileSource([str(tree)]), ScanOptions(), jobs=1)
    assert res.findings == []
    assert [e.kind for e in res.errors] == ["limit"]
    assert "nested more than 2 levels" in res.errors[0].reason


# ---- the decompression layer ------------------------------------------------------------------------------------

def test_budget_is_shared_and_spent_by_members_that_hit_a_limit() -> None:
    bomb = bz2.compress(b"\0" * (8 << 20))
    b = decompress.Budget(20 << 20)
    for _ in range(2):  # each read stops at 1 MiB of output but still pays for what it decompressed
        data, problem = decompress.read(bomb, "bz2", 1 << 20, budget=b, partial=True)
        assert len(data) == 1 << 20 and problem and problem.startswith("limit")
    assert b.spent >= 2 << 20
    with pytest.raises(decompress.BudgetExhausted):
        for _ in range(40):
            decompress.read(bomb, "bz2", 16 << 20, budget=b)


def test_overlapping_zip_entries_are_read_once() -> None:
    from veritensor_fast.models.base import ModelLimits
    from veritensor_fast.models.containers import zip_members

    payload = b"\0" * (1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    comp = c.compress(payload) + c.flush()
    crc = zlib.crc32(payload)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(comp), len(payload), 5, 0) + b"k.txt"
    cd = b""
    for i in range(50):
        nm = b"k%05d.txt" % i
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(comp), len(payload),
                          len(nm), 0, 0, 0, 0, 0, 0) + nm
    data = local + comp + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 50, 50, len(cd), len(local + comp), 0)
    members, anomalies = zip_members(data, ModelLimits())
    assert len(members) == 1
    assert any("49 central-directory entries" in a.message for a in anomalies)
    every, _ = zip_members(data, ModelLimits(), all_entries=True)
    assert len(every) == 50 and sum(1 for m in every if m.shared_with) == 49


# ---- model files ------------------------------------------------------------------------------------------------

def _crit(issues: list) -> bool:
    return any(i.severity == "critical" and i.evidence == "posix.system" for i in issues)


@pytest.mark.parametrize("codec", sorted(CODECS))
@pytest.mark.parametrize("name", ["model.pkl.{ext}", "model.joblib", "frame.pickle", "weights"])
def test_compressed_malicious_pickle_is_critical_whatever_the_name(codec: str, name: str) -> None:
    data = CODECS[codec](EVIL)
    issues = analyze(data, name.format(ext=codec))
    assert _crit(issues), issues


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_compressed_benign_pickle_is_clean(codec: str) -> None:
    import pickle

    benign = pickle.dumps({"a": [1, 2.5, "x"], "b": (None, True)}, protocol=4)
    assert analyze(CODECS[codec](benign), "frame.pkl") == []


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz"])
def test_compressed_tar_with_malicious_pickle(mode: str) -> None:
    assert _crit(analyze(_tar({"weights/state": EVIL}, mode), "model.tar.x"))


def test_compressed_pickle_inside_a_zip() -> None:
    assert _crit(analyze(zip_bytes({"m/model.pkl.xz": lzma.compress(EVIL)}), "bundle.zip"))


def test_compressed_non_model_file_is_no_model_finding() -> None:
    assert analyze(gzip.compress(b"just a log line\n" * 100), "app.log.gz") == []
    assert analyze(bz2.compress(b'{"a": 1}\n'), "data.json.bz2") == []


def test_cli_compressed_pickles(tree: Path) -> None:
    for codec in ("gzip", "bz2", "xz", "zlib"):
        (tree / f"m_{codec}.bin").write_bytes(CODECS[codec](EVIL))
    code, rep = scan_json(tree)
    crit = {Path(f["path"]).name for f in rep["findings"] if f["severity"] == "critical"}
    assert crit == {"m_gzip.bin", "m_bz2.bin", "m_xz.bin", "m_zlib.bin"}
    assert code == 1


def _encrypted_zip(name: str, payload: bytes, method: int = 0) -> bytes:
    """A zip whose one member has the encryption flag and ZipCrypto-like (random) bytes, or ``payload``."""
    crc = zlib.crc32(payload)
    nm = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 1, method, 0, 0, crc, len(payload), len(payload), len(nm),
                        0) + nm + payload
    cd = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 1, method, 0, 0, crc, len(payload), len(payload),
                     len(nm), 0, 0, 0, 0, 0, 0) + nm
    return local + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), len(local), 0)


def test_encrypted_text_member_is_not_a_model_anomaly() -> None:
    import random

    cipher = random.Random(7).randbytes(300)
    assert analyze(_encrypted_zip("test.txt", cipher), "secret.zip") == []
    assert analyze(_encrypted_zip("test.txt", cipher, method=8), "secret.zip") == []


def test_encrypted_member_that_could_be_a_pickle_could_not_be_analysed() -> None:
    import random

    cipher = random.Random(8).randbytes(300)
    issues = analyze(_encrypted_zip("archive/data.pkl", cipher, method=8), "model.pt")
    assert [(i.rule_id, i.severity) for i in issues] == [("model.zip.anomaly", "medium")]
    assert "could not be analysed" in issues[0].message


def test_encryption_flag_on_a_plaintext_pickle_is_still_analysed() -> None:
    issues = analyze(_encrypted_zip("archive/data.pkl", EVIL), "model.pt")
    assert _crit(issues)
    assert any(i.rule_id == "model.zip.anomaly" and "encryption flag" in i.message for i in issues)


# ---- real joblib output (fixtures/compressed, written by make_fixtures.py; never loaded) -------------------------

JOBLIB = Path(__file__).parent / "fixtures" / "compressed"


@pytest.mark.parametrize("codec", ["zlib", "gzip", "bz2", "xz", "lzma", "lz4"])
def test_real_joblib_compressors(codec: str) -> None:
    if codec == "lz4":
        pytest.importorskip("lz4.frame")
    evil = analyze((JOBLIB / f"evil_{codec}.joblib").read_bytes(), f"evil_{codec}.joblib")
    assert _crit(evil), evil
    assert analyze((JOBLIB / f"benign_{codec}.joblib").read_bytes(), f"benign_{codec}.joblib") == []


def test_peeking_at_many_members_costs_little_budget() -> None:
    """The model analyser sniffs every member's first bytes: that must not spend the budget of a big benign zip."""
    blob = b"# id,value\n" + b"1,2,3\n" * 200_000  # 1.2 MB of CSV, deflates well
    data = zip_bytes({f"data/part{i:03d}.csv": blob for i in range(200)}, zipfile.ZIP_DEFLATED)
    with decompress.scope(decompress.Budget(1 << 30)) as b:
        assert analyze(data, "dataset.zip") == []
    assert b.spent < 4 << 20, b.spent  # 200 heads of 4 KiB, not 200 x 1.2 MB


def _raw_zip(entries: list[tuple[bytes, int, int, int, int]], body: bytes) -> bytes:
    """A zip from ``body`` (local headers already inside) and central entries (name, method, offset, csize, crc)."""
    cd = b"".join(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, csize, csize,
                              len(name), 0, 0, 0, 0, 0, off) + name for name, method, off, csize, crc in entries)
    n = len(entries)
    return body + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd), len(body), 0)


def _local(name: bytes, method: int, size: int) -> bytes:
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, 0, size, size, len(name), 0) + name


def test_data_shared_with_a_tensor_storage_entry_cannot_hide_data_pkl() -> None:
    evil0 = b"cposix\nsystem\n(S'echo pwned'\ntR."  # protocol 0: no PROTO header, no "strong pickle" look
    body = _local(b"archive/data/0", 0, len(evil0)) + evil0
    z = _raw_zip([(b"archive/data/0", 0, 0, len(evil0), zlib.crc32(evil0)),
                  (b"archive/data.pkl", 0, 0, len(evil0), zlib.crc32(evil0))], body)
    issues = analyze(z, "model.pt")
    assert any(i.severity == "critical" and i.evidence == "posix.system" for i in issues), issues


def test_stored_entries_starting_inside_each_other_are_charged(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries whose local headers sit inside one big stored member: each would re-scan the rest of it."""
    from veritensor_fast.engine import scan
    from veritensor_fast.sources.fs import FileSource
    from veritensor_fast.worker import ScanOptions

    monkeypatch.setattr(decompress, "DEFAULT_BUDGET", 8 << 20)
    monkeypatch.delenv("VERITENSOR_FAST_DECOMPRESS_BUDGET", raising=False)
    filler = b"log line without secrets\n" * 4000  # 100 KB of text between the nested local headers
    parts = []
    for i in range(200):
        name = b"part%03d.txt" % i
        parts.append((name, _local(name, 0, 0)))
    body = b"".join(h + filler for _, h in parts)
    entries = []
    off = 0
    for name, h in parts:
        entries.append((name, 0, off, len(body) - off - len(h), 0))
        off += len(h) + len(filler)
    (tree / "nested.zip").write_bytes(_raw_zip(entries, body))
    tok = hf_token()
    (tree / "beside.env").write_text(f"T={tok}\n")
    res = scan(FileSource([str(tree)]), ScanOptions(), jobs=1)
    assert [f.secret for f in res.findings if f.kind == "secret"] == [tok]
    assert any(f.rule_id == "model.zip.bomb" and "start inside" in f.message for f in res.findings)
    assert [e.kind for e in res.errors] == ["limit"] and "budget" in res.errors[0].reason


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=3000), st.integers(1, 40), st.integers(1, 9000), st.integers(1, 70000),
       st.sampled_from(["gzip", "zlib", "bz2", "xz", "lzma", "zstd", "lz4"]))
def test_stream_round_trips_at_any_chunking(seed: bytes, reps: int, in_chunk: int, out_chunk: int, codec: str) -> None:
    raw = (seed + b"\x00" * 300) * reps  # long matches: output limits land inside them
    comp = CODECS[codec](raw) + CODECS[codec](b"tail")
    got = b"".join(decompress.stream(comp, codec, in_chunk=in_chunk, out_chunk=out_chunk,
                                     budget=decompress.Budget(1 << 30)))
    assert got == raw + (b"tail" if codec not in ("zlib", "lzma") else b"")
