"""redteam21: PyTorch Distributed Checkpoint ``.distcp`` files. ``dcp.load`` reads each item at the (offset,
length) its ``.metadata`` names and ``torch.load``s a non-tensor item from there, so a ``torch.save`` archive
anywhere in a ``.distcp`` is loaded: after the archives, or inside another archive's stored tensor bytes.

On 4863df0 an archive hidden in a stored tensor's bytes (``archive/data/0``) gave no finding at all.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from veritensor_fast.models import analyze
from veritensor_fast.models.base import AnalyzeOptions, ModelLimits

OLD = Path(__file__).parent / "fixtures" / "real_models"
RT21 = Path(__file__).parent / "fixtures" / "real_models_rt21"
EVIL = (OLD / "evil_torch.pt").read_bytes()
GOOD = (OLD / "torch_state_dict.pt").read_bytes()


def _hide_in_storage(carrier: bytes, payload: bytes) -> bytes:
    """``carrier`` rewritten with ``payload`` appended to its first stored tensor (``archive/data/0``)."""
    src = zipfile.ZipFile(io.BytesIO(carrier))
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        for info in src.infolist():
            data = src.read(info)
            z.writestr(info.filename, data + payload if info.filename.endswith("/data/0") else data)
    return b.getvalue()


@pytest.mark.parametrize("order", ["hidden_first", "hidden_last"])
def test_archive_inside_a_stored_tensor_of_a_distcp_is_critical(order: str) -> None:
    hidden = _hide_in_storage(GOOD, EVIL)
    blob = hidden + GOOD if order == "hidden_first" else GOOD + hidden
    issues = analyze(blob, "__0_0.distcp")
    assert [(i.severity, i.evidence) for i in issues] == [("critical", "posix.system")], issues
    assert "zip@" in issues[0].location["member"]


def test_same_bytes_in_a_pt_file_are_not_loaded_by_torch_and_stay_quiet() -> None:
    """torch.load reads only the archive's own data.pkl: a zip inside a storage is tensor data there."""
    assert analyze(_hide_in_storage(GOOD, EVIL) + GOOD, "model.pt") == []


def test_benign_concatenation_stays_quiet_and_too_many_archives_is_a_limit() -> None:
    assert analyze(GOOD * 3, "__0_0.distcp") == []
    blob = _hide_in_storage(GOOD, GOOD + GOOD + GOOD)
    issues = analyze(blob, "__0_0.distcp", AnalyzeOptions(limits=ModelLimits(max_members=2)))
    assert ("model.archive.limit", "high") in {(i.rule_id, i.severity) for i in issues}


def test_safetensors_tail_after_the_archives_is_checked_as_safetensors() -> None:
    """The SAFETENSORS layout is accepted only when the tail is a valid safetensors blob; a damaged one keeps the
    zip anomalies of the old reading."""
    real = (RT21 / "dcp_safetensors" / "__0_0.distcp").read_bytes()
    assert analyze(real, "__0_0.distcp") == []
    damaged = real[:-100]  # the tensor data is short of what the header declares
    assert any(i.rule_id == "model.zip.anomaly" for i in analyze(damaged, "__0_0.distcp"))
