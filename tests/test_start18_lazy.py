"""Start-up (issue 16): a scan builds and imports only what its inputs need.

- the AST pass's prefilter (two Hyperscan databases and a plan, ~12 ms) is built on the first Python source,
  not when the detector is made: a scan of no ``.py`` file never builds it; one that has some finds the same
  secrets, and a forked pool's workers (not the serial parent) build it;
- ``tomllib`` is imported only to read a config file: a scan where there is none never imports it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import hf_token
from veritensor_fast import scan_paths
from veritensor_fast.detectors import pyast, pyast_prefilter
from veritensor_fast.worker import ScanOptions, WorkerContext

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = pyast.build_prefilter

    def counting(rules: Any) -> Any:
        calls.append(len(rules))
        return real(rules)

    monkeypatch.setattr(pyast, "build_prefilter", counting)
    return calls


def test_no_python_source_builds_no_prefilter(tmp_path: Path, builds: list[int]) -> None:
    tok = hf_token()
    (tmp_path / "notes.txt").write_text(f"token = {tok}\n")
    (tmp_path / "conf.yaml").write_text("a: 1\n")
    res = scan_paths([tmp_path], jobs=1)
    assert [f.secret for f in res.findings] == [tok]
    assert builds == []


def test_python_source_builds_it_once_and_finds_the_same(tmp_path: Path, builds: list[int]) -> None:
    tok = hf_token()
    (tmp_path / "a.py").write_text(f'T = "{tok[:2]}" + "{tok[2:]}"\n')  # only the AST pass reassembles it
    (tmp_path / "b.py").write_text(f'U = "{tok[:1]}" + "{tok[1:]}"\n')
    (tmp_path / "c.txt").write_text("nothing\n")
    res = scan_paths([tmp_path], jobs=1)
    assert sorted((f.path, f.secret) for f in res.findings) == [("a.py", tok), ("b.py", tok)]
    assert len(builds) == 1


def test_prefilter_of_a_made_detector_is_what_building_gives(builds: list[int]) -> None:
    ctx = WorkerContext(ScanOptions())
    (det,) = [d for d in ctx.detectors if d.name == "python-ast"]
    assert builds == []
    db, shapes, plan = det._pre  # type: ignore[attr-defined]
    active = [r for r in ctx.ruleset.rules if not r.strict_only]
    assert builds == [len(active)] and plan == pyast_prefilter.cached_plan(active)
    assert det._pre[2] is plan and len(builds) == 1  # type: ignore[attr-defined]
    assert not det.wanted(b'x = "hello"\n')  # type: ignore[attr-defined]


def test_disabled_ast_pass_builds_nothing(builds: list[int]) -> None:
    ctx = WorkerContext(ScanOptions(python_ast=False))
    (det,) = [d for d in ctx.detectors if d.name == "python-ast"]
    assert det._pre is None and builds == []  # type: ignore[attr-defined]


_PROBE = """
import atexit, sys
atexit.register(lambda: print("TOML", "tomllib" in sys.modules or "tomli" in sys.modules, file=sys.stderr))
from veritensor_fast.cli import main
sys.argv = ["veritensor-fast", "scan", sys.argv[1], "--jobs", "1", "-q", "--no-progress"]
main()
"""


@pytest.mark.parametrize("config", [False, True])
def test_toml_parser_is_imported_only_for_a_config_file(tmp_path: Path, config: bool) -> None:
    target = tmp_path / "t"
    target.mkdir()
    (target / "a.txt").write_text("nothing to see\n")
    tok = hf_token()
    (target / "b.txt").write_text(f"x = {tok}\n")
    if config:
        (tmp_path / ".veritensor-fast.toml").write_text('exclude = ["b.txt"]\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", _PROBE, str(target)], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120, check=False)
    assert p.returncode == (0 if config else 1), p.stderr  # the config's exclude applied: no finding
    assert f"TOML {config}" in p.stderr, p.stderr


_CLEAN_PROBE = """
import atexit, sys
watch = ("importlib.resources", "tempfile", "tomllib", "tomli")
atexit.register(lambda: print("LOADED", sorted(m for m in watch if m in sys.modules), file=sys.stderr))
from veritensor_fast.cli import main
sys.argv = ["veritensor-fast", "scan", sys.argv[1], "--jobs", "1", "-q", "--no-progress"]
main()
"""


def test_plain_scan_in_a_clean_interpreter_imports_no_resource_machinery(tmp_path: Path) -> None:
    """``python -S``: no ``.pth`` file of the environment (which may import ``importlib.resources`` itself, as
    certifi's or an editable install's do) hides what our own start-up imports. ``importlib.resources`` pulls
    in ``tempfile``, ``shutil``, ``zipfile`` and ``random`` (~10 ms); the packaged rules are plain files."""
    import sysconfig

    target = tmp_path / "t"
    target.mkdir()
    (target / "a.txt").write_text("nothing to see\n")
    paths = [str(ROOT), *dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib")), *sys.path[1:]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    for _ in range(2):  # the first run may fill the rules cache
        p = subprocess.run([sys.executable, "-S", "-c", _CLEAN_PROBE, str(target)], capture_output=True, text=True,
                           cwd=tmp_path, env=env, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    assert "LOADED []" in p.stderr, p.stderr
