"""``orjson.loads`` that fails with ``MemoryError`` instead of crashing the process when memory runs short.

orjson 3.x does not survive every failed allocation: under an address-space cap (``prlimit --as``, a container's
memory limit with overcommit off) a failed allocation while it builds the Python objects is a SIGSEGV, which
loses the whole in-process scan (``--jobs 1``) with every finding made so far. And when its first buffer cannot
be allocated it raises ``JSONDecodeError("Not enough memory to allocate buffer for parsing")`` at line 1
column 1, which a caller reports as a corrupt file.

:func:`loads` therefore first reserves the address space the parse may need (``memroom.room``: ``ROOM_FACTOR``
times the input plus ``ROOM_MIN``) and raises ``MemoryError`` when there is none, and turns orjson's own allocation failure
into ``MemoryError`` too. Callers report a ``MemoryError`` as an allocation failure (kind ``limit``, a reason
naming memory), never as invalid input (``worker.scan_buffer`` does so for every detector).
"""

from __future__ import annotations

from typing import Any

import orjson

from veritensor_fast import memroom

#: the most address space orjson needs per input byte: yyjson's parse buffer (at most 9 bytes a byte) plus the
#: Python objects (a one-character string in ``"a",`` is a 50-byte object for 4 input bytes), with room to spare
ROOM_FACTOR = 24
#: headroom kept on top, for allocations around the parse (the caller's own objects, the report)
ROOM_MIN = 4 << 20

JSONDecodeError = orjson.JSONDecodeError


def has_room(nbytes: int) -> bool:
    """Whether :func:`loads` has room now to parse ``nbytes`` of JSON (a caller with a leaner way to parse big
    input, such as the streamed notebook parser, takes it instead of an error)."""
    return memroom.has_room(ROOM_FACTOR * nbytes + ROOM_MIN)


def loads(data: Any) -> Any:
    """``orjson.loads(data)``, or ``MemoryError`` when the process has no room to parse it (see the module note).
    Raises ``orjson.JSONDecodeError`` for input that is not valid JSON, exactly as orjson does."""
    memroom.room(ROOM_FACTOR * len(data) + ROOM_MIN)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # "Not enough memory to allocate buffer for parsing"; or an error at the first byte of a document that
        # opens an object or array, which no syntax error gives (``{`` alone fails at byte 1): an allocation
        # that failed (seen under ``prlimit --as=60M`` on the monorepo, 17 notebooks, as "line 1 column 1")
        # Only under a cap (``memroom.GUARDED``), and never for invalid UTF-8, which orjson also reports at byte 0
        # (a notebook with one Latin-1 byte was called out of memory)
        msg = str(exc).lower()
        head = data[:1] if isinstance(data, str) else bytes(data[:1])
        if "memory" in msg or (memroom.GUARDED and exc.pos == 0 and head in ("{", "[", b"{", b"[")
                               and "utf-8" not in msg):
            raise MemoryError("out of memory: orjson could not allocate what the parse needs") from None
        raise
