"""The records and issues of a pickle analysis: the globals a stream uses (``GlobalUse``), where an issue is
(``loc``), and the issues of a stream that broke (``break_issue``) or of the globals it used (``global_issues``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from veritensor_fast.models.base import ModelIssue
from veritensor_fast.models.pickle_reader import Bad, Trunc


class Limit(Exception):
    """An analysis limit (opcodes, MARK nesting, stack or memo size, joblib nesting) was reached."""


@dataclass
class GlobalUse:
    """A global the stream resolved and the allowlist did not allow: where, how, whether it was called."""

    module: str
    name: str
    offset: int
    how: str
    called: bool = False
    reason: str | None = None


def loc(where: str, offset: int) -> dict[str, Any]:
    out: dict[str, Any] = {"offset": offset}
    if where:
        out["member"] = where
    return out


def dunder_issue(name: str, location: dict[str, Any]) -> ModelIssue:
    """The finding of a string operand that names a Python internal (``allowlist.DUNDER_STRINGS``)."""
    return ModelIssue("model.pickle.dunder", "high",
                      f"pickle carries the attribute name {name!r}, used to reach Python internals", name, location)


def break_issue(exc: Exception, pos: int, op_at: int, where: str) -> ModelIssue:
    """The issue of a stream that stopped before STOP: malformed (``Bad``), over a limit (``Limit``), or
    truncated (``Trunc`` at ``pos``, or a short read in the opcode at ``op_at``)."""
    if isinstance(exc, Bad):
        return ModelIssue("model.pickle.corrupt", "high",
                          f"malformed pickle ({exc}) at offset {op_at}; it could not be fully analysed", "corrupt",
                          loc(where, op_at))
    if isinstance(exc, Limit):
        return ModelIssue("model.pickle.limit", "high",
                          f"pickle analysis limit reached ({exc}); the rest could not be analysed", "limit",
                          loc(where, op_at))
    if isinstance(exc, Trunc):
        return ModelIssue("model.pickle.truncated", "high",
                          f"pickle stream ends without STOP (truncated at offset {pos}); it could not be fully "
                          "analysed and anything decoded before the break is reported", "truncated",
                          loc(where, op_at))
    return ModelIssue("model.pickle.truncated", "high",
                      f"pickle stream ends without STOP (truncated at offset {op_at}); it could not be fully "
                      "analysed", "truncated", loc(where, op_at))


def global_issues(uses: dict[str, GlobalUse], where: str) -> list[ModelIssue]:
    """One issue per global a stream used that the allowlist did not allow: dangerous, unresolvable or unknown."""
    out = []
    for key, u in uses.items():
        verb = "calls" if u.called else "references"
        if u.reason == "unresolved":
            out.append(ModelIssue(
                "model.pickle.unresolved-global", "critical",
                f"pickle {verb} a global whose name cannot be resolved statically ({u.how}); treated as "
                "dangerous", key, loc(where, u.offset)))
        elif u.reason is not None:
            out.append(ModelIssue(
                "model.pickle.dangerous-global", "critical",
                f"pickle {verb} dangerous callable {key} via {u.how}: {u.reason}", key,
                loc(where, u.offset)))
        else:
            out.append(ModelIssue(
                "model.pickle.unknown-global", "high" if u.called else "medium",
                f"pickle {verb} {key} via {u.how}, which is not on the reviewed allowlist "
                "(use --allow-global if it is your own class)", key, loc(where, u.offset)))
    return out
