"""The data that crosses every seam: items to scan, findings, scan errors (frozen, picklable dataclasses).

A full secret lives only in ``Finding.secret``, which is excluded from ``repr`` and written by reporters only
when the user passes ``--show-secrets``. Everything else carries the redacted preview and the fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, fields
from typing import Any

SEVERITY_ORDER = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


@dataclass(frozen=True, slots=True)
class Item:
    """A small, picklable reference to something to scan; never the bytes themselves.

    ``kind`` selects the reader in the worker: ``file`` (``key`` is the filesystem path) or ``blob``
    (``key`` is a git object id in repository ``origin``). ``path`` is what reports show (POSIX, relative).
    ``dev``/``ino`` identify the file the listing saw (0: unknown); ``follow``: the listing followed symlinks.
    ``dir``: a shard of the files of one directory (``key`` the directory, ``path`` its report path before
    display escaping, ``size`` their total, ``entries`` one ``(name, size, dev, ino)`` each); the worker
    expands it into ``file`` items (``sources.fs.expand_shard``), so the parent never builds per-file items.
    ``tree``: what is left of a directory walk, for a pool worker to go on with (``sources.fs.walk_tree``: ``key``
    the walk's base, ``path`` its top, ``origin`` the listing's settings, ``entries`` the directories to enter).
    """

    kind: str
    key: str
    path: str
    size: int = -1
    origin: str = ""
    dev: int = 0
    ino: int = 0
    follow: bool = False
    entries: tuple[tuple[str, int, int, int], ...] = ()
    #: ``(a, b, size, mtime_ns)``: one part of a large ``file`` split across tasks: the windows whose start is in
    #: ``[a, b)`` (``worker.SPAN_BYTES``) of the file as it was split (size, mtime); ``()``: the whole file
    span: tuple[int, ...] = ()

    def __init__(self, kind: str, key: str, path: str, size: int = -1, origin: str = "", dev: int = 0, ino: int = 0,
                 follow: bool = False, entries: tuple[tuple[str, int, int, int], ...] = (),
                 span: tuple[int, ...] = ()) -> None:
        # the dataclass keeps this ``__init__`` (it never replaces one the class defines): the same fields and
        # defaults as the one it would write, each set through its slot's own setter (``_I0``.. below) where the
        # frozen dataclass's calls ``object.__setattr__(self, name, value)``: 3.9 -> 2.1 us an item, paid in the
        # parent and again in a worker for each of the 66k items of a 6k-commit history sweep
        _I0(self, kind), _I1(self, key), _I2(self, path), _I3(self, size), _I4(self, origin)
        _I5(self, dev), _I6(self, ino), _I7(self, follow), _I8(self, entries), _I9(self, span)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # pickled as its constructor's arguments: 4x cheaper to send and 2x to receive than the slots state
        # (a ``--history`` sweep sends every blob as an Item: 66k in a 6k-commit history, 0.32 -> 0.11 CPU-s)
        return (Item, (self.kind, self.key, self.path, self.size, self.origin, self.dev, self.ino, self.follow,
                       self.entries, self.span))


#: the setters of ``Item``'s slots (of the class the dataclass made for ``slots=True``), in field order
_I0, _I1, _I2, _I3, _I4, _I5, _I6, _I7, _I8, _I9 = (Item.__dict__[f.name].__set__ for f in fields(Item))


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    kind: str  # "secret" | "model"
    severity: str
    path: str
    line: int
    column: int
    message: str
    redacted: str
    fingerprint: str
    location: dict[str, Any] | None = None
    decoded: str | None = None  # decoding chain, e.g. "base64 → json → base64"
    commit: dict[str, Any] | None = None  # provenance for git history findings
    secret: str | None = field(default=None, repr=False)  # full secret; reported only with --show-secrets
    validation: str | None = None  # --validate: "valid" | "invalid" | "unknown" (see veritensor_fast.validate)
    validation_reason: str | None = None  # a short why, never the secret
    repo: str | None = None  # the repository, when one scan covers several (a many-repo history sweep)

    def sort_key(self) -> tuple[str, str, int, int, str, str]:
        return (self.repo or "", self.path, self.line, self.column, self.rule_id, self.fingerprint)


#: how every error of a failed allocation (``MemoryError``, a C library's out-of-memory) begins its reason (kind
#: ``limit``): never reported as a corrupt, invalid or unparsable input
OUT_OF_MEMORY = "out of memory"


@dataclass(frozen=True, slots=True)
class ScanError:
    """An input that could not be (fully) scanned. ``reason`` never contains secret material."""

    path: str
    reason: str
    kind: str = "unreadable"  # unreadable | too-large | vanished | not-regular | changed | parse | corrupt | limit | internal
    # | crash (the worker process died while scanning this item: killed by a signal, out of memory)
    #: ``error`` (could not scan: the scan is incomplete), ``skipped`` (by a configured policy) or ``warning``
    #: (noted, but the input was scanned); empty: decided by ``kind`` (see ``error_level``).
    level: str = ""


#: Kinds that are the user's own choice, not a failure: ``too-large`` is a configured ``--max-file-size`` skip.
POLICY_KINDS = frozenset({"too-large"})
ERROR_LEVELS = ("error", "skipped", "warning")


def error_level(e: ScanError) -> str:
    """``error``, ``skipped`` or ``warning``: only ``error`` makes a scan incomplete (exit code 3)."""
    if e.level:
        return e.level
    return "skipped" if e.kind in POLICY_KINDS else "error"


@dataclass
class ScanResult:
    """What a scan returns (``engine.scan``) and reporters render: sorted findings, errors and stats."""

    findings: list[Finding]
    errors: list[ScanError]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """No error of level ``error`` (policy skips and warnings do not make a scan incomplete)."""
        return not any(error_level(e) == "error" for e in self.errors)


def fingerprint(rule_id: str, secret: bytes | str) -> str:
    """Stable identity of a secret under a rule: sha256 of ``rule_id`` + NUL + secret (hex)."""
    s = secret.encode("utf-8", "surrogateescape") if isinstance(secret, str) else secret
    return hashlib.sha256(rule_id.encode() + b"\x00" + s).hexdigest()


def redact(secret: bytes | str) -> str:
    """A preview that identifies a secret to its owner without disclosing it: ``hf_Ab…yz``."""
    s = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else secret
    s = s.replace("\n", " ").replace("\r", " ")
    n = len(s)
    if n < 12:
        return "…" if n < 6 else s[:2] + "…"
    head = min(5, n // 6)
    return f"{s[:head]}…{s[-2:]}"


#: Text that reads as an escape: what :func:`display_path` writes for a byte (``\\xNN``) and ``redaction.escape_text``
#: for a control character (``\\xNN``, ``\\uNNNN``, ``\\UNNNNNNNN``), lower-case hex as both write it.
_ESCAPE_TEXT = r"(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})"
#: A run of backslashes in a name that must be doubled: one followed by escape-like text or by a byte that is not
#: UTF-8 (a surrogate escape), which is about to be written ``\\xNN`` after it.
_DOUBLED = re.compile(r"(\\+)(?=" + _ESCAPE_TEXT + r"|[\udc80-\udcff])")
#: A run of backslashes and the escape-like text after it, in a shown path (what :func:`path_uri` reads back).
_SHOWN_ESCAPE = re.compile(r"(\\+)(" + _ESCAPE_TEXT + ")")
_ESCAPED = re.compile(r"\\" + _ESCAPE_TEXT)


def display_path(path: str) -> str:
    """A printable, JSON-safe rendering of a path that may hold undecodable bytes (surrogate escapes), that no
    other name shares: each such byte is written ``\\xNN`` (``\\x80`` to ``\\xff``), and a run of backslashes that
    is followed by escape-like text (``xNN``, ``uNNNN``, ``UNNNNNNNN``, lower-case hex) or by such a byte is
    doubled, so that a UTF-8 name holding the text ``\\xe9`` shows as ``\\\\xe9``, never as the byte. Every other
    name (any UTF-8 name without that text) is shown as it is. The rule looks only at what follows a backslash,
    so shown names joined with ``/`` are the shown joined name; :func:`path_uri` gives the bytes back. Apply it
    once: a shown path is not a name (applied again, the escapes it wrote would be doubled)."""
    if "\\" not in path:
        if path.isascii():
            return path
        try:
            path.encode("utf-8")
            return path
        except UnicodeEncodeError:
            pass
    else:
        path = _DOUBLED.sub(r"\1\1", path)
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def has_shown_bytes(shown: str) -> bool:
    """Whether a path from :func:`display_path` is not the name as it is: it stands for bytes that are not UTF-8
    (``\\xNN`` escapes) or doubles a backslash before escape-like text (its :func:`path_uri` tells the name)."""
    return "\\" in shown and _ESCAPED.search(shown) is not None


def _unescape(m: re.Match[str]) -> str:
    n, text = len(m.group(1)), m.group(2)
    if n % 2 and text[0] == "x" and text[1] in "89abcdef":  # the last backslash writes a byte
        return "\\" * (n // 2) + chr(0xDC00 + int(text[1:], 16))
    return "\\" * (n // 2 + n % 2) + text  # a doubled run before a name's own text (an odd one: not ours)


def path_uri(shown: str) -> str:
    """A path from :func:`display_path` as an RFC 3986 URI reference: its bytes (each ``\\xNN`` escape the byte
    it stands for, each doubled backslash one), percent-encoded (``caf\\xe9.txt`` -> ``caf%E9.txt``, and the UTF-8
    name ``caf\\xe9.txt``, shown ``caf\\\\xe9.txt``, -> ``caf%5Cxe9.txt``)."""
    from urllib.parse import quote

    return quote(shown_name(shown).encode("utf-8", "surrogateescape"))


def shown_name(shown: str) -> str:
    """The name a path from :func:`display_path` shows, as ``os.fsdecode`` gives it (a byte that is not UTF-8 a
    surrogate escape): what an exclude glob typed as the name matches."""
    return _SHOWN_ESCAPE.sub(_unescape, shown) if has_shown_bytes(shown) else shown
