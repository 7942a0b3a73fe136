"""The AST prefilter's last stage: a token spread over several pieces, or written with escapes or ``chr``.

:mod:`pyast_admit` and :mod:`pyast_split` admit a file where one rule anchor is cut short, or split once
between a head and a tail. They do not see a token whose anchor is spread over three or more pieces
(``"".join(["h", "f", "_", …])``, ``"%s%s%s" % ("h", "f_abc", "…")``, ``"h{}".format("f_abc") + "…"``), or
whose pieces stand in names bound elsewhere (``A = "h"; B = "f_abc"; T = A + B + "…"``, ``f"{A}{B}…"``), or
whose characters are escapes (``"h\\x66_…"``, ``"\\N{LATIN SMALL LETTER H}f_…"``, octal, ``\\u``/``\\U``) or
``chr(104)``.

Triggers (in the prefilter's Hyperscan database, every hit; :func:`stream_patterns`): an anchor of at most
``SPREAD_MAX`` characters spelled over pieces that a tight separator joins (``"h", "f", "_a``, ``"h" + "f_a``,
``"h{}".format("f_a``, ``A = "h"\nB = "f_a``: :data:`_SEP`), a piece starting with ``LONG_REST`` or more of a
longer anchor's last characters, an escape that decodes to a token character, ``chr(<int>)``,
``str(<literal>)``; and the tails of :mod:`pyast_split` (its first hit). Around each trigger (``WINDOW`` bytes
either side, widened to whole lines) the **literal stream** is rebuilt without parsing: the window's string
literals in source order, escapes decoded (not in raw strings), format fields (``{…}``, ``%s``) dropped,
f-string fields and names replaced by the literal a simple binding gives them (``NAME = "…"``, looked for
within ``NAMES_REACH`` bytes; a binding's own target is skipped), ``chr(<int>)`` by its character, a line break
where a statement ends; everything else (operators, brackets, calls) is ignored. Names bound to literals on
consecutive lines also run on (``RUN`` at a time). The file is admitted when the rules find, in that stream,
a secret that the file's bytes do not hold as written (only a fold can have made it). This over-approximates
what :func:`ast_eval.fold` can assemble (a false admission only costs a parse: the AST pass reports what it
folds, never what the stream shows).

Bounds: at most ``MAX_WINDOWS`` windows per file (the rest of the triggers are not looked at), each at most
``4 * WINDOW`` bytes plus whole lines, with at most ``STREAM_MAX`` characters of names' values. Known limits:
pieces more than ``WINDOW`` bytes from a trigger (except names bound to literals), pieces put side by side
out of source order (``"{1}{0}".format(b, a)``), an anchor whose first piece does not start a literal
(``"xh" + "f" + "_…"``), and a longer anchor spread into pieces all shorter than ``LONG_REST`` are not seen.
"""

from __future__ import annotations

import codecs
import mmap
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from veritensor_fast.matcher import SecretMatcher

#: Bytes of source either side of a trigger rebuilt into the literal stream.
WINDOW = 256
#: Windows looked at per file.
MAX_WINDOWS = 32
#: How far before the first trigger's window (and after the last) simple bindings are looked for.
NAMES_REACH = 32768
#: Longest stream of one window from names' values (the window's own literals are bounded by its size).
STREAM_MAX = 1 << 16
#: Bindings on consecutive lines run on in the stream, this many at a time.
RUN = 8
#: Longest literal a name may stand for in the stream.
MAX_VALUE = 4096
#: Longest escape in a literal (``\\N{…}`` with the longest character name), and the longest literal body
#: decoded whole: enough for more than ``MAX_VALUE`` characters however they are written.
_ESCAPE_MAX = 96
_BODY_MAX = (MAX_VALUE + 2) * _ESCAPE_MAX

