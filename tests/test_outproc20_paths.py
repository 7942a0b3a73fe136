"""outproc20: the files the scanner writes or reads besides the scanned input never hang it or get replaced.

On 8eea362: ``scan -o FIFO`` and ``baseline create -o FIFO`` with no reader hung forever (a FIFO planted at the
report's name in a shared CI workspace hangs the job); a named FIFO *with* a reader got nothing and the scan
hung (the ``--output`` probe opened and closed the FIFO, which the reader took for the end of the report); ``-o
/dev/stdout`` with standard output redirected to a file renamed a regular file over the ``/dev/stdout`` link (as
root: for every later ``> /dev/stdout`` on the machine) and the report never reached the file; ``--scheduler-file
FIFO`` hung; a shard file in ``--shard-output DIR`` that is a FIFO hung the worker reading it; ``--datastore``
naming a device was opened by SQLite and then *renamed* to ``.invalid`` (as root: ``/dev/zero``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from veritensor_fast.shards import read_shard

from conftest import CLI, run_cli


def _src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("x = 1\n")
    return src


@pytest.mark.parametrize("command", ["scan", "baseline"])
def test_a_fifo_with_no_reader_is_a_clear_error_not_a_hang(tmp_path: Path, command: str) -> None:
    src = _src(tmp_path)
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    args = (["scan", "--no-progress", "-o", fifo] if command == "scan" else ["baseline", "create", "-o", fifo])
    p = run_cli(*args, src, timeout=20)  # 8eea362: TimeoutExpired
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "nobody reads it" in p.stderr and str(fifo) in p.stderr


def test_a_named_fifo_with_a_reader_gets_the_whole_report(tmp_path: Path) -> None:
    src = _src(tmp_path)
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as fh:  # waits for the writer, as `cat report.fifo` does
            got.append(fh.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    p = run_cli("scan", "--no-progress", "-f", "json", "-o", fifo, src, timeout=20)
    reader.join(10)
    assert p.returncode == 0, p.stderr
    assert got and json.loads(got[0])["stats"]["files"] == 1  # 8eea362: got b"" and the scan hung


@pytest.mark.parametrize("name", ["link", "/dev/fd/1"])
def test_a_name_for_standard_output_writes_into_the_redirected_file(tmp_path: Path, name: str) -> None:
    """``-o /dev/stdout > report.json``. A link of our own to ``/proc/self/fd/1`` stands for ``/dev/stdout``:
    on 8eea362 the test would otherwise replace the machine's ``/dev/stdout``."""
    src = _src(tmp_path)
    target = tmp_path / "stdout-link"
    target.symlink_to("/proc/self/fd/1")
    out = tmp_path / "captured.json"
    with open(out, "wb") as fh:
        p = subprocess.run([*CLI, "scan", "--no-progress", "-f", "json", "-o",
                            str(target) if name == "link" else name, str(src)],
                           stdout=fh, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    assert json.loads(out.read_text())["stats"]["files"] == 1
    assert target.is_symlink() and os.readlink(target) == "/proc/self/fd/1"


def test_appending_standard_output_is_appended_to(tmp_path: Path) -> None:
    src = _src(tmp_path)
    out = tmp_path / "log"
    out.write_text("before\n")
    with open(out, "ab") as fh:
        p = subprocess.run([*CLI, "scan", "--no-progress", "-f", "json", "-o", "/dev/fd/1", str(src)],
                           stdout=fh, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    head, body = out.read_text().split("\n", 1)
    assert head == "before" and json.loads(body)["stats"]["files"] == 1


def test_process_substitution_still_gets_the_report(tmp_path: Path) -> None:
    src = _src(tmp_path)
    got = tmp_path / "got"
    cmd = f'{" ".join(CLI)} scan --no-progress -f json -o >(cat > {got}) {src}; wait'
    p = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    for _ in range(100):
        if got.exists() and got.stat().st_size:
            break
        threading.Event().wait(0.05)
    assert json.loads(got.read_text())["stats"]["files"] == 1


def test_a_scheduler_file_that_is_a_fifo_is_an_error(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    fifo = tmp_path / "scheduler.json"
    os.mkfifo(fifo)
    p = run_cli("scan", "--no-progress", "--scheduler-file", fifo, _src(tmp_path), timeout=20)  # 8eea362: hangs
    assert p.returncode == 2 and "not a regular file" in p.stderr, (p.returncode, p.stderr)


def test_a_fifo_in_the_shard_directory_is_not_done_and_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "shard.jsonl"
    os.mkfifo(fifo)
    res: list[object] = []
    t = threading.Thread(target=lambda: res.append(read_shard(str(fifo))), daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():  # 8eea362: blocked in open(); let it go before failing
        with open(fifo, "wb"):
            pass
        t.join(5)
        pytest.fail("read_shard blocked on a FIFO")
    assert res == [None]
    from veritensor_fast.safeio import replace_file

    replace_file(fifo, '{"type": "done"}\n')  # the worker's write replaces it, never opens it
    assert fifo.is_file() and not fifo.is_fifo()


@pytest.mark.skipif(os.geteuid() != 0 or not sys.platform.startswith("linux"), reason="mknod needs root")
def test_a_datastore_that_is_a_device_is_neither_used_nor_renamed(tmp_path: Path) -> None:
    from conftest import init_repo

    repo = init_repo(tmp_path / "repo")
    dev = tmp_path / "zero"
    os.mknod(dev, 0o600 | 0o020000, os.makedev(1, 5))  # a character device: /dev/zero's numbers
    p = run_cli("scan", "--no-progress", "--history", "--datastore", dev, repo, timeout=60)
    assert p.returncode == 3 and "not a regular file" in p.stdout + p.stderr, (p.returncode, p.stdout, p.stderr)
    assert dev.is_char_device() and not (tmp_path / "zero.invalid").exists()  # 8eea362: renamed, rebuilt


def _big_pyproject(d: Path, ours: bool) -> None:
    """A 2 MiB ``pyproject.toml`` (a scanned checkout's: the scan is run in it); 60 MB took 57 s and 612 MB."""
    d.mkdir()
    (d / "a.py").write_text("x = 1\n")
    head = '[tool.veritensor-fast]\nexclude = ["none"]\n' if ours else "[tool.other]\n"
    (d / "pyproject.toml").write_text(head + "".join(f"k{i} = {i}\n" for i in range(200_000)))


def test_a_config_too_large_to_parse_is_an_error(tmp_path: Path) -> None:
    _big_pyproject(tmp_path / "repo", ours=True)
    p = run_cli("scan", "--no-progress", ".", cwd=tmp_path / "repo", timeout=60)
    assert p.returncode == 2 and "larger than 1048576 bytes" in p.stderr, (p.returncode, p.stderr)  # 8eea362: 0


def test_a_large_pyproject_without_our_table_is_skipped_with_a_note(tmp_path: Path) -> None:
    _big_pyproject(tmp_path / "repo", ours=False)
    p = run_cli("scan", "--no-progress", ".", cwd=tmp_path / "repo", timeout=60)
    assert p.returncode == 0 and "ignoring" in p.stderr and "larger than" in p.stderr, (p.returncode, p.stderr)


def test_a_fifo_in_the_cache_directory_is_no_cache_not_a_hang(tmp_path: Path) -> None:
    from veritensor_fast.kernels.diskcache import cache_load

    d = tmp_path / "veritensor-fast"
    d.mkdir(mode=0o700)
    fifo = d / "rules-0.json"
    os.mkfifo(fifo, 0o600)
    res: list[object] = []
    t = threading.Thread(target=lambda: res.append(cache_load(fifo)), daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():  # 8eea362: blocked in open() (every scan of that user hung at start-up)
        with open(fifo, "wb"):
            pass
        t.join(5)
        pytest.fail("cache_load blocked on a FIFO")
    assert res == [None]
