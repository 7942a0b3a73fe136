"""Static pickle analysis: an opcode decoder with a symbolic stack and memo. Nothing is ever loaded or imported.

Why our own decoder rather than ``pickletools.genops``: genops raises on bad data (we must keep what was decoded
before the break and report the break) and ignores FRAME boundaries. Reads here follow two models:

- *linear*: what ``pickle.loads(bytes)``, ``pickletools`` and a C unpickler over a peekable file see;
- *discard*: what CPython's C unpickler (before the gh-154848 fix) does over a file without ``peek()`` (the
  ``io.BytesIO`` that ``torch.load`` hands it): after FRAME it holds exactly the frame in its buffer, and a read
  that needs more than the rest of the frame throws that rest away and reads on from the frame end. A byte
  string that straddles a frame therefore hides opcodes from a linear reader.

A straddle is a finding by itself, and the stream is then analysed under both models. The pure-Python
unpickler (and patched CPython) reject such streams.

Every global (GLOBAL, INST, STACK_GLOBAL, EXT*) is classified when it is *resolved*, whether or not it is later
called, so a call dropped with POP (or never reached because the stream breaks) still counts. A stream that
breaks with nothing unreviewed before the break is reported as info (``pickle.load`` only fails there).

Containers carry their expanded size (``pickle_values``) for the memo/DUP expansion finding; after the BUILD
of a joblib ``NumpyArrayWrapper`` the raw array bytes joblib wrote are skipped (``joblib_arrays``).

This module is the walker (streams, globals judged, nested pickles, joblib arrays); one stream's opcode loop is
``pickle_stream``, its byte reader ``pickle_reader``, the symbolic values ``pickle_values`` and the issues
``pickle_issues``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veritensor_fast.models.allowlist import ALLOWED, dangerous_reason, is_data_module
from veritensor_fast.models.base import ModelIssue, ModelLimits
from veritensor_fast.models.joblib_arrays import layout
from veritensor_fast.models.pickle_issues import GlobalUse, Limit, global_issues, loc
from veritensor_fast.models.pickle_reader import Bad, Reader
from veritensor_fast.models.pickle_stream import decode_stream
from veritensor_fast.models.pickle_values import Bytes, Call, Opaque
from veritensor_fast.models.sniff import PICKLE_OPCODES as PICKLE_OPCODES  # re-exported

_COMPAT: dict[tuple[str, str], tuple[str, str]] = {}
_COMPAT_MOD: dict[str, str] = {}


def _compat() -> None:
    if _COMPAT_MOD:
        return
    import _compat_pickle  # stdlib data tables (no code from the scanned file is involved)

    _COMPAT.update(_compat_pickle.NAME_MAPPING)
    _COMPAT_MOD.update(_compat_pickle.IMPORT_MAPPING)


_BREAK_RULES = frozenset({"model.pickle.truncated", "model.pickle.corrupt"})
_BREAK_NOTE = ("; nothing before the break imports or calls anything unreviewed, so pickle.load only fails here "
               "(not a pickle, or a damaged one)")

@dataclass
class PickleResult:
    """What one file region held: issues, how many streams, and whether it looked like a pickle at all."""

    issues: list[ModelIssue] = field(default_factory=list)
    streams: int = 0
    end: int = 0  # offset after the last complete stream
    clean_stop: bool = False  # first stream reached STOP
    saw_global: bool = False
    saw_call: bool = False
    saw_global_call: bool = False  # a resolved global was called (REDUCE/INST/OBJ/NEWOBJ)
    broken: bool = False
    frame_straddle: bool = False


class PickleWalker:
    """Walks one or more pickle streams in ``data[start:end]`` and returns a ``PickleResult``."""

    def __init__(self, allowed_extra: frozenset[tuple[str, str]] = frozenset(),
                 limits: ModelLimits | None = None, nested_depth: int = 0) -> None:
        self.allowed_extra = allowed_extra
        self.limits = limits or ModelLimits()
        self.nested_depth = nested_depth
        #: while set, each zip checkpoint storage's declared bytes by key (``pickle_torch.persistent_id``)
        self.storages: dict[str, int] | None = None

    # ---- public -----------------------------------------------------------------------------------------
    def analyze(self, data: Any, start: int = 0, end: int | None = None, *, where: str = "",
                max_streams: int | None = None, trailing_is_data: bool = False) -> PickleResult:
        """Analyse every stream from ``start``; stacked streams and trailing pickles are analysed too."""
        if isinstance(data, memoryview | bytearray):
            data = bytes(data)
        end = len(data) if end is None else min(end, len(data))
        res = PickleResult()
        pos = start
        max_streams = max_streams or self.limits.max_streams
        while pos < end and res.streams < max_streams:
            first = res.streams == 0
            uses, issues, stop_pos, ok, straddles, saw_call = self._stream(data, pos, end, discard=False,
                                                                          where=where)
            if straddles:
                res.frame_straddle = True
                issues.append(ModelIssue(
                    "model.pickle.frame", "high",
                    "pickle data straddles a FRAME boundary: the C unpickler reads this stream differently "
                    "from pickletools (hidden opcodes); both readings analysed",
                    "FRAME", loc(where, straddles[0])))
                u2, i2, _, _, _, c2 = self._stream(data, pos, end, discard=True, where=where)
                for k, v in u2.items():
                    if k not in uses:
                        v.how += " (hidden by FRAME straddle)"
                        uses[k] = v
                issues.extend(i for i in i2 if i.rule_id != "model.pickle.frame")
                saw_call = max(saw_call, c2)
            if not first and not uses and not ok:
                # junk after the last complete stream: data, not a pickle that any loader would run
                if not trailing_is_data:
                    res.issues.append(ModelIssue(
                        "model.pickle.trailing-data", "info",
                        f"{end - pos} bytes after the last pickle stream are not a pickle; not analysed",
                        "trailing data", loc(where, pos)))
                break
            res.streams += 1
            if first:
                res.clean_stop = ok
            res.saw_global = res.saw_global or bool(uses)
            res.saw_call = res.saw_call or saw_call > 0
            res.saw_global_call = res.saw_global_call or saw_call > 1
            res.issues.extend(global_issues(uses, where))
            if not uses:
                issues = [ModelIssue(i.rule_id, "info", i.message + _BREAK_NOTE, i.evidence, i.location)
                          if i.rule_id in _BREAK_RULES else i for i in issues]
            res.issues.extend(issues)
            if not ok:
                res.broken = True
                break
            res.end = pos = stop_pos
        else:
            if pos < end and res.streams >= max_streams and not trailing_is_data:
                res.issues.append(ModelIssue(
                    "model.pickle.limit", "high",
                    f"more than {max_streams} stacked pickle streams; the rest could not be fully analysed",
                    "stream limit", loc(where, pos)))
        return res

    # ---- classification -----------------------------------------------------------------------------------
    def _resolve(self, module: str, name: str, proto: int) -> tuple[str, str, str | None, bool]:
        """Return (module, name, danger reason, allowed)."""
        if proto < 3:
            _compat()
            if (module, name) in _COMPAT:
                module, name = _COMPAT[(module, name)]
            elif module in _COMPAT_MOD:
                module = _COMPAT_MOD[module]
        key = (module, name)
        if key in ALLOWED:
            return module, name, None, True
        reason = dangerous_reason(module, name)
        if reason is None and (key in self.allowed_extra or is_data_module(module)):
            return module, name, None, True
        return module, name, reason, False

    # ---- one stream -------------------------------------------------------------------------------------
    def _stream(self, data: Any, start: int, end: int, *, discard: bool, where: str, depth: int = 0
                ) -> tuple[dict[str, GlobalUse], list[ModelIssue], int, bool, list[int], int]:
        return decode_stream(self, data, start, end, discard=discard, where=where, depth=depth)

    def _joblib_array(self, data: Any, r: Reader, end: int, state: Any, uses: dict[str, GlobalUse],
                      issues: list[ModelIssue], where: str, discard: bool, depth: int) -> Any:
        """Skip the array joblib wrote after a wrapper's BUILD, exactly as ``joblib.load`` reads it."""
        lay = layout(state)
        if isinstance(lay, str):
            raise Limit(f"joblib array header not understood: {lay}")  # joblib.load would fail here too
        if (r.buf_end if r.discard else r.frame_end) > r.pos:
            # joblib reads the array from the file, i.e. from the end of the open frame, while the unpickler
            # goes on with the rest of the frame: a reading no linear decoder reproduces (joblib never writes it)
            r.straddles.append(r.pos)
            raise Limit("joblib array starts inside an open FRAME (joblib reads it from the frame end)")
        r.op_start = r.pos  # the array is not part of the BUILD opcode
        if lay.nested_pickle:
            if depth >= 2:
                raise Limit("joblib object arrays nested too deeply")
            u2, i2, stop, ok, straddles, _ = self._stream(data, r.pos, end, discard=discard, where=where,
                                                          depth=depth + 1)
            for k, v in u2.items():
                uses.setdefault(k, v)
            issues.extend(i2)
            r.straddles.extend(straddles)
            if not ok:
                raise Bad("joblib object array's pickle stream is broken")
            r.pos = r.buf_end = stop
            return Opaque("joblib object array")
        if lay.aligned:
            pad = data[r.read(1)]
            r.read(pad)
        r.read(lay.nbytes)
        return Opaque("joblib array")

    def _nested(self, data: Any, args: Any, issues: list[ModelIssue], where: str, at: int) -> None:
        """A nested loader called with literal bytes: analyse the inner pickle too."""
        if self.nested_depth >= self.limits.max_nested_pickle or not isinstance(args, tuple) or not args:
            return
        arg = args[0]
        blob: bytes | None = None
        if isinstance(arg, Bytes):
            blob = bytes(data[arg.a:arg.b])
        elif isinstance(arg, Call) and isinstance(arg.value, str):
            blob = arg.value.encode("latin-1", "replace")
        elif isinstance(arg, str):
            blob = arg.encode("latin-1", "replace")
        if not blob:
            return
        inner = PickleWalker(self.allowed_extra, self.limits, self.nested_depth + 1)
        res = inner.analyze(blob, where=(where + "!" if where else "") + f"nested@{at}")
        for i in res.issues:
            issues.append(ModelIssue(i.rule_id, i.severity, "nested pickle: " + i.message, i.evidence, i.location))
