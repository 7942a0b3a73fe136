"""Human-readable report: findings grouped by file, coloured on a TTY, then errors and a summary line.

Every value that comes from scanned content or the command line (paths, member names, messages, locations,
commit authors, error reasons, even rule ids from a rules file) goes through ``escape_text``: a control or
invisible character is shown as an escape and can never move the cursor, erase lines or recolour output.
"""

from __future__ import annotations

from itertools import groupby

from veritensor_fast.findings import ERROR_LEVELS, ScanResult, error_level
from veritensor_fast.redaction import escape_text as e_

_COLORS = {"critical": "\x1b[1;31m", "high": "\x1b[31m", "medium": "\x1b[33m", "low": "\x1b[36m",
           "info": "\x1b[37m"}
_RESET, _BOLD, _DIM = "\x1b[0m", "\x1b[1m", "\x1b[2m"


def _where(loc: dict[str, object] | None) -> str:
    if not loc:
        return ""
    parts = [f"{e_(k)}={e_(v)}" for k, v in loc.items() if v is not None and v != ""]
    return " [" + ", ".join(parts) + "]"


def _skipped_dirs(dirs: list[str]) -> str:
    """Summary clause for the directories the default excludes skipped (virtualenvs, build output, caches)."""
    if not dirs:
        return ""
    shown = ", ".join(dirs[:5]) + (f", … ({len(dirs) - 5} more)" if len(dirs) > 5 else "")
    n = len(dirs)
    return f"; skipped {n} director{'ies' if n != 1 else 'y'} by default ({shown}; --no-default-excludes scans them)"


def render_text(result: ScanResult, *, show_secrets: bool = False, color: bool = False) -> str:
    def c(code: str, s: str) -> str:
        return f"{code}{s}{_RESET}" if color else s

    out: list[str] = []
    for (repo, path), group in groupby(result.findings, key=lambda f: (f.repo, f.path)):
        out.append(c(_BOLD, e_(f"{repo}: {path}" if repo is not None else path)))
        for f in group:
            sev = c(_COLORS.get(f.severity, ""), f"{e_(f.severity.upper()):8}")
            shown = f.secret if show_secrets and f.secret is not None else f.redacted
            line = f"  {f.line}:{f.column}  {sev} {e_(f.rule_id)}  {e_(shown)}  {e_(f.message)}{_where(f.location)}"
            if f.validation is not None:
                line += f"  (live: {e_(f.validation)}: {e_(f.validation_reason or '')})"
            if f.commit:
                cm = f.commit
                line += c(_DIM, f"  (commit {e_(str(cm.get('id', ''))[:12])} by {e_(cm.get('author', ''))}"
                                f" {e_(cm.get('date', ''))})")
            out.append(line)
        out.append("")
    by_level = {lv: [e for e in result.errors if error_level(e) == lv] for lv in ERROR_LEVELS}
    for lv, title in (("error", "Could not scan:"), ("skipped", "Skipped by policy:"), ("warning", "Warnings:")):
        if by_level[lv]:
            out.append(c(_BOLD, title))
            out.extend(f"  {e_(e.path)}: {e_(e.reason)} ({e_(e.kind)})" for e in by_level[lv])
            out.append("")
    s = result.stats
    n = len(result.findings)
    verdict = f"{n} finding{'s' if n != 1 else ''}" if n else "no findings"
    summary = (f"{verdict} in {s.get('files', 0)} files ({s.get('bytes', 0) / 1e6:.1f} MB, "
               f"{s.get('seconds', 0):.2f} s, {s.get('mb_per_s', 0)} MB/s)")
    if by_level["error"]:
        summary += f"; {len(by_level['error'])} input(s) could not be scanned: scan incomplete"
    if by_level["skipped"]:
        summary += f"; {len(by_level['skipped'])} skipped by policy"
    if by_level["warning"]:
        summary += f"; {len(by_level['warning'])} warning(s)"
    summary += _skipped_dirs(s.get("skipped_dirs") or [])
    if "config" in s:  # which config file the scan ran with (the CLI sets it; None: none)
        out.append(f"config: {e_(str(s['config'])) if s['config'] else 'none'}")
    out.append(c(_BOLD, summary))
    return "\n".join(out) + "\n"
