"""The quiet items of a batch: those no detector can report anything for, found with one Hyperscan scan over
the whole batch instead of every detector over each item.

A ``--history`` sweep reads tens of thousands of small blobs and commit messages (66k in a 6k-commit history);
nearly all are plain text without a single candidate, yet each paid the full detector round (model sniff,
notebook check, the text pass's scan, the encoded pass, the Python-AST prefilter, the archive check): about
30 us of Python per item. Here the batch's items are read first; every *plain* one (below) is joined into one
buffer, separated by a line break, and scanned once with the rules database (the rules' signatures and the base64
needles, ``SecretMatcher.hit_ends``). A plain item with no hit in its span is *quiet*: it is not run through the
detectors, and it is recorded as scanned, with no finding and no error.

Why a quiet item has no finding (each detector, as it stands):
- plain means: ``bytes``, no NUL byte in its first 4 KiB (not binary, not UTF-16: the text pass scans it whole
  with the rules database), no notebook (``looks_like_notebook``), no model or archive (``sniff`` and
  ``pickle01_may_run`` as the model detector decides them, ``archive_kind``);
- every hit of the database in a piece alone is a hit in the joined buffer (no pattern is anchored, but for the
  compressed-stream needle, whose ``(?:^|[^alphabet])`` start the line break satisfies; a word boundary sees a
  line break where the piece alone sees its start or end). No rule candidate: the text pass confirms nothing;
  no base64 needle: the encoded pass decodes no run (it decodes only runs that hold a needle in non-YAML text);
- a Python file must not be admitted by the Python-AST prefilter (``PythonAstSecrets.wanted``, asked per file);
- a YAML file (by name) must hold no Secret manifest or Docker config hint (``encoded.yaml_hinted``) and no base64
  run at all (``B64Decoder.candidates``): the encoded pass parses the one and decodes every run there;
- the post-processors (inline ignores) only remove findings. Secrets in the item's *path* are still reported
  (``WorkerContext.path_secrets``, per batch as before).

The gate is on only when each of these holds for the worker's detectors (a detector or post-processor it does
not know, the fallback backend, an anchored rule, base64 layers beyond the needles' reach turn it off), and only for batches of
git objects (``blob``/``commit`` items: their bytes are in memory anyway). Findings are the same with or without
it (``tests/test_hist17_gate.py`` compares both on every shape the conditions name).
"""

from __future__ import annotations

import weakref
from bisect import bisect_right
from typing import TYPE_CHECKING, Any

from veritensor_fast.findings import Item

if TYPE_CHECKING:
    from veritensor_fast.worker import WorkerContext

#: Item kinds the gate applies to: git objects (read whole into memory by ``sources.git_read``).
KINDS = frozenset({"blob", "commit"})
#: What joins the plain items of a batch: a line break, which the one start-anchored needle accepts before a run.
SEP = b"\n"
#: Detectors whose conditions are encoded below, by (module, class). Any other detector turns the gate off.
KNOWN = frozenset({
    ("veritensor_fast.detectors.model", "ModelDetector"),
    ("veritensor_fast.detectors.notebook", "NotebookDetector"),
    ("veritensor_fast.detectors.text", "TextSecrets"),
    ("veritensor_fast.detectors.encoded", "EncodedSecrets"),
    ("veritensor_fast.detectors.pyast", "PythonAstSecrets"),
    ("veritensor_fast.detectors.archive", "ArchiveSecrets"),
})
#: A piece larger than this is scanned by the detectors as before (a batch holds at most ``BATCH_BYTES``
#: anyway; this only keeps the joined buffer small).
MAX_PIECE = 1 << 20
#: Bytes of a batch read up front at most: the rest of its items are read one at a time when the worker reaches
#: them. A batch of listed objects holds less (``engine.make_batches``: under ``2 * BATCH_BYTES``), all read up
#: front; one of unknown sizes (``-1``: the HEAD blobs ``GitHistorySource._head_fingerprints`` looks up after a
#: sweep, all in one batch) may hold any number of any size.
UPFRONT = 8 << 20


class Opened:
    """A batch read up front: each item's ``(buffer, closer)`` or the ``InputError`` reading it raised, and the
    indices of the quiet items. Items past ``got`` (beyond :data:`UPFRONT`) are read when opened, as without
    the gate."""

    __slots__ = ("got", "quiet", "_ctx", "_batch")

    def __init__(self, got: list[Any], quiet: set[int], ctx: WorkerContext | None = None,
                 batch: list[Item] | None = None) -> None:
        self.got = got
        self.quiet = quiet
        self._ctx = ctx
        self._batch = batch

    def open(self, i: int) -> tuple[Any, Any]:
        if i >= len(self.got) and self._ctx is not None and self._batch is not None:
            it = self._batch[i]
            return self._ctx.reader(it.kind).open(it)
        g = self.got[i]
        if isinstance(g, BaseException):
            raise g
        return g


