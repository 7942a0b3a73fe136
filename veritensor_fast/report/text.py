"""Human-readable report: one ``path:line:col`` line per finding (terminals and editors open it), the source
line with the secret redacted and a caret under it, then errors and a summary line.

Every value that comes from scanned content or the command line (paths, member names, messages, locations,
commit authors, error reasons, even rule ids from a rules file) goes through ``escape_text``: a control or
invisible character is shown as an escape and can never move the cursor, erase lines or recolour output.

``result.stats["root"]`` (set by the CLI when one directory or file was scanned) is the directory report paths
are relative to; the text report prefixes it so the ``path:line:col`` opens from the current directory.
"""

from __future__ import annotations

import os
from itertools import groupby
from typing import Any

from veritensor_fast.findings import ERROR_LEVELS, ScanResult, error_level
from veritensor_fast.redaction import escape_text as e_
from veritensor_fast.report.context import contexts

_COLORS = {"critical": "\x1b[1;31m", "high": "\x1b[31m", "medium": "\x1b[33m", "low": "\x1b[36m",
           "info": "\x1b[37m"}
_RESET, _BOLD, _DIM = "\x1b[0m", "\x1b[1m", "\x1b[2m"

#: Inputs shown one by one per reason under "Could not scan"; the rest are counted on one line.
SAME_REASON_SHOWN = 10


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def human_bytes(n: float) -> str:
    """``1.2 kB``, ``3.4 MB``... (SI units, as ``ls -h --si``); bytes below 1000 as ``512 B``."""
    if n < 1000:
        return f"{int(n)} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}"
    raise AssertionError  # pragma: no cover


def human_seconds(s: float) -> str:
    if s < 60:
        return f"{s:.2f} s" if s < 10 else f"{s:.0f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m} min {sec:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def rate(nbytes: float, seconds: float) -> str | None:
    """A throughput worth printing: only for scans long and large enough for it to mean something."""
    if seconds < 1 or nbytes < 10_000_000:
        return None
    return f"{human_bytes(nbytes / seconds)}/s"


def _where(loc: dict[str, object] | None) -> str:
    if not loc:
        return ""
    parts = [f"{e_(k)}={e_(v)}" for k, v in loc.items() if v is not None and v != "" and k != "raw_line"]
    return " [" + ", ".join(parts) + "]"


def shown_path(path: str, root: Any, commit: object = None) -> str:
    """The path as the user can open it: prefixed with the scan root (not for git history findings)."""
    if isinstance(root, str) and root not in ("", ".") and commit is None:
        return os.path.join(root, path).replace(os.sep, "/")
    return path


def summary(result: ScanResult) -> str:
    s = result.stats
    n = len(result.findings)
    with_findings = len({f.path for f in result.findings})
    verdict = f"{plural(n, 'finding')} in {plural(with_findings, 'file')}" if n else "no findings"
    files = int(s.get("files", 0) or 0)
    secs = float(s.get("seconds", 0) or 0)
    bits = [f"{plural(files, 'file')} scanned", human_bytes(float(s.get("bytes", 0) or 0)), human_seconds(secs)]
    r = rate(float(s.get("bytes", 0) or 0), secs)
    if r:
        bits.append(r)
    line = f"{verdict}; {', '.join(bits)}"
    if s.get("baselined"):
        line += f"; {s['baselined']} known (baseline)"
    by_level = {lv: sum(1 for e in result.errors if error_level(e) == lv) for lv in ERROR_LEVELS}
    if by_level["error"]:
        line += f"; {plural(by_level['error'], 'input')} could not be scanned: scan incomplete"
    if by_level["skipped"]:
        line += f"; {by_level['skipped']} skipped by policy"
    if by_level["warning"]:
        line += f"; {plural(by_level['warning'], 'warning')}"
    return line + _skipped_dirs(s.get("skipped_dirs") or [])


def _skipped_dirs(dirs: list[str]) -> str:
    """Summary clause for the directories the default excludes skipped (virtualenvs, build output, caches)."""
    if not dirs:
        return ""
    shown = ", ".join(e_(d) for d in dirs[:5]) + (f", … ({len(dirs) - 5} more)" if len(dirs) > 5 else "")
    n = len(dirs)
    return f"; skipped {n} director{'ies' if n != 1 else 'y'} by default ({shown}; --no-default-excludes scans them)"


