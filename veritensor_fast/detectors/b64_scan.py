"""Base64 / base64url blobs: find candidates fast, decode them tolerantly, match secrets in the decoded bytes,
and recurse into decoded text (nested base64, JSON string values) up to a depth limit.

Used by the ``encoded`` detector on whole files and reusable by any detector that holds decoded text
(``B64Decoder.scan_text``). In text files the ``encoded`` detector does not search for every run: it hands
``scan_buffer`` the runs around base64 needle hits (:meth:`B64Decoder.candidates_at`, see ``b64_needles``), the
same candidates :meth:`B64Decoder.raw_candidates` would give, restricted to those holding a hit.

Nothing here reports a generic "base64" finding: only a rule that matches the *decoded* bytes produces a
finding, with the decoding chain (``base64 → json → base64``) attached.

Candidate finding: one Hyperscan pattern reports the 24th character of every run of the (union) base64
alphabet that is at least 24 long (one callback per run, not per byte); Python ``re`` then takes the whole run
at that offset, unless a cheaper whole-buffer check (``B64Decoder.possible``) proves there is no candidate
at all (logs, CSV). A run whose line ends exactly at a wrap width >= 40 (or 28-36, a multiple of 4) continues on the next line (MIME 76, PEM
64, YAML folded scalars), so line-wrapped blobs are decoded as one. Cheap rejects before decoding: a run
without both upper- and lower-case letters (hex digests, snake_case identifiers, lower-case paths) and a run
mixing the standard (``+/``) and URL-safe (``-_``) alphabets (``sha512-…`` integrity hashes, file paths).

Decoded bytes are always matched (one Hyperscan call for all candidates of a buffer, so random binary costs a
decode and a scan, never a finding unless a real rule matches); recursion happens only into decoded data that
is mostly text, so random binary (images, hashes) is never decoded further. Decoded bytes that are a gzip or
zlib stream (``H4sI…``, ``eJ…``) are inflated first, bounded by :data:`MAX_INFLATED` and the buffer's budget,
and the chain says so (``base64 → gzip``).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from veritensor_fast.detectors.b64_codec import (
    MAX_INFLATED,
    compressed_kind,
    decode,
    inflate_bounded,
    json_strings,
    mostly_text,
    plausible,
)
from veritensor_fast.detectors.b64_codec import (
    inflate as inflate,  # re-exported (tests, callers of the module before the split)
)
from veritensor_fast.kernels.hsdb import Scanner, compile_cached
from veritensor_fast.matcher import SecretMatch, SecretMatcher

#: Shortest run considered: 27 characters = 20 decoded bytes, the shortest token any rule matches (an AWS
#: access key id). Measured on the generated monorepo: 24 gave 241k candidate runs, 27 gives 64k.
MIN_RUN = 27
#: Longest encoded candidate decoded (longer blobs are images/archives; skipped). 1 MiB.
MAX_ENCODED = 1 << 20
#: Decoded bytes matched per top-level buffer before the decoder stops (bounds the cost of blob-heavy files).
MAX_DECODED_PER_BUFFER = 64 << 20
#: how far back a hit looks for its line's start (a wrapped blob's line is at most ``MAX_ENCODED`` wide)
_BACK = MAX_ENCODED + 1024
#: A wrapped blob continues only if its lines are at least this wide (real wrap widths are 60-76), or at least
#: ``NARROW_WRAP`` wide and a multiple of 4 (``base64 -w 32``): narrow runs one per line that are not are
#: separate values (ids, keys), which joining would garble.
MIN_WRAP = 40
NARROW_WRAP = 28


def wraps(width: int) -> bool:
    """Whether a run ``width`` characters wide that ends its line may be one line of a wrapped blob."""
    return width >= MIN_WRAP or width >= NARROW_WRAP and width % 4 == 0

_ALPHA = rb"A-Za-z0-9+/_\-"
_HS_PATTERN = rb"(?:^|[^" + _ALPHA + rb"])[" + _ALPHA + rb"]{" + str(MIN_RUN).encode() + rb"}"
#: ``MIN_RUN`` alphabet characters anywhere: every candidate starts with such a run (``_HS_PATTERN`` finds its
#: start), so a buffer without one has none. Without the left context, as a single match, Hyperscan answers this
#: ~2.5x faster than it finds ``_HS_PATTERN``'s runs (measured on 7.4k YAML blobs: 0.063 s against 0.147 s).
RUN_PATTERN = rb"[" + _ALPHA + rb"]{" + str(MIN_RUN).encode() + rb"}"
_RUN = re.compile(rb"[" + _ALPHA + rb"]+(={1,2})?")
_CONT = re.compile(rb"[ \t]*\r?\n[ \t]*([" + _ALPHA + rb"]+)(={1,2})?")
_RUN_ANY = re.compile(rb"(?<![" + _ALPHA + rb"])[" + _ALPHA + rb"]{" + str(MIN_RUN).encode() + rb",}")
#: Necessary condition for any candidate (see :meth:`B64Decoder.possible`): an upper-case letter next to a
#: non-upper-case alphabet character, else ``MIN_RUN`` alphabet characters without a letter. Two databases: the
#: first runs at ~3 GB/s (measured; ~600 MB/s for ``_HS_PATTERN``, and ~1.2 GB/s with the second pattern
#: in the same database) and proves that log and CSV files of the generated monorepo hold no candidate.
_NONLETTER = rb"0-9+/_\-"
_POSSIBLE = (rb"[A-Z][a-z" + _NONLETTER + rb"]", rb"[a-z" + _NONLETTER + rb"][A-Z]")
_POSSIBLE_RUN = rb"[" + _NONLETTER + rb"]{" + str(MIN_RUN).encode() + rb"}"
_ALPHA_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_SEP = b"\n\x00\n"  # breaks every rule (no rule spans NUL plus two newlines)

#: emit(match, chain) — chain is the tuple of decoding steps, e.g. ("base64", "json", "base64").
Emit = Callable[[SecretMatch, tuple[str, ...]], None]


@dataclass(frozen=True, slots=True)
class Candidate:
    start: int  # offset of the first encoded character in the scanned buffer
    end: int  # offset just past the last encoded character (including padding)
    data: bytes  # the encoded characters, line breaks removed


class B64Decoder:
    """Per-process decoder bound to the worker's matcher. ``max_depth`` = how many base64 layers to peel."""

    def __init__(self, matcher: SecretMatcher, max_depth: int = 2) -> None:
        self.matcher = matcher
        self.max_depth = max_depth
        #: set when a budget (``MAX_DECODED_PER_BUFFER``/``max_decoded``, ``MAX_INFLATED``) left encoded data
        #: undecoded; the caller clears it before a buffer and reports it after (a ``limit`` error)
        self.cut = False
        self._hs = Scanner(compile_cached([_HS_PATTERN]))
        import hyperscan

        self._stop = hyperscan.ScanTerminated
        self._runs: dict[tuple[bytes, ...], Any] = {}  # ``any_run``'s databases
        self._pre = []
        for pats in (_POSSIBLE, (_POSSIBLE_RUN,)):
            db = hyperscan.loadb(compile_cached(list(pats), [hyperscan.HS_FLAG_SINGLEMATCH] * len(pats)),
                                 hyperscan.HS_MODE_BLOCK)
            db.scratch = hyperscan.Scratch(db)
            self._pre.append(db)

    def possible(self, buf: Any) -> bool:
        """``False`` only when ``buf`` provably holds no candidate, checked at Hyperscan literal speed.

        A candidate needs an upper- and a lower-case letter inside one run (``plausible``). Within a run,
        some upper-case letter then stands next to a non-upper-case alphabet character, unless the letters
        are on different lines of a wrapped blob, whose first line then starts with ``MIN_RUN`` non-letters
        (its head would be rejected as single-case otherwise). Logs and CSV have neither.
        """
        if len(buf) > 1 << 30:  # the hyperscan package truncates buffers over 4 GiB: do not try to prove
            return True
        for db in self._pre:
            try:
                db.scan(buf, _stop)  # positional: keywords cost ~0.6 us a call in the hyperscan package
            except self._stop:
                return True
        return False

    def any_run(self, buf: Any, literals: tuple[bytes, ...] = ()) -> bool:
        """``False`` only when ``buf`` holds no run of ``MIN_RUN`` alphabet characters (so no candidate) and
        none of ``literals`` (plain bytes, matched case-sensitively: the caller's own necessary conditions, asked in
        the same pass). One single-match Hyperscan scan; the database is built once per ``literals``."""
        if len(buf) > 1 << 30:  # as ``possible``: the hyperscan package truncates buffers over 4 GiB
            return True
        db = self._runs.get(literals)
        if db is None:
            import hyperscan

            pats = [RUN_PATTERN, *(re.escape(w) for w in literals)]
            db = hyperscan.loadb(compile_cached(pats, [hyperscan.HS_FLAG_SINGLEMATCH] * len(pats)),
                                 hyperscan.HS_MODE_BLOCK)
            db.scratch = hyperscan.Scratch(db)
            self._runs[literals] = db
        try:
            db.scan(buf, _stop)
        except self._stop:
            return True
        return False

    # ---- candidates ---------------------------------------------------------------------------------

    def candidates(self, buf: Any) -> Iterator[Candidate]:
        """Every plausible base64 run (line-wrapped runs joined) in ``buf``, in order."""
        if len(buf) < MIN_RUN or not self.possible(buf):
            return
        yield from self.raw_candidates(buf)

    def raw_candidates(self, buf: Any) -> Iterator[Candidate]:
        """:meth:`candidates` without the :meth:`possible` filter (same result; for tests and measurement)."""
        hits = self._hs.scan(buf)
        last_end = -1
        match = _RUN.match
        for _pid, e in hits:
            start = e - MIN_RUN
            if start < last_end:
                continue
            # The pattern ends exactly MIN_RUN characters into the run, so its head is known without a regex.
            # Nearly every run in code and logs is a snake_case or UPPER_CASE identifier: real base64 of 18+
            # bytes has both cases within its first 24 characters (probability > 1 - 1e-5 for text input).
            head = buf[start:e]
            if head.islower() or head.isupper():
                continue
            m = match(buf, start)
            assert m is not None
            last_end = m.end()
            if last_end - start < NARROW_WRAP:  # fast path: a short run (most are identifiers or hashes)
                run = m.group()
                if plausible(run):
                    yield Candidate(start, last_end, run)
                continue
            c = self._extend(buf, start)
            last_end = c.end
            if plausible(c.data):
                yield c

    def _extend(self, buf: Any, start: int) -> Candidate:
        m = _RUN.match(buf, start)
        assert m is not None
        end = m.end()
        if m.group(1) is not None:
            return Candidate(start, end, bytes(buf[start:end]))
        width = end - start
        # A run as wide as a wrap (``wraps``) that ends its line may continue on the next (same width, or a tail).
        if not wraps(width) or width > MAX_ENCODED:
            return Candidate(start, end, bytes(buf[start:end]))
        parts = [bytes(buf[start:end])]
        total = width
        while total <= MAX_ENCODED:
            c = _CONT.match(buf, end)
            if c is None:
                break
            seg = c.group(1)
            if len(seg) > width:
                break
            parts.append(seg + (c.group(2) or b""))
            end = c.end()
            total += len(seg)
            if len(seg) < width or c.group(2) is not None:
                break
        return Candidate(start, end, b"".join(parts))

    def candidates_at(self, buf: Any, hits: list[int]) -> Iterator[Candidate]:
        """The candidates :meth:`raw_candidates` would yield that hold one of ``hits`` (sorted end offsets of
        base64 needles, ``b64_needles``), found by looking only around each hit: back to the start of its run
        (and of the wrapped blob it continues), then forward exactly as :meth:`raw_candidates` goes."""
        done = -1  # end of the last candidate (or rejected run) looked at: later hits before it add nothing
        # The last line break before ``seen`` (-1: none): each hit looks for its line's start only back to the
        # previous hit, so one long line with many hits costs its length once (an 8 MB line took 39 s).
        seen, nl = 0, -1
        big: Candidate | None = None  # a one-line run over MAX_ENCODED: decoded in windows around its hits
        big_to = -1  # hits before this have their token inside a window already decoded
        for h in hits:
            p = h - 1  # a character of the needle's run
            if big is not None and big.start <= p < big.end:
                if p >= big_to:
                    w = _window(buf, big, p)
                    big_to = big.end if w.end >= big.end else w.end - _WIN_TOKEN
                    if plausible(w.data):
                        yield w
                continue
            if p < done or p < 0:
                continue
            if p > seen:
                nl = max(nl, buf.rfind(b"\n", max(seen, p - _BACK), p))
                seen = p
            starts = self._starts_back(buf, p, nl + 1 if nl >= p - _BACK else p - _BACK)
            if not starts:
                continue
            for start in starts:
                if start < done:
                    continue
                c = self._candidate_at(buf, start)
                if c is None:
                    continue
                done = max(done, c.end)
                if c.start <= p < c.end:
                    if len(c.data) > MAX_ENCODED and c.end - c.start == len(c.data):
                        big = c  # too long to decode whole (skipped silently before): around each hit
                        w = _window(buf, big, p)
                        big_to = big.end if w.end >= big.end else w.end - _WIN_TOKEN
                        if plausible(w.data):
                            yield w
                    elif plausible(c.data):
                        yield c
                    break
            m = _RUN.match(buf, starts[-1])  # every hit in this run leads to the same starts
            if m is not None:
                done = max(done, m.end())

    def _starts_back(self, buf: Any, p: int, line_start: int) -> list[int]:
        """Starts of the runs that may begin a blob holding offset ``p``, farthest first: the run holding ``p``
        and, while a run begins its line, the run ending the line before (a wrapped blob's earlier lines).
        ``line_start``: where the line holding ``p`` starts, or ``p - _BACK`` when it starts before that (a run
        or line longer than ``_BACK`` holds no candidate)."""
        start, alone = _run_back(buf, line_start, p + 1)
        if start > p:
            return []  # no alphabet character at ``p`` (a line break inside a needle)
        if start == line_start > 0 and buf[line_start - 1] != 0x0A:  # a run over ``_BACK``: its real start
            return [_run_back(buf, buf.rfind(b"\n", 0, line_start) + 1, p + 1)[0]]
        alone = alone and (line_start == 0 or buf[line_start - 1] == 0x0A)
        starts = [start]
        budget = MAX_ENCODED
        while budget > 0 and alone and line_start > 0:
            prev_end = line_start - 1  # the newline ending the previous line
            floor = max(0, prev_end - _BACK)
            prev_start = buf.rfind(b"\n", floor, prev_end) + 1 or floor
            if prev_start and buf[prev_start - 1] != 0x0A:
                break  # a line over ``_BACK``: no wrapped blob
            end = prev_end
            while end > prev_start and buf[end - 1:end] in (b" ", b"\t", b"\r"):
                end -= 1
            start, alone = _run_back(buf, prev_start, end)
            if not wraps(end - start):
                break
            starts.append(start)
            budget -= end - start
            line_start = prev_start
        starts.reverse()
        return starts

    def _candidate_at(self, buf: Any, start: int) -> Candidate | None:
        """What :meth:`raw_candidates` yields (or rejects, None) for the run starting at ``start``."""
        head = buf[start:start + MIN_RUN]
        if len(head) < MIN_RUN or head.islower() or head.isupper() or not _is_run(head):
            return None
        m = _RUN.match(buf, start)
        if m is None:  # pragma: no cover - head is alphabet-only
            return None
        if m.end() - start < NARROW_WRAP:
            return Candidate(start, m.end(), m.group())
        return self._extend(buf, start)

    # ---- matching -----------------------------------------------------------------------------------

    def scan_buffer(self, buf: Any, emit: Callable[[SecretMatch, tuple[str, ...], Candidate], None],
                    skip: Callable[[int], bool] | None = None, max_decoded: int = MAX_DECODED_PER_BUFFER,
                    cands: Iterable[Candidate] | None = None) -> None:
        """Find, decode and match every candidate of ``buf`` (or only ``cands``); recurse into decoded text.

        ``emit(match, chain, candidate)`` is called for every secret, ``candidate`` being the top-level blob
        (its ``start`` is where the finding points). ``skip(offset)`` may exclude blobs already handled.
        """
        budget = [max_decoded]
        todo: list[tuple[Candidate, bytes, tuple[str, ...]]] = []
        for c in self.candidates(buf) if cands is None else cands:
            if skip is not None and skip(c.start):
                continue
            dec = self._decode_candidate(c.data, budget)
            if dec is not None:
                todo.append((c, dec[0], dec[1]))
        if not todo:
            return
        datas = [d for _c, d, _ch in todo]
        joined = datas[0] if len(datas) == 1 else _SEP.join(datas)
        found = self.matcher.find(joined)
        if found:
            starts = _offsets(datas)
            for m in found:
                i = bisect_right(starts, m.start) - 1
                if m.end <= starts[i] + len(datas[i]):
                    emit(SecretMatch(m.rule, m.start - starts[i], m.end - starts[i], m.secret), todo[i][2],
                         todo[i][0])
        if self.max_depth <= 1:
            return
        budget2 = [max_decoded]
        for c, d, chain in todo:
            if mostly_text(d):
                self._recurse(d, 1, chain, _bind(emit, c), budget2)

    def scan_decoded(self, data: bytes, chain: tuple[str, ...], depth: int, emit: Emit) -> None:
        """Match ``data`` (already decoded ``depth`` layers deep) and recurse into it."""
        self._match_many([data], depth, chain, [emit])

    def scan_text(self, data: bytes, emit: Emit, chain: tuple[str, ...] = ()) -> None:
        """Decode base64 blobs inside ``data`` (text that was already matched as such) and match them."""
        self._recurse(data, 0, chain, emit, [MAX_DECODED_PER_BUFFER])

    def _decode_candidate(self, enc: bytes, budget: list[int]) -> tuple[bytes, tuple[str, ...]] | None:
        """The decoded bytes of a candidate and the decoding steps (``base64``, then ``gzip``/``zlib`` when
        the decoded bytes are a compressed stream, inflated to at most :data:`MAX_INFLATED`)."""
        if len(enc) < MIN_RUN or len(enc) > MAX_ENCODED or not plausible(enc):
            return None
        dec = decode(enc)
        if dec is None:
            return None
        if len(dec) > budget[0]:
            self.cut = True
            return None
        budget[0] -= len(dec)
        steps: tuple[str, ...] = ("base64",)
        kind = compressed_kind(dec)
        if kind is not None:
            limit = min(MAX_INFLATED, budget[0])
            out, more = inflate_bounded(dec, kind, limit)
            self.cut = self.cut or more  # inflated up to its bound: the rest of the stream is not
            if out:
                budget[0] -= len(out)
                return out, steps + (kind,)
        return dec, steps

    def _match_many(self, datas: list[bytes], depth: int, chain: tuple[str, ...], emits: list[Emit]) -> None:
        """One Hyperscan call for all ``datas`` (joined by a separator no rule can span)."""
        if len(datas) == 1:
            joined, starts = datas[0], [0]
        else:
            starts = []
            pos = 0
            for d in datas:
                starts.append(pos)
                pos += len(d) + len(_SEP)
            joined = _SEP.join(datas)
        for m in self.matcher.find(joined):
            i = bisect_right(starts, m.start) - 1
            base = starts[i]
            if m.end > base + len(datas[i]):
                continue
            emits[i](SecretMatch(m.rule, m.start - base, m.end - base, m.secret), chain)
        if depth >= self.max_depth:
            return
        budget = [MAX_DECODED_PER_BUFFER]
        for d, emit in zip(datas, emits, strict=True):
            if mostly_text(d):
                self._recurse(d, depth, chain, emit, budget)

    def _recurse(self, text: bytes, depth: int, chain: tuple[str, ...], emit: Emit, budget: list[int]) -> None:
        """Look inside decoded text: JSON string values (decoded from their escapes) and base64 blobs."""
        sub = chain
        strings = json_strings(text)
        if strings is not None:
            sub = chain + ("json",)
            vals = [s.encode("utf-8", "surrogatepass") for s in strings if len(s) >= 8]
            if vals and b"\\" in text:  # JSON escapes may hide a token from the raw match: match the values
                self._match_only(vals, sub, emit)
            blobs = _SEP.join(v for v in vals if len(v) >= MIN_RUN)
            sources = [c.data for c in self.candidates(blobs)] if blobs else []
        else:
            sources = [c.data for c in self.candidates(text)]
        groups: dict[tuple[str, ...], list[bytes]] = {}
        for enc in sources:
            dec = self._decode_candidate(enc, budget)
            if dec is not None:
                groups.setdefault(dec[1], []).append(dec[0])
        for steps, decs in groups.items():
            self._match_many(decs, depth + 1, sub + steps, [emit] * len(decs))

    def _match_only(self, datas: list[bytes], chain: tuple[str, ...], emit: Emit) -> None:
        joined = _SEP.join(datas)
        starts, pos = [], 0
        for d in datas:
            starts.append(pos)
            pos += len(d) + len(_SEP)
        for m in self.matcher.find(joined):
            i = bisect_right(starts, m.start) - 1
            if m.end <= starts[i] + len(datas[i]):
                emit(SecretMatch(m.rule, m.start - starts[i], m.end - starts[i], m.secret), chain)


