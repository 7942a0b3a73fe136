"""trust23: file names that are not UTF-8 (real files on disk, real git paths) in SARIF and JSON.

A name byte that is not UTF-8 is shown in ``path`` as a ``\\xNN`` escape. SARIF's ``artifactLocation.uri`` was
``quote`` of that display form (``caf%5Cxe9.txt``: another file's name); it is now the name's own bytes,
percent-encoded (an RFC 3986 URI reference), and JSON carries the same lossless form as ``path_uri``."""

from __future__ import annotations

import json
import os
import re
from importlib import resources
from pathlib import Path
from urllib.parse import unquote_to_bytes

import jsonschema
import pytest
from sarif_pydantic import Sarif

from conftest import git_run, hf_token, init_repo, run_cli

#: RFC 3986 relative-ref made of path characters only: unreserved, sub-delims, ":", "@", "/" and %HH.
URI = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-F]{2})*$")
NAME = b"caf\xe9 \xff.env"


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(resources.files("veritensor_fast.report").joinpath("findings.schema.json").read_text())
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{kind}", "$defs": schema["$defs"]})


def _check(root: Path, *extra: str) -> tuple[dict, dict]:  # type: ignore[type-arg]
    sarif = json.loads(run_cli("scan", "-f", "sarif", "--no-progress", *extra, root).stdout)
    Sarif.model_validate(sarif)
    rep = json.loads(run_cli("scan", "-f", "json", "--no-progress", *extra, root).stdout)
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sarif["runs"][0]["results"]]
    assert uris and all(URI.match(u) for u in uris), uris
    assert unquote_to_bytes(uris[0]) == NAME  # the file's own bytes, not its escaped display
    f = rep["findings"][0]
    assert f["path"] == "caf\\xe9 \\xff.env" and unquote_to_bytes(f["path_uri"]) == NAME
    _validator("finding").validate(f)
    return sarif, rep


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_files_on_disk(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / os.fsdecode(NAME)).write_text(f"HF_TOKEN={hf_token()}\n")
    (root / "plain.env").write_text(f"HF_TOKEN={hf_token()}\n")
    os.mkfifo(root / os.fsdecode(b"p\xe9.fifo"))  # not scanned: an error at a name that is not UTF-8
    _, rep = _check(root)
    plain = [f for f in rep["findings"] if f["path"] == "plain.env"]
    assert plain and "path_uri" not in plain[0]  # only where the path needs it
    err = [e for e in rep["errors"] if e["path"].startswith("p")]
    assert err and unquote_to_bytes(err[0]["path_uri"]) == b"p\xe9.fifo", rep["errors"]
    _validator("error").validate(err[0])


def test_git_paths(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "r")
    (repo / os.fsdecode(NAME)).write_text(f"HF_TOKEN={hf_token()}\n")
    git_run(repo, "add", "-A")
    git_run(repo, "commit", "-q", "-m", "add")
    _check(repo, "--history", "--no-datastore")
