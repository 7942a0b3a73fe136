"""model23: a Distributed Checkpoint directory holding only ranks other than 0 (rank-local metadata).

Without rank coordination (``dcp.save(..., use_collectives=False)``) each rank writes ``__{rank}.metadata`` and
reads it back with ``FileSystemReader.read_metadata(rank=N)``; a node's local directory may hold no rank 0 at
all. ``fixtures/real_models_m23/make_dcp_ranks.py`` runs the real torch 2.13 writer on 4 gloo ranks and keeps rank
3's files (``dcp_rank3``: ``__3.metadata``, ``__3_0.distcp``). On 6aef5ba only ``.metadata`` and ``__0.metadata``
made a checkpoint directory: redteam21b's hostile checkpoint (a ``torch.save`` payload in ``shard0`` behind a text
prefix) with its metadata named ``__3.metadata`` gave **no finding**; now ``shard0`` is analysed as storage
(critical) and the real rank-3 directory stays quiet.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from veritensor_fast import scan_paths
from veritensor_fast.models.sniff import DcpDirs, holds_metadata, is_storage_file

HERE = Path(__file__).parent / "fixtures"
RANK3 = HERE / "real_models_m23" / "dcp_rank3"
EVIL = HERE / "real_models_rt21b" / "evil_torch_save_shard0"
CRITICAL = ("model.pickle.dangerous-global", "critical", "shard0")


def _model(target: Path) -> list[tuple[str, str, str]]:
    res = scan_paths(target, jobs=1)
    assert res.errors == [], res.errors
    return [(f.rule_id, f.severity, Path(f.path).name) for f in res.findings if f.rule_id.startswith("model.")]


def test_real_rank3_directory_is_a_quiet_checkpoint() -> None:
    assert holds_metadata(str(RANK3))
    assert is_storage_file(str(RANK3 / "__3_0.distcp")) and not is_storage_file(str(RANK3 / "__3.metadata"))
    assert _model(RANK3) == []


def test_hostile_storage_under_another_ranks_metadata(tmp_path: Path) -> None:
    for rank in (3, 17):
        ck = tmp_path / f"r{rank}"
        shutil.copytree(EVIL, ck)
        (ck / ".metadata").rename(ck / f"__{rank}.metadata")
        assert CRITICAL in _model(ck)


def test_a_directory_named_like_metadata_or_other_names_is_not(tmp_path: Path) -> None:
    shutil.copy(EVIL / "shard0", tmp_path / "shard0")
    (tmp_path / "__3.metadata").mkdir()  # not a regular file
    (tmp_path / "__x.metadata").write_bytes((EVIL / ".metadata").read_bytes())  # not a rank's name
    (tmp_path / "a.metadata").write_bytes((EVIL / ".metadata").read_bytes())
    assert not holds_metadata(str(tmp_path))
    assert CRITICAL not in _model(tmp_path)


def test_listing_is_taken_again_when_the_directory_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``holds_metadata`` (large files, one directory at a time) lists a directory again only when its mtime
    moved."""
    from veritensor_fast.models import sniff

    listings: list[str] = []
    real = sniff.metadata_names
    monkeypatch.setattr(sniff, "metadata_names", lambda d: listings.append(d) or real(d))
    ck = tmp_path / "ck"
    ck.mkdir()
    shutil.copy(EVIL / "shard0", ck / "shard0")
    old = 1_000_000_000_000_000_000  # an mtime long past: the listing is kept
    os.utime(ck, ns=(old, old))
    assert not holds_metadata(str(ck)) and not holds_metadata(str(ck))
    assert listings == [str(ck)]  # listed once: the second look took one stat
    shutil.copy(EVIL / ".metadata", ck / "__5.metadata")  # the directory's mtime moves
    assert holds_metadata(str(ck)) and is_storage_file(str(ck / "shard0"))
    assert not is_storage_file(str(ck / "__5.metadata"))


def test_the_walks_answer_sees_any_rank(tmp_path: Path) -> None:
    """The batch answer (``DcpDirs``) reads the directory's metadata names (model24: it listed nothing and knew
    ``__3.metadata`` only from a batch that named it), and sees a metadata file removed in a later batch."""
    ck = tmp_path / "ck"
    shutil.copytree(RANK3, ck)
    shutil.copy(EVIL / "shard0", ck / "shard0")
    dirs = DcpDirs()
    assert dirs.storage_file(str(ck / "shard0")) and not dirs.storage_file(str(ck / "__3.metadata"))
    (ck / "__3.metadata").unlink()
    dirs.clear()
    assert not dirs.storage_file(str(ck / "shard0"))


def _zip(path: Path, files: dict[str, Path]) -> bytes:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for arc, src in files.items():
            z.write(src, arc)
    return path.read_bytes()


def test_checkpoint_directory_packed_in_a_zip(tmp_path: Path) -> None:
    """A zip of a checkpoint directory: its storage members are read as ``dcp.load`` reads them once unpacked
    (every archive and legacy stream at any offset), whatever their names; 6aef5ba skipped ``shard0`` (its first
    bytes are text) and gave no finding."""
    from veritensor_fast.models import analyze

    for meta in (".metadata", "__2.metadata"):
        raw = _zip(tmp_path / "ckpt.zip", {"run/ckpt/shard0": EVIL / "shard0", f"run/ckpt/{meta}": EVIL / ".metadata"})
        found = {(i.rule_id, i.severity, (i.location or {}).get("member", "").split("!")[0]) for i in analyze(raw, "c.zip")}
        assert ("model.pickle.dangerous-global", "critical", "run/ckpt/shard0") in found
    # the storage beside no metadata, or beside a metadata that is no pickle: not a checkpoint
    (tmp_path / "meta.txt").write_text("not a pickle\n")
    for other in ({"run/ckpt/shard0": EVIL / "shard0"}, {"run/ckpt/shard0": EVIL / "shard0",
                                                          "run/ckpt/.metadata": tmp_path / "meta.txt"},
                  {"run/ckpt/shard0": EVIL / "shard0", "run/other/.metadata": EVIL / ".metadata"}):
        raw = _zip(tmp_path / "x.zip", other)
        assert not any(i.severity == "critical" for i in analyze(raw, "x.zip")), other


def test_real_checkpoints_packed_in_a_zip_give_nothing(tmp_path: Path) -> None:
    from veritensor_fast.models import analyze

    files = {f"{d.name}/{p.name}": p for d in (HERE / "real_models_rt20" / "dcp", HERE / "real_models_rt21" /
                                               "dcp_safetensors", HERE / "real_models_rt21b" / "good_torch_save_bin",
                                               RANK3) for p in d.iterdir()}
    assert len(files) >= 8
    assert analyze(_zip(tmp_path / "good.zip", files), "good.zip") == []
