"""JSON (one document) and JSON Lines (one finding per line, then errors, then stats) reporters."""

from __future__ import annotations

import orjson

from veritensor_fast.findings import ScanResult
from veritensor_fast.redaction import escape_json
from veritensor_fast.report import error_dict, finding_dict


def render_json(result: ScanResult, *, show_secrets: bool = False, color: bool = False) -> str:
    doc = {
        "findings": [finding_dict(f, show_secrets) for f in result.findings],
        "errors": [error_dict(e) for e in result.errors],
        "stats": result.stats,
    }
    return escape_json(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()) + "\n"


def render_jsonl(result: ScanResult, *, show_secrets: bool = False, color: bool = False) -> str:
    lines = [orjson.dumps({"type": "finding", **finding_dict(f, show_secrets)}) for f in result.findings]
    lines += [orjson.dumps({"type": "error", **error_dict(e)}) for e in result.errors]
    lines.append(orjson.dumps({"type": "stats", **result.stats}))
    return escape_json(b"\n".join(lines).decode()) + "\n"
