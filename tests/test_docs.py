"""The README is a short guide for users; the per-area guarantees and details live in docs/, one page per area,
and every link between them resolves (see also tests/test_doc_links.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: the page each area's guarantees now live on, and its title
AREAS = {
    "docs/untrusted.md": "# Auditing untrusted repositories",
    "docs/resources.md": "# Resource bounds and faults",
    "docs/notebooks.md": "# Notebooks",
    "docs/models.md": "# Model files",
    "docs/archives.md": "# Archives",
    "docs/git-history.md": "# Git history",
    "docs/configuration.md": "# Configuration",
    "docs/baselines.md": "# Baselines and inline ignores",
    "docs/dask.md": "# Distributed scans (Dask)",
    "docs/validation.md": "# Live validation (--validate)",
    "docs/encoded.md": "# Encoded secrets",
    "docs/python-source.md": "# Python source",
    "docs/reports.md": "# Findings and reports",
    "docs/cli.md": "# Command line",
    "docs/install.md": "# Install, test and supported platforms",
    "docs/hooks-and-ci.md": "# Blocking leaks before they land: hooks and CI",
}


def test_readme_is_for_users_and_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## How it works" not in readme and "## Benchmarks" not in readme
    assert "fork" not in readme.split("## Python library", 1)[-1]  # process-model timings moved to docs
    for heading in ("## Install", "## Quick start", "## What it finds", "## Configuration", "## Output formats",
                    "## Exit codes", "## Supported platforms", "## Python library",
                    "## Auditing untrusted repositories", "## Resource bounds and faults"):
        assert re.search(rf"^{re.escape(heading)}$", readme, re.M), heading
    assert re.search(r"exits with code 1: the demo tree holds", readme)
    for doc in ("docs/rules.md", "docs/design.md", "docs/benchmarks.md"):
        assert f"]({doc})" in readme and (ROOT / doc).is_file()
    for md in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"\]\((\.\./[^)#]+|[a-z-]+\.md)\)", md.read_text(encoding="utf-8")):
            assert (md.parent / target).exists(), (md.name, target)


def test_readme_is_a_five_minute_read() -> None:
    """The README was 1,169 lines of user guidance mixed with per-area guarantees and measurements."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 350
    assert "MB/s" not in readme and " s wall" not in readme  # measurements live in docs/


def test_each_area_has_its_page_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page, title in AREAS.items():
        text = (ROOT / page).read_text(encoding="utf-8")
        assert text.startswith(title + "\n"), (page, text[:80])
        assert f"]({page})" in readme, page


def test_area_pages_keep_their_guarantees() -> None:
    """Spot checks that the guarantees moved with their areas (not lost in the README rewrite)."""
    expect = {
        "docs/untrusted.md": ["core.hooksPath=/dev/null", "GIT_ALLOW_PROTOCOL", "safe.directory=*",
                              "is **not applied**", "bidi overrides", "`not-regular`"],
        "docs/resources.md": ["512 MiB of work per top-level file", "1,000", "`kind: crash`", "PR_SET_PDEATHSIG",
                              "/dev/full"],
        "docs/notebooks.md": ["32 MiB + 6 × the largest single cell", "No hiding place", "`raw_line`"],
        "docs/models.md": ["allowlist", "model.pickle.dos", "model.joblib.external-file", "Known gaps"],
        "docs/git-history.md": ["Each distinct blob is scanned once", "Secrets are never stored", "`--new-only`"],
        "docs/hooks-and-ci.md": ["PRE_COMMIT_FROM_REF", "PRE_COMMIT_LOCAL_BRANCH", "GitLab CI"],
        "docs/configuration.md": ["RE2", "show_secrets` cannot be configured"],
        "docs/baselines.md": ["gitleaks:allow", "byte-identical"],
    }
    for page, needles in expect.items():
        text = (ROOT / page).read_text(encoding="utf-8")
        for n in needles:
            assert n in text, (page, n)


def test_readme_anchors_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
             for h in re.findall(r"^#+ (.+)$", readme, re.M)}
    for anchor in re.findall(r"\]\(#([^)]+)\)", readme):
        assert anchor in slugs, anchor
