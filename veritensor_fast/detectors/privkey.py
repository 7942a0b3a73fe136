"""Private keys, confirmed by structure: PEM / OpenSSH / PKCS#8 armour and PuTTY ``.ppk`` files.

Hyperscan finds the header (``-----BEGIN … PRIVATE KEY-----`` or ``PuTTY-User-Key-File-N:``); the functions
here read the key that follows it and decide whether it is a real key and whether it is encrypted:

- the body may use real newlines, ``\\n`` escapes (JSON, Python, ``.env``), quotes and commas (a key split
  into string literals or a notebook's ``source`` list), and RFC 1421 header lines (``Proc-Type``,
  ``DEK-Info``); the END armour is optional (a key cut off in a log is still a key);
- the entropy floor applies to the whole base64 body, never one line: the first line of an OpenSSH or
  PKCS#8 key is constant per key type and sits just under 4 bits;
- encrypted keys (``ENCRYPTED PRIVATE KEY``, ``Proc-Type: 4,ENCRYPTED``, an OpenSSH key whose cipher is not
  ``none``, a ``.ppk`` whose ``Encryption`` is not ``none``) belong to rule ``private-key.encrypted`` (lower
  severity); all others to ``private-key.pem`` / ``private-key.putty``.

Each ``confirm_*`` function takes the buffer and the span of a header match and returns the span of the key
block (header to END armour or last key line), or None. Nothing here raises on any input.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import zlib
from collections.abc import Callable
from typing import Any

from veritensor_fast.kernels import entropy

#: The longest key block read after a header (an RSA-16384 PEM key is ~12.6 KB; escaped JSON adds ~3%).
MAX_BLOCK = 32 << 10
#: A body shorter than this many base64 characters is not a key (an Ed25519 PKCS#8 key has 64).
MIN_BODY = 60
#: Shannon entropy floor (bits per character) over the whole base64 body. Real bodies measure 5.0-6.0
#: (Ed25519 PKCS#8: ~5.0; OpenSSH Ed25519: ~5.3; RSA: ~5.9); placeholders and repeated text fall far below.
MIN_BODY_ENTROPY = 4.3
#: A body of 128+ characters must not deflate below this fraction of its size (real keys: >= 0.72, measured
#: on the key's own material: an OpenSSH key's public-key section, which its private section repeats by
#: format, is left out first; see ``own_material``).
MIN_COMPRESSED = 0.55
#: A PuTTY private blob is short (Ed25519: 48 characters).
MIN_PPK_BODY = 40
MIN_PPK_ENTROPY = 4.0

_END = re.compile(rb"-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----")
#: Characters a key body may be made of as it sits in text or code.
_BODY = re.compile(
    rb"(?:(?:Proc-Type|DEK-Info|Comment|Version):[^\r\n\\]{0,200}|[A-Za-z0-9+/=\s\x22',;]|\\\\?[nrt])*")
_HDR_LINE = re.compile(rb"(?:Proc-Type|DEK-Info|Comment|Version):[^\r\n\\]{0,200}")
_ESC = re.compile(rb"\\\\?[nrt]")
_B64 = re.compile(rb"[A-Za-z0-9+/=]+")
_LABEL = re.compile(rb"-----BEGIN ?([A-Z0-9 ]{0,40}?) ?PRIVATE KEY")
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


def _b64_body(raw: bytes) -> bytes:
    """The base64 characters of a body (escapes and RFC 1421 header lines removed)."""
    text = _HDR_LINE.sub(b" ", _ESC.sub(b" ", raw))
    return b"".join(_B64.findall(text))


def own_material(body: bytes) -> bytes:
    """The base64 of a key body without the copies its format makes of itself.

    An ``openssh-key-v1`` blob holds the public key twice: once in the public section and again, field for
    field, in the private section (for DSA, p/q/g/y: ~45% of the blob). Deflate sees that copy only when the
    two copies are a multiple of 3 bytes apart (the same base64 phase), which for DSA depends on the lengths of
    the mpints: 115 of 1,000 ssh-keygen DSA keys deflated to 0.44 and were missed. The public section is dropped and the
    rest re-encoded, so the compression floor measures the key's own material in every phase. Any other body
    (PEM, PKCS#8, a template that does not parse) is returned unchanged.
    """
    if not body.startswith(b"b3BlbnNzaC1rZXktdjEA"):  # base64 of the openssh-key-v1 magic
        return body
    try:
        blob = base64.b64decode(body[: len(body) // 4 * 4])
    except (binascii.Error, ValueError):
        return body
    pos = len(_OPENSSH_MAGIC)
    for _ in range(3):  # cipher name, KDF name, KDF options
        if pos + 4 > len(blob):
            return body
        pos += 4 + struct.unpack_from(">I", blob, pos)[0]
    pos += 4  # number of keys
    if pos + 4 > len(blob):
        return body
    pub_end = pos + 4 + struct.unpack_from(">I", blob, pos)[0]
    if pub_end >= len(blob):
        return body
    return base64.b64encode(blob[:pos] + blob[pub_end:])


def _strong(body: bytes, min_len: int, floor: float) -> bool:
    if len(body) < min_len:
        return False
    from veritensor_fast.matcher import is_placeholder

    if entropy.below([body], [floor])[0] or is_placeholder(body):
        return False
    # Key material is random: its base64 compresses to ~75%; a repeated line or a template far below that.
    own = own_material(body)
    return len(own) < 128 or len(zlib.compress(own)) >= MIN_COMPRESSED * len(own)


def openssh_cipher(body: bytes) -> bytes | None:
    """The cipher name of an ``openssh-key-v1`` blob (``b"none"`` when unencrypted), or None if not one."""
    head = body[:64]
    head = head[: len(head) // 4 * 4]
    try:
        raw = base64.b64decode(head)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_OPENSSH_MAGIC) or len(raw) < len(_OPENSSH_MAGIC) + 4:
        return None
    (n,) = struct.unpack(">I", raw[len(_OPENSSH_MAGIC):len(_OPENSSH_MAGIC) + 4])
    name = raw[len(_OPENSSH_MAGIC) + 4:len(_OPENSSH_MAGIC) + 4 + n]
    return name if 0 < n <= 32 and len(name) == n else None


def pem_block(buf: Any, hs: int, he: int) -> tuple[int, bool] | None:
    """``(end of the key block, encrypted)`` for an armoured key whose BEGIN line spans ``hs:he``."""
    header = bytes(buf[hs:he])
    chunk = bytes(buf[he:min(len(buf), he + MAX_BLOCK)])
    m = _BODY.match(chunk)
    raw = m.group() if m else b""
    end_m = _END.match(chunk, len(raw))
    if end_m is not None:
        end = he + end_m.end()
    else:
        end = he + len(raw.rstrip(b" \t\r\n\x22',;"))
        while end > he and bytes(buf[end - 1:end]) == b"\\":  # a dangling escape is not part of the key
            end -= 1
    body = _b64_body(raw)
    if not _strong(body, MIN_BODY, MIN_BODY_ENTROPY):
        return None
    lm = _LABEL.match(header)
    label = lm.group(1) if lm else b""
    encrypted = b"ENCRYPTED" in label or re.search(rb"Proc-Type:\s*4,\s*ENCRYPTED", raw) is not None
    if not encrypted and b"OPENSSH" in label:
        cipher = openssh_cipher(body)
        encrypted = cipher is not None and cipher != b"none"
    return end, encrypted


_LINE = re.compile(rb"((?:[^\r\n\\]|\\(?![rn]))*)(\r?\n|\\r\\n|\\n|$)")


def ppk_block(buf: Any, hs: int, he: int) -> tuple[int, bool] | None:
    """``(end of the key, encrypted)`` for a PuTTY key file whose first line starts at ``hs``."""
    chunk = bytes(buf[hs:min(len(buf), hs + MAX_BLOCK)])
    pos, end = 0, 0
    fields: dict[bytes, bytes] = {}
    private: list[bytes] = []
    want_private = 0
    for _ in range(400):
        m = _LINE.match(chunk, pos)
        if m is None or m.end() == pos:
            break
        line, pos = m.group(1).strip(b" \t\x22',"), m.end()
        if want_private:
            private.append(line)
            want_private -= 1
            end = m.start(2)
            if not want_private:
                break
            continue
        key, sep, val = line.partition(b": ")
        if not sep:
            if not _B64.fullmatch(line or b"-"):
                break
            continue  # a public-key line
        fields[key] = val.strip()
        end = m.start(2)
        if key == b"Private-Lines":
            try:
                want_private = min(int(val), 200)
            except ValueError:
                return None
    if not private or not fields.get(b"Encryption"):
        return None
    body = b"".join(private)
    if not _strong(body, MIN_PPK_BODY, MIN_PPK_ENTROPY):
        return None
    return hs + end, fields[b"Encryption"] != b"none"


def _confirm(encrypted: bool) -> Callable[[Any, int, int], int | None]:
    def confirm(buf: Any, hs: int, he: int) -> int | None:
        if bytes(buf[hs:hs + 5]) == b"PuTTY":
            r = ppk_block(buf, hs, he)
        else:
            r = pem_block(buf, hs, he)
        if r is None or r[1] is not encrypted:
            return None
        return r[0]

    return confirm


#: Rule id -> structural confirmation: ``(buffer, header start, header end) -> end of the secret or None``.
#: The matcher calls these instead of the entropy floor and placeholder check for these rules.
STRUCTURAL: dict[str, Callable[[Any, int, int], int | None]] = {
    "private-key.pem": _confirm(False),
    "private-key.putty": _confirm(False),
    "private-key.encrypted": _confirm(True),
}
