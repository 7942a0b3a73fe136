"""Every crash the fuzzers found, as a minimal input: fixed ones must stay fixed; open ones are strict xfails
(they fail the day the fix lands, as a reminder to drop the marker and the KNOWN_OPEN entry in fuzzkit)."""

from __future__ import annotations

import io
import tarfile

import pytest
from fuzzkit import KNOWN_OPEN, scan_bytes


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
    res = scan_bytes(tar_size_past_the_end(), name, strict=True)
    assert any(f.rule_id == "model.archive.corrupt" for f in res.findings)


@pytest.mark.parametrize("known", KNOWN_OPEN, ids=[k.signature for k in KNOWN_OPEN])
@pytest.mark.xfail(strict=True, reason="known open crash, fixed on another branch (see fuzzkit.KNOWN_OPEN)")
def test_known_open_crash(known: object) -> None:
    from fuzzkit import Known

    assert isinstance(known, Known)
    scan_bytes(*known.probe, strict=True)
