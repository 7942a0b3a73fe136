"""model24: a renamed storage file of a rank-local Distributed Checkpoint, whatever batch or task scans it.

Without rank coordination each rank writes ``__{rank}.metadata`` and no ``.metadata`` (model23: ``dcp_rank3``,
torch 2.13's writer). The batch answer (``models.sniff.DcpDirs``) probed ``.metadata`` and ``__0.metadata`` and
otherwise knew a rank's metadata only from the names of the batches it had seen, so redteam21b's hostile storage
(``shard0``: a ``torch.save`` payload behind a text prefix) beside ``__3.metadata`` gave **no finding** on 378526f
(``--jobs 1`` and ``--jobs 2``) when it was scanned before the metadata was listed: named to sort first with 300
files between (another batch), or padded past 4 MB (a large file is its own task; ``dcp.load`` reads the slice
``.metadata`` names, so bytes after it change nothing). The answer now comes from the directory's metadata names
(``listed_metadata_names``: one listing per process while the directory's mtime holds): critical in every case.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import scan_json

HERE = Path(__file__).parent / "fixtures"
RANK3 = HERE / "real_models_m23" / "dcp_rank3"
EVIL = HERE / "real_models_rt21b" / "evil_torch_save_shard0"


def _found(target: Path, jobs: int) -> set[tuple[str, str, str]]:
    code, rep = scan_json(target, "--jobs", str(jobs))
    assert rep["errors"] == [], rep["errors"]
    return {(f["rule_id"], f["severity"], Path(f["path"]).name) for f in rep["findings"]}


def _checkpoint(d: Path, storage: str, rank: int = 3) -> Path:
    d.mkdir()
    shutil.copy(EVIL / ".metadata", d / f"__{rank}.metadata")
    shutil.copy(EVIL / "shard0", d / storage)
    return d


@pytest.mark.parametrize("jobs", [1, 2])
def test_storage_listed_batches_before_its_rank_metadata(tmp_path: Path, jobs: int) -> None:
    ck = _checkpoint(tmp_path / "ck", "0shard")  # sorts before __3.metadata
    for i in range(300):  # another batch (256 files each) begins before the metadata
        (ck / f"{100 + i}.txt").write_text(f"decoy {i}\n")
    assert ("model.pickle.dangerous-global", "critical", "0shard") in _found(ck, jobs)


@pytest.mark.parametrize("jobs", [1, 2])
def test_large_storage_scanned_as_its_own_task(tmp_path: Path, jobs: int) -> None:
    ck = _checkpoint(tmp_path / "ck", "shard0", rank=17)
    with open(ck / "shard0", "ab") as f:
        f.truncate(6 << 20)  # past the 4 MB a file goes alone at; under the 16 MiB windowed reading
    assert ("model.pickle.dangerous-global", "critical", "shard0") in _found(ck, jobs)


def test_real_rank3_checkpoint_beside_many_files_stays_quiet(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    shutil.copytree(RANK3, ck)
    for i in range(300):
        (ck / f"{100 + i}.txt").write_text(f"notes {i}\n")
    assert _found(ck, 1) == set()
