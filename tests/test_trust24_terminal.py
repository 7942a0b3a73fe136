"""trust24: what a hostile repository can still put on the user's terminal.

File and directory names with ESC, C0/C1 controls and bidi overrides, a source line with escape sequences around
a secret, a corrupt notebook, a commit whose author, e-mail and message hold escape sequences, branch and tag
names with U+202E: no human-facing output (text and Markdown reports, stderr notes, warnings and summaries,
``--history``, ``--staged``, ``--pre-push``, ``baseline create``) may carry one raw. The baseline missed the
stderr lines the scan's own settings print (the note that names a config file inside a scanned target, the
``-o`` summary, ``baseline create``'s line, a datastore warning), and printed a C1 control U+0085 as ``\\x85``:
what a shown path writes for the byte 0x85 that is not UTF-8 (two files, one line)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import unicodedata
from pathlib import Path

from veritensor_fast.redaction import escape_json, escape_text

from conftest import git_run, hf_token, init_repo, run_cli

#: what a terminal acts on: C0 (but newline and tab), DEL, C1, bidi embeddings/overrides/isolates/marks
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ESC_DIR = "ev\x1b]0;owned\x07il\x1b[2J"


def _assert_inert(*outs: str) -> None:
    for out in outs:
        bad = [ln for ln in out.splitlines() if RAW.search(ln)]
        assert not bad, bad[:3]


def _hostile(root: Path) -> dict[str, str]:
    """A tree of hostile names and contents; token -> the text report's shown path."""
    root.mkdir(parents=True, exist_ok=True)
    toks: dict[str, str] = {}
    for name, shown in ((b"a\x1b[2Jb.env", "a\\x1b[2Jb.env"), ("\u202eevil.env".encode(), "\\u202eevil.env"),
                        (b"d\x1b[1A/s.env", "d\\x1b[1A/s.env"), ("c1\u0085x.env".encode(), "c1\\u0085x.env"),
                        (b"c1\x85x.env", "c1\\x85x.env")):
        tok = hf_token()
        p = root / os.fsdecode(name)
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(f"HF={tok}\n".encode())
        toks[tok] = shown
    tok = hf_token()
    (root / "ctx.py").write_bytes(f"x = '\x1b[8m {tok} \x1b[0m\u202e'\n".encode())  # the context line
    toks[tok] = "ctx.py"
    (root / "bad\x1b[31m.ipynb").write_bytes(b'{"cells": [ \x1b[2J')  # an error quoting the name
    return toks


def test_reports_and_stderr_on_a_hostile_tree(tmp_path: Path) -> None:
    toks = _hostile(tmp_path / "t")
    text = run_cli("scan", "--no-progress", "--jobs", "1", tmp_path / "t", cwd=tmp_path)
    md = run_cli("scan", "--no-progress", "-f", "markdown", tmp_path / "t")
    _assert_inert(text.stdout, text.stderr, md.stdout, md.stderr)
    for shown in toks.values():
        assert f"t/{shown}:1:" in text.stdout
    # U+0085 and the byte 0x85 are two files on two lines (the baseline printed c1\x85x.env for both)
    assert "c1\\u0085x.env" in text.stdout and "c1\\x85x.env" in text.stdout
    assert "bad\\x1b[31m.ipynb" in text.stdout
    rep = json.loads(run_cli("scan", "--no-progress", "-f", "json", tmp_path / "t").stdout)
    assert {"c1\u0085x.env", "c1\\x85x.env", "a\x1b[2Jb.env"} <= {f["path"] for f in rep["findings"]}  # exact


