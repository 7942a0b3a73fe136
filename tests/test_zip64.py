"""ZIP64 end records (issue 12): real ``torch.save`` files carry a zip64 end-of-central-directory record and
locator before the classic EOCD even when no field is saturated. They must be read as archives, not taken for a
76-byte prefix (which made every real checkpoint "corrupt"), while a real prefix is still detected.

The fixtures under ``fixtures/zip64/`` were written by ``torch.save`` (see ``make_fixtures.py`` and
``VERSIONS.txt`` there); none of them is ever loaded.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from veritensor_fast.models import analyze
from veritensor_fast.models.base import ModelLimits
from veritensor_fast.models.containers import zip_members

from conftest import scan_json, zip_bytes

FIX = Path(__file__).parent / "fixtures" / "zip64"
BENIGN = ["state_dict.pt", "checkpoint.pt"]
EVIL = "malicious_torch_save.pt"
CALL = b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x8c\x02id\x85R."


def _to_zip64(z: bytes, extensible: bytes = b"", saturate: bool = False) -> bytes:
    """Insert a zip64 EOCD record (with ``extensible`` data) and its locator before the classic EOCD of ``z``."""
    e = z.rfind(b"PK\x05\x06")
    sig, disk, cdd, nhere, count, cd_size, cd_off, clen = struct.unpack_from("<IHHHHIIH", z, e)
    rec = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44 + len(extensible), 45, 45, 0, 0, nhere, count, cd_size,
                      cd_off) + extensible
    loc = struct.pack("<IIQI", 0x07064B50, 0, e, 1)
    if saturate:
        nhere = count = 0xFFFF
        cd_size = cd_off = 0xFFFFFFFF
    eocd = struct.pack("<IHHHHIIH", sig, disk, cdd, nhere, count, cd_size, cd_off, clen) + z[e + 22:]
    return z[:e] + rec + loc + eocd


def _issues(data: bytes, name: str) -> list[tuple[str, str, str]]:
    return [(i.rule_id, i.severity, i.evidence) for i in analyze(data, name)]


def test_fixtures_really_carry_zip64_end_records() -> None:
    for f in [*BENIGN, EVIL]:
        d = (FIX / f).read_bytes()
        e = d.rfind(b"PK\x05\x06")
        assert d[e - 20:e - 16] == b"PK\x06\x07" and d[e - 76:e - 72] == b"PK\x06\x06", f


@pytest.mark.parametrize("name", BENIGN)
def test_real_torch_save_checkpoint_is_not_corrupt(name: str) -> None:
    data = (FIX / name).read_bytes()
    members, anomalies = zip_members(data, ModelLimits())
    assert any(m.name.endswith("/data.pkl") for m in members)
    assert anomalies == []
    assert _issues(data, name) == []


def test_malicious_torch_save_gets_its_critical_reason() -> None:
    issues = _issues((FIX / EVIL).read_bytes(), EVIL)
    assert ("model.pickle.dangerous-global", "critical", "posix.system") in issues
    assert not any(r == "model.archive.corrupt" for r, _, _ in issues)


def test_prefix_before_a_zip64_archive_is_still_detected() -> None:
    data = b"MZ" + b"\x00" * 510 + (FIX / EVIL).read_bytes()
    issues = analyze(data, "model.pt")
    assert any(i.rule_id == "model.zip.anomaly" and "512 bytes precede" in i.message for i in issues)
    assert any(i.severity == "critical" and i.evidence == "posix.system" for i in issues)


@pytest.mark.parametrize("extensible", [b"", b"\x01\x00\x04\x00abcd"], ids=["plain", "extensible"])
@pytest.mark.parametrize("saturate", [False, True], ids=["unsaturated", "saturated"])
@pytest.mark.parametrize("prefix", [b"", b"SFX" * 100], ids=["noprefix", "prefix"])
def test_synthetic_zip64_end_records(extensible: bytes, saturate: bool, prefix: bytes) -> None:
    z = _to_zip64(zip_bytes({"archive/data.pkl": CALL, "archive/version": b"3\n"}), extensible, saturate)
    members, anomalies = zip_members(prefix + z, ModelLimits())
    assert sorted(m.name for m in members) == ["archive/data.pkl", "archive/version"]
    assert bool(anomalies) == bool(prefix)
    issues = analyze(prefix + z, "m.pt")
    assert any(i.severity == "critical" and i.evidence == "os.system" for i in issues)
    assert not any(i.rule_id == "model.archive.corrupt" for i in issues)


def test_cli_real_torch_save_files(tmp_path: Path) -> None:
    for f in [*BENIGN, EVIL]:
        (tmp_path / f).write_bytes((FIX / f).read_bytes())
    code, rep = scan_json(tmp_path)
    by_path = {}
    for f in rep["findings"]:
        by_path.setdefault(Path(f["path"]).name, []).append(f)
    assert set(by_path) == {EVIL}, by_path
    assert any(f["severity"] == "critical" for f in by_path[EVIL])
    assert not rep.get("errors")
    assert code == 1
