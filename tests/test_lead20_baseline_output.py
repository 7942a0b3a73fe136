"""``baseline create -o PATH`` checks that PATH can be written before it scans (as ``scan -o`` does): an
unwritable path used to fail only after the whole scan (a full-history baseline: minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from veritensor_fast import engine
from veritensor_fast.cli import app


def test_unwritable_baseline_path_fails_before_scanning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    calls: list[object] = []

    def scan(*args: object, **kw: object) -> None:
        calls.append(args)
        raise AssertionError("scanned before checking the output path")

    monkeypatch.setattr(engine, "scan", scan)
    out = tmp_path / "missing-dir" / "baseline.json"
    res = CliRunner().invoke(app, ["baseline", "create", str(tmp_path), "-o", str(out), "--no-config", "-j", "1"])
    assert res.exit_code == 2, res.output
    assert "cannot write" in res.output
    assert calls == []
    assert not out.exists()


def test_writable_baseline_path_still_scans(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    out = tmp_path / "baseline.json"
    res = CliRunner().invoke(app, ["baseline", "create", str(tmp_path / "a.py"), "-o", str(out), "--no-config",
                                   "-j", "1"])
    assert res.exit_code == 0, res.output
    assert out.is_file()
