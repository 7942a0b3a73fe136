"""End to end: ``veritensor-fast scan DIR -f json`` on a tree with a malicious pytorch_model.bin."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from test_model_pickle import P4, call1, sg, torch_data_pkl


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "veritensor_fast.cli", *args], capture_output=True, text=True,
                          timeout=120)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("veritensor-fast")
    if exe.exists():
        return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120)
    return _run(*args)


def test_cli_flags_malicious_checkpoint_and_passes_benign(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    with zipfile.ZipFile(bad / "pytorch_model.bin", "w") as z:
        z.writestr("archive/data.pkl", P4 + call1(sg("os", "system")) + b".")
    (bad / "notes.txt").write_text("nothing here\n")
    r = _cli("scan", str(bad), "-f", "json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    model = [f for f in doc["findings"] if f["kind"] == "model"]
    assert any("os.system" in f["message"] and f["path"] == "pytorch_model.bin" for f in model)

    good = tmp_path / "good"
    good.mkdir()
    with zipfile.ZipFile(good / "pytorch_model.bin", "w") as z:
        z.writestr("archive/data.pkl", torch_data_pkl())
    r = _cli("scan", str(good), "-f", "json")
    assert r.returncode == 0, r.stdout
    assert not [f for f in json.loads(r.stdout)["findings"] if f["kind"] == "model"]


def test_cli_allow_global(tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(P4 + call1(sg("mypkg.layers", "Custom")) + b".")
    assert _cli("scan", str(tmp_path), "-f", "json").returncode == 1
    r = _cli("scan", str(tmp_path), "-f", "json", "--allow-global", "mypkg.layers.Custom")
    assert r.returncode == 0, r.stdout
