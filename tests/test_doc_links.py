"""Every relative link in README.md and docs/*.md points at a file that exists and, with ``#anchor``, at a
heading of that file (GitHub's anchor rules); every docs page is reachable from the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans (a ``# comment`` in a YAML block is no
    heading, a ``[x](y)`` in code is no link)."""
    text = re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, markup and punctuation dropped (word characters, '-' and spaces
    kept), spaces to '-'."""
    h = re.sub(r"[`*_]{1,2}(?=\S)|(?<=\S)[`*_]{1,2}", "", heading.strip()).lower()
    h = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", h)
    return re.sub(r"[^\w\- ]", "", h).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```[^\n]*$", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    seen: dict[str, int] = {}
    out = set()
    for h in re.findall(r"^#{1,6} +(.+?) *#*$", text, re.M):
        s = slug(h)
        n = seen.get(s, 0)
        seen[s] = n + 1
        out.add(s if n == 0 else f"{s}-{n}")
    return out


def links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page.read_text(encoding="utf-8")))
            if not re.match(r"[a-z][a-z0-9+.-]*:", t)]  # http:, https:, mailto: are not checked (no network)


def test_slug_matches_github() -> None:
    assert slug("Live validation (--validate)") == "live-validation---validate"
    assert slug("Blocking leaks: pre-commit, git hooks, CI") == "blocking-leaks-pre-commit-git-hooks-ci"
    assert slug("A scanned tree does not configure its own audit, and its state is never believed") == \
        "a-scanned-tree-does-not-configure-its-own-audit-and-its-state-is-never-believed"
    assert slug("`scan --staged` and hooks") == "scan---staged-and-hooks"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    found = links(page)
    bad = []
    for target in found:
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
        elif dest.is_relative_to(ROOT) is False:
            bad.append(f"{target}: outside the repository")
    assert not bad, f"{page.relative_to(ROOT)}: " + "; ".join(bad)


def test_link_checker_catches_broken_links(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Top\n\n## Sub part\n\n[ok](#sub-part) [file](a.md#top) [bad](#nope) "
                                   "[gone](b.md) `[code](x.md)`\n\n```yaml\n# not a heading\n```\n")
    page = tmp_path / "a.md"
    assert links(page) == ["#sub-part", "a.md#top", "#nope", "b.md"]
    assert anchors(page) == {"top", "sub-part"}


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    readme = links(ROOT / "README.md")
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in readme if t.partition("#")[0]}
    orphans = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not orphans, f"docs pages the README does not link: {orphans}"
