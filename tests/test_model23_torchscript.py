"""model23: TorchScript ``torch.save`` (``aten::save``), and the ``getattr`` spellings torch resolves at compile time.

torch 2.13's JIT registry (``torch._C._jit_get_all_schemas()``) holds two ops that touch a file by name:
``aten::from_file`` (model22) and ``aten::save(t item, str filename)``; ``torch.jit.script`` refuses ``open``,
``torch.load``, ``torch.jit.load``, ``UntypedStorage.from_file`` and imports. ``fixtures/real_models_m23/
make_torchscript.py`` writes, with the real ``torch.jit.script``/``torch.jit.save``, a module whose
``__setstate__`` calls ``torch.save`` (an SSH public key between line breaks, to a path under
``/tmp/model23-torchscript-victim``), one whose ``forward`` calls ``torch.ops.aten.save``, and a benign module that
``print``s. Checked by hand with torch 2.13: ``torch.jit.load`` of the first wrote the file, and ``ssh-keygen -l``
reads the key from it (as ``~/.ssh/authorized_keys`` it grants a login). Each spelling below was loaded by torch
2.13 and wrote the file (or, for ``from_file``, opened it); ``math.save``, ``torch.ops.aten.save``, ``"s\\x61ve"``
and ``"sa" + "ve"`` were refused. On 6aef5ba the twins and every ``getattr`` spelling (``from_file`` too) gave
**no finding**; now each is CRITICAL ``model.torchscript.file-access``.
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
RULE = "model.torchscript.file-access"
SETSTATE = FIX / "evil_save_setstate.pt"


def _found(raw: bytes, name: str = "m.pt") -> list[tuple[str, str, str, str]]:
    return [(i.rule_id, i.severity, i.evidence, (i.location or {}).get("method", "")) for i in analyze(raw, name)
            if i.rule_id == RULE]


def _code_member(z: zipfile.ZipFile) -> str:
    [name] = [n for n in z.namelist() if "/code/" in n and n.endswith(".py")]
    return name


def _edit(path: Path, old: bytes, new: bytes) -> bytes:
    """The archive with its code member edited (``torch.jit.save`` stores members uncompressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        code = _code_member(src)
        for info in src.infolist():
            data = src.read(info)
            if info.filename == code:
                assert old in data
                data = data.replace(old, new)
            dst.writestr(info.filename, data)
    return out.getvalue()


def test_save_in_setstate_is_critical() -> None:
    assert _found(SETSTATE.read_bytes()) == [(RULE, "critical", "torch.save", "__setstate__")]


def test_ops_aten_save_in_forward_is_critical() -> None:
    assert _found((FIX / "evil_save_forward.pt").read_bytes()) == [(RULE, "critical", "torch.save", "forward")]


@pytest.mark.parametrize("path", [
    FIX / "print_setstate.pt", HERE / "real_models_m22" / "setstate_module.pt", HERE / "real_models" / "torch_jit.pt",
    HERE / "real_models_rt21" / "scripted_module.pt", HERE / "real_models_rt21" / "traced_module.pt",
])
def test_real_torchscript_archives_give_nothing(path: Path) -> None:
    assert analyze(path.read_bytes(), path.name) == []


@pytest.mark.parametrize("spelling", [
    b"ops.aten.save(", b"torch .save(", b'getattr(torch, "save")(', b"getattr(torch, 'save')(",
    b'getattr(\n      torch,\n      "save")(', b'getattr(ops.aten, "save")(', b'getattr(getattr(ops, "aten"), "save")(',
    b"_f = torch.save\n    _f(",
])
def test_spellings_torch_loads(spelling: bytes) -> None:
    assert _found(_edit(SETSTATE, b"torch.save(", spelling)) == [(RULE, "critical", "torch.save", "__setstate__")]


@pytest.mark.parametrize("spelling", [
    b'getattr(torch, "s\\141ve")(', b'getattr(torch, "sa" "ve")(', b"getattr(torch, 's' \\\n 'ave')(",
    b'getattr(torch, "\\x73ave")(',
])
def test_spellings_the_lexer_joins_or_decodes(spelling: bytes) -> None:
    """review23: the TorchScript lexer decodes octal and hex escapes and joins adjacent literals (its
    ``parse_string_literal`` and ``parser.cpp``): ``getattr(torch, "s\\141ve")`` names torch.save too."""
    assert _found(_edit(SETSTATE, b"torch.save(", spelling)) == [(RULE, "critical", "torch.save", "__setstate__")]


def test_from_file_by_getattr() -> None:
    raw = _edit(HERE / "real_models_m22" / "evil_from_file_setstate.pt", b"torch.from_file(",
                b'getattr(torch, "from_file")(')
    assert _found(raw) == [(RULE, "critical", "torch.from_file", "__setstate__")]


def test_the_name_as_plain_text_is_no_call() -> None:
    raw = _edit(SETSTATE, b"torch.save(_0, _1)", b'print("save", _0, _1, "from_file")')
    assert _found(raw) == []


def test_inside_other_archives(tmp_path: Path) -> None:
    pt = SETSTATE.read_bytes()
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as t:
        info = tarfile.TarInfo("model/model.pt")
        info.size = len(pt)
        t.addfile(info, io.BytesIO(pt))
    mar = io.BytesIO()  # a TorchServe .mar: a deflated zip holding the serialized file
    with zipfile.ZipFile(mar, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model.pt", pt)
        z.writestr("MAR-INF/MANIFEST.json", "{}")
    for raw, name in ((tgz.getvalue(), "model.tar.gz"), (mar.getvalue(), "model.mar")):
        assert _found(raw, name) == [(RULE, "critical", "torch.save", "__setstate__")], name