def render_text(result: ScanResult, *, show_secrets: bool = False, color: bool = False) -> str:
    def c(code: str, s: str) -> str:
        return f"{code}{s}{_RESET}" if color else s

    root = result.stats.get("root")
    ctx = {} if show_secrets else contexts(result.findings, root if isinstance(root, str) else None)
    out: list[str] = []
    for _key, group in groupby(result.findings, key=lambda f: (f.repo, f.path)):
        for f in group:
            cx = ctx.get(id(f))
            ln, col = f.line, f.column
            raw = f.location.get("raw_line") if f.location else None
            pos = f":{max(ln, 1)}:{max(col, 1)}"
            if isinstance(raw, int) and raw > 0:  # a notebook: the line of the .ipynb file itself
                pos = f":{raw}:{cx.column}" if cx is not None else f":{raw}"
            elif f.location and "cell" in f.location:  # a line inside a cell, not of the file: not openable
                pos = ""
            shown_p = shown_path(f.path, root, f.commit)
            if f.repo is not None:  # a many-repository sweep: say which repository
                shown_p = f"{f.repo}: {shown_p}"
            where = c(_BOLD, e_(f"{shown_p}{pos}"))
            sev = c(_COLORS.get(f.severity, ""), e_(f.severity.upper()))
            shown = f.secret if show_secrets and f.secret is not None else f.redacted
            loc = f.location
            if loc and "cell" in loc:  # the line and column inside the cell
                loc = {**loc, "cell_line": f"{f.line}:{f.column}"}
            line = f"{where}: {sev} {e_(f.rule_id)}  {e_(shown)}  {e_(f.message)}{_where(loc)}"
            if f.validation is not None:
                line += f"  (live: {e_(f.validation)}: {e_(f.validation_reason or '')})"
            if f.commit and f.commit.get("id"):  # none for a blob no commit reaches (``unreachable/<oid>``)
                cm = f.commit
                line += c(_DIM, f"  (commit {e_(str(cm.get('id', ''))[:12])} by {e_(cm.get('author', ''))}"
                                f" {e_(cm.get('date', ''))})")
            out.append(line)
            if cx is not None:
                out.append(c(_DIM, f"    {cx.text}"))
                out.append(c(_DIM, "    " + " " * cx.caret + "^" * cx.width))
        out.append("")
    for lv, title in (("error", "Could not scan:"), ("skipped", "Skipped by policy:"), ("warning", "Warnings:")):
        errs = [e for e in result.errors if error_level(e) == lv]
        if errs:
            out.append(c(_BOLD, title))
            same: dict[tuple[str, str], int] = {}
            for e in errs:  # many inputs with one reason (workers that kept dying): a few, then their count
                n = same[(e.reason, e.kind)] = same.get((e.reason, e.kind), 0) + 1
                if n <= SAME_REASON_SHOWN:
                    out.append(f"  {e_(e.path)}: {e_(e.reason)} ({e_(e.kind)})")
            out.extend(f"  ... and {n - SAME_REASON_SHOWN} more: {e_(r)} ({e_(k)}); the json report lists them"
                       for (r, k), n in same.items() if n > SAME_REASON_SHOWN)
            out.append("")
    if result.stats.get("quiet"):  # --quiet: findings and errors only
        return "\n".join(out).rstrip("\n") + "\n" if out else ""
    if result.findings:
        from veritensor_fast.findings import SEVERITY_ORDER

        worst: dict[str, int] = {}
        for f in result.findings:
            worst[f.rule_id] = max(worst.get(f.rule_id, 0), SEVERITY_ORDER.get(f.severity, 0))
        ids = sorted(worst, key=lambda i: (-worst[i], i))  # the most severe first
        out.append(f"What a finding means and how to revoke it: veritensor-fast explain {e_(ids[0])}"
                   + (f" (rules here: {', '.join(e_(i) for i in ids)})" if len(ids) > 1 else ""))
    if "config" in result.stats:  # which config file the scan ran with (the CLI sets it; None: none)
        out.append(f"config: {e_(str(result.stats['config'])) if result.stats['config'] else 'none'}")
    out.append(c(_BOLD, summary(result)))
    return "\n".join(out) + "\n"
