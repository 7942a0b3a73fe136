"""trust24: a shown path names one file. ``display_path`` wrote a byte that is not UTF-8 as ``\\xNN`` and left a
UTF-8 name as it was, so the name ``caf\\xe9.env`` (the text: backslash, x, e, 9) and the name whose fourth byte
is 0xE9 were shown alike, and JSON ``path_uri`` and the SARIF ``uri`` named the byte for both. A run of
backslashes before escape-like text (or before such a byte) is now doubled; every other name is shown as is.
Real files on disk, real git paths; SARIF checked with sarif-pydantic, JSON with the report's schema."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote_to_bytes

from hypothesis import example, given
from hypothesis import strategies as st
from sarif_pydantic import Sarif
from test_trust23_bytes_paths import URI, _validator

from veritensor_fast.findings import display_path, has_shown_bytes, path_uri

from conftest import git_run, hf_token, init_repo, run_cli

BYTE, TEXT = b"caf\xe9.env", b"caf\\xe9.env"  # a byte that is not UTF-8; the same as text
#: escape-like text in UTF-8 names (what escape_text writes for ESC and U+202E), a plain backslash
OTHERS = (b"a\\x1b.env", b"b\\u202e.env", b"c\\d.env")
SHOWN = {BYTE: "caf\\xe9.env", TEXT: "caf\\\\xe9.env", b"a\\x1b.env": "a\\\\x1b.env",
         b"b\\u202e.env": "b\\\\u202e.env", b"c\\d.env": "c\\d.env"}

names = st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\0" not in b)
alphabet = st.sampled_from([b"\\", b"x", b"u", b"U", b"e", b"9", b"1", b"b", b"\xe9", b"\xc3\xa9", b"\x1b", b"a"])
tricky = st.lists(alphabet, min_size=1, max_size=10).map(b"".join)


@given(st.one_of(names, tricky))
@example(TEXT)
@example(b"\\\xe9\\x1b\\")
def test_the_uri_gives_the_name_back(raw: bytes) -> None:
    shown = display_path(os.fsdecode(raw))
    shown.encode("utf-8")  # always valid UTF-8 (JSON-safe)
    assert unquote_to_bytes(path_uri(shown)) == raw
    assert has_shown_bytes(shown) == (shown != os.fsdecode(raw))  # path_uri comes with every changed name


@given(st.one_of(names, tricky), st.one_of(names, tricky))
@example(BYTE, TEXT)
def test_two_names_are_never_shown_alike_and_shown_parts_join(a: bytes, b: bytes) -> None:
    da, db = display_path(os.fsdecode(a)), display_path(os.fsdecode(b))
    assert (da == db) == (a == b)
    assert display_path(os.fsdecode(a + b"/" + b)) == f"{da}/{db}"  # a directory's shown name + a shown name


def _tree(root: Path) -> dict[str, bytes]:
    """One file per name, each with its own token; token -> name."""
    root.mkdir(parents=True, exist_ok=True)
    tokens = {}
    for raw in (BYTE, TEXT, *OTHERS):
        tok = hf_token()
        (root / os.fsdecode(raw)).write_text(f"HF_TOKEN={tok}\n")
        tokens[tok] = raw
    return tokens


def _reports(root: Path, *extra: str) -> tuple[dict, dict, str]:  # type: ignore[type-arg]
    args = ("--no-progress", "--show-secrets", *extra, root)
    rep = json.loads(run_cli("scan", "-f", "json", *args).stdout)
    sarif = json.loads(run_cli("scan", "-f", "sarif", *args).stdout)
    Sarif.model_validate(sarif)
    return rep, sarif, run_cli("scan", *args).stdout


def _check(tokens: dict[str, bytes], rep: dict, sarif: dict, text: str) -> None:  # type: ignore[type-arg]
    got = {f["secret"]: f for f in rep["findings"] if f["rule_id"] == "huggingface.user-token"}
    assert set(got) == set(tokens)
    for tok, raw in tokens.items():
        f = got[tok]
        _validator("finding").validate(f)
        assert f["path"] == SHOWN[raw]  # the baseline: caf\xe9.env for both of the first two
        assert unquote_to_bytes(f.get("path_uri", f["path"])) == raw
        assert f"{SHOWN[raw]}:1:10: CRITICAL" in text
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r for r in sarif["runs"][0]["results"]}
    assert all(URI.match(u) for u in uris)
    assert {unquote_to_bytes(u) for u in uris} == set(tokens.values())  # the baseline: caf%E9.env twice


def test_files_on_disk(tmp_path: Path) -> None:
    tokens = _tree(tmp_path / "t")
    _check(tokens, *_reports(tmp_path / "t"))


def test_git_history_shows_the_same_paths(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    tokens = _tree(repo)
    git_run(repo, "add", "-A")
    git_run(repo, "commit", "-q", "-m", "add")
    _check(tokens, *_reports(repo, "--history", "--no-datastore"))


def test_a_missing_blob_is_named_once(tmp_path: Path) -> None:
    """A blob the history needs and the object database lacks is an error at its path, escaped once (its path
    came from a listing that had already shown it: shown again, ``\\xe9`` would read ``\\\\xe9``)."""
    repo = init_repo(tmp_path / "r")
    (repo / os.fsdecode(BYTE)).write_text(f"HF_TOKEN={hf_token()}\n")
    git_run(repo, "add", "-A")
    git_run(repo, "commit", "-q", "-m", "add")
    oid = git_run(repo, "rev-parse", f"HEAD:{os.fsdecode(BYTE)}").stdout.strip()
    (repo / ".git" / "objects" / oid[:2] / oid[2:]).unlink()
    rep = json.loads(run_cli("scan", "-f", "json", "--no-progress", "--history", "--no-datastore", repo).stdout)
    errs = [e for e in rep["errors"] if oid in e["reason"]]
    assert [e["path"] for e in errs] == [SHOWN[BYTE]], rep["errors"]
    assert unquote_to_bytes(errs[0]["path_uri"]) == BYTE
