"""Parsing git plumbing output and objects exactly: NUL-separated streams and raw commit objects.

Nothing here trusts a newline: paths, author names and messages are written by whoever made the commits and
may hold newlines, tabs, NULs (a commit made with ``hash-object``) or terminal control bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import IO

from veritensor_fast import gitcmd

_IDENT = re.compile(rb"^(.*?) ?<([^<>]*)> (-?\d+) ([+-])(\d{2})(\d{2})$", re.S)
#: Headers whose value is scanned: who made a commit (author, committer) or an annotated tag (tagger) and a tag's
#: own name (``tag``: its location names it); a commit's ``gpgsig`` and ids are not (git writes them). A commit has no
#: ``tag``/``tagger`` header of its own (a signed merge's ``mergetag`` holds them on continuation lines).
SCANNED_HEADERS = (b"author", b"committer", b"tag", b"tagger")


def commit_path(oid: str) -> str:
    """The report path of a commit's own text (message, author, committer): ``commit:<id>``."""
    return f"commit:{oid}"


def tag_path(oid: str) -> str:
    """The report path of an annotated tag's own text (name, tagger, message): ``tag:<id>``."""
    return f"tag:{oid}"


def is_commit_path(path: str, oid: str) -> bool:
    """Whether ``path`` is ``commit_path(oid)`` or ``tag_path(oid)``: a git object's own text, not a blob (checked
    per listed blob: no string is built)."""
    if not oid:
        return False
    if path.startswith("commit:"):
        return path[7:] == oid
    return path.startswith("tag:") and path[4:] == oid


def is_tag_path(path: str, oid: str) -> bool:
    """Whether ``path`` is ``tag_path(oid)``."""
    return bool(oid) and path.startswith("tag:") and path[4:] == oid


def nul_tokens(stream: IO[bytes], chunk: int = 1 << 16) -> Iterator[bytes]:
    """The NUL-terminated tokens of a stream (``-z`` output), without their terminator."""
    rest = b""
    while True:
        data = stream.read(chunk)
        if not data:
            break
        parts = (rest + data).split(b"\0")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def parse_raw_z(tokens: Iterable[bytes], only: Collection[bytes] | None = None) -> Iterator[tuple[str, str, bytes]]:
    """``git log --raw -z --no-renames --format=%x01...`` tokens -> (format line, post-image oid, path bytes)
    for every single-parent raw entry (the path is exact: it may hold newlines). ``only``: the post-image ids
    (ASCII hex) wanted; the other entries are skipped before anything is decoded (provenance looks up the few
    blobs with findings among every entry of the history: 60k in a 6k-commit one)."""
    head = b""
    it = iter(tokens)
    for tok in it:
        t = tok.lstrip(b"\n")
        if t.startswith(b"\x01"):
            head = t  # decoded only for an entry that is yielded
            continue
        if not t.startswith(b":"):
            continue
        path = next(it, None)
        if path is None:
            break
        fields = t.split()
        if len(fields) >= 5 and (only is None or fields[3] in only):
            yield head[1:].decode("utf-8", "replace"), fields[3].decode("ascii", "replace"), path


@dataclass(frozen=True)
class Commit:
    """A parsed commit object: the headers as (name, value) in order, then the message."""

    oid: str
    headers: tuple[tuple[bytes, bytes], ...]
    message: bytes

    def ident(self, which: bytes = b"author") -> tuple[str, str, int, str]:
        """(name, email, unix time, ISO date) of the author or committer ("" / 0 when unparsable)."""
        for name, value in self.headers:
            if name == which:
                m = _IDENT.match(value)
                if m is None:
                    return value.decode("utf-8", "replace"), "", 0, ""
                ts = int(m.group(3))
                off = timedelta(hours=int(m.group(5)), minutes=int(m.group(6)))
                tz = timezone(-off if m.group(4) == b"-" else off)
                try:
                    date = datetime.fromtimestamp(ts, tz).isoformat()
                except (OverflowError, OSError, ValueError):
                    date = ""
                return m.group(1).decode("utf-8", "replace"), m.group(2).decode("utf-8", "replace"), ts, date
        return "", "", 0, ""

    @property
    def is_tag(self) -> bool:
        """An annotated tag object (its first header is ``object``; a commit's is ``tree``)."""
        return bool(self.headers) and self.headers[0][0] == b"object"

    @property
    def subject(self) -> str:
        return self.message.split(b"\n", 1)[0].decode("utf-8", "replace").strip()

    def provenance(self) -> dict[str, object]:
        """The ``Finding.commit`` fields of this commit: id, author, email, date, message (first line). For an
        annotated tag: its tagger as author, and ``tag``, its name (from the object's own ``tag`` header)."""
        if self.is_tag:
            name, email, _ts, date = self.ident(b"tagger")
            tag = next((v for n, v in self.headers if n == b"tag"), b"").decode("utf-8", "replace")
            # the subject of what was scanned: a first line that opens a signature (``-----BEGIN PGP
            # SIGNATURE-----hf_...``) is cut from the scan, so shown it could print a secret nothing redacts
            subject = unsigned(self.message).split(b"\n", 1)[0].decode("utf-8", "replace").strip()
            return {"id": self.oid, "author": name, "email": email, "date": date or None, "message": subject,
                    "tag": tag}
        name, email, _ts, date = self.ident()
        return {"id": self.oid, "author": name, "email": email, "date": date or None, "message": self.subject}


