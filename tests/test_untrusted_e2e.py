"""Issue 10, end to end: ONE repository holding every attack on the auditor at once.

It configures programs through git (a PGP-'signed' commit with ``log.showSignature`` + ``gpg.program``,
``core.fsmonitor``, an ``include.path`` pulling in a pager and an external diff), ships its own scanner config
(``allow_secrets = ["."]``, ``exclude = ["*"]``, a catastrophic regex) and a forged datastore where the old
default lived, hides tokens in a file name, a zip member name, a notebook cell id, a JSON key, a commit message
and an author, puts terminal control bytes in a file name and an author, and holds a FIFO. Every mode and
format of the real command line must: run no program of the repository's choosing, report every planted
token, exit 1, and never write a full token or a raw control byte to stdout, stderr or the datastore.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_git_hardening import CLEAN_ENV, Hostile

from veritensor_fast.findings import redact

from conftest import GIT_ID, hf_token, run_cli, zip_bytes

ESC = "\x1b"


def _notebook(cell_id: str) -> str:
    cell = {"cell_type": "code", "id": cell_id, "metadata": {}, "source": ["print(1)\n"], "outputs": [],
            "execution_count": None}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_one_hostile_repository_every_mode_and_format(tmp_path: Path) -> None:
    h = Hostile(tmp_path)  # PGP/SSH-'signed' commits holding h.token, h.staged_token staged
    repo = h.repo
    t = {name: hf_token() for name in ("file_name", "control_name", "member", "cell_id", "json_key",
                                       "message", "author", "staged2")}
    (repo / f"{t['file_name']}.txt").write_text("nothing here\n")
    (repo / f"{ESC}[1A{ESC}[2Knotes.txt").write_text(f"HF_TOKEN={t['control_name']}\n")
    (repo / "bundle.zip").write_bytes(zip_bytes({f"docs/{t['member']}.md": b"see member name\n"}))
    (repo / "analysis.ipynb").write_text(_notebook(t["cell_id"]))
    (repo / "settings.json").write_text(json.dumps({t["json_key"]: "value"}))
    (repo / ".veritensor-fast.toml").write_text(
        'allow_secrets = [".", "(?:a|a)+b"]\nexclude = ["*"]\ndisabled_rules = []\n')
    subprocess.run(["git", "-C", str(repo), *GIT_ID, "add", "-A"], check=True, capture_output=True, env=CLEAN_ENV)
    env = {**CLEAN_ENV, "GIT_AUTHOR_NAME": f"Mallory {t['author']} {ESC}[2J", "GIT_AUTHOR_EMAIL": "m@example.invalid"}
    subprocess.run(["git", "-C", str(repo), *GIT_ID, "commit", "-q", "-m", f"tidy up {t['message']}"], check=True,
                   env=env, capture_output=True)
    (repo / "later.txt").write_text(f"token = '{t['staged2']}'\n")
    subprocess.run(["git", "-C", str(repo), "add", "later.txt"], check=True, capture_output=True, env=CLEAN_ENV)
    os.mkfifo(repo / "pipe")
    forged = repo / ".git" / "veritensor-fast"
    forged.mkdir()
    (forged / "datastore.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x00" * 4080)  # where the old default lived
    included = tmp_path / "included.cfg"
    included.write_text(f"[core]\n\tpager = {h.evil}\n[diff]\n\texternal = {h.evil}\n")
    h.config("log.showSignature=true", "gpg.program=EVIL", "core.fsmonitor=EVIL", f"include.path={included}")

    cache = tmp_path / "cache"
    cli_env = {"XDG_CACHE_HOME": str(cache), "HOME": str(tmp_path / "home")}
    names = {"committed": h.token, "staged": h.staged_token, **t}
    all_tokens = list(names.values())
    content = {"file_name", "control_name", "member", "cell_id", "json_key"}
    modes = {
        # a tree scan from outside the target: the target's own config is not applied
        "tree": (["scan", str(repo)], [h.token, h.staged_token, t["staged2"], *(t[k] for k in content)]),
        "history": (["scan", "--history", str(repo)],
                    [h.token, h.staged_token, t["message"], t["author"], *(t[k] for k in content)]),
        "staged": (["scan", "--staged", str(repo)], [t["staged2"]]),
    }
    for mode, (args, expected) in modes.items():
        for fmt in ("text", "json", "jsonl", "sarif"):
            p = run_cli(*args, "--no-progress", "--format", fmt, cwd=tmp_path, env=cli_env, timeout=180)
            assert p.returncode == 1, (mode, fmt, p.stdout[-2000:], p.stderr[-2000:])
            for out in (p.stdout, p.stderr):
                assert not any(tok in out for tok in all_tokens), (mode, fmt, "full token in output")
                assert ESC not in out, (mode, fmt, "raw control byte in output")
            if fmt == "json":
                report = json.loads(p.stdout)
                shown = {f["redacted"] for f in report["findings"]}
                missing = [name for name, tok in names.items() if tok in expected and redact(tok) not in shown]
                assert missing == [], (mode, missing)
                if mode == "tree":
                    assert any(e["path"].endswith("pipe") for e in report["errors"]), report["errors"]
            if mode == "tree" and fmt == "text":
                assert "ignoring" in p.stderr and ".veritensor-fast.toml" in p.stderr, p.stderr
    assert not h.marker.exists(), "a program configured by the scanned repository ran"
    written = b"".join(f.read_bytes() for f in cache.rglob("*") if f.is_file())
    assert written, "the history scans wrote their datastore under the user's cache directory"
    assert not any(tok.encode() in written for tok in all_tokens), "full token in the datastore"
    assert (forged / "datastore.sqlite").read_bytes().startswith(b"SQLite format 3"), "shipped file left alone"
