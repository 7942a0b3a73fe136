"""review18: no home directory means no disk cache, never a failed scan.

A container run under an arbitrary user id often has no password entry; with ``$HOME`` unset too,
``Path.home()`` raises ``RuntimeError``, and every scan failed with a traceback while computing where the rules
cache lives (before the cache's own "any error: no cache" guard)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import hf_token

#: The CLI with ``Path.home()`` failing as it does without ``$HOME`` and without a password entry.
DRIVER = r"""
import pathlib, sys

def no_home(cls=None):
    raise RuntimeError("Could not determine home directory.")

pathlib.Path.home = classmethod(no_home)
from veritensor_fast.cli import main
sys.argv = ["veritensor-fast", "scan", "--format", "json", "--no-progress", "--jobs", "1", *sys.argv[1:]]
main()
"""


def test_a_scan_without_a_home_directory_finds_what_it_finds_with_one(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "conf.py").write_text(f"TOKEN = '{hf_token()}'\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CACHE_HOME", "VERITENSOR_FAST_CACHE")}
    p = subprocess.run(["timeout", "-s", "KILL", "60", "prlimit", "--as=2000000000", "--", sys.executable, "-c", DRIVER,
                        str(tmp_path / "t")], capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert p.returncode == 1, p.stderr[-2000:]
    report = json.loads(p.stdout)
    assert [(f["rule_id"], f["line"]) for f in report["findings"]] == [("huggingface.user-token", 1)]
    assert not any((tmp_path / n).exists() for n in ("~", ".cache", "veritensor-fast"))  # nothing written here


def test_no_cache_directory_reads_and_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from veritensor_fast.kernels import diskcache

    for k in ("HOME", "XDG_CACHE_HOME", "VERITENSOR_FAST_CACHE"):
        monkeypatch.delenv(k, raising=False)

    def no_home(cls: object = None) -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", classmethod(no_home))
    assert diskcache.cache_dir() is None and diskcache.cache_file("x") is None
    assert diskcache.cache_load(None) is None
    diskcache.cache_store(None, b"data")  # nothing to write to: no error
