"""Nothing the scanned tree controls reaches an output raw: found secrets are redacted in every field of every
format (issue 10 §4), a token in a file name is itself a finding, and control characters are escaped."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from sarif_pydantic import Sarif

from veritensor_fast.engine import ScanResult
from veritensor_fast.findings import Finding, ScanError, fingerprint, redact
from veritensor_fast.redaction import escape_json, escape_text, redact_result
from veritensor_fast.report import FORMATS, get_reporter

from conftest import git_run, hf_token, init_repo, run_cli, scan_json

ESC_ATTACK = "\x1b[1A\x1b[2K\x1b[1A\x1b[2Kno findings, scan clean\x9b2J\u202egnp.exe\x7f"
RAW_CONTROLS = ("\x1b", "\x9b", "\u202e", "\x7f", "\x07", "\r")


def everywhere(tok: str) -> ScanResult:
    """A result whose every text field holds the token (as hostile trees and repositories make them)."""
    f = Finding("huggingface.user-token", "secret", "critical", f"dir/{tok}.ipynb!{tok}.txt", 3, 7,
                f"Hugging Face user access token near {tok}", redact(tok), fingerprint("huggingface.user-token", tok),
                location={"cell_id": tok, tok: [tok, {"member": f"a/{tok}"}], "cell": 2}, decoded=f"json key {tok}",
                commit={"id": "c" * 40, "author": f"dev {tok}", "email": f"{tok}@example.invalid",
                        "message": f"add token {tok}\n\nsee {tok}", "path": f"{tok}.txt"},
                secret=tok)
    err = ScanError(f"{tok}.fifo", f"could not read member {tok}.bin", "not-regular")
    return ScanResult([f], [err], {"files": 1, "bytes": 2, "seconds": 0.1, "mb_per_s": 0.0,
                                   "config": f"/repo/{tok}/.veritensor-fast.toml"})


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_field_redacted_in_every_format(fmt: str) -> None:
    tok = hf_token()
    out = get_reporter(fmt)(everywhere(tok))
    assert tok not in out
    assert out.count(redact(tok)) >= 8  # path, message, location key/values, decoded, commit, error, stats
    if fmt not in ("text", "markdown"):
        json.loads(out) if fmt != "jsonl" else [json.loads(x) for x in out.splitlines()]


@pytest.mark.parametrize("fmt", FORMATS)
def test_show_secrets_shows_everything_as_is(fmt: str) -> None:
    tok = hf_token()
    out = get_reporter(fmt)(everywhere(tok), show_secrets=True)
    assert out.count(tok) >= 8


def test_library_seam_keeps_the_secret_field_only() -> None:
    tok = hf_token()
    res = redact_result(everywhere(tok))
    f, e = res.findings[0], res.errors[0]
    assert f.secret == tok  # the library keeps it for programmatic use; it is never in repr
    shown = repr((f, e, res.stats))
    assert tok not in shown and redact(tok) in f.path and redact(tok) in f.commit["message"]  # type: ignore[index]
    assert redact_result(everywhere(tok), show_secrets=True).findings[0].path.count(tok) == 2


def test_other_findings_secrets_are_redacted_in_each_others_fields() -> None:
    a, b = hf_token(), hf_token()
    fa = Finding("r", "secret", "high", f"{b}.env", 1, 1, "m", redact(a), fingerprint("r", a), secret=a)
    fb = Finding("r", "secret", "high", "x.env", 1, 1, "m", redact(b), fingerprint("r", b),
                 location={"key": a}, secret=b)
    out = get_reporter("json")(ScanResult([fa, fb], [], {}))
    assert a not in out and b not in out


def test_token_in_a_file_name_is_a_finding_and_never_printed(tree: Path) -> None:
    tok = hf_token()
    (tree / f"creds-{tok}.txt").write_text("nothing here\n")
    code, doc = scan_json(tree)
    assert code == 1
    (f,) = doc["findings"]
    assert f["location"] == {"in": "path"} and f["rule_id"] == "huggingface.user-token"
    assert f["path"] == f"creds-{redact(tok)}.txt" and f["column"] == len("creds-") + 1
    p = run_cli("scan", "--no-progress", tree)  # every format: test_one_hostile_repository_...
    assert p.returncode == 1 and tok not in p.stdout + p.stderr and "[in=path]" in p.stdout
    p = run_cli("scan", "--no-progress", "-f", "json", "--show-secrets", tree)
    assert tok in p.stdout


def test_token_in_the_name_of_an_unreadable_input(tree: Path) -> None:
    tok = hf_token()
    os.mkfifo(tree / f"{tok}.pipe")
    code, doc = scan_json(tree)
    assert code == 1 and tok not in json.dumps(doc)
    assert [f["location"] for f in doc["findings"]] == [{"in": "path"}]
    assert doc["errors"][0]["kind"] == "not-regular" and redact(tok) in doc["errors"][0]["path"]


def test_zip_member_name_notebook_cell_id_and_json_keys_redacted(tree: Path) -> None:
    tok = hf_token()
    with zipfile.ZipFile(tree / "bundle.zip", "w") as z:
        z.writestr(f"{tok}.txt", f"k={tok}\n")
    nb = {"cells": [{"cell_type": "code", "id": tok, "metadata": {}, "source": [f"x = '{tok}'\n"],
                     "outputs": [], "execution_count": 1}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tree / "n.ipynb").write_text(json.dumps(nb))
    (tree / "keys.json").write_text(json.dumps({tok: {"nested": tok}}))
    (tree / "keys.yaml").write_text(f"{tok}:\n  token: {tok}\n")
    for fmt in ("text", "json"):
        p = run_cli("scan", "--no-progress", "-f", fmt, tree)
        assert p.returncode == 1, p.stderr
        assert tok not in p.stdout and redact(tok) in p.stdout


def test_commit_message_and_author_redacted_in_history(tmp_path: Path) -> None:
    tok = hf_token()
    repo = init_repo(tmp_path / "r")
    (repo / "app.env").write_text(f"HF_TOKEN={tok}\n")
    git_run(repo, "add", "app.env")
    git_run(repo, "-c", f"user.name=dev {tok}", "commit", "-q", "-m", f"add {tok}")
    for fmt in ("text", "json"):
        p = run_cli("scan", "--no-progress", "--history", "--no-datastore", "-f", fmt, repo)
        assert p.returncode == 1, p.stderr
        assert tok not in p.stdout + p.stderr


# ---- control characters ----------------------------------------------------------------------------------


def test_escape_text_and_json() -> None:
    assert escape_text("a\x1b[2Kb\u202ec\x9b\x00\n") == "a\\x1b[2Kb\\u202ec\\u009b\\x00\\x0a"  # C1 as \\u009b: \\x9b is a shown byte
    assert escape_text("ünïcode ok ✓ 日本") == "ünïcode ok ✓ 日本"
    doc = json.dumps({"p": "x\x7f\u202e\U000e0041"}, ensure_ascii=False)
    safe = escape_json(doc)
    assert safe.isprintable() and json.loads(safe) == json.loads(doc)


def hostile_tree(tree: Path, tok: str) -> None:
    os.mkfifo(tree / f"a{ESC_ATTACK}")
    (tree / f"b{ESC_ATTACK}.env").write_text(f"HF_TOKEN={tok}\n")
    (tree / "ok.env").write_text(f"HF_TOKEN={tok}\n")


@pytest.mark.parametrize("fmt", FORMATS)
def test_control_bytes_in_names_never_reach_the_output_raw(tree: Path, fmt: str) -> None:
    tok = hf_token()
    hostile_tree(tree, tok)
    p = run_cli("scan", "--no-progress", "-f", fmt, tree)
    assert p.returncode == 1, p.stderr
    for c in RAW_CONTROLS:
        assert c not in p.stdout, (fmt, c)
    if fmt == "text":
        assert "\\x1b[1A\\x1b[2K" in p.stdout and "\\u202e" in p.stdout
        assert p.stdout.splitlines()[-1].startswith("2 findings")  # the summary cannot be faked or erased
    elif fmt == "markdown":
        assert "\\x1b[1A\\x1b[2K" in p.stdout and p.stdout.startswith("## veritensor-fast: 2 findings")
    elif fmt == "jsonl":
        paths = {json.loads(x).get("path") for x in p.stdout.splitlines()}
        assert f"b{ESC_ATTACK}.env" in paths
    else:
        doc = json.loads(p.stdout)
        if fmt == "json":
            assert {f["path"] for f in doc["findings"]} == {f"b{ESC_ATTACK}.env", "ok.env"}
            assert doc["errors"][0]["path"] == f"a{ESC_ATTACK}"
        else:
            Sarif.model_validate(doc)


def test_control_bytes_in_commit_author_and_rule_fields_escaped() -> None:
    tok = hf_token()
    f = Finding("r\x1b[2K", "secret", "high", "p", 1, 1, "msg\x1b]0;title\x07", redact(tok), fingerprint("r", tok),
                location={"k\x1b": "v\x1b"}, commit={"id": "c", "author": "evil\x1b[1A\x1b[2K", "date": "d\r"},
                secret=tok)
    out = get_reporter("text")(ScanResult([f], [ScanError("e\x1b", "r\x1b", "parse")], {}), color=True)
    body = out.replace("\x1b[0m", "").replace("\x1b[1m", "").replace("\x1b[2m", "").replace("\x1b[31m", "")
    assert "\x1b" not in body and "\x07" not in body and "\r" not in body


def test_fatal_error_messages_escape_control_characters(tmp_path: Path) -> None:
    p = run_cli("scan", "--no-progress", "--config", tmp_path / f"missing{ESC_ATTACK}.toml", tmp_path)
    assert p.returncode == 2 and "missing\\x1b[1A" in p.stderr
    for c in RAW_CONTROLS:
        assert c not in p.stderr + p.stdout, c


def test_one_hostile_repository_leaks_nothing_in_any_output(tmp_path: Path) -> None:
    """Every place a repository controls at once, scanned as a tree and as history, in every format, to stdout
    and to a report file: the token is reported, never printed in full, and no raw control byte is written."""
    tok = hf_token()
    repo = init_repo(tmp_path / "hostile")
    (repo / f"cfg-{tok}.txt").write_text("nothing\n")
    (repo / f"x{ESC_ATTACK}.env").write_text(f"HF_TOKEN={tok}\n")
    with zipfile.ZipFile(repo / "bundle.zip", "w") as z:
        z.writestr(f"{tok}{ESC_ATTACK}.txt", f"k={tok}\n")
    nb = {"cells": [{"cell_type": "code", "id": tok, "metadata": {}, "source": [f"t = '{tok}'\n"], "outputs": [],
                     "execution_count": 1}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (repo / "n.ipynb").write_text(json.dumps(nb))
    git_run(repo, "add", "-A")
    git_run(repo, "-c", f"user.name=dev {tok}", "commit", "-q", "-m", f"add {tok}\x1b[2K")
    os.mkfifo(repo / f"pipe-{tok}{ESC_ATTACK}")
    for mode in ([], ["--history", "--no-datastore"]):
        for fmt in FORMATS:
            out = tmp_path / f"report.{fmt}"
            to_file = fmt != "text"  # the text report goes to the terminal, the others to a file
            p = run_cli("scan", "--no-progress", *mode, "-f", fmt, *(["-o", out] if to_file else []), repo)
            assert p.returncode == 1, (mode, fmt, p.stderr)
            written = out.read_text(encoding="utf-8") if to_file else p.stdout
            for text in (p.stdout, p.stderr, written):
                assert tok not in text, (mode, fmt)
                assert not any(c in text for c in RAW_CONTROLS), (mode, fmt)
            assert redact(tok) in written


def test_secrets_in_paths_maps_each_token_to_its_path() -> None:
    from veritensor_fast.worker import ScanOptions, WorkerContext, secrets_in_paths

    ctx = WorkerContext(ScanOptions())
    a, b = hf_token(), hf_token()
    paths = ["plain.txt", f"d/{a}.txt", "é/x", f"two\n{b}-{a}", "hf_", f"x{a[:-1]}"]
    found = secrets_in_paths(ctx.matcher, None, paths)
    got = {i: [(f.secret, f.column, f.path, f.location) for f in fs] for i, fs in found.items()}
    assert got == {1: [(a, 3, paths[1], {"in": "path"})],
                   3: [(b, 5, paths[3], {"in": "path"}), (a, 5 + 38, paths[3], {"in": "path"})]}
    assert secrets_in_paths(ctx.matcher, ctx.allow_secret, []) == {}
