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
"""

from __future__ import annotations

import codecs
import struct
from dataclasses import dataclass, field
from typing import Any

from veritensor_fast.models.allowlist import ALLOWED, dangerous_reason, is_data_module
from veritensor_fast.models.base import ModelIssue, ModelLimits
from veritensor_fast.models.joblib_arrays import external_file, is_inline_wrapper, layout
from veritensor_fast.models.pickle_reader import SIZED as _SIZED
from veritensor_fast.models.pickle_reader import Bad as _Bad
from veritensor_fast.models.pickle_reader import Reader as _Reader
from veritensor_fast.models.pickle_reader import Trunc as _Trunc
from veritensor_fast.models.pickle_reader import u as _u
from veritensor_fast.models.pickle_values import Bytes as _Bytes
from veritensor_fast.models.pickle_values import Call as _Call
from veritensor_fast.models.pickle_values import Dict as _Dict
from veritensor_fast.models.pickle_values import Global as _Global
from veritensor_fast.models.pickle_values import List as _List
from veritensor_fast.models.pickle_values import Opaque as _Opaque
from veritensor_fast.models.pickle_values import Tup as _Tup
from veritensor_fast.models.pickle_values import desc as _desc
from veritensor_fast.models.pickle_values import size as _size
from veritensor_fast.models.pickle_values import tup as _tup
from veritensor_fast.models.sniff import PICKLE_OPCODES as PICKLE_OPCODES  # re-exported

_NESTED_LOADERS = frozenset({
    ("pickle", "loads"), ("_pickle", "loads"), ("pickle", "load"), ("_pickle", "load"), ("dill", "loads"),
    ("cloudpickle", "loads"), ("joblib", "load"), ("torch", "load"), ("torch.serialization", "load"),
    ("torch.storage", "_load_from_bytes"), ("numpy", "loads"), ("marshal", "loads"),
})
_DUNDER_STRINGS = frozenset({
    "__builtins__", "__globals__", "__subclasses__", "__import__", "__code__", "__getattribute__",
    "__reduce_ex__", "__reduce__", "__class__", "__mro__", "__bases__",
})
_MAX_STR = 1024  # longer strings are kept only as opaque values
_STR_BUDGET = 64 << 20
_COMPAT: dict[tuple[str, str], tuple[str, str]] = {}
_COMPAT_MOD: dict[str, str] = {}


def _compat() -> None:
    if _COMPAT_MOD:
        return
    import _compat_pickle  # stdlib data tables (no code from the scanned file is involved)

    _COMPAT.update(_compat_pickle.NAME_MAPPING)
    _COMPAT_MOD.update(_compat_pickle.IMPORT_MAPPING)


class _Limit(Exception):
    pass


_ALLOCATORS = frozenset({"bytes", "bytearray", "range", "list", "tuple", "set", "frozenset"})
_BREAK_RULES = frozenset({"model.pickle.truncated", "model.pickle.corrupt"})
_BREAK_NOTE = ("; nothing before the break imports or calls anything unreviewed, so pickle.load only fails here "
               "(not a pickle, or a damaged one)")

@dataclass
class _GlobalUse:
    module: str
    name: str
    offset: int
    how: str
    called: bool = False
    reason: str | None = None


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
                    "FRAME", _loc(where, straddles[0])))
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
                        "trailing data", _loc(where, pos)))
                break
            res.streams += 1
            if first:
                res.clean_stop = ok
            res.saw_global = res.saw_global or bool(uses)
            res.saw_call = res.saw_call or saw_call > 0
            res.saw_global_call = res.saw_global_call or saw_call > 1
            res.issues.extend(self._global_issues(uses, where))
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
                    "stream limit", _loc(where, pos)))
        return res

    # ---- classification -----------------------------------------------------------------------------------
    def _global_issues(self, uses: dict[str, _GlobalUse], where: str) -> list[ModelIssue]:
        out = []
        for key, u in uses.items():
            verb = "calls" if u.called else "references"
            if u.reason == "unresolved":
                out.append(ModelIssue(
                    "model.pickle.unresolved-global", "critical",
                    f"pickle {verb} a global whose name cannot be resolved statically ({u.how}); treated as "
                    "dangerous", key, _loc(where, u.offset)))
            elif u.reason is not None:
                out.append(ModelIssue(
                    "model.pickle.dangerous-global", "critical",
                    f"pickle {verb} dangerous callable {key} via {u.how}: {u.reason}", key,
                    _loc(where, u.offset)))
            else:
                out.append(ModelIssue(
                    "model.pickle.unknown-global", "high" if u.called else "medium",
                    f"pickle {verb} {key} via {u.how}, which is not on the reviewed allowlist "
                    "(use --allow-global if it is your own class)", key, _loc(where, u.offset)))
        return out

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
                ) -> tuple[dict[str, _GlobalUse], list[ModelIssue], int, bool, list[int], int]:
        lim = self.limits
        r = _Reader(data, start, end, discard)
        stack: list[Any] = []
        meta: list[list[Any]] = []
        memo: dict[int, Any] = {}
        uses: dict[str, _GlobalUse] = {}
        issues: list[ModelIssue] = []
        proto = 0
        ops = 0
        str_budget = _STR_BUDGET
        saw_call = 0  # 1: some call; 2: a global was called
        op_at = start
        ok = False
        expand_limit = lim.max_expansion
        dos_reported = False

        def grew(v: Any) -> None:
            """A container grew past ``expand_limit``: memo/DUP expansion ("billion laughs") unless it is big."""
            nonlocal dos_reported
            n = _size(v)
            if n > 100 * ops and not dos_reported:
                dos_reported = True
                issues.append(ModelIssue(
                    "model.pickle.dos", "high",
                    f"pickle builds a structure of more than {expand_limit:,} elements from {ops:,} opcodes by "
                    "re-using memo/DUP references (\"billion laughs\"): hashing, comparing, printing or copying "
                    "it after (or while) loading exhausts CPU or memory", "expansion", _loc(where, op_at)))

        def use(g: _Global, how: str, at: int) -> None:
            u = uses.get(g.key)
            if u is None:
                if not g.resolved:
                    uses[g.key + f"@{at}"] = _GlobalUse(g.module, g.name, at, how, reason="unresolved")
                    return
                m, n, reason, allowed = self._resolve(g.module, g.name, proto)
                g.module, g.name = m, n
                if allowed:
                    return
                uses[g.key] = _GlobalUse(m, n, at, how, reason=reason)

        def call(func: Any, args: Any) -> Any:
            nonlocal saw_call
            saw_call = max(saw_call, 1)
            if isinstance(func, _Global):
                saw_call = 2
                u = uses.get(func.key) or next((v for k, v in uses.items() if k.startswith(func.key + "@")), None)
                if u is not None:
                    u.called = True
                if (func.module, func.name) in _NESTED_LOADERS:
                    self._nested(data, args, issues, where, op_at)
                if func.module == "_codecs" and func.name == "encode" and isinstance(args, tuple) and args \
                        and isinstance(args[0], str):
                    return _Call(func, args[0])
                if func.module == "builtins" and func.name in _ALLOCATORS and isinstance(args, tuple):
                    big = max((a for a in args if type(a) is int), default=0)
                    if big > expand_limit * 100:
                        issues.append(ModelIssue(
                            "model.pickle.dos", "high",
                            f"pickle calls builtins.{func.name} with {big:,}: loading it allocates (or iterating "
                            "it produces) that many elements", "allocation", _loc(where, op_at)))
                if func.module == "copyreg" and func.name in ("_reconstructor", "__newobj__") and args \
                        and isinstance(args[0], _Global):
                    return _Call(args[0], args=tuple(args[1:4]))  # an instance of that class
                return _Call(func, args=tuple(args[:4]) if isinstance(args, tuple) else ())
            return _Call(func)

        def pop() -> Any:
            if not stack:
                raise _Bad("stack underflow")
            return stack.pop()

        def pop_mark() -> list[Any]:
            nonlocal stack
            if not meta:
                raise _Bad("MARK missing")
            items = stack
            stack = meta.pop()
            return items

        def text(a: int, b: int, kind: str) -> Any:
            nonlocal str_budget
            n = b - a
            if n > _MAX_STR or n > str_budget:
                return _Opaque("long string")
            raw = bytes(data[a:b])
            try:
                if kind == "utf8":
                    s = raw.decode("utf-8", "surrogatepass")
                elif kind == "raw":
                    s = raw.decode("raw-unicode-escape")
                else:
                    s = raw.decode("latin-1")
            except (UnicodeDecodeError, ValueError) as exc:
                raise _Bad("undecodable string") from exc
            str_budget -= n
            if s in _DUNDER_STRINGS:
                issues.append(ModelIssue(
                    "model.pickle.dunder", "high",
                    f"pickle carries the attribute name {s!r}, used to reach Python internals", s,
                    _loc(where, a)))
            return s

        def line_name(a: int, b: int) -> str:
            try:
                return bytes(data[a:b]).decode("utf-8")
            except UnicodeDecodeError:
                return bytes(data[a:b]).decode("latin-1")

        try:
            while True:
                op_at = r.op_start = r.pos
                ops += 1
                if ops > lim.max_ops:
                    raise _Limit(f"more than {lim.max_ops} opcodes")
                p = r.read(1)
                op = data[p]
                if op == 0x95:  # FRAME
                    n = _u(data, r.read(8), 8, "<Q")
                    if n > end - r.pos:
                        issues.append(ModelIssue(
                            "model.pickle.truncated", "high",
                            "FRAME claims more bytes than the file holds; the stream could not be fully analysed",
                            "FRAME", _loc(where, op_at)))
                        if discard:
                            raise _Trunc()
                    r.frame(n)
                    continue
                if op == 0x2E:  # STOP
                    pop()
                    ok = True
                    break
                if op == 0x28:  # MARK
                    if len(meta) >= lim.max_marks:
                        raise _Limit("MARK nesting limit")
                    meta.append(stack)
                    stack = []
                    continue
                if op in _PUSH_OPS:
                    stack.append(_PUSH_OPS[op])
                elif op in _SIZED:  # length-prefixed str / bytes operands
                    w, fmt, kind = _SIZED[op]
                    n = data[r.read(1)] if w == 1 else _u(data, r.read(w), w, fmt)
                    a = r.read(n)
                    stack.append(_Bytes(a, a + n) if kind == "bytes" else text(a, a + n, kind))
                elif op == 0x56:  # UNICODE
                    a, b = r.readline()
                    stack.append(text(a, b, "raw"))
                elif op == 0x53:  # STRING
                    a, b = r.readline()
                    raw = bytes(data[a:b]) if b - a <= 1 << 20 else b""
                    if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
                        if b - a <= 1 << 20:
                            raise _Bad("STRING not quoted")
                        stack.append(_Opaque("long string"))
                    else:
                        try:
                            val = codecs.escape_decode(raw[1:-1])[0]
                        except ValueError as exc:
                            raise _Bad("bad STRING escape") from exc
                        stack.append(val.decode("latin-1") if len(val) <= _MAX_STR else _Opaque("long string"))
                        if isinstance(stack[-1], str) and stack[-1] in _DUNDER_STRINGS:
                            text(a + 1, a + 1 + len(val), "latin1")
                elif op == 0x4B:  # BININT1
                    stack.append(data[r.read(1)])
                elif op == 0x4D:  # BININT2
                    stack.append(_u(data, r.read(2), 2, "<H"))
                elif op == 0x4A:  # BININT
                    stack.append(_u(data, r.read(4), 4, "<i"))
                elif op == 0x47:  # BINFLOAT
                    r.read(8)
                    stack.append(0.0)
                elif op == 0x8A:  # LONG1
                    n = data[r.read(1)]
                    a = r.read(n)
                    stack.append(int.from_bytes(bytes(data[a:a + n]), "little", signed=True) if n <= 8 else 0)
                elif op == 0x8B:  # LONG4
                    n = _u(data, r.read(4), 4, "<i")
                    r.read(n)
                    stack.append(0)
                elif op in (0x49, 0x4C, 0x46):  # INT, LONG, FLOAT (lenient: a bad number only stops a real
                    a, b = r.readline()      # unpickler, so going on can only find more)
                    s = bytes(data[a:b][:8]).strip()
                    stack.append(True if s == b"01" else False if s == b"00" else 0)
                elif op == 0x71:  # BINPUT
                    k = data[r.read(1)]
                    if not stack:
                        raise _Bad("PUT on empty stack")
                    memo[k] = stack[-1]
                elif op == 0x72:  # LONG_BINPUT
                    k = _u(data, r.read(4), 4, "<I")
                    if not stack:
                        raise _Bad("PUT on empty stack")
                    memo[k] = stack[-1]
                elif op == 0x94:  # MEMOIZE
                    if not stack:
                        raise _Bad("MEMOIZE on empty stack")
                    memo[len(memo)] = stack[-1]
                elif op == 0x70:  # PUT
                    a, b = r.readline()
                    try:
                        k = int(bytes(data[a:b][:32]))
                    except ValueError as exc:
                        raise _Bad("bad PUT index") from exc
                    if not stack:
                        raise _Bad("PUT on empty stack")
                    memo[k] = stack[-1]
                elif op in (0x68, 0x6A, 0x67):  # BINGET, LONG_BINGET, GET
                    if op == 0x68:
                        k = data[r.read(1)]
                    elif op == 0x6A:
                        k = _u(data, r.read(4), 4, "<I")
                    else:
                        a, b = r.readline()
                        try:
                            k = int(bytes(data[a:b][:32]))
                        except ValueError as exc:
                            raise _Bad("bad GET index") from exc
                    if k not in memo:
                        raise _Bad(f"memo key {k} missing")
                    stack.append(memo[k])
                elif op == 0x63 or op == 0x69:  # GLOBAL, INST
                    a, b = r.readline()
                    c, d = r.readline()
                    g = _Global(line_name(a, b), line_name(c, d))
                    if not _ident(g.module) or not _ident(g.name):
                        m = g.module
                        reason = dangerous_reason(m, "x") if _ident(m) else None
                        if reason:
                            # pickle imports the module (running its code) before the name lookup fails; only a
                            # dangerous module is reported (a text file may start "cword\nsome words\n")
                            uses[f"{m}.<invalid name>"] = _GlobalUse(
                                m, "<invalid name>", op_at, "GLOBAL (module imported, then the name is invalid)",
                                reason=reason)
                        raise _Bad("GLOBAL/INST name is not an importable identifier")
                    use(g, "GLOBAL" if op == 0x63 else "INST", op_at)
                    if op == 0x63:
                        stack.append(g)
                    else:
                        inst_args = tuple(pop_mark()[:64])
                        stack.append(call(g, inst_args))
                elif op == 0x93:  # STACK_GLOBAL
                    name = pop()
                    module = pop()
                    if isinstance(module, str) and isinstance(name, str):
                        g = _Global(module, name)
                        use(g, "STACK_GLOBAL", op_at)
                    else:
                        g = _Global(_desc(module), _desc(name), resolved=False)
                        use(g, f"STACK_GLOBAL with operands {_desc(module)}, {_desc(name)}", op_at)
                    stack.append(g)
                elif op in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
                    code = data[r.read(1)] if op == 0x82 else (
                        _u(data, r.read(2), 2, "<H") if op == 0x83 else _u(data, r.read(4), 4, "<i"))
                    g = _Global("copyreg._extension_registry", str(code), resolved=False)
                    use(g, f"EXT extension code {code}", op_at)
                    stack.append(g)
                elif op == 0x52:  # REDUCE
                    args = pop()
                    func = pop()
                    stack.append(call(func, args if isinstance(args, tuple) else ()))
                elif op == 0x81:  # NEWOBJ
                    args = pop()
                    cls = pop()
                    stack.append(call(cls, args if isinstance(args, tuple) else ()))
                elif op == 0x92:  # NEWOBJ_EX
                    pop()
                    args = pop()
                    cls = pop()
                    stack.append(call(cls, args if isinstance(args, tuple) else ()))
                elif op == 0x6F:  # OBJ
                    items = pop_mark()
                    if not items:
                        raise _Bad("OBJ without class")
                    stack.append(call(items[0], tuple(items[1:65])))
                elif op == 0x62:  # BUILD
                    state = pop()
                    if not stack:
                        raise _Bad("BUILD on empty stack")
                    tgt = stack[-1]
                    if isinstance(tgt, _Call):
                        tgt.state = state
                        if is_inline_wrapper(tgt):
                            stack[-1] = self._joblib_array(data, r, end, state, uses, issues, where, discard, depth)
                        ext = external_file(tgt, state)
                        if ext is not None:
                            issues.append(ModelIssue(
                                "model.joblib.external-file", "high",
                                f"joblib array header makes joblib.load run np.load({ext[:80]!r}, allow_pickle=True) "
                                "on a file outside the pickle's directory (that file's pickle runs too)", ext[:80],
                                _loc(where, op_at)))
                    if isinstance(tgt, _Global):
                        issues.append(ModelIssue(
                            "model.pickle.build-global", "high",
                            f"pickle sets attributes on the global {tgt.key} itself (BUILD on a class or "
                            "function), a known way to plant values that later opcodes read", tgt.key,
                            _loc(where, op_at)))
                    saw_call = max(saw_call, 1)
                elif op == 0x85 or op == 0x86 or op == 0x87 or op == 0x74:  # TUPLE1, TUPLE2, TUPLE3, TUPLE
                    if op == 0x74:
                        t = _tup(pop_mark())  # pop_mark rebinds ``stack``: pop before appending
                    else:
                        k = op - 0x84
                        if len(stack) < k:
                            raise _Bad("stack underflow")
                        t = _tup(stack[-k:])
                        del stack[-k:]
                    if type(t) is _Tup and t.n > expand_limit:
                        grew(t)
                    stack.append(t)
                elif op in (0x6C, 0x91, 0x64):  # LIST, FROZENSET, DICT
                    cont: Any = _Dict() if op == 0x64 else _List()
                    cont.add(pop_mark())
                    if cont.n > expand_limit:
                        grew(cont)
                    stack.append(cont)
                elif op == 0x5D or op == 0x8F:  # EMPTY_LIST, EMPTY_SET
                    stack.append(_List())
                elif op == 0x7D:  # EMPTY_DICT
                    stack.append(_Dict())
                elif op == 0x61 or op == 0x73:  # APPEND, SETITEM
                    k = 1 if op == 0x61 else 2
                    if len(stack) <= k:
                        raise _Bad("stack underflow" if len(stack) < k else "APPEND/SETITEM without container")
                    tgt = stack[-k - 1]
                    if type(tgt) is (_List if op == 0x61 else _Dict):
                        tgt.add(stack[-k:])
                        if tgt.n > expand_limit:
                            grew(tgt)
                    del stack[-k:]
                elif op in (0x65, 0x75, 0x90):  # APPENDS, SETITEMS, ADDITEMS
                    items = pop_mark()
                    if not stack:
                        raise _Bad("container opcode without container")
                    tgt = stack[-1]
                    if (type(tgt) is _Dict and op == 0x75) or type(tgt) is _List:
                        tgt.add(items)
                        if tgt.n > expand_limit:
                            grew(tgt)
                elif op == 0x30:  # POP
                    if stack:
                        stack.pop()
                    else:
                        pop_mark()
                elif op == 0x31:  # POP_MARK
                    pop_mark()
                elif op == 0x32:  # DUP
                    if not stack:
                        raise _Bad("DUP on empty stack")
                    stack.append(stack[-1])
                elif op == 0x50:  # PERSID
                    r.readline()
                    stack.append(_Opaque("persistent id"))
                elif op == 0x51:  # BINPERSID
                    pop()
                    stack.append(_Opaque("persistent id"))
                elif op == 0x80:  # PROTO
                    proto = data[r.read(1)]
                    if proto > 5:
                        raise _Bad(f"unsupported protocol {proto}")
                elif op == 0x97:  # NEXT_BUFFER
                    stack.append(_Opaque("out-of-band buffer"))
                elif op == 0x98:  # READONLY_BUFFER
                    if not stack:
                        raise _Bad("READONLY_BUFFER on empty stack")
                else:
                    raise _Bad(f"invalid opcode 0x{op:02x}")
                if len(stack) > lim.max_stack or len(memo) > lim.max_memo:
                    raise _Limit("stack or memo limit")
        except _Trunc:
            issues.append(ModelIssue(
                "model.pickle.truncated", "high",
                f"pickle stream ends without STOP (truncated at offset {r.pos}); it could not be fully analysed "
                "and anything decoded before the break is reported", "truncated", _loc(where, op_at)))
        except _Bad as exc:
            issues.append(ModelIssue(
                "model.pickle.corrupt", "high",
                f"malformed pickle ({exc}) at offset {op_at}; it could not be fully analysed", "corrupt",
                _loc(where, op_at)))
        except _Limit as exc:
            issues.append(ModelIssue(
                "model.pickle.limit", "high",
                f"pickle analysis limit reached ({exc}); the rest could not be analysed", "limit",
                _loc(where, op_at)))
        except (IndexError, struct.error):
            issues.append(ModelIssue(
                "model.pickle.truncated", "high",
                f"pickle stream ends without STOP (truncated at offset {op_at}); it could not be fully analysed",
                "truncated", _loc(where, op_at)))
        return uses, issues, r.pos, ok, r.straddles, saw_call

    def _joblib_array(self, data: Any, r: _Reader, end: int, state: Any, uses: dict[str, _GlobalUse],
                      issues: list[ModelIssue], where: str, discard: bool, depth: int) -> Any:
        """Skip the array joblib wrote after a wrapper's BUILD, exactly as ``joblib.load`` reads it."""
        lay = layout(state)
        if isinstance(lay, str):
            raise _Limit(f"joblib array header not understood: {lay}")  # joblib.load would fail here too
        if (r.buf_end if r.discard else r.frame_end) > r.pos:
            # joblib reads the array from the file, i.e. from the end of the open frame, while the unpickler
            # goes on with the rest of the frame: a reading no linear decoder reproduces (joblib never writes it)
            r.straddles.append(r.pos)
            raise _Limit("joblib array starts inside an open FRAME (joblib reads it from the frame end)")
        r.op_start = r.pos  # the array is not part of the BUILD opcode
        if lay.nested_pickle:
            if depth >= 2:
                raise _Limit("joblib object arrays nested too deeply")
            u2, i2, stop, ok, straddles, _ = self._stream(data, r.pos, end, discard=discard, where=where,
                                                          depth=depth + 1)
            for k, v in u2.items():
                uses.setdefault(k, v)
            issues.extend(i2)
            r.straddles.extend(straddles)
            if not ok:
                raise _Bad("joblib object array's pickle stream is broken")
            r.pos = r.buf_end = stop
            return _Opaque("joblib object array")
        if lay.aligned:
            pad = data[r.read(1)]
            r.read(pad)
        r.read(lay.nbytes)
        return _Opaque("joblib array")

    def _nested(self, data: Any, args: Any, issues: list[ModelIssue], where: str, at: int) -> None:
        """A nested loader called with literal bytes: analyse the inner pickle too."""
        if self.nested_depth >= self.limits.max_nested_pickle or not isinstance(args, tuple) or not args:
            return
        arg = args[0]
        blob: bytes | None = None
        if isinstance(arg, _Bytes):
            blob = bytes(data[arg.a:arg.b])
        elif isinstance(arg, _Call) and isinstance(arg.value, str):
            blob = arg.value.encode("latin-1", "replace")
        elif isinstance(arg, str):
            blob = arg.encode("latin-1", "replace")
        if not blob:
            return
        inner = PickleWalker(self.allowed_extra, self.limits, self.nested_depth + 1)
        res = inner.analyze(blob, where=(where + "!" if where else "") + f"nested@{at}")
        for i in res.issues:
            issues.append(ModelIssue(i.rule_id, i.severity, "nested pickle: " + i.message, i.evidence, i.location))


_PUSH_OPS: dict[int, Any] = {0x4E: None, 0x88: True, 0x89: False, 0x29: ()}


def _ident(s: str) -> bool:
    return all(p.isidentifier() for p in s.split("."))


def _loc(where: str, offset: int) -> dict[str, Any]:
    loc: dict[str, Any] = {"offset": offset}
    if where:
        loc["member"] = where
    return loc
