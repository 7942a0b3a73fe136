"""Markdown report for CI job summaries (``$GITHUB_STEP_SUMMARY``, GitLab/Gitea comments): a verdict, a table
of findings (redacted), what could not be scanned, and a pointer to ``veritensor-fast explain``.

Every value from scanned content goes through ``md``: control characters escaped, then shown as a code span
(Markdown and HTML inside are not interpreted), so a file name cannot inject links, images, HTML or break
the table.
"""

from __future__ import annotations

import re

from veritensor_fast.findings import ScanResult
from veritensor_fast.redaction import escape_text
from veritensor_fast.report.text import plural, shown_path, summary

_ICON = {"critical": "🔴", "high": "🟠", "medium": "🟡", "low": "🔵", "info": "⚪"}
_TICKS = re.compile(r"`+")


def md(s: object) -> str:
    """``s`` as an inert code span for a table cell: controls escaped, Markdown and HTML not interpreted (a
    code span shows them as text), a backtick fence longer than any run inside, pipes escaped (GFM tables)."""
    t = escape_text(s).replace("|", "\\|")
    if not t:
        return ""
    fence = "`" * (max((len(m.group()) for m in _TICKS.finditer(t)), default=0) + 1)
    pad = " " if t.startswith("`") or t.endswith("`") else ""
    return f"{fence}{pad}{t}{pad}{fence}"


def render_markdown(result: ScanResult, *, show_secrets: bool = False, color: bool = False) -> str:
    n = len(result.findings)
    root = result.stats.get("root")
    head = "## veritensor-fast: " + (f"{plural(n, 'finding')}" if n else "no findings")
    if result.errors:
        head += " (scan incomplete)"
    out = [head, "", escape_text(summary(result)), ""]
    if result.findings:
        out += ["| Severity | Rule | Location | Secret | Details |", "|---|---|---|---|---|"]
        for f in result.findings:
            shown = f.secret if show_secrets and f.secret is not None else f.redacted
            raw = f.location.get("raw_line") if f.location else None
            line = raw if isinstance(raw, int) and raw > 0 else f.line
            where = f"{shown_path(f.path, root, f.commit)}:{max(line, 1)}"
            details = md(f.message)
            if f.location:
                details += " (" + md(", ".join(f"{k}={v}" for k, v in f.location.items() if v not in (None, ""))) + ")"
            if f.decoded:
                details += f" decoded {md(f.decoded)}"
            if f.commit and f.commit.get("id"):
                details += f" commit {md(str(f.commit.get('id', ''))[:12])} by {md(f.commit.get('author', ''))}"
            out.append(f"| {_ICON.get(f.severity, '')} {escape_text(f.severity)} | {md(f.rule_id)} | {md(where)} | "
                       f"{md(shown)} | {details} |")
        out.append("")
        ids = sorted({f.rule_id for f in result.findings})
        out += ["What each rule's credential grants and how to revoke it: "
                + ", ".join(f"`veritensor-fast explain {escape_text(i).replace('`', '')}`" for i in ids), ""]
    if result.errors:
        out += [f"<details><summary>{plural(len(result.errors), 'input')} could not be scanned</summary>", ""]
        out += [f"- {md(e.path)}: {md(e.reason)} ({md(e.kind)})" for e in result.errors]
        out += ["", "</details>", ""]
    return "\n".join(out)
