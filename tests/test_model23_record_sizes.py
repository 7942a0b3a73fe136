"""model23: CVE-2026-24747's second half, a storage record shorter than its persistent id declares.

GHSA-63cw-57p8-fm3p (torch before 2.10): "storage size mismatch between declared element count and actual data in
the archive". A zip checkpoint's ``data.pkl`` names each storage ``('storage', <class>, key, location, numel)``;
old torch built the storage with ``numel`` times the element size over the record ``data/<key>``'s buffer. torch
2.13 refuses the file ("record size (8 bytes) does not match expected size (64 bytes ...)", checked by hand).
``fixtures/real_models_m23/make_checkpoints.py`` writes, with the real ``torch.save``, a checkpoint of many dtypes,
views, a shared storage, float8 and a quantized tensor, and the twin whose record ``archive/data/0`` holds 8 of
its 64 bytes. On 6aef5ba the twin gave **no finding** (only the rebuild's own offset/size/stride were compared
with ``numel``); now it is CRITICAL ``model.pickle.memory-corruption``, and no real checkpoint is a finding.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from veritensor_fast.models import analyze

HERE = Path(__file__).parent / "fixtures"
FIX = HERE / "real_models_m23"
RULE = "model.pickle.memory-corruption"


def _found(raw: bytes, name: str = "m.pt") -> list[tuple[str, str, str]]:
    return [(i.rule_id, i.severity, (i.location or {}).get("member", "")) for i in analyze(raw, name)
            if i.rule_id == RULE]


def _resize(path: Path, member: str, size: int | None) -> bytes:
    """The checkpoint with one record cut (or padded) to ``size`` bytes, or dropped (None)."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        assert member in src.namelist()
        for info in src.infolist():
            data = src.read(info)
            if info.filename == member:
                if size is None:
                    continue
                data = (data + bytes(size))[:size]
            dst.writestr(info.filename, data)
    return out.getvalue()


def test_short_record_is_critical() -> None:
    assert _found((FIX / "evil_short_record.pt").read_bytes()) == [(RULE, "critical", "archive/data/0")]


def test_real_checkpoints_give_nothing() -> None:
    reals = sorted(p for d in HERE.glob("real_models*") for p in d.rglob("*")
                   if p.suffix in (".pt", ".pth", ".bin", ".ckpt") and "evil" not in p.name and "cve" not in p.name)
    assert len(reals) > 20
    for p in reals:
        assert _found(p.read_bytes(), p.name) == [], p
    assert analyze((FIX / "dtypes_views.pt").read_bytes(), "dtypes_views.pt") == []


def test_every_record_of_a_real_checkpoint_is_compared() -> None:
    real = FIX / "dtypes_views.pt"
    with zipfile.ZipFile(real) as z:
        records = [(n, z.getinfo(n).file_size) for n in z.namelist() if "/data/" in n and not n.startswith(".")]
    assert len(records) > 10
    for name, size in records:
        if size:
            assert _found(_resize(real, name, size - 1)) == [(RULE, "critical", name)], name


@pytest.mark.parametrize("size", [64, 65, 4096, None])
def test_records_as_long_or_longer_or_missing_are_not_corruption(size: int | None) -> None:
    # a longer record is refused by torch 2.13 but read within bounds by older ones; a missing one is refused by all
    assert _found(_resize(FIX / "evil_short_record.pt", "archive/data/0", size)) == []


def test_inside_a_tar() -> None:
    raw = (FIX / "evil_short_record.pt").read_bytes()
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as t:
        info = tarfile.TarInfo("ckpt/model.pt")
        info.size = len(raw)
        t.addfile(info, io.BytesIO(raw))
    assert _found(tgz.getvalue(), "ckpt.tar.gz") == [(RULE, "critical", "ckpt/model.pt!archive/data/0")]


@pytest.mark.parametrize(("old", "new"), [
    (b"ctorch\nFloatStorage\n", b"ctorch.cuda\nFloatStorage\n"),  # torch.load reads its dtype the same way
    (b"ctorch\nFloatStorage\n", b"ctorch.cuda\nHalfStorage\n"),  # 16 x 2 bytes: still more than the 8 held
    (b"X\x01\x00\x00\x000", b"K\x00"),  # the key as an int: torch reads ``data/0`` all the same
])
def test_short_record_under_another_spelling_is_critical(old: bytes, new: bytes) -> None:
    """review23: a storage class from another module and an integer key passed the record-size check."""
    out = io.BytesIO()
    with zipfile.ZipFile(FIX / "evil_short_record.pt") as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "archive/data.pkl":
                assert data.count(old) == 1
                data = data.replace(old, new)
            dst.writestr(info.filename, data)
    assert _found(out.getvalue()) == [(RULE, "critical", "archive/data/0")]
