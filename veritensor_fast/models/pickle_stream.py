"""One pickle stream, decoded symbolically: the opcode loop of the walker (``pickle_scan``), with its stack, MARK
stack and memo. Nothing is ever loaded or imported.

``decode_stream`` reads under the *linear* or the *discard* model (see ``pickle_scan``) and returns the globals
the stream resolved and did not allow (``GlobalUse``), its issues, where it stopped, whether it reached STOP,
its FRAME straddles and whether it called anything. The walker supplies the hooks (``StreamHooks``): how a
global is judged, what a nested loader's bytes hold, how a joblib array is skipped.
"""

from __future__ import annotations

import mmap
import struct
from typing import Any

from veritensor_fast.models.allowlist import DUNDER_STRINGS, ident
from veritensor_fast.models.base import ModelIssue
from veritensor_fast.models.joblib_arrays import is_inline_wrapper
from veritensor_fast.models.pickle_calls import StreamHooks, expansion_issue, global_call, invalid_name
from veritensor_fast.models.pickle_getattr import GetattrCount, is_getattr, settle, target
from veritensor_fast.models.pickle_issues import GlobalUse, Limit, break_issue, dunder_issue, loc
from veritensor_fast.models.pickle_paths import path_issue
from veritensor_fast.models.pickle_reader import GETS, NUMBERS, PUTS, line_name, memo_index, number, quoted
from veritensor_fast.models.pickle_reader import SIZED as _SIZED
from veritensor_fast.models.pickle_reader import Bad as _Bad
from veritensor_fast.models.pickle_reader import Reader as _Reader
from veritensor_fast.models.pickle_reader import Trunc as _Trunc
from veritensor_fast.models.pickle_reader import decode_text as _decode_text
from veritensor_fast.models.pickle_reader import u as _u
from veritensor_fast.models.pickle_torch import persistent_id, setitem_issue
from veritensor_fast.models.pickle_values import CAP as _CAP
from veritensor_fast.models.pickle_values import KEEP as _KEEP
from veritensor_fast.models.pickle_values import SIZED as _SIZED_TYPES
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

_MAX_STR = 1024  # longer strings are kept only as opaque values
_STR_BUDGET = 64 << 20
PUSH_OPS: dict[int, Any] = {0x4E: None, 0x88: True, 0x89: False, 0x29: ()}
#: The commonest opcodes with a fixed-width operand (BININT1, BININT2, BININT, BINPUT, LONG_BINPUT, BINGET,
#: LONG_BINGET: ~60% of a typical stream's opcodes) -> operand width (0: none); decoded inline on the hot path.
_FIXED_W = [{0x4B: 1, 0x4D: 2, 0x4A: 4, 0x71: 1, 0x72: 4, 0x68: 1, 0x6A: 4}.get(op, 0) for op in range(256)]
_I32, _U32 = (struct.Struct(f).unpack_from for f in ("<i", "<I"))


