"""model22: TorchScript code that maps (and can overwrite) any file when ``torch.jit.load`` runs it.

``torch.jit.load`` compiles an archive's ``code/`` and runs each module's ``__setstate__`` while it loads.
``torch.from_file(path, shared=True, size)`` is a TorchScript builtin: it maps any file into a tensor, and a
``copy_`` into that tensor writes the file. ``fixtures/real_models_m22/make_torchscript.py`` writes, with torch
2.13's ``torch.jit.script``/``torch.jit.save``, a module with a real ``__getstate__``/``__setstate__`` and its twin
whose ``__setstate__`` does that; ``torch.jit.load`` of the twin overwrote the first 8 bytes of the file its code
names (checked by hand). On 75722a6 the twin gave **no finding**; now it is one CRITICAL
``model.torchscript.file-access``, and no real TorchScript archive (``__setstate__`` alone included) is a finding.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from veritensor_fast.models import analyze

HERE = Path(__file__).parent / "fixtures"
FIX = HERE / "real_models_m22"
RULE = "model.torchscript.file-access"
EVIL = FIX / "evil_from_file_setstate.pt"
CODE = "evil_from_file_setstate/code/__torch__/_ts_source.py"


def _rewrite(member: str, change: bytes | None = None, edit: tuple[bytes, bytes] | None = None) -> bytes:
    """The evil archive with one member's bytes replaced (``torch.jit.save`` stores members uncompressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(EVIL) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == member:
                data = change if change is not None else data.replace(*edit) if edit else data
            dst.writestr(info, data)
        if member not in src.namelist() and change is not None:
            dst.writestr(member, change)
    return out.getvalue()


def _found(raw: bytes) -> list[tuple[str, str, str]]:
    return [(i.rule_id, i.severity, (i.location or {}).get("method", "")) for i in analyze(raw, "m.pt")
            if i.rule_id == RULE]


def test_from_file_in_setstate_is_critical() -> None:
    assert _found(EVIL.read_bytes()) == [(RULE, "critical", "__setstate__")]


@pytest.mark.parametrize("path", [
    FIX / "setstate_module.pt", HERE / "real_models" / "torch_jit.pt", HERE / "real_models_rt21" / "scripted_module.pt",
    HERE / "real_models_rt21" / "traced_module.pt",
])
def test_real_torchscript_archives_give_nothing(path: Path) -> None:
    assert analyze(path.read_bytes(), path.name) == []


@pytest.mark.parametrize("spelling", [b"torch . from_file", b"torch.\\\n        from_file", b"torch.ops.aten.from_file",
                                      b"ops.aten.from_file"])
def test_spellings_the_lexer_accepts(spelling: bytes) -> None:
    assert _found(_rewrite(CODE, edit=(b"torch.from_file", spelling)))


def test_from_file_in_forward_runs_when_used() -> None:
    code = zipfile.ZipFile(EVIL).read(CODE)
    moved = code.replace(b"def __setstate__", b"def __setstate_renamed__")
    assert _found(_rewrite(CODE, change=moved)) == [(RULE, "critical", "__setstate_renamed__")]


def test_lite_interpreter_op_list() -> None:
    raw = _rewrite("evil_from_file_setstate/bytecode.pkl", change=b"\x80\x02X\x0f\x00\x00\x00aten::from_fileq\x00.")
    assert (RULE, "critical") in {(i.rule_id, i.severity) for i in analyze(raw, "m.ptl")}


def test_text_outside_code_is_not_code() -> None:
    # a name in the debug info, or a README member, is never run
    code = zipfile.ZipFile(EVIL).read(CODE)
    raw = _rewrite(CODE, change=code.replace(b"torch.from_file", b"torch.zeros"))
    assert _found(raw) == []
    raw2 = _rewrite("evil_from_file_setstate/extra/README.py", change=b"torch.from_file('x')")
    assert _found(raw2) == [(RULE, "critical", "__setstate__")]  # only the real code member's
