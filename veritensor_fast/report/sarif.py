"""SARIF 2.1.0 reporter (GitHub code scanning, GitLab, IDEs). Validated against the schema in the tests."""

from __future__ import annotations

from typing import Any

import orjson

from veritensor_fast import __version__
from veritensor_fast.findings import Finding, ScanResult, path_uri
from veritensor_fast.redaction import escape_json

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}


def _rule_meta() -> dict[str, Any]:
    from veritensor_fast.rules import load_rules

    return {r.id: r for r in load_rules().rules}


def _help(rule_id: str) -> dict[str, Any]:
    """Code-scanning shows a rule's ``help``: what the credential grants and how to revoke it (built-in rules)."""
    from veritensor_fast.explain import explain

    try:
        e = explain(rule_id)
    except KeyError:  # a user rule
        return {}
    grants = "What it grants" if e.kind == "secret" else "What it means"
    action = "Revoke and rotate" if e.kind == "secret" else "What to do"
    text = f"{grants}: {e.grants}\n\n{action}: {e.action}"
    links = "".join(f"\n- <{u}>" for u in e.links)
    out: dict[str, Any] = {"help": {"text": text, "markdown": f"**{grants}:** {e.grants}\n\n**{action}:** {e.action}"
                                                             + (f"\n{links}" if links else "")}}
    if e.links and e.kind == "model":
        out["helpUri"] = e.links[0]
    return out


def _region(f: Finding) -> dict[str, int]:
    """Where code-scanning puts the annotation: the line of the file itself. A notebook finding's ``line`` and
    ``column`` are relative to its cell (kept in the properties); its ``raw_line`` is the .ipynb file's line."""
    raw = f.location.get("raw_line") if f.location else None
    if isinstance(raw, int) and raw > 0:
        return {"startLine": raw}
    return {"startLine": max(f.line, 1), "startColumn": max(f.column, 1)}


def render_sarif(result: ScanResult, *, show_secrets: bool = False, color: bool = False) -> str:
    meta = _rule_meta()
    rule_ids = sorted({f.rule_id for f in result.findings})
    index = {rid: i for i, rid in enumerate(rule_ids)}
    rules = []
    for rid in rule_ids:
        r = meta.get(rid)
        sev = r.severity if r else next(f.severity for f in result.findings if f.rule_id == rid)
        kind = "secret" if r else next(f.kind for f in result.findings if f.rule_id == rid)
        d: dict[str, Any] = {
            "id": rid,
            "name": (r.name if r else rid).replace(" ", ""),
            "shortDescription": {"text": r.name if r else f"Model file issue: {rid}"},
            "defaultConfiguration": {"level": _LEVEL[sev]},
            "properties": {"security-severity": _SCORE[sev], "tags": ["security", kind]},
        }
        if r and r.references:
            d["helpUri"] = r.references[0]
        d.update(_help(rid))
        rules.append(d)
    results = []
    for f in result.findings:
        shown = f.secret if show_secrets and f.secret is not None else f.redacted
        res: dict[str, Any] = {
            "ruleId": f.rule_id,
            "ruleIndex": index[f.rule_id],
            "level": _LEVEL.get(f.severity, "warning"),
            "message": {"text": f"{f.message}: {shown}"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": path_uri(f.path), "uriBaseId": "%SRCROOT%"},  # the file's own bytes
                "region": _region(f),
            }}],
            "partialFingerprints": {"veritensorFingerprint/v1": f.fingerprint},
            "properties": {"kind": f.kind, "severity": f.severity, "redacted": f.redacted},
        }
        if f.location:
            res["properties"]["location"] = f.location
            if "raw_line" in f.location:
                res["properties"].update(cellLine=f.line, cellColumn=f.column)
        if f.decoded:
            res["properties"]["decoded"] = f.decoded
        if f.commit:
            res["properties"]["commit"] = f.commit
        if f.validation is not None:
            res["properties"]["validation"] = f.validation
            res["properties"]["validationReason"] = f.validation_reason or ""
        if f.repo is not None:
            res["properties"]["repo"] = f.repo
        results.append(res)
    notifications = [{"level": "error", "message": {"text": f"{e.path}: {e.reason}"},
                      "descriptor": {"id": e.kind}} for e in result.errors]
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "veritensor-fast", "version": __version__,
                                "informationUri": "https://github.com/veritensor/veritensor_fast", "rules": rules}},
            "results": results,
            "invocations": [{"executionSuccessful": not result.errors,
                             "toolExecutionNotifications": notifications}],
        }],
    }
    return escape_json(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()) + "\n"