def decode_stream(hooks: StreamHooks, data: Any, start: int, end: int, *, discard: bool, where: str,
                  depth: int = 0) -> tuple[dict[str, GlobalUse], list[ModelIssue], int, bool, list[int], int]:
    """Decode the stream at ``data[start:end]``; return (globals used, issues, stop offset, reached STOP, FRAME
    straddles, calls: 0 none, 1 some call, 2 a global was called)."""
    lim = hooks.limits
    r = _Reader(data, start, end, discard)
    stack: list[Any] = []
    meta: list[list[Any]] = []
    memo: dict[int, Any] = {}
    uses: dict[str, GlobalUse] = {}
    issues: list[ModelIssue] = []
    proto = 0
    ops = 0  # (``ops`` and ``op_at`` are no closure cells: the hot loop reads and writes them)
    str_budget = _STR_BUDGET
    saw_call = 0  # 1: some call; 2: a global was called
    op_at = start
    ok = False
    expand_limit = lim.max_expansion
    max_ops, max_marks, max_stack, max_memo = lim.max_ops, lim.max_marks, lim.max_stack, lim.max_memo
    dos_reported = False
    ga = GetattrCount()  # ``builtins.getattr`` is judged by what it is applied to (``pickle_getattr``)
    ga_on = False  # some getattr value was pushed: each later GET (either branch) and DUP of one is counted
    flat = isinstance(data, bytes | bytearray | memoryview | mmap.mmap)  # else a ``PreadView`` (through ``_u``)

    def grew(v: Any, ops: int, op_at: int) -> None:
        """A container grew past ``expand_limit``: memo/DUP expansion ("billion laughs") unless it is big."""
        nonlocal dos_reported
        n = _size(v)
        if n > 100 * ops and not dos_reported:
            dos_reported = True
            issues.append(expansion_issue(expand_limit, ops, loc(where, op_at)))

    def use(g: _Global, how: str, at: int) -> None:
        u = uses.get(g.key)
        if u is None:
            if not g.resolved:
                uses[g.key + f"@{at}"] = GlobalUse(g.module, g.name, at, how, reason="unresolved")
                return
            m, n, reason, allowed = hooks._resolve(g.module, g.name, proto)
            g.module, g.name = m, n
            if allowed:
                return
            u = uses[g.key] = GlobalUse(m, n, at, how, reason=reason)
        if u.name == "getattr" and u.module == "builtins":  # a getattr value on the stack (``ga_on``)
            g.module, g.name = u.module, u.name
            ga.pushes += 1

    def call(func: Any, args: Any, op_at: int, reduce: bool = False) -> Any:
        nonlocal saw_call
        if not isinstance(func, _Global):
            saw_call = max(saw_call, 1)
            return _Call(func)
        saw_call = 2
        res = global_call(func, args, op_at, uses, hooks, data, issues, where, expand_limit)
        d = target(args) if reduce and is_getattr(func) else None
        if d is None:
            return res
        ga.judged += 1
        use(d, f"getattr({args[0].module}.{args[0].name}, {args[1]!r})", op_at)
        return d

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
        s = _decode_text(bytes(data[a:b]), kind)
        str_budget -= n
        if s in DUNDER_STRINGS:
            issues.append(dunder_issue(s, loc(where, a)))
        return s

    # The hot path: a flat buffer in the linear model keeps the offset in ``pos`` and decodes its commonest opcodes
    # inline as the generic branches below do; those run any other opcode, with ``r`` in charge (``gen``).
    fast = flat and not discard and end <= len(data)
    hot_end = min(end, start + max_ops)
    fixed_w, sized, push_ops = _FIXED_W, _SIZED_TYPES, PUSH_OPS
    pos = start
    fend = r.frame_end
    straddles = r.straddles
    gen = False
    try:
        while True:
            if fast:  # ``r.read(1)`` inlined: the opcode byte starts its own opcode, so it never straddles a frame
                while True:
                    op_at = pos
                    ops += 1
                    if pos >= hot_end:  # else ``ops <= pos - start + 1 <= max_ops`` (each opcode takes a byte)
                        if ops > max_ops:
                            raise Limit(f"more than {max_ops} opcodes")
                        if pos >= end:
                            raise _Trunc()
                    op = data[pos]
                    pos += 1
                    w = fixed_w[op]
                    if w:  # ``r.read(w)`` inlined; each branch checks the limit of what it grew
                        p = pos
                        if p + w > end:
                            raise _Trunc()
                        pos = p + w
                        if fend > op_at and pos > fend:
                            straddles.append(p)
                        if op == 0x71 or op == 0x72:  # BINPUT, LONG_BINPUT
                            k = data[p] if op == 0x71 else _U32(data, p)[0]
                            if not stack:
                                raise _Bad("PUT on empty stack")
                            memo[k] = stack[-1]
                            if len(memo) > max_memo:
                                raise Limit("stack or memo limit")
                            continue
                        if op == 0x4D:  # BININT2
                            stack.append(data[p] | data[p + 1] << 8)
                        elif op == 0x4B:  # BININT1
                            stack.append(data[p])
                        elif op == 0x4A:  # BININT
                            stack.append(_I32(data, p)[0])
                        else:  # BINGET, LONG_BINGET
                            k = data[p] if op == 0x68 else _U32(data, p)[0]
                            if k not in memo:
                                raise _Bad(f"memo key {k} missing")
                            stack.append(memo[k])
                            if ga_on and is_getattr(memo[k]):  # one more getattr value on the stack
                                ga.pushes += 1
                        if len(stack) > max_stack:
                            raise Limit("stack or memo limit")
                        continue
                    if op == 0x7D:  # EMPTY_DICT
                        stack.append(_Dict())
                        if len(stack) > max_stack:
                            raise Limit("stack or memo limit")
                        continue
                    if op == 0x73:  # SETITEM
                        if len(stack) <= 2:
                            raise _Bad("stack underflow" if len(stack) < 2 else "APPEND/SETITEM without container")
                        tgt = stack[-3]
                        if type(tgt) is not _Dict:
                            break  # judged by the generic branch (``pickle_torch.setitem_issue``)
                        n = tgt.n + 2  # ``tgt.set(stack[-2], stack[-1])`` inlined
                        k = stack[-2]
                        v = stack[-1]
                        if type(v) in sized:
                            n += v.n - 1
                        if type(k) is str:
                            if len(tgt.items) < _KEEP:
                                tgt.items[k] = v
                        elif type(k) in sized:
                            n += k.n - 1
                        tgt.n = n if n < _CAP else _CAP
                        if tgt.n > expand_limit:
                            grew(tgt, ops, op_at)
                        del stack[-2:]
                        continue
                    if op == 0x28:  # MARK
                        if len(meta) >= max_marks:
                            raise Limit("MARK nesting limit")
                        meta.append(stack)
                        stack = []
                        continue
                    if op == 0x75 or op == 0x65:  # SETITEMS, APPENDS (``pop_mark`` inlined; stack and memo shrink)
                        if not meta:
                            raise _Bad("MARK missing")
                        items = stack
                        stack = meta.pop()
                        if not stack:
                            raise _Bad("container opcode without container")
                        tgt = stack[-1]
                        if type(tgt) is _Call and op == 0x75 and (bad := setitem_issue(tgt, op_at, where)):
                            issues.append(bad)
                        if (type(tgt) is _Dict and op == 0x75) or type(tgt) is _List:
                            tgt.add(items)
                            if tgt.n > expand_limit:
                                grew(tgt, ops, op_at)
                        continue
                    if op == 0x8C or op == 0x58:  # SHORT_BINUNICODE, BINUNICODE (``r.read`` inlined twice)
                        w = 1 if op == 0x8C else 4
                        if pos + w > end:
                            raise _Trunc()
                        if fend > op_at and pos + w > fend:
                            straddles.append(pos)
                        a = pos = pos + w
                        n = data[a - 1] if w == 1 else _U32(data, a - 4)[0]
                        if a + n > end:
                            raise _Trunc()
                        if fend > op_at and a + n > fend:
                            straddles.append(a)
                        pos = a + n
                        stack.append(text(a, pos, "utf8"))
                    elif op in push_ops:  # NONE, NEWTRUE, NEWFALSE, EMPTY_TUPLE
                        stack.append(push_ops[op])
                    elif 0x85 <= op <= 0x87:  # TUPLE1, TUPLE2, TUPLE3: the stack does not grow
                        k = op - 0x84
                        if len(stack) < k:
                            raise _Bad("stack underflow")
                        t = _tup(stack[-k:])
                        del stack[-k:]
                        if type(t) is _Tup and t.n > expand_limit:
                            grew(t, ops, op_at)
                        stack.append(t)
                        continue
                    else:
                        break
                    if len(stack) > max_stack:
                        raise Limit("stack or memo limit")
                    continue
                gen = True
                r.pos, r.op_start = pos, op_at
            else:
                op_at = pos
                ops += 1
                if ops > max_ops:
                    raise Limit(f"more than {max_ops} opcodes")
                gen = True
                r.pos = r.op_start = op_at
                if discard:
                    p = r.read(1)
                else:
                    p = op_at
                    if p >= end:
                        raise _Trunc()
                    r.pos = p + 1
                op = data[p]
            if op == 0x95:  # FRAME (the branches end with ``r`` handing the offset back to ``pos``)
                n = _u(data, r.read(8), 8, "<Q")
                if n > end - r.pos:
                    issues.append(ModelIssue(
                        "model.pickle.truncated", "high",
                        "FRAME claims more bytes than the file holds; the stream could not be fully analysed",
                        "FRAME", loc(where, op_at)))
                    if discard:
                        raise _Trunc()
                r.frame(n)
            elif op == 0x2E:  # STOP
                pop()
                ok = True
                break
            elif op == 0x28:  # MARK
                if len(meta) >= max_marks:
                    raise Limit("MARK nesting limit")
                meta.append(stack)
                stack = []
            # the branches are disjoint: their order is only speed (the commonest first)
            elif op == 0x7D:  # EMPTY_DICT
                stack.append(_Dict())
            elif op == 0x61 or op == 0x73:  # APPEND, SETITEM
                k = 1 if op == 0x61 else 2
                if len(stack) <= k:
                    raise _Bad("stack underflow" if len(stack) < k else "APPEND/SETITEM without container")
                tgt = stack[-k - 1]
                if op == 0x73 and type(tgt) is _Dict:
                    tgt.set(stack[-2], stack[-1])  # ``add`` of one pair
                    if tgt.n > expand_limit:
                        grew(tgt, ops, op_at)
                elif type(tgt) is (_List if op == 0x61 else _Dict):
                    tgt.add(stack[-k:])
                    if tgt.n > expand_limit:
                        grew(tgt, ops, op_at)
                elif type(tgt) is _Call and op == 0x73 and (bad := setitem_issue(tgt, op_at, where)):
                    issues.append(bad)
                del stack[-k:]
            elif op in (0x65, 0x75, 0x90):  # APPENDS, SETITEMS, ADDITEMS
                items = pop_mark()
                if not stack:
                    raise _Bad("container opcode without container")
                tgt = stack[-1]
                if type(tgt) is _Call and op == 0x75 and (bad := setitem_issue(tgt, op_at, where)):
                    issues.append(bad)
                if (type(tgt) is _Dict and op == 0x75) or type(tgt) is _List:
                    tgt.add(items)
                    if tgt.n > expand_limit:
                        grew(tgt, ops, op_at)
            elif op in PUSH_OPS:
                stack.append(PUSH_OPS[op])
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
                val, n = quoted(data, a, b, _MAX_STR)
                stack.append(val)
                if isinstance(val, str) and val in DUNDER_STRINGS:
                    text(a + 1, a + 1 + n, "latin1")
            elif op in NUMBERS:  # BININT*, BINFLOAT, LONG1/4, INT, LONG, FLOAT
                stack.append(number(op, r, data))
            elif op in PUTS:  # BINPUT, LONG_BINPUT, PUT
                k = memo_index(op, r, data)
                if not stack:
                    raise _Bad("PUT on empty stack")
                memo[k] = stack[-1]
            elif op == 0x94:  # MEMOIZE
                if not stack:
                    raise _Bad("MEMOIZE on empty stack")
                memo[len(memo)] = stack[-1]
            elif op in GETS:  # BINGET, LONG_BINGET, GET
                k = memo_index(op, r, data)
                if k not in memo:
                    raise _Bad(f"memo key {k} missing")
                stack.append(memo[k])
                ga.pushes += bool(ga.pushes) and is_getattr(memo[k])  # one more getattr value on the stack
            elif op == 0x63 or op == 0x69:  # GLOBAL, INST
                a, b = r.readline()
                c, d = r.readline()
                g = _Global(line_name(data, a, b), line_name(data, c, d))
                if not ident(g.module) or not ident(g.name):
                    invalid_name(g.module, op_at, uses)
                    raise _Bad("GLOBAL/INST name is not an importable identifier")
                use(g, "GLOBAL" if op == 0x63 else "INST", op_at)
                if op == 0x63:
                    stack.append(g)
                else:
                    inst_args = tuple(pop_mark()[:64])
                    stack.append(call(g, inst_args, op_at))
                ga_on = ga.pushes > 0  # from now on every GET and DUP of a getattr value is counted
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
                ga_on = ga.pushes > 0
            elif op in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
                code = data[r.read(1)] if op == 0x82 else (
                    _u(data, r.read(2), 2, "<H") if op == 0x83 else _u(data, r.read(4), 4, "<i"))
                g = _Global("copyreg._extension_registry", str(code), resolved=False)
                use(g, f"EXT extension code {code}", op_at)
                stack.append(g)
            elif op == 0x52:  # REDUCE
                args = pop()
                func = pop()
                stack.append(call(func, args if isinstance(args, tuple) else (), op_at, True))
            elif op == 0x81:  # NEWOBJ
                args = pop()
                cls = pop()
                stack.append(call(cls, args if isinstance(args, tuple) else (), op_at))
            elif op == 0x92:  # NEWOBJ_EX
                pop()
                args = pop()
                cls = pop()
                stack.append(call(cls, args if isinstance(args, tuple) else (), op_at))
            elif op == 0x6F:  # OBJ
                items = pop_mark()
                if not items:
                    raise _Bad("OBJ without class")
                stack.append(call(items[0], tuple(items[1:65]), op_at))
            elif op == 0x62:  # BUILD
                state = pop()
                if not stack:
                    raise _Bad("BUILD on empty stack")
                tgt = stack[-1]
                if isinstance(tgt, _Call):
                    tgt.state = state
                    if is_inline_wrapper(tgt):
                        stack[-1] = hooks._joblib_array(data, r, end, state, uses, issues, where, discard,
                                                        depth)
                    path_issue(tgt, state, where, op_at, issues)  # joblib, DCP: a file outside (pickle_paths)
                if isinstance(tgt, _Global):
                    issues.append(ModelIssue(
                        "model.pickle.build-global", "high",
                        f"pickle sets attributes on the global {tgt.key} itself (BUILD on a class or "
                        "function), a known way to plant values that later opcodes read", tgt.key,
                        loc(where, op_at)))
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
                    grew(t, ops, op_at)
                stack.append(t)
            elif op in (0x6C, 0x91, 0x64):  # LIST, FROZENSET, DICT
                cont: Any = _Dict() if op == 0x64 else _List()
                cont.add(pop_mark())
                if cont.n > expand_limit:
                    grew(cont, ops, op_at)
                stack.append(cont)
            elif op == 0x5D or op == 0x8F:  # EMPTY_LIST, EMPTY_SET
                stack.append(_List())
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
                ga.pushes += bool(ga.pushes) and is_getattr(stack[-1])
            elif op == 0x50:  # PERSID
                r.readline()
                stack.append(_Opaque("persistent id"))
            elif op == 0x51:  # BINPERSID
                stack.append(persistent_id(pop(), hooks.storages))
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
            if len(stack) > max_stack or len(memo) > max_memo:
                raise Limit("stack or memo limit")
            pos, fend, gen = r.pos, r.frame_end, False
    except (_Trunc, _Bad, Limit, IndexError, struct.error) as exc:
        if not gen:
            r.pos = pos
        issues.append(break_issue(exc, r.pos, op_at, where))
    settle(ga, uses)
    return uses, issues, r.pos, ok, r.straddles, saw_call