class Gate:
    """The gate of one worker context (see the module docstring); ``enabled`` False when a condition fails."""

    def __init__(self, ctx: WorkerContext) -> None:
        from veritensor_fast.detectors.archive import archive_kind
        from veritensor_fast.detectors.encoded import _YAML_EXT, yaml_hinted
        from veritensor_fast.detectors.notebook import looks_like_notebook
        from veritensor_fast.detectors.pyast import PY_EXT
        from veritensor_fast.models.sniff import TRIAL_BYTES, has_model_ext, pickle01_may_run, sniff

        self.ctx = ctx
        self.py: Any = None  # the Python-AST detector, when it parses
        self.b64: Any = None  # the encoded detector's decoder, when it decodes: every base64 run of a YAML file
        self.enabled = self._check(ctx)
        self._yaml_ext, self._py_ext, self._trial, self._hinted = _YAML_EXT, PY_EXT, TRIAL_BYTES, yaml_hinted
        self._archive_kind, self._notebook, self._model_ext = archive_kind, looks_like_notebook, has_model_ext
        self._may_run, self._sniff = pickle01_may_run, sniff

    def _check(self, ctx: WorkerContext) -> bool:
        if ctx.matcher.hit_ends(b"") is None:  # the fallback backend, or an anchored rule
            return False
        if any(type(p).__name__ != "InlineIgnores" for p in ctx.postprocessors):
            return False  # inline ignores only take findings away; another post-processor might add some
        for det in ctx.detectors:
            if (type(det).__module__, type(det).__name__) not in KNOWN:
                return False
            if det.name == "encoded" and getattr(det, "decoder", None) is not None and not getattr(det, "needles", False):
                return False  # text files get the generic base64 layer (more layers than the needles cover)
            if det.name == "python-ast" and getattr(det, "enabled", False):
                self.py = det
            if det.name == "encoded":
                self.b64 = getattr(det, "decoder", None)
        return True

    def plain(self, item: Item, buf: Any) -> bool:
        """Whether ``buf`` is plain text that only the text and encoded passes would look at (module docstring)."""
        if type(buf) is not bytes or len(buf) > MAX_PIECE:
            return False
        head = buf[:4096]
        if b"\x00" in head:
            return False
        path = item.path
        if self._model_ext(path):
            return False
        kind = self._sniff(head, path, len(buf))
        if kind == "pickle?":
            if self._may_run(buf, self._trial):
                return False
        elif kind != "none":
            return False
        return self._archive_kind(head) is None and not self._notebook(path, head, buf)

    def quiet(self, batch: list[Item], got: list[Any]) -> set[int]:
        """Indices of the quiet items among ``batch`` (``got``: each item's ``(buffer, closer)`` or error)."""
        idx = [i for i, g in enumerate(got) if not isinstance(g, BaseException) and self.plain(batch[i], g[0])]
        if not idx:
            return set()
        pieces = [got[i][0] for i in idx]
        starts: list[int] = []
        pos = 0
        for p in pieces:
            starts.append(pos)
            pos += len(p) + len(SEP)
        ends = self.ctx.matcher.hit_ends(SEP.join(pieces))
        if ends is None:
            return set()
        loud: set[int] = set()
        for e in ends:  # a hit ending at a piece's end (inclusive) or inside it: its own; in a separator: none's
            k = bisect_right(starts, e) - 1
            if k >= 0 and e <= starts[k] + len(pieces[k]):
                loud.add(k)
            if k >= 1 and e == starts[k]:
                loud.add(k - 1)
        out: set[int] = set()
        py, b64 = self.py, self.b64
        for k, i in enumerate(idx):
            if k in loud:
                continue
            low = batch[i].path.lower()
            if py is not None and low.endswith(self._py_ext) and py.wanted(pieces[k]):
                continue
            if b64 is not None and low.endswith(self._yaml_ext) and (
                    self._hinted(pieces[k]) or next(iter(b64.candidates(pieces[k])), None) is not None):
                continue  # a Secret manifest or Docker config to parse, or a base64 run to decode
            out.add(i)
        return out


_GATES: weakref.WeakKeyDictionary[Any, Gate] = weakref.WeakKeyDictionary()


def open_batch(ctx: WorkerContext, batch: list[Item]) -> Opened | None:
    """Read the items of a batch of git objects up front (up to :data:`UPFRONT` bytes) and find their quiet
    items; None for any other batch (or with the gate off): the worker then reads and scans item by item as
    before. The reader's ``InputError`` for an item is kept and raised when the worker opens that item."""
    from veritensor_fast.sources.fs import InputError

    if len(batch) < 2 or any(it.kind not in KINDS for it in batch):
        return None
    gate = _GATES.get(ctx)
    if gate is None:
        gate = _GATES[ctx] = Gate(ctx)
    if not gate.enabled:
        return None
    got: list[Any] = []
    total = 0
    for it in batch:
        if total >= UPFRONT:
            break
        try:
            g = ctx.reader(it.kind).open(it)
            total += len(g[0])
        except InputError as exc:
            g = exc
        got.append(g)
    return Opened(got, gate.quiet(batch, got), ctx, batch)