def test_history_staged_and_pre_push(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    _hostile(repo)
    git_run(repo, "add", "-A")
    who = {"GIT_AUTHOR_NAME": "Ev\x1b[2Jil\u202e", "GIT_AUTHOR_EMAIL": "e\x1b[1m@x", "GIT_COMMITTER_NAME": "c",
           "GIT_COMMITTER_EMAIL": "c@c", "PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    staged = run_cli("scan", "--no-progress", "--staged", cwd=repo)
    assert staged.returncode == 1 and "a\\x1b[2Jb.env" in staged.stdout
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", f"msg \x1b[2J HF={hf_token()} \u202e"],
                   env=who, check=True)
    git_run(repo, "tag", "t\u202ex")
    git_run(repo, "tag", "-a", "v\u202e1", "-m", f"tag \x1b[2J HF={hf_token()}")  # a finding in the tag itself
    git_run(repo, "branch", "b\u202ex")
    hist = run_cli("scan", "--no-progress", "--history", "--no-datastore", repo)
    hist_md = run_cli("scan", "--no-progress", "-f", "markdown", "--history", "--no-datastore", repo)
    head = git_run(repo, "rev-parse", "HEAD").stdout.strip()
    pushed = _pre_push(repo, head)
    _assert_inert(staged.stdout, staged.stderr, hist.stdout, hist.stderr, hist_md.stdout, hist_md.stderr,
                  pushed.stdout, pushed.stderr)
    assert "by Ev\\x1b[2Jil\\u202e" in hist.stdout and hist.returncode == 1 and pushed.returncode == 1
    assert "tag=v\\u202e1" in hist.stdout  # the annotated tag's name, where its finding is


def _pre_push(repo: Path, head: str) -> subprocess.CompletedProcess[str]:
    from conftest import CLI

    line = f"refs/heads/main {head} refs/heads/ma\x1b[2Jin {'0' * 40}\n"
    return subprocess.run([*CLI, "scan", "--no-progress", "--pre-push", "origin"], input=line, capture_output=True,
                          text=True, cwd=repo, check=False, timeout=120)


def test_a_config_note_naming_a_hostile_directory(tmp_path: Path) -> None:
    d = tmp_path / ESC_DIR
    d.mkdir()
    (d / ".veritensor-fast.toml").write_text("[tool]\n")
    (tmp_path / "link").symlink_to(d)  # the user types a plain name; the note names where it leads
    p = run_cli("scan", "--no-progress", tmp_path / "link")
    assert "ignoring config" in p.stderr and "ev\\x1b]0;owned\\x07il\\x1b[2J" in p.stderr, p.stderr
    _assert_inert(p.stdout, p.stderr)  # the baseline: the directory's name raw on stderr


def test_report_and_baseline_file_names_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.env").write_text(f"HF={hf_token()}\n")
    out = tmp_path / f"r{ESC_DIR}.json"
    p = run_cli("scan", "--no-progress", "-f", "json", "-o", out, tmp_path / "t")
    assert p.returncode == 1 and out.exists() and "report written to" in p.stderr
    b = run_cli("baseline", "create", "-o", tmp_path / f"b{ESC_DIR}.json", tmp_path / "t")
    assert b.returncode == 0 and "known finding(s) to" in b.stderr, b.stderr
    _assert_inert(p.stderr, b.stderr)


def test_a_datastore_warning_names_its_path_inert(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    store = tmp_path / f"s{ESC_DIR}.db"
    store.write_bytes(b"no SQLite database" * 100)  # moved aside, rebuilt, and a warning names it
    p = run_cli("scan", "--no-progress", "--history", "--datastore", store, repo)
    assert "does not verify" in p.stderr and "s" + ESC_DIR.encode("unicode_escape").decode() in p.stderr, p.stderr
    _assert_inert(p.stdout, p.stderr)


def test_every_control_and_format_character_is_escaped() -> None:
    """Every character of the categories Cc, Cf, Zl and Zp (this Python's Unicode database); the baseline let
    the Arabic number signs, Egyptian hieroglyph and shorthand format controls and musical beam marks through."""
    cats = {"Cc", "Cf", "Zl", "Zp"}
    every = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) in cats]
    assert [c for c in every if escape_text(c) == c] == []
    high = [c for c in every if c >= "\x7f"]  # below: JSON encoders escape C0 themselves
    assert [c for c in high if escape_json(c) == c or json.loads(f'"{escape_json(c)}"') != c] == []  # same value


def test_a_blob_no_commit_reaches_names_no_commit() -> None:
    """A hostile ref with a broken name makes the history walk fail and every blob be scanned as unreachable:
    the text report said ``(commit None by None None)``."""
    from veritensor_fast.findings import Finding, ScanResult
    from veritensor_fast.report import get_reporter

    cm = {"id": None, "author": None, "email": None, "date": None, "message": None, "path": "unreachable/ab",
          "at_head": True, "blob": "ab"}
    f = Finding("huggingface.user-token", "secret", "critical", "unreachable/ab", 1, 4, "Hugging Face user access "
                "token", "hf_ab…cd", "0" * 64, commit=cm)
    for fmt in ("text", "markdown"):
        out = get_reporter(fmt)(ScanResult([f], [], {}))
        assert "unreachable/ab" in out and "None" not in out, out