#: A window of a one-line run over ``MAX_ENCODED`` around a hit: ``_WIN_BACK`` characters before it, ``_WIN`` in all
#: (multiples of 4: the window starts on a quantum of the run); a later hit whose token (up to ``_WIN_TOKEN``
#: encoded characters: a 4096-bit RSA key in PEM is ~4.4 KB in base64) ends inside it needs no window of its own.
_WIN_BACK = 256
_WIN = 32768
_WIN_TOKEN = 6144


def _window(buf: Any, big: Candidate, p: int) -> Candidate:
    """The window of ``big`` (a one-line run) around offset ``p``: reported at ``big``'s start, as every blob is."""
    a = big.start + max(0, (p - big.start - _WIN_BACK) // 4 * 4)
    b = min(big.end, a + _WIN)
    return Candidate(big.start, b, bytes(buf[a:b]))


def _run_back(buf: Any, line_start: int, end: int) -> tuple[int, bool]:
    """Start of the base64-alphabet run ending at ``end`` (not before ``line_start``), and whether only spaces
    and tabs stand between ``line_start`` and it. Reads growing windows backwards: a hit deep in a long
    minified line costs the run, not the line."""
    w = 256
    while True:
        lo = max(line_start, end - w)
        seg = bytes(buf[lo:end])
        head = seg.rstrip(_ALPHA_CHARS)
        if head or lo == line_start:
            start = lo + len(head)
            if start - line_start > 256:
                return start, False
            return start, not bytes(buf[line_start:start]).strip(b" \t")
        w *= 4


def _is_run(head: Any) -> bool:
    return not bytes(head).translate(None, _ALPHA_CHARS)


def _stop(*_args: Any) -> bool:
    return True  # stop the scan at the first match


def _offsets(datas: list[bytes]) -> list[int]:
    """Start offset of each item in ``_SEP.join(datas)``."""
    out, pos = [], 0
    for d in datas:
        out.append(pos)
        pos += len(d) + len(_SEP)
    return out


def _bind(emit: Callable[[SecretMatch, tuple[str, ...], Candidate], None], c: Candidate) -> Emit:
    def inner(m: SecretMatch, chain: tuple[str, ...]) -> None:
        emit(m, chain, c)

    return inner


