"""review22: model22's fractal-heap reader (``models/hdf5.py``) on real benign files and hostile heap headers.

- **Cry wolf on a real benign file.** Every heap header the library writes (unfiltered) counted towards
  ``MAX_HEAPS``: a real h5py file with more than 256 groups in dense storage (``libver="latest"``, more than eight
  links or attributes per group; ``fixtures/real_models_r22``) was a HIGH ``model.h5.hidden`` (exit 1). 75722a6
  gave nothing; now nothing again (only filtered heaps, which the library never writes, are counted and decoded).
- **A hang.** Every candidate header naming a filter pipeline was checksummed in pure Python over its
  pipeline's length (up to 64 KiB, ~20 ms each) before the checksum could reject it: a 98 KB file of 200 such
  headers took 3 CPU-s, 10 MB ~25 minutes. The bytes checksummed per file are now bounded and, past the bound,
  the file is reported (fail closed), never walked on.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from veritensor_fast.models import analyze, hdf5

from conftest import scan_json

FIX = Path(__file__).parent / "fixtures" / "real_models_r22"


def test_real_file_with_many_dense_groups_is_not_a_finding(tmp_path: Path) -> None:
    raw = gzip.decompress((FIX / "dense_links.h5.gz").read_bytes())
    assert raw.count(b"FRHP") > hdf5.MAX_HEAPS
    (tmp_path / "dense_links.h5").write_bytes(raw)
    code, rep = scan_json(tmp_path / "dense_links.h5")
    assert rep["findings"] == [] and rep["errors"] == [] and code == 0
    assert analyze(raw, "dense_links.h5") == []


def _filtered_decoys(n: int, filter_len: int = 65535) -> bytes:
    """A version 0 superblock, then ``n`` heap headers that pass every cheap test and name a long filter
    pipeline, each with a wrong checksum."""
    sb = bytearray(b"\x89HDF\r\n\x1a\n" + bytes(56))
    sb[13] = sb[14] = 8
    h = bytearray(142)
    h[0:4] = b"FRHP"
    h[7:9] = struct.pack("<H", filter_len)
    h[110:112] = struct.pack("<H", 4)  # table width
    h[112:120] = struct.pack("<Q", 512)  # starting block size
    h[120:128] = struct.pack("<Q", 65536)  # maximum direct block size
    h[128:130] = struct.pack("<H", 32)  # maximum heap size (bits)
    return bytes(sb) + bytes(h) * n + bytes(filter_len + 64)


def test_checksummed_bytes_are_bounded_and_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    spent = [0]
    real = hdf5.lookup3

    def counting(data: bytes, initval: int = 0) -> int:
        spent[0] += len(data)
        return real(data, initval)

    monkeypatch.setattr(hdf5, "lookup3", counting)
    blocks, problems = hdf5.filtered_heaps(_filtered_decoys(200), 0)
    assert spent[0] <= 2 << 20  # 75722a6..integ: 200 x 64 KiB = 13 MB in pure Python
    assert blocks == [] and len(problems) == 1 and "bytes of filtered heap headers" in problems[0]
    issues = analyze(_filtered_decoys(200), "m.h5")
    assert [(i.rule_id, i.severity) for i in issues] == [("model.h5.hidden", "high")]


def test_a_few_short_decoys_are_still_checked_quietly() -> None:
    # a handful of candidates with short pipelines stay under the bound: rejected by their checksum, no finding
    assert hdf5.filtered_heaps(_filtered_decoys(20, filter_len=16), 0) == ([], [])
