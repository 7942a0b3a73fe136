"""Plain text pass: every confirmed secret in the raw bytes of any file (text or binary).

UTF-16 text (LE/BE, with or without a byte-order mark) is decoded first and scanned as UTF-8, in bounded
chunks; line and column refer to the decoded text. Detection costs normal files one ``memchr`` for a NUL
byte in the 4 KiB head: only a head with NULs is looked at further (BOM, then NUL parity and printability).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from veritensor_fast.findings import Item

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan, WorkerContext

#: UTF-16 files are decoded this many bytes at a time (even), plus an overlap that covers any token.
UTF16_CHUNK = 8 << 20
UTF16_OVERLAP = 16 << 10
_BOMS = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def utf16_encoding(head: bytes) -> tuple[str, int] | None:
    """``(codec, bytes to skip)`` when ``head`` looks like UTF-16 text, else None (cheap for normal files)."""
    if 0 not in head:  # an int: no TypeError raised and dropped inside ``in``, as for ``b"\x00"``
        return None
    if head.startswith(b"\xff\xfe\x00\x00") or head.startswith(b"\x00\x00\xfe\xff"):
        return None  # UTF-32
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return enc, 2
    sample = head[: len(head) & ~1]
    if len(sample) < 8:
        return None
    half = len(sample) >> 1
    # one byte order needs its high bytes 40% NUL and its low bytes at most 2% NUL: when both byte positions
    # already hold more than 2% of ``half`` NULs in the first 512 bytes, neither can (compiled Python, most
    # binaries), decided before the counts over the whole head (~1 us instead of ~5)
    limit = 0.02 * half
    if sample[0:512:2].count(0) > limit and sample[1:512:2].count(0) > limit:
        return None
    zeros = sample.count(0)
    if zeros < 0.4 * half:  # either byte order needs NULs in 40% of its high bytes: most binaries stop here
        return None
    z_even = sample[0::2].count(0)
    z_odd = zeros - z_even
    if z_odd >= 0.4 * half and z_even <= 0.02 * half:
        enc = "utf-16-le"
    elif z_even >= 0.4 * half and z_odd <= 0.02 * half:
        enc = "utf-16-be"
    else:
        return None
    text = sample.decode(enc, "replace")
    printable = sum(1 for c in text if c.isprintable() or c in "\t\r\n")
    return (enc, 0) if printable >= 0.95 * len(text) else None


class TextSecrets:
    name = "text"

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        #: a later detector's ``share(item, buf)``: the database to scan ``buf`` with for both (``pyast_shared``)
        self._share: Any = None

    def quiet_test(self) -> Any:
        """The batch gate's question (``batch_gate``): :meth:`quiet`."""
        return self.quiet

    @staticmethod
    def quiet(item: Item, data: bytes, head: bytes) -> bool:
        """For ``data`` without a hit of the rules database: True unless it is UTF-16 (decoded, then scanned)."""
        return 0 not in head or utf16_encoding(head) is None

    @staticmethod
    def quiet_batch(items: list[Item], datas: list[bytes], heads: list[bytes]) -> list[bool]:
        """:meth:`quiet` for each item of a batch, in one call (``batch_gate``)."""
        return [0 not in h or utf16_encoding(h) is None for h in heads]

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        if scan.text_done:
            return
        nul = 0 in head  # utf16_encoding's own first test: a head without a NUL byte is no UTF-16
        if nul:
            u16 = utf16_encoding(head)
            if u16 is not None:
                self._utf16(buf, u16[0], u16[1], scan)
                return
        if nul:  # binary: the encoded pass decodes every run there, needles are not used
            found = self.ctx.matcher.find(buf)
        else:
            share = self._share
            if share is None:
                share = self._share = next((d.share for d in self.ctx.detectors if hasattr(d, "share")), False)
            shared = share(item, buf) if share else None
            if shared is None:
                found, hits = self.ctx.matcher.find_with_hits(buf)  # one scan: secrets and base64 needles
            else:  # and the patterns of a later detector's own scan
                found, hits, more = self.ctx.matcher.find_shared(buf, shared)
                scan.shared = (buf, more)
            scan.b64_hits = (buf, hits)
        for m in found:
            scan.add_secret(m, buf)

    def _utf16(self, buf: Any, enc: str, start: int, scan: ItemScan) -> None:
        """Decode chunk by chunk; a match belongs to the chunk where it starts (the overlap is only context)."""
        n = len(buf)
        line_base, carry_cols = 1, 0
        a = start
        while a < n:
            b = min(n, a + UTF16_CHUNK)
            main = bytes(buf[a:b]).decode(enc, "replace")
            tail = bytes(buf[b:min(n, b + UTF16_OVERLAP)]).decode(enc, "replace") if b < n else ""
            u_main = main.encode("utf-8", "surrogatepass")
            u = u_main + tail.encode("utf-8", "surrogatepass")
            for m in self.ctx.matcher.find(u):
                if m.start >= len(u_main):
                    continue
                nl_before = u.count(b"\n", 0, m.start)
                ls = u.rfind(b"\n", 0, m.start) + 1
                col = len(u[ls:m.start].decode("utf-8", "replace")) + 1
                if nl_before == 0:
                    col += carry_cols
                scan.add_secret(m, line=line_base + nl_before, column=col, location={"encoding": enc},
                                decoded=enc)
            nls = main.count("\n")
            last = main.rfind("\n")
            carry_cols = len(main) - last - 1 if last >= 0 else carry_cols + len(main)
            line_base += nls
            a = b
