"""rt21b: a PyTorch Distributed Checkpoint's storage files under any name.

``FileSystemReader.read_data`` opens ``self.path / relative_path`` for whatever ``relative_path`` the checkpoint's
``.metadata`` names and ``torch.load``s the slice it names (torch/distributed/checkpoint/filesystem.py), so a
hostile checkpoint hides its payload in ``shard0`` (after a text prefix) next to a real ``.metadata``. The
fixtures are real ``dcp.save`` output (``fixtures/real_models_rt21b/make.py``; the real ``dcp.load`` runs the
TORCH_SAVE twin's payload). On 413ad37 both ``evil_*_shard0`` checkpoints gave no finding at all, nor did a
legacy ``torch.save`` stream at an offset of such a file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from veritensor_fast import scan_paths
from veritensor_fast.models.sniff import DcpDirs, holds_metadata, is_storage_file

HERE = Path(__file__).parent / "fixtures"
FIX = HERE / "real_models_rt21b"
EVIL_LEGACY = (HERE / "real_models_rt21" / "evil_legacy_checkpoint.pt").read_bytes()


def _model_findings(target: Path) -> list[tuple[str, str, str]]:
    res = scan_paths(target, jobs=1)
    assert res.errors == [], res.errors
    return [(f.rule_id, f.severity, f.path) for f in res.findings if f.rule_id.startswith("model.")]


@pytest.mark.parametrize("name", ["good_torch_save_bin", "good_safetensors_bin"])
def test_real_checkpoint_under_another_name_is_quiet(name: str) -> None:
    assert _model_findings(FIX / name) == []


@pytest.mark.parametrize("name", ["evil_torch_save_shard0", "evil_safetensors_shard0"])
def test_hostile_twin_hidden_in_shard0_is_critical(name: str) -> None:
    found = _model_findings(FIX / name)
    assert ("model.pickle.dangerous-global", "critical", "shard0") in found, found


def test_legacy_torch_save_stream_at_an_offset_is_critical(tmp_path: Path) -> None:
    """``torch.load`` of a slice that is no zip reads it as a legacy ``torch.save`` (magic-number pickle first)."""
    ck = tmp_path / "ck"
    ck.mkdir()
    shutil.copy(FIX / "good_torch_save_bin" / ".metadata", ck / ".metadata")
    (ck / "shard0").write_bytes(b"# notes\n" * 100 + EVIL_LEGACY)
    assert ("model.pickle.dangerous-global", "critical", "ck/shard0") in _model_findings(tmp_path)


def test_same_file_outside_a_checkpoint_directory_is_not_a_model(tmp_path: Path) -> None:
    """Only a directory holding a ``.metadata`` pickle makes its files checkpoint storage: a ``.metadata``
    that is text, or a directory (an Eclipse workspace), does not."""
    for meta in ("text", "dir"):
        d = tmp_path / meta
        d.mkdir()
        if meta == "text":
            (d / ".metadata").write_text("not a pickle\n")
        else:
            (d / ".metadata").mkdir()
        shutil.copy(FIX / "evil_torch_save_shard0" / "shard0", d / "shard0")
        assert not holds_metadata(str(d))
    assert _model_findings(tmp_path) == []


def test_directory_answer_is_per_scan_not_per_process(tmp_path: Path) -> None:
    """A ``.metadata`` added after a first scan is seen by the next one (the cache lives in one detector)."""
    ck = tmp_path / "ck"
    ck.mkdir()
    shutil.copy(FIX / "evil_torch_save_shard0" / "shard0", ck / "shard0")
    assert _model_findings(tmp_path) == []
    shutil.copy(FIX / "evil_torch_save_shard0" / ".metadata", ck / ".metadata")
    assert ("model.pickle.dangerous-global", "critical", "ck/shard0") in _model_findings(tmp_path)
    dirs = DcpDirs()
    assert dirs.storage_file(str(ck / "shard0")) and is_storage_file(str(ck / "shard0"))
    assert not dirs.storage_file(str(ck / ".metadata"))


def test_fifo_named_metadata_is_not_opened_blocking(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / ".metadata")
    assert not holds_metadata(str(tmp_path))


def test_a_long_lived_detector_sees_a_metadata_added_between_batches(tmp_path: Path) -> None:
    """A Dask worker keeps one context (and its detectors) for many scans: the directory answer lives for one
    batch, so a ``.metadata`` added after a first batch is seen by the next (it was remembered by the detector)."""
    from veritensor_fast.findings import Item
    from veritensor_fast.worker import ScanOptions, WorkerContext

    ck = tmp_path / "ck"
    ck.mkdir()
    shutil.copy(FIX / "evil_torch_save_shard0" / "shard0", ck / "shard0")
    data = (ck / "shard0").read_bytes()
    det = next(d for d in WorkerContext(ScanOptions()).detectors if type(d).__name__ == "ModelDetector")
    item = Item("file", str(ck / "shard0"), "ck/shard0", len(data))
    assert det.quiet_batch([item], [data], [data[:512]]) == [det.quiet(item, data, data[:512])]
    assert not det.dcp_storage(item)
    shutil.copy(FIX / "evil_torch_save_shard0" / ".metadata", ck / ".metadata")
    assert det.quiet_batch([item], [data], [data[:512]]) == [False]
    assert det.dcp_storage(item)
