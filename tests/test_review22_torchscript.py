"""review22: model22's TorchScript ``torch.from_file`` finder names the method with a regular expression that ran
quadratic in blank lines (``^\\s*def``: from every line start ``\\s*`` ran over all the blank lines after it).

A real ``torch.jit.save`` archive (``fixtures/real_models_m22/evil_from_file_setstate.pt``) with 300,000 blank
lines before its ``class`` line (the TorchScript lexer skips them): on 260b088 the scan did not end (40,000 lines
took 2 CPU-s, a million ~20 minutes); now it ends at once with the same CRITICAL finding in ``__setstate__``.
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from conftest import scan_json

#: The scanner runs under an address-space cap (these inputs test its bounds)
CAP = 2_000_000_000

FIX = Path(__file__).parent / "fixtures" / "real_models_m22" / "evil_from_file_setstate.pt"


def test_blank_lines_before_the_code_do_not_hang_the_scan(tmp_path: Path) -> None:
    out = tmp_path / "padded.pt"
    with zipfile.ZipFile(FIX) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/code/__torch__/_ts_source.py"):
                data = b"\n" * 300_000 + data
            dst.writestr(info, data)
    try:
        code, rep = scan_json(out, timeout=60, cap=CAP)
    except subprocess.TimeoutExpired as exc:  # 260b088
        raise AssertionError("the scan of a padded TorchScript archive did not end") from exc
    got = [(f["rule_id"], f["severity"], f.get("location", {}).get("method")) for f in rep["findings"]
           if f["rule_id"] == "model.torchscript.file-access"]
    assert got == [("model.torchscript.file-access", "critical", "__setstate__")]
    assert rep["errors"] == [] and code == 1
