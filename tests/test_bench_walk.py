"""The walk's exclude matching (one compiled regex for all globs) keeps ``fnmatchcase`` semantics exactly."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from veritensor_fast.findings import Item
from veritensor_fast.sources.fs import FileSource, _excluded


def _reference(rel: str, name: str, patterns: tuple[str, ...]) -> bool:
    for pat in patterns:
        p = pat.rstrip("/")
        if fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(rel, p + "/*"):
            return True
    return False


PATTERNS = [
    (), ("ground_truth.json",), ("vendor/",), ("*.min.js", "docs/_build", "[ab]?.txt", "x[!0-9]y"),
    ("*.lock", "node_modules", "dist/", "build", "*.egg-info", "__pycache__", ".tox", "*.pyc", "a/**/c"),
    ("with space/*", "(paren)", "dot.in.name", "plus+", "^caret$", "back\\slash"),
]
PATHS = [
    "ground_truth.json", "sub/ground_truth.json", "vendor", "vendor/x.py", "a/vendor/x.py", "app.min.js",
    "x/app.min.js", "docs/_build/index.html", "docs/_build", "ab.txt", "a1.txt", "abc.txt", "xay", "x1y",
    "poetry.lock", "node_modules/p/index.js", "src/build/out.o", "pkg.egg-info/PKG-INFO", "a/b/c", "a/c",
    "with space/f", "(paren)", "dotXinXname", "dot.in.name", "plus+", "^caret$", "back\\slash", "new\nline.py",
    "ünïcode/é.py", "", "/",
]


@pytest.mark.parametrize("patterns", PATTERNS)
def test_excluded_matches_fnmatch_semantics(patterns: tuple[str, ...]) -> None:
    for rel in PATHS:
        name = rel.rsplit("/", 1)[-1]
        assert _excluded(rel, name, patterns) == _reference(rel, name, patterns), (rel, patterns)
        assert _excluded(rel, name, list(patterns)) == _reference(rel, name, patterns), (rel, patterns)


def test_walk_prunes_excluded_dirs_and_files(tmp_path: Path) -> None:
    for rel in ("keep.py", "vendor/lib.py", "src/app.min.js", "src/ok.js", "docs/_build/x.html", "docs/i.md"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    src = FileSource([str(tmp_path)], excludes=("vendor/", "*.min.js", "docs/_build"))
    got = sorted(it.path for it in src.items() if isinstance(it, Item))
    assert got == ["docs/i.md", "keep.py", "src/ok.js"]
