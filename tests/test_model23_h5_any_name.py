"""model23: a Keras HDF5 file behind a user block is analysed whatever its name.

tf.keras 2's ``load_model(path)`` opens any file ``h5py.is_hdf5`` accepts, whatever its name, and the HDF5 library
finds the superblock behind a user block of any bytes (at 512, 1024, 2048, ...: ``h5py.File(...,
userblock_size=512)``, ``h5jam``). The fixtures are model22's real files (``real_models_m22/make.py``: a real
Keras 3 ``.h5`` copied by h5py behind a 512-byte user block that starts with a line of text). On 6aef5ba the
superblock probe ran only for model extensions: the Lambda twin under ``model_latest`` (or ``weights.tmp``, or
a user block whose first bytes sniff as a pickle or a safetensors header) gave **no finding**, a file over
16 MiB was never handed to the model detector at all. Now each is CRITICAL ``model.keras.lambda`` and the benign
twin is the same info note the real ``.h5`` gets; an ordinary file costs one length test (gate) or a few
8-byte probes (large files).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.models import analyze

from conftest import scan_json

FIX = Path(__file__).parent / "fixtures" / "real_models_m22"
EVIL = (FIX / "ub_evil_lambda.h5").read_bytes()
GOOD = (FIX / "ub_functional.h5").read_bytes()
LAMBDA = ("model.keras.lambda", "critical")
NOTE = ("model.h5.not-covered", "info")


def _scan(tmp_path: Path, files: dict[str, bytes]) -> tuple[int, set[tuple[str, str, str]]]:
    d = tmp_path / "scan"
    d.mkdir()
    for name, raw in files.items():
        (d / name).write_bytes(raw)
    code, rep = scan_json(d, "--jobs", "1", cap=2 << 30)
    assert rep["errors"] == []
    return code, {(f["rule_id"], f["severity"], Path(f["path"]).name) for f in rep["findings"]
                  if f["rule_id"].startswith("model.")}


@pytest.mark.parametrize("name", ["model_latest", "weights.tmp", "checkpoint-0001.data", "README"])
def test_lambda_behind_a_user_block_under_any_name(tmp_path: Path, name: str) -> None:
    # with other small files in the batch, so the batch gate decides too
    code, found = _scan(tmp_path, {name: EVIL, "a.txt": b"hello\n" * 200, "b.py": b"x = 1\n" * 300})
    assert (*LAMBDA, name) in found and code == 1
    assert LAMBDA in {(i.rule_id, i.severity) for i in analyze(EVIL, name)}


def test_benign_twin_under_any_name_is_the_real_files_note(tmp_path: Path) -> None:
    code, found = _scan(tmp_path, {"functional": GOOD, "a.txt": b"hello\n" * 200})
    assert found == {(*NOTE, "functional")} and code == 0


@pytest.mark.parametrize("first", [b"\x80\x04K\x01.", b"(lp0\n.", b"\x10\x00\x00\x00\x00\x00\x00\x00{}"])
def test_user_block_that_sniffs_as_something_else(first: bytes) -> None:
    # the user block may start with anything: a pickle, a protocol 0 stream, a safetensors-like header
    raw = first + EVIL[len(first):]
    assert LAMBDA in {(i.rule_id, i.severity) for i in analyze(raw, "model")}


def test_large_file_is_handed_to_the_model_detector(tmp_path: Path) -> None:
    # a 32 MiB user block: the file is over 16 MiB (scanned through a view, not in windows, only if asked for)
    raw = b"#" * (32 << 20) + EVIL[512:]
    code, found = _scan(tmp_path, {"model_big": raw})
    assert (*LAMBDA, "model_big") in found and code == 1


def test_ordinary_files_are_not_hdf5() -> None:
    from veritensor_fast.models.sniff import hdf5_after_userblock

    sig = b"\x89HDF\r\n\x1a\n"
    assert not hdf5_after_userblock(b"x" * 519 + sig[:1])
    assert not hdf5_after_userblock(b"x" * 700 + sig)  # not at a power of two: the library does not look there
    assert not hdf5_after_userblock(sig + b"x" * 1000)  # at 0: sniffed as hdf5 already
    assert hdf5_after_userblock(b"x" * 512 + sig)
    assert analyze(b"x" * 700 + sig + bytes(100), "model") == []


def test_keras_h5_over_16_mib_is_analysed(tmp_path: Path) -> None:
    # a Keras .h5 with its weights is often over 16 MiB: read through a view, its JSON search raised TypeError
    # on 6aef5ba ("detector model failed", exit 3) and its model_config was never checked
    raw = EVIL + bytes(20 << 20)
    code, found = _scan(tmp_path, {"big.h5": raw})
    assert (*LAMBDA, "big.h5") in found and code == 1


def test_json_search_through_a_view_matches_the_bytes_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from veritensor_fast.buffers import LargeFile
    from veritensor_fast.models import hdf5
    from veritensor_fast.randread import PreadView

    monkeypatch.setattr(hdf5, "_WINDOW", 4096)
    monkeypatch.setattr(hdf5, "_OVERLAP", 512)
    obj = b'{"class_name": "Lambda", "config": {"a": 1}}\x00'
    raw = bytearray(b"\x00" * 40_000)
    for at in (0, 4090, 4096 - 3, 8191, 12_000, 39_900):  # across the window edges too
        raw[at:at + len(obj)] = obj
    p = tmp_path / "x.h5"
    p.write_bytes(bytes(raw))
    fd = os.open(p, os.O_RDONLY)
    try:
        view = PreadView(LargeFile(fd, os.fstat(fd)))
        assert hdf5.json_objects(view, 1 << 20) == hdf5.json_objects(bytes(raw), 1 << 20)
        assert len(hdf5.json_objects(view, 1 << 20)[0]) == 5  # 4093 overwrote 4090's start
    finally:
        os.close(fd)
