"""Reporters are sinks: they turn a finished ``ScanResult`` into text. One module per format.

``get_reporter`` hands every reporter a result that went through ``redaction.redact_result`` first (every
occurrence of a found secret in any field replaced by its preview, unless ``show_secrets``); every reporter
goes through ``finding_dict``, the single place that decides whether the full secret is written (only with
``show_secrets``). Text output escapes control characters; JSON output escapes them as ``\\u`` sequences.
"""

from __future__ import annotations

from typing import Any, Protocol

from veritensor_fast.findings import Finding, ScanError, ScanResult, has_shown_bytes, path_uri
from veritensor_fast.redaction import redact_result

FORMATS = ("text", "json", "jsonl", "sarif", "markdown")


class Reporter(Protocol):
    def __call__(self, result: ScanResult, *, show_secrets: bool = False, color: bool = False) -> str: ...


def finding_dict(f: Finding, show_secrets: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "rule_id": f.rule_id, "kind": f.kind, "severity": f.severity, "path": f.path, "line": f.line,
        "column": f.column, "location": f.location, "message": f.message, "redacted": f.redacted,
        "fingerprint": f.fingerprint,
    }
    if f.decoded:
        d["decoded"] = f.decoded
    if f.commit is not None:
        d["commit"] = f.commit
    if f.validation is not None:
        d["validation"] = f.validation
        d["validation_reason"] = f.validation_reason or ""
    if f.repo is not None:
        d["repo"] = f.repo
    if show_secrets and f.secret is not None:
        d["secret"] = f.secret
    if has_shown_bytes(f.path):
        d["path_uri"] = path_uri(f.path)
    return d


def error_dict(e: ScanError) -> dict[str, Any]:
    from veritensor_fast.findings import error_level

    d = {"path": e.path, "kind": e.kind, "level": error_level(e), "reason": e.reason}
    if has_shown_bytes(e.path):  # not the name as it is (``display_path``): its bytes, percent-encoded
        d["path_uri"] = path_uri(e.path)
    return d


def get_reporter(fmt: str) -> Reporter:
    """The reporter for ``fmt``, behind the redaction seam (no reporter ever sees an unredacted result)."""
    render = _renderer(fmt)

    def safe(result: ScanResult, *, show_secrets: bool = False, color: bool = False) -> str:
        return render(redact_result(result, show_secrets), show_secrets=show_secrets, color=color)

    return safe


def _renderer(fmt: str) -> Reporter:
    if fmt == "json":
        from veritensor_fast.report.json import render_json

        return render_json
    if fmt == "jsonl":
        from veritensor_fast.report.json import render_jsonl

        return render_jsonl
    if fmt == "sarif":
        from veritensor_fast.report.sarif import render_sarif

        return render_sarif
    if fmt == "markdown":
        from veritensor_fast.report.markdown import render_markdown

        return render_markdown
    if fmt == "text":
        from veritensor_fast.report.text import render_text

        return render_text
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
