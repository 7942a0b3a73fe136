"""The Python API: ``scan_paths`` takes one path or a sequence of them, ``scan_bytes`` scans a buffer,
``render_report`` / ``write_report`` produce the CLI's reports; the public names are exported. Issue 15."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import veritensor_fast
from veritensor_fast import (
    EngineError,
    Finding,
    ScanError,
    ScanOptions,
    ScanResult,
    render_report,
    scan_bytes,
    scan_paths,
    write_report,
)

from conftest import hf_token


def _tree(tmp_path: Path, tok: str) -> Path:
    d = tmp_path / "proj"
    (d / "src").mkdir(parents=True)
    (d / "src" / "cfg.py").write_text(f'HF = "{tok}"\n')
    (d / "notes.txt").write_text("nothing here\n")
    return d


@pytest.mark.parametrize("as_type", [str, Path, lambda p: [str(p)], lambda p: (Path(p),)])
def test_scan_paths_accepts_a_path_or_a_sequence(tmp_path: Path, as_type: object) -> None:
    tok = hf_token()
    d = _tree(tmp_path, tok)
    res = scan_paths(as_type(d), jobs=1)  # type: ignore[operator]
    assert isinstance(res, ScanResult) and res.errors == []
    assert [(f.path, f.line, f.secret) for f in res.findings] == [("src/cfg.py", 1, tok)]
    assert res.stats["files"] == 2  # the two files of the tree, never the characters of its name


def test_scan_paths_str_is_one_path_not_its_characters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path, hf_token())
    monkeypatch.chdir(tmp_path)
    res = scan_paths("proj", jobs=1)
    assert res.stats["files"] == 2 and [f.path for f in res.findings] == ["src/cfg.py"]


@pytest.mark.parametrize("bad", [3, None, b"/tmp", {"a": 1}.keys(), [1], [b"/tmp"], object()])
def test_scan_paths_rejects_what_is_not_a_path(bad: object) -> None:
    with pytest.raises(TypeError):
        scan_paths(bad, jobs=1)  # type: ignore[arg-type]


def test_scan_paths_rejects_empty_and_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        scan_paths([], jobs=1)
    with pytest.raises(TypeError):
        scan_paths(tmp_path, {"strict_secrets": True}, jobs=1)  # type: ignore[arg-type]


def test_scan_paths_options_and_excludes(tmp_path: Path) -> None:
    d = _tree(tmp_path, hf_token())
    assert scan_paths(d, ScanOptions(), jobs=1, excludes=["src"]).findings == []
    assert scan_paths(d, jobs=1, excludes="src").findings == []  # one glob given as a str


def test_scan_paths_bad_rules_raise_engine_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{id: x}]\n")
    with pytest.raises(EngineError):
        scan_paths(tmp_path, ScanOptions(rule_files=(str(bad),)), jobs=1)


@pytest.mark.parametrize("kind", [bytes, str, bytearray])
def test_scan_bytes(kind: type) -> None:
    tok = hf_token()
    data = f'token = "{tok}"\n'
    res = scan_bytes(data if kind is str else kind(data, "utf-8"), name="config.py")
    assert [(f.path, f.line, f.secret) for f in res.findings] == [("config.py", 1, tok)]
    with pytest.raises(TypeError):
        scan_bytes(123)  # type: ignore[arg-type]


def test_render_and_write_reports(tmp_path: Path) -> None:
    tok = hf_token()
    res = scan_paths(_tree(tmp_path, tok), jobs=1)
    doc = json.loads(render_report(res, "json"))
    assert [f["path"] for f in doc["findings"]] == ["src/cfg.py"] and "secret" not in doc["findings"][0]
    assert json.loads(render_report(res, "json", show_secrets=True))["findings"][0]["secret"] == tok
    for fmt in ("json", "jsonl", "sarif", "text"):
        out = tmp_path / f"report.{fmt}"
        write_report(res, out, fmt)
        text = out.read_text(encoding="utf-8")
        assert "cfg.py" in text and tok not in text, fmt
        assert [p.name for p in tmp_path.iterdir() if ".tmp" in p.name] == []
    sarif = json.loads((tmp_path / "report.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    with pytest.raises(ValueError):
        render_report(res, "xml")


def test_public_names_are_exported_and_typed() -> None:
    assert set(veritensor_fast.__all__) >= {"scan_paths", "scan_bytes", "render_report", "write_report",
                                            "ScanOptions", "ScanResult", "Finding", "ScanError", "EngineError",
                                            "__version__"}
    for name in veritensor_fast.__all__:
        assert getattr(veritensor_fast, name) is not None, name
    assert Finding.__module__ == "veritensor_fast.findings" and ScanError.__module__ == "veritensor_fast.findings"
    assert (Path(veritensor_fast.__file__).parent / "py.typed").is_file()
    with pytest.raises(AttributeError):
        veritensor_fast.no_such_name  # noqa: B018


def test_import_stays_cheap() -> None:
    """``import veritensor_fast`` (what every CLI run pays) does not import the engine or Hyperscan."""
    code = "import sys, veritensor_fast; print(sorted(m for m in sys.modules if m.startswith(('veritensor', 'hyperscan'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['veritensor_fast']"


def test_readme_python_api_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python library"):]
    code = section[section.index("```python\n") + 10:section.index("```\n", section.index("```python"))]
    tok = hf_token()
    (tmp_path / "src").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "src" / "cfg.py").write_text(f'HF = "{tok}"\n')
    (tmp_path / "settings.yaml").write_text(f"token: {tok}\n")
    monkeypatch.chdir(tmp_path)
    ns: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), ns)  # the README's own example, as written
    assert [f.path for f in ns["hits"].findings] == ["settings.yaml"]  # type: ignore[attr-defined]
    assert "cfg.py" in capsys.readouterr().out and tok not in (tmp_path / "veritensor.sarif").read_text()
