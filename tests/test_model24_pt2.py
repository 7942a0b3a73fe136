"""model24: ``torch.export`` archives (``.pt2``) from the real torch 2.13, and their hostile twins.

``fixtures/real_models_m24/make_pt2.py`` writes, with torch 2.13 CPU, ``torch.export.save`` archives of a tiny
module (raw weights and constants, a ``torch.save`` zip of the example inputs, JSON; one with ``extra_files``) and
an AOTInductor package (``torch._inductor.aoti_compile_and_package``, weights pickled one a member): none is a
finding. ``pt2_twins.py`` puts a ``posix.system`` pickle wherever ``torch.export.load`` unpickles a member (the
example inputs, a weight or tensor constant marked ``use_pickle`` under any member name, an ``opaque_obj_*``
constant, a legacy ``data/weights/model.pt``); ``check_twins.py`` loaded each with the real torch 2.13 and each
ran its command (by hand, in the throwaway venv). Every twin, and a system pickle under any other member name, is
CRITICAL here; the scanner at the session start (378526f) found them too: these tests pin that down, they fix
nothing.
"""

from __future__ import annotations

import io
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from veritensor_fast.models import analyze

from conftest import scan_json

FIX = Path(__file__).parent / "fixtures" / "real_models_m24"
sys.path.insert(0, str(FIX))
from pt2_twins import TOP, system_pickle, twins  # noqa: E402

REAL = ["export_tiny.pt2", "export_extra.pt2", "aoti_pickle_weights.pt2"]
TINY = (FIX / "export_tiny.pt2").read_bytes()
PAYLOAD = system_pickle("echo pwned")


def _critical(raw: bytes, name: str = "m.pt2") -> set[str]:
    return {i.evidence for i in analyze(raw, name) if i.severity == "critical"}


@pytest.mark.parametrize("name", REAL)
def test_real_pt2_archives_give_nothing(name: str) -> None:
    raw = (FIX / name).read_bytes()
    assert raw[:4] == b"PK\x03\x04" and b"archive_format" in raw
    assert analyze(raw, name) == []


def test_real_pt2_archives_through_the_command_line() -> None:
    code, rep = scan_json(FIX)
    assert code == 0 and rep["findings"] == [] and rep["errors"] == []


def test_the_real_archives_hold_the_members_torch_unpickles() -> None:
    with zipfile.ZipFile(FIX / "export_tiny.pt2") as z:
        names = set(z.namelist())
        assert z.read(TOP + "data/sample_inputs/model.pt")[:4] == b"PK\x03\x04"  # a torch.save zip
    assert {TOP + "data/weights/model_weights_config.json", TOP + "models/model.json"} <= names
    with zipfile.ZipFile(FIX / "aoti_pickle_weights.pt2") as z:
        assert any(n.endswith(".so") for n in z.namelist())
        assert z.read("aoti_pickle_weights/data/weights/weight_0")[:4] == b"PK\x03\x04"  # pickled weight


@pytest.mark.parametrize("case", sorted(twins(TINY, PAYLOAD)))
def test_every_member_torch_export_load_unpickles_is_critical(case: str) -> None:
    assert "posix.system" in _critical(twins(TINY, PAYLOAD)[case])


@pytest.mark.parametrize("member", ["extra/notes.txt", "models/model.json", "data/weights/weight_0",
                                    "data/constants/custom_obj_0", "archive_version", "byteorder", "x"])
@pytest.mark.parametrize("proto", [0, 2, 4])
def test_a_system_pickle_under_any_member_name_is_critical(member: str, proto: int) -> None:
    payload = {0: b"cposix\nsystem\n(S'echo pwned'\ntR.", 2: PAYLOAD,
               4: b"\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c\x0aecho pwned\x85R."}[proto]
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(TINY)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != TOP + member:
                dst.writestr(info.filename, src.read(info))
        dst.writestr(TOP + member, payload)
    assert "posix.system" in _critical(out.getvalue())


def test_aoti_pickled_weight_twin_is_critical() -> None:
    raw = (FIX / "aoti_pickle_weights.pt2").read_bytes()
    member = "aoti_pickle_weights/data/weights/weight_0"
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == member:
                inner = io.BytesIO()
                with zipfile.ZipFile(io.BytesIO(data)) as a, zipfile.ZipFile(inner, "w") as b:
                    for i in a.infolist():
                        b.writestr(i.filename, PAYLOAD if i.filename.endswith("/data.pkl") else a.read(i))
                data = inner.getvalue()
            dst.writestr(info.filename, data)
    assert "posix.system" in _critical(out.getvalue())


def test_twins_inside_a_tarball_and_on_the_command_line(tmp_path: Path) -> None:
    evil = twins(TINY, PAYLOAD)["opaque_obj"]
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as t:
        info = tarfile.TarInfo("export/model.pt2")
        info.size = len(evil)
        t.addfile(info, io.BytesIO(evil))
    assert "posix.system" in _critical(tgz.getvalue(), "model.tar.gz")
    (tmp_path / "model.pt2").write_bytes(evil)
    code, rep = scan_json(tmp_path)
    assert code == 1 and {f["severity"] for f in rep["findings"]} == {"critical"}, rep
