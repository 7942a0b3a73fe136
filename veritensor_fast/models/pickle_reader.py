"""The byte reader of the pickle walker: FRAME-aware reads in the *linear* or the *discard* model.

See ``pickle_scan`` for the two models. A read that an opcode makes past the end of the frame the opcode started
in is a straddle (recorded in ``straddles``); the walker reports it and analyses both readings.
"""

from __future__ import annotations

import codecs
import struct
from typing import Any

from veritensor_fast.models.pickle_values import Opaque
from veritensor_fast.randread import unpack_at


class Trunc(Exception):
    """The data ends inside an opcode (no STOP)."""


class Bad(Exception):
    """The stream is not a valid pickle here (a real unpickler fails at the same point)."""


class Reader:
    """Byte reader over ``data`` honouring FRAME in linear or discard mode (see module docstring)."""

    __slots__ = ("data", "pos", "end", "discard", "buf_end", "frame_end", "straddles", "op_start")

    def __init__(self, data: Any, pos: int, end: int, discard: bool) -> None:
        self.data = data
        self.pos = pos
        self.end = end
        self.discard = discard
        self.buf_end = pos
        self.frame_end = -1
        self.straddles: list[int] = []
        self.op_start = pos

    def _check(self, n: int) -> None:
        # an opcode that starts inside a frame must end inside it: its argument (a length, a BINBYTES payload,
        # a GLOBAL line) may not run past the frame end, even when the frame ends right after the opcode byte
        if self.frame_end > self.op_start and self.pos + n > self.frame_end:
            self.straddles.append(self.pos)

    def read(self, n: int) -> int:
        """Consume ``n`` bytes; return their start offset."""
        if n < 0:
            raise Bad("negative length")
        p = self.pos
        if self.discard:
            if p + n > self.buf_end:
                p = self.buf_end if self.buf_end > p else p
                if p + n > self.end:
                    raise Trunc()
                self.pos = self.buf_end = p + n
                return p
            self.pos = p + n
            return p
        if p + n > self.end:
            raise Trunc()
        self._check(n)
        self.pos = p + n
        return p

    def readline(self) -> tuple[int, int]:
        """Consume one line; return (start, stop) without the newline."""
        d = self.data
        p = self.pos
        if self.discard:
            i = d.find(b"\n", p, self.buf_end) if self.buf_end > p else -1
            if i < 0:
                p = max(p, self.buf_end)
                i = d.find(b"\n", p, self.end)
                if i < 0:
                    raise Trunc()
                self.pos = self.buf_end = i + 1
                return p, i
            self.pos = i + 1
            return p, i
        i = d.find(b"\n", p, self.end)
        if i < 0:
            raise Trunc()
        self._check(i + 1 - p)
        self.pos = i + 1
        return p, i

    def frame(self, n: int) -> None:
        if self.discard:
            start = self.read(n)
            self.pos = start
            return
        if self.frame_end > self.pos:
            self.straddles.append(self.pos)  # a frame opened before the previous one ended
        self.frame_end = self.pos + n


#: Length-prefixed operands: opcode -> (bytes of the length, its struct format, what the payload is).
SIZED: dict[int, tuple[int, str, str]] = {
    0x8C: (1, "", "utf8"),      # SHORT_BINUNICODE
    0x58: (4, "<I", "utf8"),    # BINUNICODE
    0x8D: (8, "<Q", "utf8"),    # BINUNICODE8
    0x55: (1, "", "latin1"),    # SHORT_BINSTRING
    0x54: (4, "<i", "latin1"),  # BINSTRING (signed, as CPython reads it)
    0x43: (1, "", "bytes"),     # SHORT_BINBYTES
    0x42: (4, "<I", "bytes"),   # BINBYTES
    0x8E: (8, "<Q", "bytes"),   # BINBYTES8
    0x96: (8, "<Q", "bytes"),   # BYTEARRAY8
}