def parse_commit(oid: str, raw: bytes) -> Commit:
    """Split a raw commit object into headers (continuation lines joined) and message."""
    head, _, message = raw.partition(b"\n\n")
    parts: list[tuple[bytes, list[bytes]]] = []  # each header's lines, joined once (a 2 MB ``mergetag`` of
    for line in head.split(b"\n"):                # 20,000 lines joined line by line took 30 s: quadratic)
        if line.startswith(b" ") and parts:
            parts[-1][1].append(line[1:])
        else:
            name, _, value = line.partition(b" ")
            parts.append((name, [value]))
    return Commit(oid, tuple((name, b"\n".join(values)) for name, values in parts), message)


#: Lines that open the signature git appends to a signed tag's message (``gpg-interface.c``: PGP, X.509, SSH).
_SIG_STARTS = (b"-----BEGIN PGP SIGNATURE-----", b"-----BEGIN PGP MESSAGE-----", b"-----BEGIN SIGNED MESSAGE-----",
               b"-----BEGIN SSH SIGNATURE-----")


def unsigned(message: bytes) -> bytes:
    """A tag message without its signature: cut at the last line that opens one, as git's own
    ``parse_signed_buffer`` does (what ``git show`` and ``git tag -v`` call the message)."""
    return split_signed(message)[0]


def split_signed(message: bytes) -> tuple[bytes, bytes]:
    """A tag message and its signature (empty when unsigned), cut where ``unsigned`` cuts."""
    cut = -1
    pos = 0
    while pos < len(message):
        if message.startswith(_SIG_STARTS, pos):
            cut = pos
        nl = message.find(b"\n", pos)
        pos = len(message) if nl < 0 else nl + 1
    return (message, b"") if cut < 0 else (message[:cut], message[cut:])


def commit_text(raw: bytes) -> tuple[bytes, list[str]]:
    """What is scanned in a commit: its author and committer lines (and the tag a signed-tag merge embeds in its
    ``mergetag`` header: name, tagger, message, without signature), a blank line, then the message. In an
    annotated tag: its ``tag`` (name) and ``tagger`` lines, a blank line, then the message without its
    signature. Signatures (a tag's, a ``mergetag``'s) come last. Returns the bytes and, for each of their lines
    (1-based line n is ``fields[n-1]``), the field it
    belongs to."""
    c = parse_commit("", raw)
    signature = b""
    if c.is_tag:
        message, signature = split_signed(c.message)
        c = Commit(c.oid, c.headers, message)
    lines: list[bytes] = []
    fields: list[str] = []
    merged: list[bytes] = []
    signed: list[bytes] = signature.split(b"\n") if signature else []
    for name, value in c.headers:
        if name in SCANNED_HEADERS:
            for part in value.split(b"\n"):
                lines.append(name + b" " + part)
                fields.append(name.decode())
        elif name == b"mergetag" and not c.is_tag:
            # a merge of a signed tag (``git pull URL tag v1``) embeds the whole tag object: its message lives
            # on here even where the tag itself never became a ref of this repository. Scanned after the message,
            # so the message keeps its line numbers
            head, _, msg = value.partition(b"\n\n")
            msg, sig = split_signed(msg)
            merged.extend(b"mergetag " + part for part in [*head.split(b"\n"), b"", *msg.split(b"\n")]
                          if not part.startswith((b"object ", b"type ")))
            if sig:
                signed.extend(sig.split(b"\n"))
    lines.append(b"")
    fields.append("message")
    msg_lines = c.message.split(b"\n")
    lines.extend(msg_lines)
    fields.extend(["message"] * len(msg_lines))
    lines.extend(merged)
    fields.extend(["mergetag"] * len(merged))
    # last, so no other line moves: a signature is armoured binary (no rule's token, in practice), but git cuts
    # at a marker line anyone can write (``-m "x\n-----BEGIN PGP SIGNATURE-----\nHF_TOKEN=…"``), and the bytes
    # after it are pushed and fetched like the rest
    lines.extend(signed)
    fields.extend(["signature"] * len(signed))
    return b"\n".join(lines), fields


#: Object id length -> hash (SHA-1 repositories, SHA-256 ones); the constructors themselves, called once a blob
#: (``hashlib.new(name)`` looks the name up on every call).
_HASHES = {40: hashlib.sha1, 64: hashlib.sha256}


def object_matches(oid: str, otype: str, data: bytes) -> bool:
    """True when ``data`` is the object ``oid`` names: git does not check this when it reads, so a shipped
    object file or pack index that maps an id to other bytes would otherwise hide that object's content."""
    new = _HASHES.get(len(oid))
    if new is None:
        return False
    h = new(otype.encode("ascii") + b" %d\0" % len(data))
    h.update(data)
    return h.hexdigest() == oid.lower()


def read_objects(repo: str, oids: Sequence[str]) -> dict[str, tuple[str, bytes]]:
    """oid -> (type, content) of ``oids`` with one ``git cat-file --batch`` (objects absent, or whose content does
    not hash to their id, are left out)."""
    out: dict[str, tuple[str, bytes]] = {}
    if not oids:
        return out
    data = gitcmd.run(repo, ["cat-file", "--batch"], stdin="".join(o + "\n" for o in oids).encode("ascii"))
    pos = 0
    for oid in oids:
        nl = data.find(b"\n", pos)
        if nl < 0:
            break
        parts = data[pos:nl].split()
        pos = nl + 1
        if len(parts) != 3 or not parts[2].isdigit():
            continue  # "<oid> missing"
        size = int(parts[2])
        otype, content = parts[1].decode("ascii", "replace"), data[pos:pos + size]
        if object_matches(oid, otype, content):
            out[oid] = (otype, content)
        pos += size + 1
    return out
