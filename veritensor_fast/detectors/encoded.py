"""Encoded secrets: Kubernetes Secret manifests, Docker registry configs, Helm values and base64 blobs anywhere.

Runs after the plain text pass. Three layers:

1. Structured (YAML files that mention ``kind: Secret`` or a Docker config key, parsed with PyYAML's C safe
   loader, ``compose_all`` so every value keeps its line): every ``data``/``binaryData`` value of a ``Secret``
   is decoded (block and folded scalars included) and matched; ``.dockerconfigjson``/``.dockercfg`` is parsed
   as JSON and each ``auth`` (base64 of ``user:password``) is decoded and matched too
   (``base64 → json → base64``); ``stringData`` values are matched as YAML-decoded text (escapes resolved) and
   reported where the secret stands literally in the file when it does (so they merge with the text pass).
   A ``dockerconfigjson``-like key anywhere (Helm values) is treated the same way.
2. Around base64 needles (text files): the text pass's one Hyperscan scan also reports the base64 forms of
   every rule's required literals (``b64_needles``: ``hf_`` -> ``aGZf``/``hmX``/``oZl``, keywords such as
   ``aws``, two layers deep, line-wrapped too); only the base64 run holding such a hit is decoded
   (``B64Decoder.candidates_at``), then matched and recursed into like any candidate. Blobs the structured
   layer handled are skipped.
3. Generic: every base64/base64url blob (see ``b64_scan``), recursively, depth-limited by
   ``ScanOptions.base64_depth``: for YAML files (Helm values and templates wrap blobs in indented block
   scalars; blobs the structured layer handled are skipped), binary files, decoded data (nested layers, JSON
   strings), and text files when ``base64_depth`` asks for more layers than the needles cover.

Binary files (a NUL byte in the first 4 KiB) get the generic layer only, up to ``BINARY_MAX`` bytes and
``BINARY_DECODED`` decoded bytes each (packed data holds candidates, so the budget is smaller), executables
and shared libraries excepted; findings carry the blob's byte ``offset`` too. With the fallback backend (no
Hyperscan) text files get the generic candidates that hold a needle, which are the same runs.

A finding points at the first character of the encoded value in the file and carries the chain in
``decoded``. Nothing is reported for a blob unless a real rule matches its decoded content.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from veritensor_fast.detectors import escaped
from veritensor_fast.detectors.b64_needles import LAYERS, NeedleSet
from veritensor_fast.detectors.b64_scan import (
    MAX_DECODED_PER_BUFFER,
    MAX_ENCODED,
    MAX_INFLATED,
    B64Decoder,
    Candidate,
    decode,
)
from veritensor_fast.detectors.pyast import PY_EXT
from veritensor_fast.findings import Item
from veritensor_fast.kernels import BACKEND
from veritensor_fast.matcher import SecretMatch

if TYPE_CHECKING:
    from veritensor_fast.worker import ItemScan, WorkerContext

#: Binary files (a NUL byte in the first 4 KiB) up to this size get the generic layer, decoding at most
#: ``BINARY_DECODED`` bytes each: base64 runs are rare in binary data (a run of 27 alphabet bytes in random
#: data has probability 4^-27), and the candidate search runs at Hyperscan speed. Larger binaries (model
#: weights, archives) are not searched for base64.
BINARY_MAX = 64 << 20
BINARY_DECODED = 8 << 20
#: Compiled executables and libraries (ELF, PE, Mach-O, ``ar`` static libraries) are not decoded: their symbol tables are full of
#: mixed-case base64-alphabet runs (measured: a scipy extension cost 0.25 s, the whole text pass 0.01 s).
_EXECUTABLE = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe",
               b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"!<arch>\n")
#: Compiled Python: its strings are the literals of a source file scanned on its own (and the text pass still
#: reads the raw bytes); decoding them doubled the encoded pass on site-packages (5,963 .pyc files, +0.9 s).
_COMPILED_EXT = (".pyc", ".pyo")
#: YAML files larger than this are not parsed (the generic layer still runs).
MAX_YAML = 8 << 20
#: Per-worker memory budget of one YAML parse (``compose_all`` keeps a node with two marks per scalar: up to
#: 180 bytes per source byte, 1.2 GB for a dense 8 MiB file). Its estimate: the bytes that can end or open a
#: node (an upper bound on the nodes, plus one) times the worst measured cost per such byte, rounded up
#: (370 B: tagged flow items; 12 shapes of 1 MB, ``ru_maxrss``). Over it the file is not parsed: the generic
#: layer still runs and a ``limit`` error says so.
YAML_BUDGET = 256 << 20
_YAML_UNIT_COST = 512
_YAML_DELIMS = (b",", b":", b"-", b"\n", b"[", b"{", b"?")


def yaml_cost(buf: Any) -> int:
    """Estimated peak bytes of composing YAML ``buf``; 0 when it is too short to matter (not counted)."""
    if len(buf) * _YAML_UNIT_COST <= YAML_BUDGET:
        return 0
    return (sum(buf.count(c) for c in _YAML_DELIMS) + 1) * _YAML_UNIT_COST
_YAML_EXT = (".yaml", ".yml", ".tpl")
_YAML_HINT = re.compile(rb"kind:\s*[\x22']?Secret\b|dockerconfigjson|dockercfg")
#: Every ``_YAML_HINT`` match holds one of these: ``find`` (memmem, GB/s) rules out nearly every YAML file before
#: the regex, which has no literal prefix to skip by (measured: 59 us a 7.5 KB file, 7.4k YAML blobs 0.44 s).
_HINT_WORDS = (b"Secret", b"dockerconfigjson", b"dockercfg")
_DOCKER_KEYS = frozenset({".dockerconfigjson", ".dockercfg", "dockerconfigjson", "dockercfg",
                          "dockerConfigJson", "dockerconfig"})
_WS = re.compile(r"\s+")


def yaml_hinted(buf: Any) -> bool:
    """Whether ``buf`` may hold a Secret manifest or a Docker config (``_YAML_HINT``)."""
    find = getattr(buf, "find", None)
    if find is not None and all(find(w) < 0 for w in _HINT_WORDS):
        return False
    return _YAML_HINT.search(buf) is not None


def _cut(scan: ItemScan, bound: int) -> None:
    """A budget left encoded data undecoded: say so (a ``limit`` error, exit 3), never skip silently."""
    scan.error(f"base64: decoding stopped at a bound ({bound >> 20} MiB decoded per file, {MAX_INFLATED >> 20} MiB "
               "per compressed stream): the rest was not decoded", "limit")


def _chain(ch: tuple[str, ...]) -> str:
    return " → ".join(ch)


class EncodedSecrets:
    name = "encoded"

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        opts = ctx.options
        self.enabled = bool(opts.decode_base64) and opts.base64_depth > 0
        self.decoder = B64Decoder(ctx.matcher, max_depth=max(1, opts.base64_depth)) if self.enabled else None
        #: text files: decode only around base64 needles (``b64_needles``) when they cover the layers asked for
        self.needles = self.enabled and opts.base64_depth <= LAYERS
        self._fallback: NeedleSet | None = None
        if self.needles and BACKEND == "python":  # no Hyperscan: the same needles, searched in each run
            self._fallback = NeedleSet([r.pattern for r in ctx.ruleset.rules])

    #: the batch gate asks :meth:`quiet` after its own scan (it may look for base64 runs in the bytes)
    quiet_cost = 1

    def quiet_test(self) -> Any:
        """The batch gate's question (``batch_gate``): :meth:`quiet`; None when text files get the generic layer
        (``base64_depth`` beyond the needles' layers, or the fallback backend): the gate is then off."""
        if self.decoder is not None and (not self.needles or self._fallback is not None):
            return None
        return self.quiet

    def quiet(self, item: Item, data: bytes, head: bytes) -> bool:
        """For ``data`` without a hit of the rules database (base64 needles included): True when :meth:`scan`
        decodes nothing. Text other than YAML decodes only runs holding a needle; a YAML file is parsed when
        hinted and has every run decoded; a binary file has every run decoded unless it is exempt (executables,
        compiled Python): only an exempt one is quiet."""
        dec = self.decoder
        if dec is None:
            return True
        low = item.path[-5:].lower()  # the extensions below: at most 5 characters
        if 0 in head:  # every run decoded unless exempt: not worth looking for runs twice
            return len(data) > BINARY_MAX or head.startswith(_EXECUTABLE) or low.endswith(_COMPILED_EXT)
        if not low.endswith(_YAML_EXT):
            return True
        if not dec.any_run(data, _HINT_WORDS):  # no hint word and no run: one pass (nearly every YAML file)
            return True
        if len(data) <= MAX_YAML and yaml_hinted(data):
            return False
        return next(iter(dec.candidates(data)), None) is None

    def quiet_batch(self, items: list[Item], datas: list[bytes], heads: list[bytes]) -> list[bool]:
        """:meth:`quiet` for each item of a batch, in one call (``batch_gate``): text other than YAML is quiet
        without a call."""
        if self.decoder is None:
            return [True] * len(items)
        quiet, yaml = self.quiet, _YAML_EXT
        return [0 not in h and not it.path[-5:].lower().endswith(yaml) or quiet(it, d, h)
                for it, d, h in zip(items, datas, heads, strict=True)]

    def scan(self, buf: Any, item: Item, head: bytes, scan: ItemScan) -> None:
        if self.decoder is None or scan.text_done:
            return
        dec = self.decoder
        if 0 in head:  # binary: only the generic layer, on files up to BINARY_MAX, with a smaller budget
            if len(buf) <= BINARY_MAX and not head.startswith(_EXECUTABLE) \
                    and not item.path.lower().endswith(_COMPILED_EXT):
                dec.cut = False
                dec.scan_buffer(buf, self._binary_emit(buf, scan), max_decoded=BINARY_DECODED)
                if dec.cut:
                    _cut(scan, BINARY_DECODED)
            return
        yaml = item.path.lower().endswith(_YAML_EXT)
        if not yaml and self.needles and self._fallback is None:
            got = scan.b64_hits
            if got is not None and got[0] is buf and not got[1]:
                return  # a text file whose one scan met no base64 needle: no run to decode (``_candidates``)
        dec.cut = False
        if self._fallback is None and BACKEND != "python":
            # Python sources: hex only, the AST pass reads their literals' escapes
            self._escaped(buf, scan, not item.path[-4:].lower().endswith(PY_EXT))
        covered: list[tuple[int, int]] = []
        if yaml and len(buf) <= MAX_YAML and yaml_hinted(buf):
            if yaml_cost(buf) > YAML_BUDGET:
                scan.error(f"YAML too dense to parse within the {YAML_BUDGET >> 20} MiB memory budget (~"
                           f"{yaml_cost(buf) >> 20} MiB estimated): its Secret and docker-config fields were not "
                           "parsed; the text and generic base64 passes scanned it", "limit")
            else:
                covered = _YamlSecrets(dec, buf, scan).run()
        covered.sort()
        starts = [a for a, _b in covered]

        def skip(off: int) -> bool:
            i = bisect_right(starts, off) - 1
            return i >= 0 and off < covered[i][1]

        def emit(m: SecretMatch, chain: tuple[str, ...], c: Candidate) -> None:
            line, col = scan.line_col(buf, c.start)
            scan.add_secret(m, line=line, column=col, decoded=_chain(chain))

        dec.scan_buffer(buf, emit, skip if covered else None, cands=self._candidates(buf, item, scan))
        if dec.cut:
            _cut(scan, MAX_DECODED_PER_BUFFER)

    def _candidates(self, buf: Any, item: Item, scan: ItemScan) -> Iterable[Candidate] | None:
        """The runs to decode in a text buffer: those holding a base64 needle; None = every run (generic: YAML
        files, whose block scalars wrap blobs with indentation the needles do not cover, and few bytes)."""
        dec = self.decoder
        if not self.needles or dec is None or item.path.lower().endswith(_YAML_EXT):
            return None
        if self._fallback is not None:
            fb = self._fallback
            return (c for c in dec.candidates(buf) if fb.in_span(bytes(buf[c.start:c.end])))
        hits = self._hits(buf, scan)
        return dec.candidates_at(buf, hits) if hits else ()

    def _hits(self, buf: Any, scan: ItemScan) -> list[int]:
        """The base64/escape needle hits of ``buf``: the text pass's, else one scan of the database, kept in
        ``scan.b64_hits`` so that the escape and base64 paths never scan the same buffer twice."""
        got = scan.b64_hits
        if got is not None and got[0] is buf:
            return got[1]
        hits = self.ctx.matcher.find_with_hits(buf)[1]
        scan.b64_hits = (buf, hits)
        return hits


    def _escaped(self, buf: Any, scan: ItemScan, escapes: bool) -> None:
        """Tokens spelled with JSON/JS escapes, percent-encoding or hex (``escaped``), around the needle hits."""
        hits = self._hits(buf, scan)
        if not hits:
            return

        def emit(m: SecretMatch, offset: int, kind: str) -> None:
            line, col = scan.line_col(buf, offset)
            scan.add_secret(m, line=line, column=col, decoded=kind)

        stop = escaped.scan_hits(self.ctx.matcher, buf, hits, emit, escapes)
        if stop is not None:
            line, _col = scan.line_col(buf, stop)
            runs, size = escaped.caps(len(buf))
            scan.error(f"more than {runs} escaped, hex, quoted-printable or continued runs (or "
                       f"{size >> 20} MiB of them): not decoded from line "
                       f"{line} on (its plain text was scanned)", "limit")

    @staticmethod
    def _binary_emit(buf: Any, scan: ItemScan) -> Any:
        def emit(m: SecretMatch, chain: tuple[str, ...], c: Candidate) -> None:
            line, col = scan.line_col(buf, c.start)  # as the text pass counts them; the byte offset too
            scan.add_secret(m, line=line, column=col, location={"offset": c.start}, decoded=_chain(chain))

        return emit


class _YamlSecrets:
    """The structured layer for one YAML buffer; returns the byte spans it handled."""

    def __init__(self, decoder: B64Decoder, buf: Any, scan: ItemScan) -> None:
        self.decoder = decoder
        self.buf = buf
        self.scan = scan
        self.covered: list[tuple[int, int]] = []
        self.text = ""
        self.ascii = True

    def run(self) -> list[tuple[int, int]]:
        import yaml

        raw = bytes(self.buf)
        try:
            self.text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return []
        self.ascii = self.text.isascii()
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            docs = list(yaml.compose_all(self.text, Loader=loader))
        except yaml.YAMLError:
            return []  # e.g. a Helm template: the generic layer still scans it
        except RecursionError:
            return []
        for i, doc in enumerate(docs):
            if isinstance(doc, yaml.MappingNode):
                self._document(doc, i)
        return self.covered

    # ---- helpers ------------------------------------------------------------------------------------

    def _byte(self, idx: int) -> int:
        return idx if self.ascii else len(self.text[:idx].encode("utf-8"))

    def _value_start(self, node: Any) -> int:
        """Character index of the first character of a scalar's content (past quotes / block indicator)."""
        idx = int(node.start_mark.index)
        style = node.style
        if style in ('"', "'"):
            return idx + 1
        if style in ("|", ">"):
            nl = self.text.find("\n", idx)
            if nl < 0:
                return idx
            j = nl + 1
            while j < len(self.text) and self.text[j] in " \t\r\n":
                j += 1
            return j
        return idx

    def _emit_at(self, node: Any, doc: int, key: str) -> Any:
        vstart = self._byte(self._value_start(node))
        vend = self._byte(int(node.end_mark.index))
        self.covered.append((vstart, max(vend, vstart + 1)))
        scan, buf = self.scan, self.buf

        def emit(m: SecretMatch, chain: tuple[str, ...]) -> None:
            line, col = scan.line_col(buf, vstart)
            scan.add_secret(m, line=line, column=col, decoded=_chain(chain),
                            location={"document": doc, "key": key})

        return emit

    def _document(self, doc: Any, index: int) -> None:
        import yaml

        fields = {k.value: v for k, v in doc.value if isinstance(k, yaml.ScalarNode)}
        kind = fields.get("kind")
        is_secret = isinstance(kind, yaml.ScalarNode) and kind.value == "Secret"
        if is_secret:
            for section in ("data", "binaryData"):
                node = fields.get(section)
                if isinstance(node, yaml.MappingNode):
                    for k, v in node.value:
                        if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode):
                            self._data_value(str(k.value), v, index, f"{section}.{k.value}")
            node = fields.get("stringData")
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.ScalarNode):
                        self._string_value(str(k.value), v, index, f"stringData.{k.value}")
        # Docker config keys anywhere in the document (Helm values, non-Secret manifests).
        stack: list[tuple[Any, str]] = [(doc, "")]
        seen: set[int] = set()  # aliases share their node: each is walked once (else 10 aliases x 9 levels = 1e9)
        while stack:
            node, path = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if not isinstance(k, yaml.ScalarNode):
                        continue
                    p = f"{path}.{k.value}" if path else str(k.value)
                    if isinstance(v, yaml.ScalarNode):
                        if k.value in _DOCKER_KEYS and not (is_secret and path in ("data", "stringData")):
                            self._data_value(str(k.value), v, index, p)
                    else:
                        stack.append((v, p))
            elif isinstance(node, yaml.SequenceNode):
                for j, v in enumerate(node.value):
                    stack.append((v, f"{path}[{j}]"))

    def _data_value(self, key: str, node: Any, doc: int, path: str) -> None:
        value = str(node.value)
        compact = _WS.sub("", value).encode("utf-8", "surrogatepass")
        if not compact or len(compact) > MAX_ENCODED:
            return
        emit = self._emit_at(node, doc, path)
        if compact.lstrip()[:1] in (b"{", b"[") and key in _DOCKER_KEYS:
            # plain JSON docker config (not encoded): only its base64 ``auth`` values are decoded
            self.decoder.scan_decoded(compact, (), 0, emit)
            return
        dec = decode(compact)
        if dec is None:
            return
        self.decoder.scan_decoded(dec, ("base64",), 1, emit)

    def _string_value(self, key: str, node: Any, doc: int, path: str) -> None:
        value = str(node.value).encode("utf-8", "surrogatepass")
        vstart = self._byte(self._value_start(node))
        vend = self._byte(int(node.end_mark.index))
        scan, buf = self.scan, self.buf
        self.covered.append((vstart, max(vend, vstart + 1)))

        def emit(m: SecretMatch, chain: tuple[str, ...]) -> None:
            if not chain:  # plain text: point where the secret stands literally, as the text pass does
                pos = bytes(buf[vstart:vend]).find(m.secret)
                if pos >= 0:
                    scan.add_secret(SecretMatch(m.rule, vstart + pos, vstart + pos + len(m.secret), m.secret),
                                    buf)
                    return
                chain = ("yaml",)
            line, col = scan.line_col(buf, vstart)
            scan.add_secret(m, line=line, column=col, decoded=_chain(chain),
                            location={"document": doc, "key": path})

        # depth 0: the value is text; blobs inside it (e.g. docker config JSON with auth) are decoded below it.
        self.decoder.scan_decoded(value, (), 0, emit)
