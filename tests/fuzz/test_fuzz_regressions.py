"""Every crash the fuzzers found, as a minimal input: fixed ones must stay fixed. A crash fixed on another
branch (fuzzkit.KNOWN_OPEN) is a strict xfail only while its probe still crashes here, and a plain regression
test once the fix is merged."""

from __future__ import annotations

import io
import json
import struct
import tarfile

import pytest
from fuzzkit import KNOWN_OPEN, Known, mutate, open_signatures, scan_bytes


def tar_size_past_the_end() -> bytes:
    """A valid one-member tar whose size field (checksum fixed up) points 32 KiB past the end of the buffer."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.GNU_FORMAT) as t:
        ti = tarfile.TarInfo("a.txt")
        ti.size = 5
        t.addfile(ti, io.BytesIO(b"hello"))
    raw = bytearray(bio.getvalue())
    raw[124:136] = b"00000100000\x00"
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\x00 " % sum(raw[:512])
    return bytes(raw)


@pytest.mark.parametrize("name", ["a.tar", "weights.pt"])
def test_tar_member_size_past_the_end_is_a_corrupt_archive_not_a_crash(name: str) -> None:
    # found by test_mutated_archives_keep_the_contract: tarfile seeks past the end of the buffer, and the
    # buffer file's readinto returned a negative count (SystemError in the model detector)
    # damage found before any model content is a ``corrupt`` error (the scan is incomplete, exit 3), model
    # content left unanalysed a ``model.archive.corrupt`` finding: never a crash, never silence
    res = scan_bytes(tar_size_past_the_end(), name, strict=True)
    assert any(f.rule_id == "model.archive.corrupt" for f in res.findings) \
        or any(e.kind == "corrupt" for e in res.errors), (res.findings, res.errors)


@pytest.mark.parametrize("dtype", [[], {"a": 1}, ["F32"]])
def test_safetensors_unhashable_dtype_is_invalid_not_a_crash(dtype: object) -> None:
    # found by the exploratory run of test_safetensors_headers_keep_the_contract: a list/object dtype made
    # ``dt not in _ST_BITS`` raise TypeError (an internal error instead of an invalid-header finding)
    h = json.dumps({"w": {"dtype": dtype, "shape": [1], "data_offsets": [0, 4]}}).encode()
    res = scan_bytes(struct.pack("<Q", len(h)) + h + b"\0" * 4, "m.safetensors", strict=True)
    assert any(f.rule_id == "model.safetensors.invalid" and "unknown dtype" in f.message for f in res.findings)


@pytest.mark.parametrize("known", [
    pytest.param(k, id=k.signature, marks=pytest.mark.xfail(
        k.signature in open_signatures(), strict=True, reason=f"still open on this branch: {k.why}"))
    for k in KNOWN_OPEN])
def test_known_crash_is_fixed(known: Known) -> None:
    # an xfail only while the crash still reproduces here (a branch without the fix); a plain regression test
    # once the fix is merged
    scan_bytes(*known.probe, strict=True)



#: found by test_mutated_archives_keep_the_contract: a two-member stored zip (a.txt, secret.env) whose damaged
#: central directory gives a member an encrypted flag and a name that runs into the other member's content
_ZIP = (b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00!\x00\xc4\xbd\xbf\xa2\x0e\x00\x00\x00\x0e\x00\x00\x00\x05"
        b"\x00\x00\x00a.txt00000000000000PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00!\x00\x11\xc3\x93&/\x00\x00"
        b"\x00/\x00\x00\x00\n\x00\x00\x00secret.envHF_TOKEN=hf_2yW4Acq9GFz6Y1t9EwL56nGisiWgNZq6IT\nPK\x01\x02\x14"
        b"\x03\x14\x00\x00\x00\x00\x00\x00\x00!\x00\xc4\xbd\xbf\xa2\x0e\x00\x00\x00\x0e\x00\x00\x00\x05\x00\x00"
        b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x00\x00\x00\x00a.txtPK\x01\x02\x14\x03\x14\x00\x00\x00"
        b"\x00\x00\x00\x00!\x00\x11\xc3\x93&/\x00\x00\x00/\x00\x00\x00\n\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        b"\x00\x00\x80\x011\x00\x00\x00secret.envPK\x05\x06\x00\x00\x00\x00\x02\x00\x02\x00k\x00\x00\x00\x88"
        b"\x00\x00\x00\x00\x00")
_ZIP_EDITS = [(135, 1, 0), (515829, 1, 1), (136, 3, 0)]


def test_a_secret_in_a_damaged_members_name_never_reaches_an_error_reason() -> None:
    # the reason "member '...' is encrypted" quoted the member name, token included (the report redacted it,
    # but a reason must never hold a secret the scan found)
    tok = "hf_2yW4Acq9GFz6Y1t9EwL56nGisiWgNZq6IT"
    res = scan_bytes(mutate(_ZIP, _ZIP_EDITS), "a.zip", secrets=(tok,), strict=True)
    assert tok in {f.secret for f in res.findings}
    assert any("is encrypted" in e.reason and "hf_2y" in e.reason for e in res.errors), res.errors
