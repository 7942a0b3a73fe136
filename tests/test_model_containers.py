"""Containers and formats: lenient zip (torch/keras/npz), tar, 7z, nesting limits, bombs, polyglots,
.npy/.safetensors/.gguf/.keras/.h5 checks, and bounded memory on a large stored checkpoint."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile

import py7zr
import pytest
from test_model_pickle import P2, P4, call1, glob, rules, sg, torch_data_pkl

from veritensor_fast.models import AnalyzeOptions, ModelLimits, analyze

from conftest import zip_bytes

EVIL = P4 + call1(sg("os", "system")) + b"."


zbytes = zip_bytes


def torch_zip(pkl: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    members = {"archive/data.pkl": pkl, "archive/byteorder": b"little", "archive/data/0": b"\x80\x02" + b"\x00" * 14,
               "archive/version": b"3\n", "archive/.data/serialization_id": b"1234567890"}
    members.update(extra or {})
    return zbytes(members)


def crit(issues: list, ev: str = "os.system") -> bool:
    return any(i.severity == "critical" and ev in i.evidence for i in issues)


def test_benign_torch_zip_checkpoint_passes() -> None:
    assert analyze(torch_zip(torch_data_pkl()), "pytorch_model.bin") == []


def test_torch_zip_with_malicious_data_pkl() -> None:
    issues = analyze(torch_zip(EVIL), "pytorch_model.bin")
    assert crit(issues)
    assert any(i.location and i.location.get("member") == "archive/data.pkl" for i in issues)


def test_zip_member_with_no_extension_is_scanned_by_content() -> None:
    assert crit(analyze(zbytes({"weights": b"cos\nsystem\n(S'echo pwned'\ntR.", "readme.txt": b"hi"}), "m.zip"))


def test_zip_crc_mismatch_is_read_anyway_and_reported() -> None:
    """picklescan: CRC errors made zipfile raise while PyTorch loads the member (GHSA-... zip CRC class)."""
    data = bytearray(torch_zip(EVIL))
    i = data.find(b"PK\x01\x02")
    while i >= 0:  # corrupt every CRC in the central directory
        data[i + 16:i + 20] = b"\x00\x00\x00\x00"
        i = data.find(b"PK\x01\x02", i + 4)
    issues = analyze(bytes(data), "pytorch_model.bin")
    assert crit(issues)
    assert any(i.rule_id == "model.zip.anomaly" and "CRC" in i.message for i in issues)


def test_zip_encryption_flag_on_plain_data() -> None:
    data = bytearray(torch_zip(EVIL))
    i = data.find(b"PK\x01\x02")
    while i >= 0:
        data[i + 8] |= 1
        i = data.find(b"PK\x01\x02", i + 4)
    i = data.find(b"PK\x03\x04")
    data[i + 6] |= 1
    issues = analyze(bytes(data), "pytorch_model.bin")
    assert crit(issues)
    assert any("encryption flag" in i.message for i in issues)


def test_zip_local_and_central_name_mismatch() -> None:
    data = bytearray(torch_zip(EVIL))
    i = data.find(b"PK\x03\x04")  # first local header: archive/data.pkl
    n = struct.unpack_from("<H", data, i + 26)[0]
    data[i + 30:i + 30 + n] = b"x" * n
    issues = analyze(bytes(data), "pytorch_model.bin")
    assert crit(issues)
    assert any("local header names it" in i.message for i in issues)


def test_deflated_zip_and_nested_zip_in_tar_in_7z() -> None:
    inner = zbytes({"archive/data.pkl": EVIL}, zipfile.ZIP_DEFLATED)
    tbio = io.BytesIO()
    with tarfile.open(fileobj=tbio, mode="w") as tf:
        ti = tarfile.TarInfo("model.pt")
        ti.size = len(inner)
        tf.addfile(ti, io.BytesIO(inner))
    sbio = io.BytesIO()
    with py7zr.SevenZipFile(sbio, "w") as sz:
        sz.writestr(tbio.getvalue(), "bundle.tar")
    issues = analyze(sbio.getvalue(), "bundle.7z")
    assert crit(issues)
    assert any("bundle.tar!model.pt!archive/data.pkl" in (i.location or {}).get("member", "") for i in issues)


def test_7z_archive_with_pickle_member() -> None:
    sbio = io.BytesIO()
    with py7zr.SevenZipFile(sbio, "w") as sz:
        sz.writestr(EVIL, "model.pkl")
    assert crit(analyze(sbio.getvalue(), "m.7z"))


def test_nesting_depth_limit_is_a_finding() -> None:
    data = EVIL
    for _ in range(6):
        data = zbytes({"inner.zip" if data[:2] == b"PK" else "m.pkl": data})
    issues = analyze(data, "deep.zip", AnalyzeOptions(limits=ModelLimits(max_depth=3)))
    assert "model.archive.limit" in rules(issues)


def test_zip_bomb_is_a_finding_not_a_hang() -> None:
    bomb = zbytes({"data.pkl": b"\x80\x04" + b"N0" * (4 << 20)}, zipfile.ZIP_DEFLATED)  # 8 MiB in ~8 KiB
    issues = analyze(bomb, "bomb.zip", AnalyzeOptions(limits=ModelLimits(max_member_bytes=1 << 20)))
    assert "model.zip.bomb" in rules(issues)


def test_polyglot_pickle_and_zip_analysed_as_both() -> None:
    data = EVIL + torch_zip(P2 + call1(glob("subprocess", "call")) + b".")
    issues = analyze(data, "poly.bin")
    assert crit(issues, "os.system") and crit(issues, "subprocess.call")
    assert "model.polyglot" in rules(issues)


def test_legacy_torch_tar_format() -> None:
    tbio = io.BytesIO()
    with tarfile.open(fileobj=tbio, mode="w") as tf:
        for name, body in [("sys_info", P2 + b"}."), ("pickle", EVIL), ("storages", P2 + b"K\x00." + b"\x00" * 64),
                           ("tensors", P2 + b"K\x00.")]:
            ti = tarfile.TarInfo(name)
            ti.size = len(body)
            tf.addfile(ti, io.BytesIO(body))
    assert crit(analyze(tbio.getvalue(), "old.tar"))


def test_corrupt_zip_is_reported_not_clean() -> None:
    data = torch_zip(torch_data_pkl())
    cut = data[: data.find(b"PK\x01\x02") + 10] + b"PK\x05\x06" + b"\x00" * 18
    issues = analyze(cut, "pytorch_model.bin")
    assert issues and all(i.severity in ("medium", "high", "critical") for i in issues)


# ---- npy / npz ----------------------------------------------------------------------------------------


def npy(descr: str, shape: tuple[int, ...], body: bytes) -> bytes:
    hdr = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    hdr += b" " * (-(10 + len(hdr) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + body


def test_npy_object_dtype_pickle_is_analysed() -> None:
    issues = analyze(npy("|O", (1,), EVIL), "a.npy")
    assert crit(issues) and "model.npy.object" in rules(issues)


def test_npy_python2_long_shape_is_a_valid_header() -> None:
    """numpy's own test data (win64python2.npy) writes ``(2L,)``: a benign header, not "invalid"."""
    hdr = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }"
    hdr += b" " * (-(10 + len(hdr) + 1) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + b"\x00" * 16
    assert analyze(data, "win64python2.npy") == []
    bad = data.replace(b"'<f8'", b"'|O' ").replace(b"\x00" * 16, EVIL)
    assert crit(analyze(bad, "x.npy"))


def test_npz_benign_and_malicious() -> None:
    good = zbytes({"a.npy": npy("<f8", (2,), b"\x00" * 16)})
    assert analyze(good, "x.npz") == []
    bad = zbytes({"a.npy": npy("<f8", (2,), b"\x00" * 16), "b.npy": npy("|O", (1,), EVIL)})
    assert crit(analyze(bad, "x.npz"))


# ---- safetensors -----------------------------------------------------------------------------------------


def st(header: dict, body: bytes) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


def test_valid_safetensors_passes() -> None:
    hdr = {"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
           "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]}}
    assert analyze(st(hdr, b"\x00" * 22), "model.safetensors") == []


@pytest.mark.parametrize("hdr,body,frag", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 12, "slack or trailing"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\x00" * 12, "not contiguous"),
    ({"a": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 8, "unknown dtype"),
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\x00" * 8, "does not match"),
    ({"__metadata__": {"k": 1}, "a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"\x00", "strings"),
])
def test_invalid_safetensors_findings(hdr: dict, body: bytes, frag: str) -> None:
    issues = analyze(st(hdr, body), "m.safetensors")
    assert any(i.rule_id == "model.safetensors.invalid" and frag in i.message for i in issues), issues


def test_safetensors_header_length_beyond_file() -> None:
    issues = analyze(struct.pack("<Q", 10_000) + b'{"a": 1}', "m.safetensors")
    assert "model.safetensors.invalid" in rules(issues)


# ---- gguf -------------------------------------------------------------------------------------------------


def gstr(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(kv: list[tuple[str, int, bytes]], tensors: list[tuple[str, list[int], int, int]], data: bytes) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for k, t, v in kv:
        out += gstr(k) + struct.pack("<I", t) + v
    for name, dims, gt, off in tensors:
        out += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", gt, off)
    out += b"\x00" * (-len(out) % 32)
    return out + data


def test_valid_gguf_passes() -> None:
    kv = [("general.architecture", 8, gstr("llama")), ("general.alignment", 4, struct.pack("<I", 32)),
          ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + gstr("a") + gstr("b")),
          ("tokenizer.chat_template", 8, gstr("{% for m in messages %}{{ m['content'] }}{% endfor %}"))]
    assert analyze(gguf(kv, [("w", [4, 2], 0, 0)], b"\x00" * 32), "m.gguf") == []


def test_gguf_malicious_chat_template() -> None:
    tpl = "{{ ''.__class__.__mro__[1].__subclasses__() }}{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    issues = analyze(gguf([("tokenizer.chat_template", 8, gstr(tpl))], [], b""), "m.gguf")
    assert any(i.rule_id == "model.gguf.template" and i.severity == "critical" for i in issues)


@pytest.mark.parametrize("blob", [
    b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40),  # string longer than file
    b"GGUF" + struct.pack("<IQQ", 3, 1 << 50, 0),  # counts beyond the file
    b"GGUF" + struct.pack("<IQQ", 9, 0, 0),  # bad version
])
def test_gguf_bounds_violations(blob: bytes) -> None:
    assert "model.gguf.invalid" in rules(analyze(blob, "m.gguf"))


def test_gguf_tensor_out_of_bounds_and_misaligned() -> None:
    assert "model.gguf.invalid" in rules(analyze(gguf([], [("w", [1000], 0, 0)], b"\x00" * 32), "m.gguf"))
    assert "model.gguf.invalid" in rules(analyze(gguf([], [("w", [1], 0, 3)], b"\x00" * 64), "m.gguf"))


# ---- keras v3 ---------------------------------------------------------------------------------------------


def keras(config: dict) -> bytes:
    return zbytes({"metadata.json": b'{"keras_version": "3.3.3"}', "config.json": json.dumps(config).encode(),
                   "model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\x00" * 32})


def test_keras_benign_config_passes_except_h5_note() -> None:
    cfg = {"module": "keras.src.models.functional", "class_name": "Functional", "config": {"layers": [
        {"module": "keras.layers", "class_name": "Dense", "config": {"units": 2}}]}}
    assert {i.severity for i in analyze(keras(cfg), "m.keras")} <= {"info"}


def test_keras_lambda_deep_and_unsafe_and_foreign_module_and_tfsm() -> None:
    cfg = {"class_name": "Sequential", "module": "keras", "config": {"layers": [{"class_name": "Wrapper", "config": {
        "layer": {"class_name": "Lambda", "module": "keras.layers", "config": {"function": {
            "class_name": "__lambda__", "config": {"code": "4wEAAAAA"}}}}}},
        {"class_name": "TFSMLayer", "module": "keras.layers", "config": {}},
        {"class_name": "function", "module": "os", "config": "system"},
        {"class_name": "X", "module": "keras", "config": {"args": ["enable_unsafe_deserialization"]}}]}}
    r = rules(analyze(keras(cfg), "m.keras"))
    assert {"model.keras.lambda", "model.keras.tfsmlayer", "model.keras.module", "model.keras.unsafe"} <= r
    assert any(i.evidence == "os.system" and i.severity == "critical" for i in analyze(keras(cfg), "m.keras"))


def test_h5_lambda_light_check() -> None:
    blob = b"\x89HDF\r\n\x1a\n" + b"\x00" * 100 + b'{"class_name": "Lambda", "config": {}}'
    r = rules(analyze(blob, "m.h5"))
    assert {"model.h5.not-covered", "model.keras.lambda"} <= r


# ---- bounded memory on a large stored checkpoint --------------------------------------------------------


@pytest.mark.slow
def test_large_stored_checkpoint_is_analysed_with_bounded_memory(tmp_path) -> None:
    """A 160 MB torch zip with a stored tensor member: only data.pkl is read; peak RSS grows far less."""
    import mmap
    import resource

    path = tmp_path / "big.bin"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", EVIL)
        with z.open("archive/data/0", "w", force_zip64=True) as f:
            chunk = b"\x80\x02" + b"\x01" * ((1 << 20) - 2)
            for _ in range(160):
                f.write(chunk)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        issues = analyze(mm, "big.bin")
        del issues[1:]
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert crit(issues)
    assert grown_kib < 40 * 1024, grown_kib  # far below the 160 MB tensor member
