"""Packaging: the metadata, floors and artefact checks that make the README's install commands work as written.
The real ``python -m build`` runs in ``.ci/run`` (it needs the package index); these tests are offline. Issue 15."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _ci_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / ".ci" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _floor(name: str) -> Version:
    for dep in PYPROJECT["project"]["dependencies"]:
        req = Requirement(dep)
        if req.name.lower() == name:
            return min(Version(s.version) for s in req.specifier if s.operator == ">=")
    raise AssertionError(name)


def test_license_file_and_metadata() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    proj = PYPROJECT["project"]
    assert proj["license"] == "Apache-2.0" and proj["license-files"] == ["LICENSE"]
    assert "Typing :: Typed" in proj["classifiers"]
    assert any(c.startswith("Programming Language :: Python :: 3.10") for c in proj["classifiers"])


def test_floors_are_the_tested_ones() -> None:
    # below 0.15.4 every command crashes with click >= 8.2 (0.12: `X | None` annotations unsupported)
    assert _floor("typer") >= Version("0.15.4")
    assert _floor("py7zr") >= Version("1.0")  # 0.22 has no py7zr.io, which the 7z reader imports


def test_package_data_is_declared() -> None:
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["veritensor_fast"]
    assert "*.yaml" in data["veritensor_fast.rules"] and "*.json" in data["veritensor_fast.report"]
    assert (ROOT / "veritensor_fast" / "py.typed").is_file()
    pkgs = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {f"veritensor_fast.{p.name}" for p in (ROOT / "veritensor_fast").iterdir()
               if p.is_dir() and (p / "__init__.py").is_file()}
    assert on_disk <= pkgs  # a new subpackage that is not listed would be missing from the wheel


def test_check_dist_catches_an_incomplete_wheel() -> None:
    cd = _ci_module("check_dist")
    need = cd.required_wheel_files()
    assert {"veritensor_fast/py.typed", "veritensor_fast/report/findings.schema.json",
            "veritensor_fast/kernels/hsdb.py", "veritensor_fast/rules/huggingface.yaml"} <= set(need)
    meta = "License-Expression: Apache-2.0\n"
    eps = "[console_scripts]\nveritensor-fast = veritensor_fast.cli:main\n"
    lic = ["veritensor_fast-0.1.0.dist-info/licenses/LICENSE"]
    assert cd.check_wheel(need + lic, meta, eps) == []
    missing = [n for n in need if not n.endswith(("py.typed", ".yaml"))]
    problems = cd.check_wheel(missing, "", "")
    assert "wheel lacks veritensor_fast/py.typed" in problems
    assert "wheel lacks veritensor_fast/rules/huggingface.yaml" in problems
    assert "wheel lacks the LICENSE file" in problems and "wheel lacks the veritensor-fast console script" in problems
    assert cd.check_sdist(["pyproject.toml"]) == [f"sdist lacks {n}" for n in (
        "LICENSE", "README.md", "kernels/hsdb.py", "veritensor_fast/py.typed",
        "veritensor_fast/report/findings.schema.json")]
    readme = "see [the docs](docs/untrusted.md#git) and [models](docs/models.md)"
    assert cd.check_sdist(["pyproject.toml"], readme)[-2:] == ["sdist lacks docs/models.md", "sdist lacks docs/untrusted.md"]


def test_lowest_pins_pin_every_runtime_floor(tmp_path: Path) -> None:
    lp = _ci_module("lowest_pins")
    pins = lp.lowest_pins(ROOT / "pyproject.toml")
    names = [Requirement(p).name for p in pins]
    assert "typer" in names and "hyperscan" in names and ("tomli" in names) == (sys.version_info < (3, 11))
    typer = Requirement(next(p for p in pins if p.startswith("typer")))
    assert typer.specifier.contains("0.15.4") and not typer.specifier.contains("0.15.5")
    ijson = Requirement(next(p for p in pins if p.startswith("ijson")))
    assert ijson.specifier.contains("3.2.0.post0") and not ijson.specifier.contains("3.2.1")
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project]\ndependencies = ["foo"]\n')
    with pytest.raises(SystemExit):
        lp.lowest_pins(bad)


def test_python_dash_m_runs_the_cli() -> None:
    p = subprocess.run([sys.executable, "-m", "veritensor_fast", "--version"], capture_output=True, text=True,
                       check=False, cwd=ROOT)
    from veritensor_fast import __version__

    assert p.returncode == 0 and p.stdout.strip() == f"veritensor-fast {__version__}"
    assert __version__ == PYPROJECT["project"]["version"]


def test_readme_install_snippets_work_as_written() -> None:
    """No snippet installs from a package index or pins a tag that does not exist (until a release exists)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install veritensor-fast" not in readme.replace("pip install veritensor-fast[", "")
    assert "rev: v0.1.0" not in readme
    # the docs pages too, and extras by name ('veritensor-fast[validate]' is not on an index either)
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        bad = re.findall(r"pip install (?:-\S+ )*['\"]?veritensor[-_]fast\b[^\n`]*", text)
        assert not bad, (page.name, bad)
        assert "rev: v0.1.0" not in text, page.name
