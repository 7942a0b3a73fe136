"""model22: a Distributed Checkpoint ``.metadata`` naming a storage file outside the checkpoint, and rank-local
``__N.metadata`` checkpoints.

``FileSystemReader.read_data`` opens ``Path(checkpoint_dir) / relative_path`` (torch 2.13,
``torch/distributed/checkpoint/filesystem.py``): ``..`` is followed and an absolute ``relative_path`` replaces the
directory. Checked by hand with the real torch 2.13: the real ``dcp.save`` checkpoint of ``real_models_rt20/dcp``
with its ``.metadata`` patched to name ``../_0.distcp`` (same length), and the storage file moved out of the
directory, loads through ``dcp.load`` (``step`` 7, ``w2`` ones). On 75722a6 that twin, and the absolute one, gave
**no finding** (the paths inside ``.metadata`` were never looked at); now each is one HIGH
``model.dcp.external-path`` (one per path, not one per tensor). The scanner never follows the path.

Rank-local metadata: without rank coordination ``FileSystemWriter`` writes ``__{rank}.metadata`` and no
``.metadata``; rt21b's hostile checkpoint (payload in ``shard0`` behind a text prefix) with its metadata named
``__0.metadata`` gave **no finding** on 75722a6; now ``shard0`` is analysed as storage (critical).
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from veritensor_fast import scan_paths
from veritensor_fast.models import analyze
from veritensor_fast.models.sniff import holds_metadata, is_metadata_name, is_storage_file

HERE = Path(__file__).parent / "fixtures"
REAL = HERE / "real_models_rt20" / "dcp"
RULE = "model.dcp.external-path"


def _twin(tmp_path: Path, new: bytes) -> Path:
    raw = (REAL / ".metadata").read_bytes()
    assert raw.count(b"__0_0.distcp") == 1 and len(new) == 12
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / ".metadata").write_bytes(raw.replace(b"__0_0.distcp", new))
    return ck


def _model(target: Path) -> list[tuple[str, str, str]]:
    res = scan_paths(target, jobs=1)
    assert res.errors == [], res.errors
    return [(f.rule_id, f.severity, Path(f.path).name) for f in res.findings if f.rule_id.startswith("model.")]


@pytest.mark.parametrize("path", [b"../_0.distcp", b"/etc//passwd", b"..\\_0.distcp", b"C:/x/0.distc"])
def test_escaping_relative_path_is_one_high_finding(tmp_path: Path, path: bytes) -> None:
    ck = _twin(tmp_path, path)
    assert _model(ck) == [(RULE, "high", ".metadata")]
    [issue] = analyze((ck / ".metadata").read_bytes(), ".metadata")
    assert issue.evidence == path.decode()


@pytest.mark.parametrize("real", [
    HERE / "real_models_rt20" / "dcp", HERE / "real_models_rt20" / "dcp_evil",
    HERE / "real_models_rt21" / "dcp_safetensors", HERE / "real_models_rt21b" / "good_torch_save_bin",
    HERE / "real_models_rt21b" / "evil_torch_save_shard0",
])
def test_real_metadata_names_no_outside_file(real: Path) -> None:
    # the real writer's bare names (and rt21b's hostile "shard0", which stays inside) are no finding of this rule
    assert all(i.rule_id != RULE for i in analyze((real / ".metadata").read_bytes(), ".metadata"))


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


_INFO = _s("torch.distributed.checkpoint.filesystem") + _s("_StorageInfo") + b"\x93"


def _storage_info(path: bytes, slots: bool = False) -> bytes:
    """``_StorageInfo`` rebuilt as ``pickle`` writes a dataclass (NEWOBJ, then BUILD of its state dict, or of a
    ``(None, slots)`` pair), with ``path`` the opcodes that push its ``relative_path``."""
    state = b"}(" + _s("relative_path") + path + _s("offset") + b"K\x00" + _s("length") + b"K\x09u"
    if slots:
        state = b"N" + state + b"\x86"
    return b"\x80\x04" + _INFO + b")\x81" + state + b"b."


def test_path_object_and_positional_forms() -> None:
    # a pathlib object: Path(ckpt) / PurePosixPath("/etc/passwd") is /etc/passwd
    as_object = _storage_info(_s("pathlib") + _s("PurePosixPath") + b"\x93" + _s("/etc/passwd") + b"\x85R")
    assert (RULE, "high") in {(i.rule_id, i.severity) for i in analyze(as_object, ".metadata")}
    slots = _storage_info(_s("../../x"), slots=True)
    assert [i.evidence for i in analyze(slots, ".metadata") if i.rule_id == RULE] == ["../../x"]
    assert [i.evidence for i in analyze(_storage_info(_s("../../x")), ".metadata") if i.rule_id == RULE] == ["../../x"]
    assert all(i.rule_id != RULE for i in analyze(_storage_info(_s("__0_0.distcp")), ".metadata"))
    # _StorageInfo("../x", 0, 9) called: REDUCE with the path first
    reduce_call = b"\x80\x04" + _INFO + _s("../x") + b"K\x00K\x09\x87R."
    assert [i.evidence for i in analyze(reduce_call, ".metadata") if i.rule_id == RULE] == ["../x"]


def test_metadata_as_an_archive_member(tmp_path: Path) -> None:
    ck = _twin(tmp_path, b"../_0.distcp")
    z = tmp_path / "ckpt.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(ck / ".metadata", "ck/.metadata")
    assert (RULE, "high") in {(i.rule_id, i.severity) for i in analyze(z.read_bytes(), "ckpt.zip")}


def test_rank_local_metadata_makes_a_checkpoint_directory(tmp_path: Path) -> None:
    for name in ("evil_torch_save_shard0", "good_torch_save_bin"):
        ck = tmp_path / name
        shutil.copytree(HERE / "real_models_rt21b" / name, ck)
        (ck / ".metadata").rename(ck / "__0.metadata")
        assert holds_metadata(str(ck))
    assert ("model.pickle.dangerous-global", "critical", "shard0") in _model(tmp_path / "evil_torch_save_shard0")
    assert _model(tmp_path / "good_torch_save_bin") == []
    assert not is_storage_file(str(tmp_path / "good_torch_save_bin" / "__0.metadata"))


def test_metadata_names() -> None:
    for ok in (".metadata", "__0.metadata", "__17.metadata"):
        assert is_metadata_name(ok)
    for no in ("__.metadata", "__x.metadata", "a.metadata", "__0.metadata.tmp", "metadata", "__0_0.distcp"):
        assert not is_metadata_name(no)
