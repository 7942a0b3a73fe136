"""Human-readable report: findings grouped by file, coloured on a TTY, then errors and a summary line."""

from __future__ import annotations

from itertools import groupby

from veritensor_fast.findings import ScanResult

_COLORS = {"critical": "\x1b[1;31m", "high": "\x1b[31m", "medium": "\x1b[33m", "low": "\x1b[36m",
           "info": "\x1b[37m"}
_RESET, _BOLD, _DIM = "\x1b[0m", "\x1b[1m", "\x1b[2m"


def _where(loc: dict[str, object] | None) -> str:
    if not loc:
        return ""
    parts = [f"{k}={v}" for k, v in loc.items() if v is not None and v != ""]
    return " [" + ", ".join(parts) + "]"


def render_text(result: ScanResult, *, show_secrets: bool = False, color: bool = False) -> str:
    def c(code: str, s: str) -> str:
        return f"{code}{s}{_RESET}" if color else s

    out: list[str] = []
    for (repo, path), group in groupby(result.findings, key=lambda f: (f.repo, f.path)):
        out.append(c(_BOLD, f"{repo}: {path}" if repo is not None else path))
        for f in group:
            sev = c(_COLORS.get(f.severity, ""), f"{f.severity.upper():8}")
            shown = f.secret if show_secrets and f.secret is not None else f.redacted
            line = f"  {f.line}:{f.column}  {sev} {f.rule_id}  {shown}  {f.message}{_where(f.location)}"
            if f.commit:
                cm = f.commit
                line += c(_DIM, f"  (commit {str(cm.get('id', ''))[:12]} by {cm.get('author', '')}"
                                f" {cm.get('date', '')})")
            out.append(line)
        out.append("")
    if result.errors:
        out.append(c(_BOLD, "Could not scan:"))
        for e in result.errors:
            out.append(f"  {e.path}: {e.reason} ({e.kind})")
        out.append("")
    s = result.stats
    n = len(result.findings)
    verdict = f"{n} finding{'s' if n != 1 else ''}" if n else "no findings"
    summary = (f"{verdict} in {s.get('files', 0)} files ({s.get('bytes', 0) / 1e6:.1f} MB, "
               f"{s.get('seconds', 0):.2f} s, {s.get('mb_per_s', 0)} MB/s)")
    if result.errors:
        summary += f"; {len(result.errors)} input(s) could not be scanned: scan incomplete"
    out.append(c(_BOLD, summary))
    return "\n".join(out) + "\n"
