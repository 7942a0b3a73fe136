"""model22: Keras ``.h5`` configurations the HDF5 library reads but a byte search does not see.

Fixtures (``tests/fixtures/real_models_m22/make.py``, h5py 3.16 / HDF5 2.0; this suite never imports h5py):

- **A user block** (``h5py.File(..., userblock_size=512)``, or ``h5jam``): the superblock sits at 512 (the library
  also looks at 1024, 2048, ...) and the file may start with any text. On 75722a6 the model detector sniffed the
  first bytes only and gave **nothing** for a real Keras ``.h5`` with a Lambda layer behind a 512-byte user block.
- **A fractal heap stored through filters**: with more than eight root attributes (``libver="latest"``) the
  attributes, ``model_config`` among them, live in a fractal heap; the heap header may name a filter pipeline,
  and then the HDF5 library inflates each direct block on read. The twins are the real files with that heap's
  block deflated (headers and checksums rewritten; ``make.py`` checks that h5py reads the same ``model_config``
  back through the filter). On 75722a6 the deflate twins gave **nothing** (the name ``model_config`` and, for a
  Keras 2 style fixed-length string, the whole JSON are inside the compressed block) and the LZF twin only the
  info note; now they are CRITICAL (deflate: decoded and checked) and HIGH ``model.h5.hidden`` (LZF: a filter this
  reader cannot undo; the library itself never writes a filtered fractal heap).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from veritensor_fast.models import analyze
from veritensor_fast.models.hdf5 import filtered_heaps, lookup3
from veritensor_fast.models.sniff import hdf5_superblock

from conftest import scan_json

FIX = Path(__file__).parent / "fixtures" / "real_models_m22"
RT21 = Path(__file__).parent / "fixtures" / "real_models_rt21"


def found(raw: bytes, name: str = "m.h5") -> set[tuple[str, str]]:
    return {(i.rule_id, i.severity) for i in analyze(raw, name)}


LAMBDA = ("model.keras.lambda", "critical")
NOTE = ("model.h5.not-covered", "info")


@pytest.mark.parametrize("name", ["ub_evil_lambda.h5", "filtered_evil_escaped.h5", "filtered_evil_fixed.h5"])
def test_hidden_lambda_is_critical(name: str) -> None:
    assert LAMBDA in found((FIX / name).read_bytes())


def test_unknown_filter_fails_closed() -> None:
    issues = analyze((FIX / "filtered_lzf_fixed.h5").read_bytes(), "m.h5")
    hidden = [i for i in issues if i.rule_id == "model.h5.hidden"]
    assert [i.severity for i in hidden] == ["high"]
    assert "filter 32000" in hidden[0].message


def test_benign_twins_stay_as_the_real_files() -> None:
    # a real functional model behind a user block: the same info note as the real file, nothing else
    assert found((FIX / "ub_functional.h5").read_bytes()) == found((RT21 / "functional.h5").read_bytes()) == {NOTE}
    # a plain data file whose dense attributes are deflated: decoded, nothing Keras in it, no finding
    assert analyze((FIX / "filtered_benign.h5").read_bytes(), "data.h5") == []


def test_superblock_anywhere_the_library_looks() -> None:
    raw = (FIX / "ub_evil_lambda.h5").read_bytes()
    assert hdf5_superblock(raw) == 512
    body = raw[512:]
    for user_block in (1024, 4096, 1 << 16):  # past the 4 KiB head the sniffer sees
        shifted = b"#" * user_block + body
        assert hdf5_superblock(shifted) == user_block
        assert LAMBDA in found(shifted)
    assert hdf5_superblock(b"#" * 700 + body) == -1  # not a power of two: the library does not find it either
    assert LAMBDA not in found(b"#" * 700 + body)


def test_heap_addresses_count_from_the_superblock() -> None:
    # h5jam prepends a user block to an existing file: the library takes the superblock's position as the base
    raw = (FIX / "filtered_evil_fixed.h5").read_bytes()
    assert LAMBDA in found(b"\n" * 8192 + raw)


def test_member_of_an_archive(tmp_path: Path) -> None:
    import zipfile

    z = tmp_path / "models.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(FIX / "ub_evil_lambda.h5", "keras/ub_evil_lambda.h5")
        zf.write(FIX / "filtered_evil_fixed.h5", "keras/filtered.h5")
    assert LAMBDA in found(z.read_bytes(), "models.zip")


def test_lookup3_is_hdf5s_checksum() -> None:
    # Bob Jenkins' published hashlittle test vectors (lookup3.c, driver5)
    assert lookup3(b"") == 0xDEADBEEF
    assert lookup3(b"Four score and seven years ago") == 0x17770551
    assert lookup3(b"Four score and seven years ago", 1) == 0xCD628161


def test_damaged_heaps_fail_closed_never_raise() -> None:
    raw = bytearray((FIX / "filtered_evil_fixed.h5").read_bytes())
    at = raw.find(b"FRHP")
    # a chance "FRHP" in data, with a bad checksum: the library would not read it, nothing is reported
    assert filtered_heaps(bytes(raw[:at]) + b"FRHP" + bytes(200), 0) == ([], [])
    # the compressed block cut short: the heap is real (checksum good) but undecodable
    cut = bytes(raw[:-40])
    blocks, problems = filtered_heaps(cut, 0)
    assert problems
    assert ("model.h5.hidden", "high") in found(cut)
    for k in range(0, len(raw) - 8, 97):  # every kind of damage: findings or nothing, never an exception
        bad = bytearray(raw)
        bad[k:k + 8] = b"\xff" * 8
        analyze(bytes(bad), "m.h5")


def test_decoding_is_bounded() -> None:
    # a heap whose block inflates to far more than its declared size stops at the block size
    raw = (FIX / "filtered_evil_fixed.h5").read_bytes()
    blocks, problems = filtered_heaps(raw, 0)
    assert not problems and blocks and all(len(b) <= 65536 for b in blocks)
    assert zlib.decompress(zlib.compress(b"x")) == b"x"


def test_cli_reports_each_file(tmp_path: Path) -> None:
    code, rep = scan_json(FIX)
    by_file: dict[str, set[tuple[str, str]]] = {}
    for f in rep["findings"]:
        if f.get("kind") == "model":
            by_file.setdefault(Path(f["path"]).name, set()).add((f["rule_id"], f["severity"]))
    assert LAMBDA in by_file["ub_evil_lambda.h5"]
    assert LAMBDA in by_file["filtered_evil_escaped.h5"]
    assert LAMBDA in by_file["filtered_evil_fixed.h5"]
    assert ("model.h5.hidden", "high") in by_file["filtered_lzf_fixed.h5"]
    assert by_file["ub_functional.h5"] == {NOTE}
    assert "filtered_benign.h5" not in by_file
    assert rep["errors"] == []


def test_hostile_pipelines_and_signatures_are_bounded() -> None:
    from veritensor_fast.models import hdf5

    le = int.to_bytes
    # deflate then shuffle with a billion-byte element size: refused, never a loop per byte position
    pipe = bytes([2, 2]) + le(1, 2, "little") + le(0, 2, "little") + le(1, 2, "little") + le(9, 4, "little") \
        + le(2, 2, "little") + le(0, 2, "little") + le(1, 2, "little") + le(10**9, 4, "little")
    with pytest.raises(hdf5._Bad):
        hdf5._unfilter(b"x" * 100, 0, 100, 1000, hdf5._pipeline(pipe), 1)
    # a million "FRHP" decoys: stopped and reported (a real heap could hide behind them), not walked forever
    blocks, problems = filtered_heaps(b"\x89HDF\r\n\x1a\n\x02\x08\x08" + bytes(40) + b"FRHP" * (hdf5.MAX_HITS + 1), 0)
    assert blocks == [] and problems and "heap signatures" in problems[0]
