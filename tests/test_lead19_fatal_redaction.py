"""lead19: a fatal error never prints a secret that a scanned repository put in a name it controls.

The git guard refuses a repository whose config includes a FIFO and names that FIFO in its exit-2 message; on
the code before this test, a FIFO named after a token printed the whole token to stderr."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from veritensor_fast.cli_common import redact_message

from conftest import CLI, hf_token, init_repo

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def test_a_token_named_fifo_in_a_refused_repository_is_redacted(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    tok = hf_token()
    fifo = tmp_path / tok
    os.mkfifo(fifo)
    with open(repo / ".git" / "config", "a") as fh:
        fh.write(f"[include]\n\tpath = {fifo}\n")
    p = subprocess.run([*CLI, "scan", "--history", "--no-progress", "-o", os.devnull, str(repo)],
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 2, p.stderr
    assert "FIFO" in p.stderr and tok[:5] in p.stderr, p.stderr
    assert tok not in p.stderr + p.stdout


def test_a_message_without_a_secret_is_unchanged() -> None:
    msg = "cannot read /tmp/some_ordinary_directory_name/config.toml: permission denied"
    assert redact_message(msg) == msg