#: Token characters (as :mod:`pyast_prefilter`): what an escape must decode to.
_TOKEN = sorted(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.")


def _hex_class(c: int) -> bytes:
    """``c`` as two hex digits, either case (``6[fF]``)."""
    out = b""
    for d in b"%02x" % c:
        ch = bytes([d])
        out += b"[" + ch + ch.upper() + b"]" if ch.isalpha() else ch
    return out


#: Between two pieces of a spread anchor: a closing quote, then blanks, line breaks, ``)``, ``(``,
#: ``,`` and ``+`` (``+``, implicit concatenation in brackets, a ``join`` list, a ``%`` tuple or ``.format``
#: arguments), or a line break and the next line's binding (``A = "h"\nB = "f_"``); or a ``{}`` field and
#: ``".format(``; then an opening quote. Kept this tight on purpose: each looser form (``\s*`` around every
#: part, ``%`` fields) doubled the patterns' share of the prefilter's scan time on a real site-packages; a
#: bounded run (``{0,8}``) instead of ``*`` made the database 0.6 MB larger (2.0 MB for these patterns).
_SEP = (rb"(?:[\x22'](?:[\s),+(]*|\n[ \t]*\w+ = )|\{\}[\x22']\.format\()[rRbBuU]{0,2}[\x22']")
#: Anchors longer than this are not looked for spread (a split inside them is still seen once, by
#: :mod:`pyast_split`).
SPREAD_MAX = 12
#: For a longer anchor: a piece starting with its last ``LONG_REST`` or more characters is a trigger.
LONG_REST = 8


def _spread(anchor: str, cls: str) -> bytes | None:
    """An anchor spelled over two or more pieces (at least one :data:`_SEP` between its characters), the first
    of which it starts, then one character of its token (maybe in the next piece)."""
    raw = anchor.encode("latin-1", "replace")
    if not 2 <= len(raw) <= SPREAD_MAX or not cls:
        return None
    lit = [b"\\x%02x" % c for c in raw]
    sep = b"(?:" + _SEP + b")"
    alts = [b"".join(lit[:i]) + sep + lit[i] + b"".join(sep + b"?" + x for x in lit[i + 1:])
            for i in range(1, len(raw))]
    return rb"[\x22'](?:" + b"|".join(alts) + b")" + sep + b"?[" + cls.encode("latin-1") + b"]"


def stream_patterns(groups: Iterable[tuple[str, str, int, bool, bool]]) -> list[tuple[bytes, bool]]:
    """The trigger patterns (with a caseless flag; every hit) for the anchors ``groups`` of a prefilter plan:
    each anchor spread over pieces (:func:`_spread`), token-character escapes, ``chr(<int>)``,
    ``str(<literal>)``."""
    out: set[tuple[bytes, bool]] = set()
    for anchor, cls, _need, ci, _word in groups:
        pat = _spread(anchor, cls)
        if pat is not None:
            out.add((pat, ci))
        elif len(anchor) > SPREAD_MAX:  # a piece starting with the anchor's rest (``"ooks.slack.com/…/T"``)
            raw = anchor.encode("latin-1", "replace")
            for j in range(1, len(raw) - LONG_REST + 1):
                out.add((rb"[\x22'}]" + b"".join(b"\\x%02x" % c for c in raw[j:]), ci))
    hexes = b"|".join(_hex_class(c) for c in _TOKEN)
    octs = b"|".join(sorted({b"%o" % c for c in _TOKEN} | {b"%03o" % c for c in _TOKEN}))
    escape = (rb"\\(?:x(?:" + hexes + rb")|u00(?:" + hexes + rb")|U000000(?:" + hexes + rb")|N\{|(?:" + octs
              + rb"))")
    calls = rb"\bchr\(\s*(?:\d{2,3}|0[xX][0-9a-fA-F]{2})\s*\)|\bstr\(\s*[rRbBuU]{0,2}[\x22']"
    return sorted(out) + [(escape, False), (calls, False)]


_TOK = re.compile(
    rb"#[^\r\n]*"
    rb"|(?P<p>[rRbBuUfF]{0,2})(?P<s>\x22{3}(?:[^\\]|\\.)*?\x22{3}|\x27{3}(?:[^\\]|\\.)*?\x27{3}"
    rb"|\x22(?:[^\x22\\\r\n]|\\.)*\x22|'(?:[^'\\\r\n]|\\.)*')"
    rb"|(?<![\w.])chr\(\s*(?P<c>\d+|0[xX][0-9a-fA-F]+)\s*\)"
    rb"|(?<![\w.])(?P<n>[A-Za-z_]\w*)"
    rb"|(?P<k>\\\r?\n)|(?P<o>[(\[{])|(?P<x>[)\]}])|(?P<e>\n)", re.S)
#: Just before a literal: ``.decode(``/``.encode(`` (the literal names a codec).
_CODEC_CALL = re.compile(rb"\.(?:de|en)code\(\s*\Z")
#: A format field of a plain literal (dropped: the argument's own literal follows in the stream).
_FIELDS = re.compile(r"\{[^{}]*\}|%[sdr]")
#: An f-string field naming something: ``{NAME}``, ``{NAME!s}``.
_FFIELD = re.compile(r"\{\{|\}\}|\{\s*([A-Za-z_]\w*)?[^{}]*\}")
#: A simple binding: ``NAME = "…"`` / ``NAME: T = "…"`` alone on its line.
#: (A literal is written unrolled, ``"[^"\\]*(?:\\.[^"\\]*)*"``: the same strings as ``"(?:[^"\\]|\\.)*"``, whose repeat
#: kept a backtracking state per character: a 3 MB literal took 0.34 CPU-s and 465 MB, now 0.05 s and 48 MB.)
_SIMPLE = re.compile(rb"^[ \t]*([A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=[ \t]*([rRbBuU]{0,2}"
                     rb"(?:\x22[^\x22\\\r\n]*(?:\\.[^\x22\\\r\n]*)*\x22|'[^'\\\r\n]*(?:\\.[^'\\\r\n]*)*'))"
                     rb"[ \t]*(?:#[^\n]*)?$", re.M)
#: What a simple binding holds after its name: ``=`` and a literal.
_EQ_LITERAL = re.compile(rb"=[ \t]*[rRbBuU]{0,2}[\x22']")
#: After a name: its binding (``NAME =``, ``NAME: T =``, ``NAME :=``) or a keyword argument (``f(NAME=``).
_TARGET = re.compile(rb"[ \t]*(?::[^=\n]*)?:?=(?!=)")


def _literal(prefix: bytes, quoted: bytes) -> str:
    """A literal's value (escapes decoded where they decode; raw strings and bad escapes as written). Of a body
    longer than ``_BODY_MAX`` only a prefix that ends between escapes is decoded: more than ``MAX_VALUE``
    characters, all a name may stand for (decoding a hostile multi-MB literal of ``\\N{…}`` escapes whole took
    0.4 CPU-s and 0.5 GB per 4 MB)."""
    q = 3 if quoted[:3] in (b'"""', b"'''") else 1
    body = quoted[q:len(quoted) - q]
    if len(body) > _BODY_MAX:
        cut = _BODY_MAX
        k = body.rfind(b"\\", cut - _ESCAPE_MAX, cut)  # an escape cut short starts within its longest length
        if k >= 0:
            while k > 0 and body[k - 1] == 0x5C:  # the start of that run of backslashes: between two escapes
                k -= 1
            cut = k
        body = body[:cut]
    if b"\\" in body and b"r" not in prefix.lower():
        try:
            if b"b" in prefix.lower():
                return codecs.escape_decode(body)[0].decode("latin-1")
            return body.decode("utf-8", "surrogateescape").encode("latin-1", "backslashreplace").decode(
                "unicode_escape")
        except (UnicodeError, ValueError):
            pass
    return body.decode("utf-8", "replace")


class _Stream:
    """One file's literal streams (bindings resolved once)."""

    __slots__ = ("_names", "buf", "hi", "lo")

    def __init__(self, buf: Any, lo: int, hi: int) -> None:
        self.buf, self.lo, self.hi = buf, lo, hi  # the triggers' span: bindings are looked for around it
        self._names: dict[str, str] | None = None

    def names(self) -> dict[str, str]:
        if self._names is None:
            out: dict[str, str] = {}
            buf = self.buf
            # ``= "`` (searched by its first byte), then its line checked
            seen: set[int] = set()
            for eq in _EQ_LITERAL.finditer(buf, max(0, self.lo - NAMES_REACH), self.hi + NAMES_REACH):
                start = eq.start()
                back = max(0, start - 256)
                line = max(buf.rfind(b"\n", back, start), buf.rfind(b"\r", back, start))
                if (line < 0 < back) or line in seen:
                    # no line start within reach (a ``= "`` inside a long literal: the match would start at the
                    # file's start), or a line already matched: each ``= "`` of a hostile line re-matched it whole,
                    # 9 CPU-s for a 30 KB file
                    continue
                seen.add(line)
                m = _SIMPLE.match(buf, line + 1)
                if m is None or m.end(1) > start:
                    continue
                name = m.group(1).decode()
                q = m.group(2)
                i = 0
                while q[i] not in (0x22, 0x27):
                    i += 1
                if name not in out:
                    out[name] = _literal(q[:i], q[i:])[:MAX_VALUE]
            self._names = out
        return self._names

    def _field(self, f: re.Match[str]) -> str:
        """An f-string's field: ``{{``/``}}`` as their brace, ``{NAME}`` as its bound literal, else nothing."""
        whole = f.group(0)
        if whole in ("{{", "}}"):
            return whole[0]
        return self.names().get(f.group(1) or "", "")

    def text(self, lo: int, hi: int) -> str:
        """The literal stream of ``buf[lo:hi]`` (see the module's docstring)."""
        chunk = bytes(self.buf[lo:hi])
        out: list[str] = []
        depth = size = 0
        for m in _TOK.finditer(chunk):
            kind = m.lastgroup
            if kind == "o":
                depth += 1
                continue
            if kind == "x":
                depth = max(0, depth - 1)
                continue
            if kind == "e":
                if not depth:
                    out.append("\n")  # a statement ends: its pieces are not folded with the next one's
                continue
            s = m.group("s")
            if s is not None:
                if _CODEC_CALL.search(chunk, max(0, m.start() - 24), m.start()):
                    continue  # the encoding of ``.decode("ascii")``: not a piece of the value
                prefix = m.group("p")
                val = _literal(prefix, s)
                if b"f" in prefix.lower():
                    val = _FFIELD.sub(self._field, val)
                elif "{" in val or "%" in val:
                    val = _FIELDS.sub("", val)
                out.append(val)
            elif m.group("c") is not None:
                try:
                    out.append(chr(int(m.group("c"), 0)))
                except (ValueError, OverflowError):
                    pass
            elif kind == "n":
                v = self.names().get(m.group("n").decode())
                if v is not None and not _TARGET.match(chunk, m.end()):  # not a binding's target or a keyword
                    size += len(v)
                    if size > STREAM_MAX:
                        break  # names standing for long values, over and over: the rest is not looked at
                    out.append(v)
        return "".join(out) + self._runs(chunk)

    @staticmethod
    def _runs(chunk: bytes) -> str:
        """Names bound to literals on consecutive lines (``A = "h"``, ``B = "f_…"``, ``C = "…"``), folded wherever they
        are used (maybe far below): from each, its value and the next ones' (up to ``RUN`` of them), a line each."""
        vals: list[list[str]] = []
        last = -1
        for m in _SIMPLE.finditer(chunk):
            q = m.group(2)
            i = 0
            while q[i] not in (0x22, 0x27):
                i += 1
            if m.start() != last + 1 or not vals:
                vals.append([])
            vals[-1].append(_literal(q[:i], q[i:])[:MAX_VALUE])
            last = m.end()
        return "".join("\n" + "".join(run[i:i + RUN]) for run in vals if len(run) > 1 for i in range(len(run) - 1))


def stream_admits(buf: Any, ends: list[int], matcher: SecretMatcher) -> bool:
    """Whether the literal stream around one of the trigger hits ending at ``ends`` holds a secret that ``buf``
    does not hold as written (see the module's docstring)."""
    if not ends:
        return False
    if not isinstance(buf, bytes | mmap.mmap):
        buf = bytes(buf)
    n = len(buf)
    windows: list[list[int]] = []
    for end in sorted(set(ends)):
        lo, hi = max(0, end - WINDOW), min(n, end + WINDOW)
        if windows and lo <= windows[-1][1] and hi - windows[-1][0] <= 4 * WINDOW:
            windows[-1][1] = max(windows[-1][1], hi)
            continue
        if windows and end <= windows[-1][1]:
            continue  # inside a window already as wide as it may grow
        if len(windows) >= MAX_WINDOWS:
            break
        windows.append([lo, hi])
    st = _Stream(buf, windows[0][0], windows[-1][1])
    for lo, hi in windows:
        lo = bytes(buf[max(0, lo - 256):lo]).rfind(b"\n") + max(0, lo - 256) + 1 if lo else 0
        nl = bytes(buf[hi:hi + 256]).find(b"\n")
        hi = hi + nl if nl >= 0 else min(n, hi + 256)
        text = st.text(lo, hi).encode("utf-8", "surrogatepass")
        for m in matcher.find(text):
            if buf.find(m.secret) < 0:
                return True
    return False
