"""Limits and damage in containers: a finding only when model content could not be analysed.

"A real benign checkpoint is never a finding" and "fail closed on model files" meet here. The rule: a
decompression limit or damage that stops the model analysis before any model-like content (a benign source
tarball over the budget, a cut-off ``.tar.gz`` of text) is an incomplete scan (an ``errors`` entry, exit 3),
not a HIGH finding; a member whose content sniffs as a model format (a pickle) and cannot be analysed, or a
zip named as a model that cannot be read, stays a HIGH ``model.archive.*`` finding.
"""

from __future__ import annotations

import io
import pickle
import random
import tarfile
from pathlib import Path

import pytest

from veritensor_fast.models import analyze

from conftest import scan_json


def _tgz(members: dict[str, bytes]) -> bytes:
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


NOISE = random.Random(7).randbytes(300_000)  # incompressible: a cut in the middle lands inside it
PICKLE = pickle.dumps({"w": list(range(50))}, protocol=4) + NOISE  # model-like content, long enough to be cut


def test_truncated_benign_tar_gz_is_an_error_not_a_finding() -> None:
    data = _tgz({"src/a.py": b"print(1)\n", "data.bin": NOISE, "README": b"hi\n"})
    issues = analyze(data[:len(data) // 2], "release.tar.gz")
    assert issues and all(i.error == "corrupt" for i in issues), issues


def test_truncated_benign_tar_gz_by_cli_exits_3_without_model_finding(tmp_path: Path) -> None:
    data = _tgz({"src/a.py": b"print(1)\n", "data.bin": NOISE})
    (tmp_path / "release.tar.gz").write_bytes(data[:len(data) // 2])
    code, rep = scan_json(tmp_path)
    assert [f for f in rep["findings"] if f["kind"] == "model"] == []
    assert [e["kind"] for e in rep["errors"]] == ["corrupt"], rep["errors"]
    assert code == 3


def test_benign_tar_gz_over_the_budget_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERITENSOR_FAST_DECOMPRESS_BUDGET", str(1 << 20))
    data = _tgz({"logs/big.txt": b"line of a log\n" * 300_000, "model.pkl": pickle.dumps([1, 2])})
    issues = analyze(data, "logs.tar.gz")
    assert issues and all(i.error == "limit" for i in issues), issues


def test_benign_tar_gz_over_the_budget_by_cli_exits_3(tmp_path: Path) -> None:
    (tmp_path / "logs.tar.gz").write_bytes(_tgz({"logs/big.txt": b"line of a log\n" * 300_000}))
    code, rep = scan_json(tmp_path, env={"VERITENSOR_FAST_DECOMPRESS_BUDGET": str(1 << 20)})
    assert [f for f in rep["findings"] if f["kind"] == "model"] == []
    assert rep["errors"] and {e["kind"] for e in rep["errors"]} == {"limit"}, rep["errors"]
    assert code == 3


def test_pickle_member_cut_inside_stays_a_high_finding() -> None:
    data = _tgz({"a.txt": b"x\n", "model.pkl": PICKLE})
    issues = analyze(data[:len(data) // 2], "model.tar.gz")
    found = [i for i in issues if not i.error]
    assert any(i.rule_id == "model.archive.corrupt" and i.severity == "high" for i in found), issues


def test_budget_spent_in_the_body_of_a_pickle_member_stays_a_high_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERITENSOR_FAST_DECOMPRESS_BUDGET", str(4 << 20))
    data = _tgz({"weights": pickle.dumps([1], protocol=4)[:-1] + b"N" * (8 << 20) + b"0."})
    issues = analyze(data, "m.tar.gz")
    assert any(i.rule_id == "model.archive.limit" and i.severity == "high" and not i.error for i in issues), issues


def test_unreadable_zip_named_as_model_is_a_finding_other_zip_an_error() -> None:
    junk = b"PK\x03\x04" + b"\x00" * 40 + b"PK\x05\x06" + b"\xff" * 18
    pt = analyze(junk, "model.pt")
    assert any(i.rule_id == "model.archive.corrupt" and not i.error for i in pt), pt
    other = analyze(junk, "bundle.zip")
    assert other and all(i.error for i in other), other
