"""Text report: openable ``path:line:col``, a redacted context line with a caret, an honest summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

from veritensor_fast.engine import ScanResult
from veritensor_fast.findings import Finding, fingerprint, redact
from veritensor_fast.report import get_reporter
from veritensor_fast.report.text import human_bytes, rate

from conftest import hf_token, run_cli


def _scan_text(*args: str | Path, cwd: Path | None = None) -> str:
    p = run_cli("scan", "--no-progress", *args, cwd=cwd)
    assert p.returncode == 1, p.stderr
    return p.stdout


def test_location_opens_from_the_current_directory_with_caret_under_redacted_secret(tmp_path: Path) -> None:
    tok = hf_token()
    (tmp_path / "proj" / "src").mkdir(parents=True)
    (tmp_path / "proj" / "src" / "app.py").write_text(f"import os\n\tTOKEN = '{tok}'  # deploy\n")
    (tmp_path / "proj" / "clean.txt").write_text("nothing here\n")
    out = _scan_text("proj", cwd=tmp_path)
    lines = out.splitlines()
    m = re.match(r"^(\S+):(\d+):(\d+): CRITICAL huggingface\.user-token", lines[0])
    assert m, out
    path, line, col = m.group(1), int(m.group(2)), int(m.group(3))
    text = (tmp_path / path).read_text().splitlines()[line - 1]  # it opens, at the secret
    assert text[col - 1:].startswith(tok)
    ctx, caret = lines[1], lines[2]
    assert redact(tok) in ctx and "TOKEN = '" in ctx and "# deploy" in ctx
    start = ctx.index(redact(tok))
    assert caret.index("^") == start and caret.count("^") == len(redact(tok))
    assert tok not in out and tok[3:20] not in out
    assert lines[-1] == lines[-1].strip() and lines[-1].startswith("1 finding in 1 file; 2 files scanned, ")
    assert "explain huggingface.user-token" in out


def test_context_never_shows_an_unreported_token_like_value(tmp_path: Path) -> None:
    tok = hf_token()
    other = "Zq8" + "x7Kp2Lm9Vb4Nc6Rt1Yw3" * 2  # a long random value no rule reports
    (tmp_path / "a.env").write_text(f"A={tok} B={other}\n")
    out = _scan_text(tmp_path / "a.env")
    assert other not in out and other[:16] not in out
    assert "B=" in out


def test_context_skipped_when_the_file_changed_after_the_scan(tmp_path: Path) -> None:
    """The context comes from disk: shown only when that line still holds the secret."""
    tok = hf_token()
    f = Finding("huggingface.user-token", "secret", "critical", "a.py", 1, 1, "m", redact(tok),
                fingerprint("huggingface.user-token", tok), secret=tok)
    (tmp_path / "a.py").write_text("something else entirely\n")
    out = get_reporter("text")(ScanResult([f], [], {"files": 1, "root": str(tmp_path)}))
    assert "something else" not in out and "^" not in out
    (tmp_path / "a.py").write_text(f"{tok}\n")
    out = get_reporter("text")(ScanResult([f], [], {"files": 1, "root": str(tmp_path)}))
    assert f"    {redact(tok)}\n    {'^' * len(redact(tok))}\n" in out and tok not in out


def test_notebook_location_is_the_raw_file_line(tmp_path: Path) -> None:
    tok = hf_token()
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# title\n"]},
                    {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
                     "source": ["import os\n", f"login(token=\"{tok}\")\n"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "n.ipynb").write_text(json.dumps(nb, indent=1))
    out = _scan_text("n.ipynb", cwd=tmp_path)
    m = re.match(r"^n\.ipynb:(\d+):(\d+): ", out)
    assert m, out
    raw = (tmp_path / "n.ipynb").read_text().splitlines()[int(m.group(1)) - 1]
    assert raw[int(m.group(2)) - 1:].startswith(tok)


def test_summary_counts_and_plurals(tmp_path: Path) -> None:
    p = run_cli("scan", "--no-progress", tmp_path)
    assert p.returncode == 0
    assert p.stdout.splitlines()[-1].startswith("no findings; 0 files scanned, 0 B, ")
    (tmp_path / "x.txt").write_text("hello\n")
    p = run_cli("scan", "--no-progress", tmp_path)
    assert p.stdout.splitlines()[-1].startswith("no findings; 1 file scanned, 6 B, ")
    for tok in (hf_token(), hf_token()):
        (tmp_path / f"{tok[-4:]}.env").write_text(f"T={tok}\nU={tok}\n")
    last = run_cli("scan", "--no-progress", tmp_path).stdout.splitlines()[-1]
    assert last.startswith("4 findings in 2 files; 3 files scanned, "), last


def test_units_are_sensible() -> None:
    assert human_bytes(512) == "512 B" and human_bytes(1500) == "1.5 kB" and human_bytes(2.5e9) == "2.5 GB"
    assert rate(10_000, 0.01) is None  # no "0.01 MB/s" for a tiny scan
    assert rate(500e6, 2.0) == "250.0 MB/s"


def test_control_characters_in_context_stay_escaped(tmp_path: Path) -> None:
    tok = hf_token()
    (tmp_path / "a.env").write_text(f"\x1b[2K\x1b]0;x\x07 T={tok}\n")
    out = _scan_text(tmp_path / "a.env")
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[2K" in out


def test_notebook_secret_split_across_json_strings_is_not_given_a_cell_line_as_file_line(tmp_path: Path) -> None:
    """A token split over two source strings has no raw-file line: no misleading ``path:2:14`` (the cell's
    line), the cell position is in the brackets instead."""
    tok = hf_token()
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [],
                     "source": ["import os\n", f"login(token=\"{tok[:10]}", f"{tok[10:]}\")\n"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "n.ipynb").write_text(json.dumps(nb, indent=1))
    out = _scan_text("n.ipynb", cwd=tmp_path)
    assert out.startswith("n.ipynb: CRITICAL huggingface.user-token"), out
    assert "cell_line=2:14" in out and tok not in out
