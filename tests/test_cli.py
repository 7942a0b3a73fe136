"""The real command line on trees built in a temp dir: findings, formats, exit codes, bad input."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from veritensor_fast.findings import Item, ScanError
from veritensor_fast.sources.fs import FileSource
from veritensor_fast.worker import ScanOptions

from conftest import hf_token, rand, run_cli, scan_json


def make_tree(root: Path) -> dict[str, str]:
    toks = {"hf": hf_token(), "gh": "ghp_" + rand(36), "akid": "AKIA" + rand(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")}
    (root / "src").mkdir()
    (root / "src" / "train.py").write_text(f'import os\n\nHF = "{toks["hf"]}"\n')
    (root / "deploy.env").write_text(f"# ci\nGITHUB_TOKEN={toks['gh']}\nAWS_KEY={toks['akid']}\n")
    (root / "README.md").write_text("nothing here: hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")
    return toks


def test_findings_fields_order_and_exit_code(tree: Path) -> None:
    toks = make_tree(tree)
    rc, rep = scan_json(tree)
    assert rc == 1
    got = [(f["path"], f["line"], f["column"], f["rule_id"]) for f in rep["findings"]]
    assert got == [("deploy.env", 2, 14, "github.token"), ("deploy.env", 3, 9, "aws.access-key-id"),
                   ("src/train.py", 3, 7, "huggingface.user-token")]
    f = rep["findings"][2]
    assert f["kind"] == "secret" and f["severity"] == "critical"
    assert f["redacted"] == toks["hf"][:5] + "…" + toks["hf"][-2:]
    assert len(f["fingerprint"]) == 64 and "secret" not in f
    assert rep["errors"] == []
    assert rep["stats"]["files"] == 3 and rep["stats"]["bytes"] > 0


@pytest.mark.parametrize("fmt", ["text", "json", "jsonl", "sarif"])
def test_no_full_secret_without_flag(tree: Path, fmt: str) -> None:
    toks = make_tree(tree)
    p = run_cli("scan", "--format", fmt, "--no-progress", tree)
    assert p.returncode == 1
    for t in toks.values():
        assert t not in p.stdout and t not in p.stderr
    shown = run_cli("scan", "--format", fmt, "--show-secrets", tree)
    for t in toks.values():
        assert t in shown.stdout


def test_clean_tree_exit_zero(tree: Path) -> None:
    (tree / "a.txt").write_text("hello\n")
    p = run_cli("scan", tree)
    assert p.returncode == 0 and "no findings" in p.stdout


def test_jobs_1_and_2_identical(tree: Path) -> None:
    for i in range(300):  # several batches
        (tree / f"f{i:03}.py").write_text(f"x = '{hf_token()}'\n" if i % 7 == 0 else "pass\n")
    _, a = scan_json("--jobs", "1", tree)
    _, b = scan_json("--jobs", "2", tree)
    assert a["findings"] == b["findings"] and len(a["findings"]) == 43
    assert a["errors"] == b["errors"]


def test_seed_command_line_works(tree: Path) -> None:
    make_tree(tree)
    p = run_cli("scan", tree, "--strict-secrets", "--include-outputs")
    assert p.returncode == 1 and "huggingface.user-token" in p.stdout


def test_excludes_git_dir_and_symlinks(tree: Path) -> None:
    make_tree(tree)
    (tree / ".git").mkdir()
    (tree / ".git" / "config").write_text(f"token={hf_token()}\n")
    (tree / "vendor").mkdir()
    (tree / "vendor" / "x.py").write_text(f"t='{hf_token()}'\n")
    os.symlink(tree / "src" / "train.py", tree / "link.py")
    _, rep = scan_json("--exclude", "vendor", tree)
    paths = {f["path"] for f in rep["findings"]}
    assert paths == {"deploy.env", "src/train.py"}


def test_symlink_loop_reported_once_and_scan_continues(tree: Path) -> None:
    (tree / "d").mkdir()
    (tree / "d" / "a.txt").write_text(f"{hf_token()}\n")
    os.symlink("..", tree / "d" / "up")
    rc, rep = scan_json("--follow-symlinks", tree)
    assert rc == 1
    assert [f["path"] for f in rep["findings"]] == ["d/a.txt"]
    assert [e["kind"] for e in rep["errors"]] == ["not-regular"]


def test_odd_files(tree: Path) -> None:
    tok = hf_token()
    (tree / "empty").write_bytes(b"")
    rng = random.Random(20261130)  # fixed bytes: random ones sometimes began with a pickle opcode (a model finding)
    (tree / "blob.bin").write_bytes(b"\x7fBIN" + rng.randbytes(5000) + b"\x00" + tok.encode() + b"\x00"
                                    + rng.randbytes(100))
    os.mkfifo(tree / "pipe")
    bad_name = os.fsencode(tree) + b"/caf\xe9.txt"
    with open(bad_name, "wb") as fh:
        fh.write(f"k={hf_token()}\n".encode())
    p = run_cli("scan", "--format", "json", tree)
    rep = json.loads(p.stdout)
    assert p.returncode == 1
    paths = sorted(f["path"] for f in rep["findings"])
    assert paths == ["blob.bin", "caf\\xe9.txt"]
    assert [(e["path"], e["kind"]) for e in rep["errors"]] == [("pipe", "not-regular")]


def test_errors_only_gives_exit_3(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    (tree / "ok.txt").write_text("fine\n")
    p = run_cli("scan", tree)
    assert p.returncode == 3 and "scan incomplete" in p.stdout


def test_max_file_size_reported(tree: Path) -> None:
    (tree / "big.txt").write_bytes(b"a" * 5000)
    rc, rep = scan_json("--max-file-size", "1000", tree)
    # a configured limit is a policy skip: reported, but the scan is not incomplete (issue 15)
    assert rc == 0 and [(e["kind"], e["level"]) for e in rep["errors"]] == [("too-large", "skipped")]


def test_unreadable_and_vanished_files_lose_nothing(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = hf_token()
    (tree / "good.txt").write_text(tok + "\n")
    (tree / "secret.txt").write_text("x\n")
    (tree / "gone.txt").write_text("x\n")
    real_open = os.open

    def fake_open(path: str, flags: int, *a: int) -> int:
        if str(path).endswith("secret.txt"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *a)

    class Vanishing(FileSource):
        def items(self):  # type: ignore[no-untyped-def]
            for it in super().items():
                if isinstance(it, Item) and it.path == "gone.txt":
                    os.unlink(it.key)
                yield it

    monkeypatch.setattr(os, "open", fake_open)
    from veritensor_fast.engine import scan

    res = scan(Vanishing([str(tree)]), ScanOptions(), jobs=1)
    assert [f.path for f in res.findings] == ["good.txt"]
    assert [(e.path, e.kind) for e in res.errors] == [("gone.txt", "vanished"), ("secret.txt", "unreadable")]
    assert all(isinstance(e, ScanError) and tok not in e.reason for e in res.errors)


def test_output_file_written_only_on_success(tree: Path, tmp_path: Path) -> None:
    make_tree(tree)
    out = tmp_path / "report.sarif"
    p = run_cli("scan", "-f", "sarif", "-o", out, tree)
    assert p.returncode == 1 and out.exists() and p.stdout == ""
    out2 = tmp_path / "never.json"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: 3\n")
    p = run_cli("scan", "-f", "json", "-o", out2, "--rules", bad, tree)
    assert p.returncode == 2 and not out2.exists()


def test_usage_errors_exit_2(tree: Path) -> None:
    assert run_cli("scan", "--no-such-flag", tree).returncode == 2
    assert run_cli("scan", "--format", "xml", tree).returncode == 2
    assert run_cli("scan").returncode == 2


def test_text_report_grouped_with_summary(tree: Path) -> None:
    make_tree(tree)
    p = run_cli("scan", tree)
    lines = p.stdout.splitlines()
    assert lines[0].startswith(f"{tree}/deploy.env:2:14: ") and "\x1b[" not in p.stdout
    assert lines[-1].startswith("3 findings in 2 files; 3 files scanned, ")


def test_version() -> None:
    from veritensor_fast import __version__

    p = run_cli("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"veritensor-fast {__version__}"


def test_stdin_scan_with_name() -> None:
    import base64
    import subprocess
    import sys

    tok = hf_token()
    manifest = f"apiVersion: v1\nkind: Secret\ndata:\n  HF_TOKEN: {base64.b64encode(tok.encode()).decode()}\n"
    cmd = [sys.executable, "-m", "veritensor_fast.cli", "scan", "-", "--format", "json"]
    p = subprocess.run([*cmd, "--stdin-name", "k8s/secret.yaml"], input=manifest, capture_output=True,
                       text=True, check=False)
    assert p.returncode == 1
    (f,) = json.loads(p.stdout)["findings"]
    assert (f["path"], f["line"], f["rule_id"], f["decoded"]) == ("k8s/secret.yaml", 4, "huggingface.user-token",
                                                                 "base64")
    assert tok not in p.stdout
    clean = subprocess.run(cmd, input="nothing here\n", capture_output=True, text=True, check=False)
    assert clean.returncode == 0 and json.loads(clean.stdout)["stats"]["files"] == 1


def test_several_roots_keep_paths_distinct(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name / "src").mkdir(parents=True)
        (tmp_path / name / "src" / "x.py").write_text(f"t = '{hf_token()}'\n")
    (tmp_path / "one.py").write_text(f"t = '{hf_token()}'\n")
    _, rep = scan_json("a", "./b/", "one.py", cwd=tmp_path)
    assert [f["path"] for f in rep["findings"]] == ["a/src/x.py", "b/src/x.py", "one.py"]
    _, single = scan_json("a", cwd=tmp_path)
    assert [f["path"] for f in single["findings"]] == ["src/x.py"]


def test_pool_avoids_fork_while_other_threads_run(tree: Path) -> None:
    """A parent with a live thread starts workers with forkserver (no lock copied mid-use); same results."""
    import threading

    from veritensor_fast.engine import PoolExecutor, scan

    for i in range(700):  # more than the small-scan shortcut: a real pool
        (tree / f"f{i:03}.py").write_text(f"x = '{hf_token()}'\n" if i % 50 == 0 else "pass\n")
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    try:
        methods: list[str] = []
        real_init = PoolExecutor.__init__

        def spy(self: PoolExecutor, *a: object, **kw: object) -> None:
            real_init(self, *a, **kw)  # type: ignore[arg-type]
            methods.append(self.method)

        PoolExecutor.__init__ = spy  # type: ignore[method-assign]
        try:
            pooled = scan(FileSource([str(tree)]), ScanOptions(), jobs=2)
        finally:
            PoolExecutor.__init__ = real_init  # type: ignore[method-assign]
    finally:
        stop.set()
    assert methods == ["forkserver"]
    single = scan(FileSource([str(tree)]), ScanOptions(), jobs=1)
    assert [(f.path, f.line, f.fingerprint) for f in pooled.findings] == [
        (f.path, f.line, f.fingerprint) for f in single.findings]
    assert len(single.findings) == 14
