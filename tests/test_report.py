"""Reporters: JSON/JSONL shape, SARIF 2.1.0 validity, and that no reporter leaks a secret without the flag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sarif_pydantic import Sarif

from veritensor_fast.engine import ScanResult
from veritensor_fast.findings import Finding, ScanError, fingerprint, redact
from veritensor_fast.report import FORMATS, get_reporter

from conftest import hf_token


def sample() -> tuple[ScanResult, str]:
    tok = hf_token()
    f1 = Finding("huggingface.user-token", "secret", "critical", "dir with space/nb.ipynb", 3, 7,
                 "Hugging Face user access token", redact(tok), fingerprint("huggingface.user-token", tok),
                 location={"cell": 2, "part": "output", "output": 0}, secret=tok)
    f2 = Finding("pickle.dangerous-global", "model", "critical", "pytorch_model.bin", 1, 1,
                 "pickle calls os.system", "os.system", fingerprint("pickle.dangerous-global", "os.system"))
    res = ScanResult([f1, f2], [ScanError("broken.ipynb", "not valid JSON", "parse")],
                     {"files": 3, "bytes": 10, "seconds": 0.1, "mb_per_s": 0.0})
    return res, tok


@pytest.mark.parametrize("fmt", FORMATS)
def test_redacted_unless_show_secrets(fmt: str) -> None:
    res, tok = sample()
    out = get_reporter(fmt)(res)
    assert tok not in out and redact(tok) in out
    assert tok in get_reporter(fmt)(res, show_secrets=True)


def test_finding_repr_hides_secret() -> None:
    res, tok = sample()
    assert tok not in repr(res.findings[0]) and tok not in str(res)


def test_json_document_shape() -> None:
    res, _ = sample()
    doc = json.loads(get_reporter("json")(res))
    assert set(doc) == {"findings", "errors", "stats"}
    assert doc["findings"][0]["location"] == {"cell": 2, "part": "output", "output": 0}
    assert doc["errors"] == [{"path": "broken.ipynb", "kind": "parse", "level": "error", "reason": "not valid JSON"}]


def test_jsonl_one_object_per_line() -> None:
    res, _ = sample()
    lines = [json.loads(x) for x in get_reporter("jsonl")(res).splitlines()]
    assert [x["type"] for x in lines] == ["finding", "finding", "error", "stats"]


def test_sarif_is_valid_2_1_0() -> None:
    res, _ = sample()
    doc = json.loads(get_reporter("sarif")(res))
    Sarif.model_validate(doc)  # a third-party implementation of the SARIF 2.1.0 object model
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["huggingface.user-token", "pickle.dangerous-global"]
    r0 = run["results"][0]
    assert r0["ruleIndex"] == 0 and r0["level"] == "error"
    assert r0["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "dir%20with%20space/nb.ipynb"
    assert r0["locations"][0]["physicalLocation"]["region"] == {"startLine": 3, "startColumn": 7}
    assert len(r0["partialFingerprints"]["veritensorFingerprint/v1"]) == 64
    assert run["invocations"][0]["executionSuccessful"] is False
    for rule in rules:
        assert float(rule["properties"]["security-severity"]) > 0


def test_progress_line_counts_and_never_shows_findings(capsys: pytest.CaptureFixture[str]) -> None:
    from veritensor_fast.cli import Progress
    from veritensor_fast.worker import BatchResult

    res, tok = sample()
    prog = Progress(enabled=True)
    prog(BatchResult(findings=res.findings, items=7, bytes=3_000_000))
    prog.done()
    err = capsys.readouterr().err
    assert "scanned 7 files, 3.0 MB" in err and "2 findings" in err
    assert tok not in err and "hf_" not in err
    quiet = Progress(enabled=False)
    quiet(BatchResult(items=1))
    assert capsys.readouterr().err == ""


def test_json_reports_match_the_published_schema(tmp_path: Path) -> None:
    """The packaged JSON Schema describes real output: the demo tree, with and without secrets, as JSONL too,
    and a git-history scan (commit provenance)."""
    from importlib import resources

    import jsonschema

    from conftest import git_run, init_repo, run_cli

    schema = json.loads(resources.files("veritensor_fast.report").joinpath("findings.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    demo = Path(__file__).resolve().parent.parent / "corpora" / "demo"
    for extra in ((), ("--show-secrets",)):
        doc = json.loads(run_cli("scan", "-f", "json", *extra, demo).stdout)
        validator.validate(doc)
        assert doc["findings"] and {f["kind"] for f in doc["findings"]} == {"secret", "model"}
    for line in run_cli("scan", "-f", "jsonl", demo).stdout.splitlines():
        obj = json.loads(line)
        kind = obj.pop("type")
        sub = {"finding": "#/$defs/finding", "error": "#/$defs/error", "stats": "#/$defs/stats"}[kind]
        jsonschema.Draft202012Validator({"$ref": sub, "$defs": schema["$defs"]}).validate(obj)
    repo = init_repo(tmp_path / "repo")
    (repo / "a.env").write_text(f"HF_TOKEN={hf_token()}\n")
    git_run(repo, "add", ".")
    git_run(repo, "commit", "-qm", "add")
    doc = json.loads(run_cli("scan", "--history", "--no-datastore", "-f", "json", repo).stdout)
    validator.validate(doc)
    assert doc["findings"][0]["commit"]["at_head"] is True
