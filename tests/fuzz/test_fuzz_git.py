"""Fuzzing what parses git plumbing output (sources/git.py): C-quoted paths (``unquote_path``) against real
git's quoting, and whole history scans of small repositories whose file names hold arbitrary bytes (quotes,
backslashes, tabs, control and non-UTF-8 bytes, spaces) and whose blobs are generated. Contract: findings and
errors are well formed (fuzzkit.check), every planted token is found, under the path git stored (rendered by
``display_path``), and the provenance parser attributes it to a commit."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from fuzzkit import check, examples, token, watchdog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veritensor_fast.findings import display_path
from veritensor_fast.sources.git import scan_history, unquote_path
from veritensor_fast.worker import BatchResult, ScanOptions

from conftest import GIT_ID

SETTINGS: dict[str, Any] = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])

# file-name bytes: no NUL, no "/"; newline is left out (a committed path with a newline is issue 11's own
# item, owned and tested by the git work); everything else git may quote is in.
name_bytes = st.lists(st.sampled_from([b"a", b"Z", b"0", b".", b"-", b" ", b'"', b"\\", b"\t", b"\x01", b"\x7f",
                                       b"\xc3\xa9", b"\xff", b"\x80", b"\xe2\x80\xa8", b"~", b"'", b"*", b"?"]),
                      min_size=1, max_size=6).map(b"".join).filter(lambda b: b not in (b".", b".."))


def git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(repo)}
    return subprocess.run(["git", "-C", str(repo), *GIT_ID, *args], input=stdin, capture_output=True, check=True,
                          env=env).stdout


@settings(max_examples=examples(6), **SETTINGS)
@given(st.lists(name_bytes, min_size=1, max_size=4, unique=True), st.integers(0, 2**32), st.binary(max_size=40))
def test_history_scan_of_odd_file_names(tmp_path: Path, names: list[bytes], seed: int, noise: bytes) -> None:
    repo = Path(tempfile.mkdtemp(dir=tmp_path))
    git(repo, "init", "-q", "-b", "main")
    toks: dict[str, str] = {}
    for i, raw in enumerate(names):
        tok = token(seed + i)
        toks[tok] = raw.decode("utf-8", "surrogateescape")
        os.makedirs(os.path.join(os.fsencode(repo), b"d"), exist_ok=True)
        with open(os.path.join(os.fsencode(repo), b"d", raw), "wb") as fh:
            fh.write(noise + f"\nHF_TOKEN={tok}\n".encode())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "add")
    # git's own C-quoted listing of the same names round-trips through unquote_path
    quoted = git(repo, "-c", "core.quotePath=true", "ls-files").decode("ascii").splitlines()
    assert sorted(unquote_path(q) for q in quoted) == sorted("d/" + t for t in toks.values())
    with watchdog():
        r = scan_history([str(repo)], ScanOptions(), jobs=1, use_datastore=False)
    res = BatchResult(findings=r.findings, errors=r.errors)
    check(res, tuple(toks))
    assert not r.errors, r.errors
    got = {f.secret: f for f in r.findings if f.kind == "secret"}
    for tok, name in toks.items():
        assert tok in got, (name, [f.path for f in r.findings])
        assert got[tok].path == display_path("d/" + name)
        assert got[tok].commit is not None


def c_quote(s: str) -> str:
    """git's quote_c_style (core.quotePath=true) of a path, for the round-trip property."""
    esc = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\"}
    raw = s.encode("utf-8", "surrogateescape")
    if not any(b < 0x20 or b >= 0x7F or b in (34, 92) for b in raw):
        return s
    return '"' + "".join(esc.get(b) or (f"\\{b:03o}" if b < 0x20 or b >= 0x7F else chr(b)) for b in raw) + '"'


@settings(max_examples=examples(300), **SETTINGS)
@given(st.binary(min_size=1, max_size=20).filter(lambda b: b"\x00" not in b))
def test_unquote_path_inverts_git_quoting(raw: bytes) -> None:
    s = raw.decode("utf-8", "surrogateescape")
    assert unquote_path(c_quote(s)) == s


@settings(max_examples=examples(300), **SETTINGS)
@given(st.text(max_size=20))
def test_unquote_path_never_raises(s: str) -> None:
    assert isinstance(unquote_path(s), str)
    assert isinstance(unquote_path('"' + s + '"'), str)