def decode_text(raw: bytes, kind: str) -> str:
    """A string operand's text: ``utf8`` (BINUNICODE and friends), ``raw`` (UNICODE), else latin-1 (BINSTRING
    under ``encoding="latin1"``); undecodable bytes break the stream (``Bad``), as they break ``pickle``."""
    try:
        if kind == "utf8":
            return raw.decode("utf-8", "surrogatepass")
        if kind == "raw":
            return raw.decode("raw-unicode-escape")
        return raw.decode("latin-1")
    except (UnicodeDecodeError, ValueError) as exc:
        raise Bad("undecodable string") from exc


def u(data: Any, a: int, n: int, fmt: str) -> int:
    try:
        return int(struct.unpack_from(fmt, data, a)[0])
    except TypeError:  # a ``PreadView`` (large file read without a memory map)
        return int(unpack_at(fmt, data, a)[0])


#: Numeric operands: opcode -> what it pushes is decoded by :func:`number`.
NUMBERS = frozenset({0x4B, 0x4D, 0x4A, 0x47, 0x8A, 0x8B, 0x49, 0x4C, 0x46})
#: Memo opcodes whose index is an operand: PUT family and GET family (``memo_index``).
PUTS = frozenset({0x71, 0x72, 0x70})  # BINPUT, LONG_BINPUT, PUT
GETS = frozenset({0x68, 0x6A, 0x67})  # BINGET, LONG_BINGET, GET


def number(op: int, r: Reader, data: Any) -> Any:
    """Consume a numeric opcode's operand (``op`` in ``NUMBERS``); return the value the walker keeps: small ints
    exactly, floats and huge longs as placeholders, text INT ``01``/``00`` as the bools protocol 0 writes."""
    if op == 0x4B:  # BININT1
        return data[r.read(1)]
    if op == 0x4D:  # BININT2
        return u(data, r.read(2), 2, "<H")
    if op == 0x4A:  # BININT
        return u(data, r.read(4), 4, "<i")
    if op == 0x47:  # BINFLOAT
        r.read(8)
        return 0.0
    if op == 0x8A:  # LONG1
        n = data[r.read(1)]
        a = r.read(n)
        return int.from_bytes(bytes(data[a:a + n]), "little", signed=True) if n <= 8 else 0
    if op == 0x8B:  # LONG4
        n = u(data, r.read(4), 4, "<i")
        r.read(n)
        return 0
    # INT, LONG, FLOAT (lenient: a bad number only stops a real unpickler, so going on can only find more)
    a, b = r.readline()
    s = bytes(data[a:b][:8]).strip()
    return True if s == b"01" else False if s == b"00" else 0


def memo_index(op: int, r: Reader, data: Any) -> int:
    """Consume the memo index operand of a PUT-family or GET-family opcode (``PUTS``/``GETS``)."""
    if op == 0x71 or op == 0x68:  # BINPUT, BINGET
        return data[r.read(1)]
    if op == 0x72 or op == 0x6A:  # LONG_BINPUT, LONG_BINGET
        return u(data, r.read(4), 4, "<I")
    a, b = r.readline()  # PUT, GET: a decimal line
    try:
        return int(bytes(data[a:b][:32]))
    except ValueError as exc:
        raise Bad(f"bad {'PUT' if op == 0x70 else 'GET'} index") from exc


def line_name(data: Any, a: int, b: int) -> str:
    """A GLOBAL/INST name line: UTF-8, else Latin-1."""
    try:
        return bytes(data[a:b]).decode("utf-8")
    except UnicodeDecodeError:
        return bytes(data[a:b]).decode("latin-1")


def quoted(data: Any, a: int, b: int, max_str: int) -> tuple[Any, int]:
    """A STRING operand line ``data[a:b]``: (its value, the length of its decoded bytes); the value is a ``str``,
    or ``Opaque`` when longer than ``max_str`` (or an unquoted line over 1 MiB)."""
    raw = bytes(data[a:b]) if b - a <= 1 << 20 else b""
    if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
        if b - a <= 1 << 20:
            raise Bad("STRING not quoted")
        return Opaque("long string"), 0
    try:
        val = codecs.escape_decode(raw[1:-1])[0]
    except ValueError as exc:
        raise Bad("bad STRING escape") from exc
    return (val.decode("latin-1") if len(val) <= max_str else Opaque("long string")), len(val)
