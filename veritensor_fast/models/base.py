"""Types shared by the model analysers: the ``ModelIssue`` they return, the limits they obey, the error type."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: A run of token characters long enough to be a credential (no ``/`` or ``.``: path parts stay readable).
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_\-+=]{20,}")


def shown_path(path: str, limit: int = 200) -> str:
    """A path a scanned file names, fit for a finding's message and evidence (``ModelIssue.evidence`` is never
    secret material): at most ``limit`` characters, and each run of 20 or more token characters cut to its first
    four (a location such as ``../hf_...`` may hold a credential the secret rules do not see, glued to the bytes
    around it)."""
    text = path if len(path) <= limit else path[:limit] + "..."
    return _TOKEN_RUN.sub(lambda m: m.group()[:4] + "…", text)


@dataclass(frozen=True, slots=True)
class ModelIssue:
    """One model-file finding. ``evidence`` names what was found (e.g. ``os.system``); never secret material."""

    rule_id: str
    severity: str  # info | low | medium | high | critical
    message: str
    evidence: str
    location: dict[str, Any] | None = None
    #: not a finding but an incomplete analysis (a ``ScanError`` kind, "limit" or "corrupt"): a limit or damage
    #: that stopped the analysis before any model-like content was reached (a benign big or cut-off tarball)
    error: str = ""


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """Resource limits; exceeding one is a finding, never a crash or a hang."""

    max_ops: int = 20_000_000  # pickle opcodes per stream
    max_memo: int = 2_000_000
    max_stack: int = 2_000_000
    max_marks: int = 100_000
    max_streams: int = 64  # stacked pickles per file
    max_depth: int = 16  # archive nesting (work is bounded by the decompression budget, see decompress.py)
    max_members: int = 20_000
    max_member_bytes: int = 512 << 20  # bytes decompressed from one member that we need whole
    max_total_bytes: int = 2 << 30  # bytes decompressed per top-level file
    max_ratio: int = 200  # compression ratio treated as a bomb (above ``bomb_floor`` bytes)
    bomb_floor: int = 32 << 20
    max_json_bytes: int = 64 << 20
    max_nested_pickle: int = 3
    max_expansion: int = 10_000_000  # elements a memo/DUP-shared structure may expand to ("billion laughs")


@dataclass(frozen=True, slots=True)
class AnalyzeOptions:
    """What the caller wants: extra allowed globals (``module:qualname`` or dotted), limits."""

    allow_globals: tuple[str, ...] = ()
    limits: ModelLimits = field(default_factory=ModelLimits)


class ModelAnalysisError(Exception):
    """Raised inside the model analysers for a structural problem; callers turn it into a finding."""
