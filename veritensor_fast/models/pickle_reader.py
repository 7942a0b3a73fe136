"""The byte reader of the pickle walker: FRAME-aware reads in the *linear* or the *discard* model.

See ``pickle_scan`` for the two models. A read that an opcode makes past the end of the frame the opcode started
in is a straddle (recorded in ``straddles``); the walker reports it and analyses both readings.
"""

from __future__ import annotations

import struct
from typing import Any

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


def u(data: Any, a: int, n: int, fmt: str) -> int:
    try:
        return int(struct.unpack_from(fmt, data, a)[0])
    except TypeError:  # a ``PreadView`` (large file read without a memory map)
        return int(unpack_at(fmt, data, a)[0])
