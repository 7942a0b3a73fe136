"""Files written by the real producers (torch, joblib/scikit-learn, numpy, safetensors, gguf, keras).

The bytes under ``tests/fixtures/real_models`` come from ``make.py`` there (run in a throwaway virtualenv; the
producing versions are in ``VERSIONS``); this suite never imports torch. Benign files must give no finding at
all; each malicious one (an object whose ``__reduce__`` returns ``(os.system, ("echo pwned",))``, only ever
written) must give its CRITICAL ``posix.system`` finding, never "corrupt".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from veritensor_fast.models import analyze

from conftest import scan_json

FIX = Path(__file__).parent / "fixtures" / "real_models"

BENIGN = [
    "torch_state_dict.pt", "torch_checkpoint.pt", "torch_module.pt", "torch_jit.pt", "torch_legacy.pt",
    "sklearn.joblib", "sklearn.pkl", "array.npy", "arrays.npz", "object_plain.npy", "object_plain.npz",
    "tiny.safetensors", "tiny.gguf", "tiny.keras",
    *(f"sklearn.joblib.{c}" for c in ("zlib", "gzip", "bz2", "xz", "lzma", "lz4")),
]
MALICIOUS = ["evil_torch.pt", "evil_torch_legacy.pt", "evil.joblib", "evil_object.npy", "evil_object.npz"]
# joblib's compressors are decompressed by the shared decompression layer (``veritensor_fast.decompress``)
MALICIOUS_COMPRESSED = ["evil.joblib.zlib"]


def test_fixture_set_is_complete() -> None:
    listed = set((FIX / "VERSIONS").read_text().split("files:")[1].split())
    assert listed == set(BENIGN) | set(MALICIOUS) | set(MALICIOUS_COMPRESSED)


@pytest.mark.parametrize("name", BENIGN)
def test_benign_real_fixture_has_no_finding(name: str) -> None:
    assert analyze((FIX / name).read_bytes(), name) == []


@pytest.mark.parametrize("name", MALICIOUS)
def test_malicious_real_fixture_is_critical_system_call(name: str) -> None:
    issues = analyze((FIX / name).read_bytes(), name)
    crit = [i for i in issues if i.severity == "critical"]
    assert [i.evidence for i in crit] == ["posix.system"], issues
    assert not any(i.rule_id in ("model.archive.corrupt", "model.pickle.corrupt", "model.pickle.limit")
                   for i in issues), issues


@pytest.mark.parametrize("name", MALICIOUS_COMPRESSED)
def test_malicious_compressed_joblib_is_critical(name: str) -> None:
    issues = analyze((FIX / name).read_bytes(), name)
    assert any(i.severity == "critical" and i.evidence == "posix.system" for i in issues), issues


def test_joblib_arrays_are_skipped_and_what_follows_is_analysed() -> None:
    """evil.joblib: array bytes before and after the payload; the payload in between is found, nothing else."""
    data = (FIX / "evil.joblib").read_bytes()
    issues = analyze(data, "evil.joblib")
    assert {i.rule_id for i in issues} == {"model.pickle.dangerous-global"}


def test_cli_scan_of_real_fixtures_reports_only_the_malicious_files() -> None:
    rc, rep = scan_json(FIX)
    bad = {Path(f["path"]).name for f in rep["findings"] if f["severity"] == "critical"}
    assert set(MALICIOUS) <= bad <= set(MALICIOUS) | set(MALICIOUS_COMPRESSED)
    assert {Path(f["path"]).name for f in rep["findings"]} == bad
    assert rc == 1 and rep["errors"] == []
