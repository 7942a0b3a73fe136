"""The README is for users; internals and benchmarks live in docs/, and every link between them resolves."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_is_for_users_and_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## How it works" not in readme and "## Benchmarks" not in readme
    assert "fork" not in readme.split("## Python library", 1)[-1]  # process-model timings moved to docs
    for heading in ("## Auditing untrusted repositories", "## Resource bounds and faults", "## Notebooks",
                    "## Model files", "## Archives", "## Git history", "## Configuration"):
        assert heading in readme
    assert re.search(r"exits with code 1: the demo tree holds", readme)
    for doc in ("docs/rules.md", "docs/design.md", "docs/benchmarks.md"):
        assert f"]({doc})" in readme and (ROOT / doc).is_file()
    for md in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\((\.\./[^)#]+|[a-z]+\.md)\)", md.read_text(encoding="utf-8")):
            assert (md.parent / target).exists(), (md.name, target)


def test_readme_anchors_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
             for h in re.findall(r"^#+ (.+)$", readme, re.M)}
    for anchor in re.findall(r"\]\(#([^)]+)\)", readme):
        assert anchor in slugs, anchor
