"""A pure-Python stand-in for the subset of the ``hyperscan`` module this package uses (Python ``re`` inside).

Used where ``hyperscan`` cannot be imported (no wheel for the platform, e.g. musl/Alpine or an old aarch64
glibc) or when ``VERITENSOR_FAST_MATCHER=python`` forces it; ``veritensor_fast.kernels.select`` installs it as
``sys.modules["hyperscan"]`` so every ``import hyperscan`` in the package gets it. Findings are identical (the
secret matcher skips the prefilter entirely and runs each rule's confirmation regex over the whole buffer, see
``veritensor_fast.matcher``); it is slower, which is the price of the platform.

Semantics kept: the match callback gets ``(id, 0, end, 0, context)``; a callback returning true stops the scan
with ``ScanTerminated``; ``HS_FLAG_SINGLEMATCH`` reports a pattern once; a literal pattern reports every
occurrence, overlapping ones included (as Hyperscan does); other patterns report the end of each leftmost,
non-overlapping match (Hyperscan reports every end offset: callers here only use ends to find candidates).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

__version__ = "python-fallback-1"

HS_FLAG_CASELESS = 1
HS_FLAG_DOTALL = 2
HS_FLAG_MULTILINE = 4
HS_FLAG_SINGLEMATCH = 8
HS_FLAG_ALLOWEMPTY = 16
HS_FLAG_UTF8 = 32
HS_FLAG_UCP = 64
HS_FLAG_PREFILTER = 128
HS_FLAG_SOM_LEFTMOST = 256
HS_MODE_BLOCK = 1

_MAGIC = "veritensor-fast/hs-python/1"
#: After removing escapes (``\\x68``, ``\\.``), a literal has none of these.
_ESCAPES = re.compile(rb"\\x[0-9a-fA-F]{2}|\\[^A-Za-z0-9]")
_META = frozenset(b".^$*+?{}[]|()\\")


class error(Exception):  # noqa: N801 - the name the hyperscan module uses
    """Compile or scan failure (``hyperscan.error``)."""


class ScanTerminated(error):
    """The match callback asked to stop."""


def _is_literal(pattern: bytes) -> bool:
    return not (set(_ESCAPES.sub(b"", pattern)) & _META)


class Database:
    def __init__(self, mode: int = HS_MODE_BLOCK) -> None:
        self.mode = mode
        self.scratch: Any = None
        self._pats: list[tuple[int, bytes, int]] = []
        self._compiled: list[tuple[int, re.Pattern[bytes], bool, bool]] = []

    def compile(self, expressions: Sequence[bytes | str], ids: Sequence[int] | None = None,
                elements: int | None = None, flags: Sequence[int] | int | None = None) -> None:
        exprs = [e.encode() if isinstance(e, str) else bytes(e) for e in expressions]
        n = len(exprs) if elements is None else elements
        idl = list(ids) if ids is not None else list(range(n))
        fl = [flags] * n if isinstance(flags, int) else list(flags) if flags is not None else [0] * n
        self._load(list(zip(idl[:n], exprs[:n], fl[:n], strict=True)))

    def _load(self, pats: list[tuple[int, bytes, int]]) -> None:
        compiled = []
        for pid, pat, fl in pats:
            body, rf = pat, 0
            if body.startswith(b"(?i)"):
                body, rf = body[4:], re.IGNORECASE
            rf |= (re.IGNORECASE if fl & HS_FLAG_CASELESS else 0) | (re.DOTALL if fl & HS_FLAG_DOTALL else 0)
            rf |= re.MULTILINE if fl & HS_FLAG_MULTILINE else 0
            try:
                rx = re.compile(body, rf)
            except re.error as exc:
                raise error(f"pattern {pid}: {exc}") from None
            compiled.append((pid, rx, bool(fl & HS_FLAG_SINGLEMATCH), _is_literal(body)))
        self._pats, self._compiled = pats, compiled

    def scan(self, data: Any, match_event_handler: Callable[..., Any] | None = None, flags: int = 0,
             context: Any = None, **_kw: Any) -> None:
        """As ``hyperscan.Database.scan(data, match_event_handler, flags=0, context=None, scratch=None)``: the
        same positional order (a positional call is the fast one there: keywords cost ~0.6 us per call)."""
        events: list[tuple[int, int]] = []
        for pid, rx, single, literal in self._compiled:
            pos, n = 0, len(data)
            while pos <= n:
                m = rx.search(data, pos)
                if m is None:
                    break
                events.append((m.end(), pid))
                if single:
                    break
                pos = m.start() + 1 if literal or m.end() == m.start() else m.end()
        if match_event_handler is None:
            return
        events.sort()
        for end, pid in events:
            if match_event_handler(pid, 0, end, 0, context):
                raise ScanTerminated("error code -3")


class Scratch:
    def __init__(self, db: Database | None = None) -> None:
        self.db = db


def dumpb(db: Database) -> bytes:
    return json.dumps({"magic": _MAGIC, "mode": db.mode,
                       "patterns": [[pid, pat.hex(), fl] for pid, pat, fl in db._pats]}).encode()


def loadb(blob: bytes, mode: int = HS_MODE_BLOCK) -> Database:
    try:
        doc = json.loads(blob)
        if doc["magic"] != _MAGIC:
            raise ValueError(doc["magic"])
        pats = [(int(pid), bytes.fromhex(pat), int(fl)) for pid, pat, fl in doc["patterns"]]
    except Exception as exc:
        raise error(f"not a serialised fallback database: {type(exc).__name__}") from None
    db = Database(mode)
    db._load(pats)
    return db
