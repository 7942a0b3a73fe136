"""Header checks for non-pickle model formats: .npy, .safetensors, .gguf, Keras v3 config.json, HDF5 (light).

Each function returns ``ModelIssue`` objects; none of them reads tensor data. ``npy_header`` also says where a
pickle starts when the dtype holds Python objects, so the caller can analyse it (and report only what it does).
"""

from __future__ import annotations

import ast
import codecs
import math
import re
from typing import Any

import orjson

from veritensor_fast import jsonload
from veritensor_fast.detectors.pyast_budget import parse_starved
from veritensor_fast.findings import OUT_OF_MEMORY
from veritensor_fast.models.allowlist import DANGEROUS_MODULES
from veritensor_fast.models.base import ModelIssue
from veritensor_fast.randread import unpack_at

#: An integer literal with Python 2's long suffix, in a .npy header written by Python 2.
_PY2_LONG = re.compile(r"(\b\d+)L\b")
#: The header numpy itself writes (``{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }``, padded with
#: spaces and a newline): a dict literal with a plain-string ``descr``, decided without ``ast.literal_eval``
#: (~50 us a header: a scipy ``.npz`` holds hundreds). Anything else takes the general parse.
_NPY_CANONICAL = re.compile(
    r"\{'descr': '([<>|=]?[A-Za-z][A-Za-z0-9]*(?:\[[A-Za-z0-9]+\])?)', 'fortran_order': (?:True|False), "
    r"'shape': \((?:|\d+,|\d+(?:, \d+)+,?)\), \}[ \n]*\Z")


def _i(rule: str, sev: str, msg: str, ev: str, where: str, **loc: Any) -> ModelIssue:
    location: dict[str, Any] = dict(loc)
    if where:
        location["member"] = where
    return ModelIssue(rule, sev, msg, ev, location or None)


# ---- npy -----------------------------------------------------------------------------------------------

def _has_object(descr: Any) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list | tuple):
        return any(_has_object(d) for d in descr)
    return False


def npy_header(buf: Any, where: str) -> tuple[list[ModelIssue], int]:
    """Parse the header; return (issues, offset of a pickle that follows or -1)."""
    if len(buf) < 10:
        return [_i("model.npy.invalid", "medium", ".npy header truncated", "npy", where)], -1
    major = buf[6]
    if major == 1:
        hlen = unpack_at("<H", buf, 8)[0]
        start = 10
    elif major in (2, 3):
        if len(buf) < 12:
            return [_i("model.npy.invalid", "medium", ".npy header truncated", "npy", where)], -1
        hlen = unpack_at("<I", buf, 8)[0]
        start = 12
    else:
        return [_i("model.npy.invalid", "medium", f".npy version {major} is unknown; not analysed", "npy",
                   where)], -1
    if hlen > 1 << 20 or start + hlen > len(buf):
        return [_i("model.npy.invalid", "medium", ".npy header length out of bounds; not analysed", "npy",
                   where)], -1
    text = None
    try:
        text = bytes(buf[start:start + hlen]).decode("latin-1" if major < 3 else "utf-8")
        canonical = _NPY_CANONICAL.match(text)
        if canonical is not None:
            return [], start + hlen if _has_object(canonical.group(1)) else -1
        try:
            hdr = ast.literal_eval(text)  # literals only: nothing is executed
        except SyntaxError:
            # Python 2 wrote long integers with an ``L`` suffix (``'shape': (2L,)``); numpy accepts them too.
            hdr = ast.literal_eval(_PY2_LONG.sub(r"\1", text))
    except MemoryError:  # the parser's own limit (hostile nesting: not a literal), or no room to parse it
        if text is None or parse_starved(text):
            raise MemoryError(f"{OUT_OF_MEMORY} parsing a .npy header") from None  # a limit error, not a finding
        return [_i("model.npy.invalid", "medium", ".npy header is not a Python literal (nested too deeply); not "
                   "analysed", "npy", where)], -1
    except (ValueError, SyntaxError, RecursionError, UnicodeDecodeError, TypeError):
        return [_i("model.npy.invalid", "medium", ".npy header is not a Python literal; not analysed", "npy",
                   where)], -1
    if not isinstance(hdr, dict) or not {"descr", "fortran_order", "shape"} <= set(hdr):
        return [_i("model.npy.invalid", "medium", ".npy header lacks descr/fortran_order/shape", "npy",
                   where)], -1
    data_at = start + hlen
    if _has_object(hdr["descr"]):
        # np.load(allow_pickle=True) unpickles what follows the header: the caller analyses that pickle and
        # reports what it can do (an object array of plain Python data can do nothing)
        return [], data_at
    return [], -1


# ---- safetensors ----------------------------------------------------------------------------------------

_ST_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16,
    "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "F64": 64, "I64": 64, "U64": 64, "C64": 64, "F4": 4,
    "F6_E2M3": 6, "F6_E3M2": 6,
}


def safetensors_check(buf: Any, where: str) -> list[ModelIssue]:
    out: list[ModelIssue] = []
    size = len(buf)

    def bad(msg: str) -> list[ModelIssue]:
        out.append(_i("model.safetensors.invalid", "medium", "safetensors: " + msg, "safetensors header", where))
        return out

    if size < 8:
        return bad("file shorter than the 8-byte header length")
    n = unpack_at("<Q", buf, 0)[0]
    if n > 100_000_000:
        return bad(f"header length {n} exceeds 100,000,000")
    if n + 8 > size:
        return bad(f"header length {n} exceeds the file size")
    try:
        hdr = jsonload.loads(bytes(buf[8:8 + n]).rstrip(b" "))
    except orjson.JSONDecodeError:
        return bad("header is not valid UTF-8 JSON")
    if not isinstance(hdr, dict):
        return bad("header is not a JSON object")
    meta = hdr.pop("__metadata__", None)
    if meta is not None and (not isinstance(meta, dict) or
                             not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())):
        bad("__metadata__ must map strings to strings")
    spans = []
    for name, t in hdr.items():
        if not isinstance(t, dict) or set(t) - {"dtype", "shape", "data_offsets"} or len(t) != 3:
            bad(f"tensor {name[:80]!r} entry must have exactly dtype, shape, data_offsets")
            continue
        dt, shape, offs = t["dtype"], t["shape"], t["data_offsets"]
        if not isinstance(dt, str) or dt not in _ST_BITS:  # a list or object dtype is unhashable
            bad(f"tensor {name[:80]!r} has unknown dtype {str(dt)[:20]!r}")
            continue
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            bad(f"tensor {name[:80]!r} has an invalid shape")
            continue
        if not (isinstance(offs, list) and len(offs) == 2 and all(isinstance(o, int) and o >= 0 for o in offs)
                and offs[0] <= offs[1]):
            bad(f"tensor {name[:80]!r} has invalid data_offsets")
            continue
        bits = math.prod(shape) * _ST_BITS[dt]
        if bits % 8 or bits // 8 != offs[1] - offs[0]:
            bad(f"tensor {name[:80]!r}: size {offs[1] - offs[0]} does not match shape x dtype")
        spans.append((offs[0], offs[1], name))
    spans.sort()
    pos = 0
    for a, b, name in spans:
        if a != pos:
            bad(f"tensor data not contiguous at {name[:80]!r} (gap or overlap at byte {a})")
            break
        pos = b
    body = size - 8 - n
    if pos != body and not any(i.message.endswith("not contiguous") for i in out):
        bad(f"tensors cover {pos} bytes but the data buffer holds {body} (slack or trailing data)")
    return out


# ---- gguf ----------------------------------------------------------------------------------------------

_GGUF_SCALAR = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
# ggml type -> (block elements, block bytes) for the common types
_GGML = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
         10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
         24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8), 30: (1, 2)}
_JINJA_BAD = re.compile(
    r"__class__|__globals__|__subclasses__|__mro__|__base__|__bases__|__init__|__builtins__|__import__|"
    r"__getattribute__|__dict__|\bos\.|popen|subprocess|\beval\s*\(|\bexec\s*\(|import_module|"
    r"\battr\s*\(\s*['\"]__|\|\s*attr\b")


#: Dunder names built at render time, so that no dunder appears in the text: underscores multiplied, kept in a
#: variable or joined to each other (``"_"*2``, ``{% set u = "_" %}``, ``("_", "_", "init", ...)|join``), or
#: ``"%c%c"|format(95, 95)``. Names split across literals (``"__in" ~ "it__"``) are found by joining them.
_JINJA_BUILT = re.compile("|".join([
    r"""(['"])_+\1\s*\*""",
    r"""\bset\s+\w+\s*=\s*(['"])_+\2""",
    r"""(['"])_+\3\s*[,~+]\s*(['"])_+\4""",
    r"""%c[^'"]*['"]\s*\|\s*format""",
]))
#: A backslash escape inside a Jinja string literal (Jinja unescapes ``\x5f``, ``\u005f``, ``\N{LOW LINE}``,
#: octal ``\137`` like Python).
_JINJA_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}]*\}|[0-7]{1,3})")
_JINJA_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"', re.S)


def _unescape(m: re.Match[str]) -> str:
    try:
        return codecs.decode(m.group(0), "unicode_escape")
    except UnicodeDecodeError:  # an unknown \N{name}: Jinja rejects that literal too
        return m.group(0)


def _jinja_danger(text: str) -> str | None:
    """What makes a chat template reach Python internals, or ``None``. Its string literals, escapes decoded,
    are also joined end to end and searched: real templates never spell a dunder or ``popen`` that way."""
    m = _JINJA_BAD.search(text) or _JINJA_BUILT.search(text)
    if m:
        return m.group(0)
    joined = "".join(_JINJA_ESCAPE.sub(_unescape, lit[1:-1]) for lit in _JINJA_LITERAL.findall(text))
    m = _JINJA_BAD.search(joined)
    return m.group(0) + " (built from string literals)" if m else None


class _GgufError(Exception):
    pass


def gguf_check(buf: Any, where: str) -> list[ModelIssue]:
    out: list[ModelIssue] = []
    size = len(buf)
    pos = 4

    def need(k: int) -> None:
        if k < 0 or pos + k > size:
            raise _GgufError(f"read of {k} bytes at {pos} runs past the end of the file")

    def u32() -> int:
        nonlocal pos
        need(4)
        v = unpack_at("<I", buf, pos)[0]
        pos += 4
        return int(v)

    def u64() -> int:
        nonlocal pos
        need(8)
        v = unpack_at("<Q", buf, pos)[0]
        pos += 8
        return int(v)

    def string(keep: bool) -> str:
        nonlocal pos
        n = u64()
        need(n)
        s = bytes(buf[pos:pos + n]).decode("utf-8", "replace") if keep else ""
        pos += n
        return s

    def value(t: int, key: str) -> Any:
        nonlocal pos
        if t in _GGUF_SCALAR:
            k = _GGUF_SCALAR[t]
            need(k)
            v = int.from_bytes(bytes(buf[pos:pos + k]), "little") if t in (4, 10) else None
            pos += k
            return v
        if t == 8:
            return string(True)
        if t == 9:
            et = u32()
            cnt = u64()
            if et in _GGUF_SCALAR:
                need(cnt * _GGUF_SCALAR[et])
                pos += cnt * _GGUF_SCALAR[et]
                return None
            if et == 8:
                if cnt > (size - pos) // 8:
                    raise _GgufError(f"array {key[:60]!r} claims {cnt} strings, more than the file holds")
                for _ in range(cnt):
                    string(False)
                return None
            raise _GgufError(f"array {key[:60]!r} has element type {et}")
        raise _GgufError(f"key {key[:60]!r} has unknown value type {t}")

    try:
        version = u32()
        if version not in (2, 3):
            raise _GgufError(f"version {version} (only 2 and 3 are defined with 64-bit counts)")
        n_tensors = u64()
        n_kv = u64()
        if n_kv > (size - pos) // 12 or n_tensors > (size - pos) // 24:
            raise _GgufError(f"counts ({n_tensors} tensors, {n_kv} keys) exceed what the file can hold")
        alignment = 32
        for _ in range(n_kv):
            key = string(True)
            t = u32()
            v = value(t, key)
            if key == "general.alignment":
                if not isinstance(v, int) or v == 0 or v & (v - 1):
                    raise _GgufError("general.alignment is not a power of two")
                alignment = v
            if "chat_template" in key and isinstance(v, str):
                bad = _jinja_danger(v)
                if bad:
                    out.append(_i("model.gguf.template", "critical",
                                  f"GGUF {key} is a Jinja template that reaches Python internals "
                                  f"({bad!r}): server-side template injection runs code", bad,
                                  where, key=key))
        infos = []
        for _ in range(n_tensors):
            name = string(True)
            nd = u32()
            if nd > 4:
                raise _GgufError(f"tensor {name[:60]!r} has {nd} dimensions (max 4)")
            dims = [u64() for _ in range(nd)]
            gt = u32()
            off = u64()
            infos.append((name, dims, gt, off))
        data_start = (pos + alignment - 1) // alignment * alignment
        for name, dims, gt, off in infos:
            if off % alignment:
                raise _GgufError(f"tensor {name[:60]!r} offset {off} is not aligned to {alignment}")
            nbytes = 0
            if gt in _GGML:
                be, bb = _GGML[gt]
                ne = math.prod(dims)
                nbytes = -(-ne // be) * bb
            if data_start + off + nbytes > size:
                raise _GgufError(f"tensor {name[:60]!r} data runs past the end of the file")
    except _GgufError as exc:
        out.append(_i("model.gguf.invalid", "medium", f"GGUF: {exc}; the file could not be fully analysed",
                      "gguf header", where, offset=pos))
    return out


# ---- keras v3 ------------------------------------------------------------------------------------------

#: Keras functions that a config can name (a Lambda's function, a ``function`` object) and that act on load:
#: download a file, load another model, flip global saving flags (safe_mode), unmarshal code.
KERAS_GADGETS = frozenset({
    "get_file", "load_model", "load_weights", "set_global_attribute", "enable_unsafe_deserialization",
    "func_load", "model_from_json", "model_from_config", "deserialize_keras_object", "load_img",
})


def keras_config(raw: bytes, where: str) -> list[ModelIssue]:
    try:
        cfg = jsonload.loads(raw)
    except orjson.JSONDecodeError:
        return [_i("model.keras.invalid", "high", "Keras config.json is not valid JSON; not analysed",
                   "config.json", where)]
    return _keras_walk(cfg, where)


def _keras_walk(cfg: Any, where: str) -> list[ModelIssue]:
    out: list[ModelIssue] = []
    seen: set[tuple[str, str]] = set()

    def add(rule: str, sev: str, msg: str, ev: str, path: str) -> None:
        if (rule, ev) not in seen:
            seen.add((rule, ev))
            out.append(_i(rule, sev, msg, ev, where, path=path))

    stack: list[tuple[Any, str]] = [(cfg, "$")]
    steps = 0
    while stack:
        node, path = stack.pop()
        steps += 1
        if steps > 5_000_000:
            add("model.keras.invalid", "high", "Keras config too large; not fully analysed", "limit", path)
            break
        if isinstance(node, dict):
            cls = node.get("class_name")
            mod = node.get("module")
            if cls == "Lambda":
                add("model.keras.lambda", "critical",
                    "Keras Lambda layer: its Python function is deserialised and run on load", "Lambda", path)
            if cls == "__lambda__" or "__lambda__" in node:
                add("model.keras.lambda", "critical",
                    "Keras __lambda__ function (marshalled bytecode) runs on load", "__lambda__", path)
            if cls == "TFSMLayer":  # CVE-2026-1462: code execution under safe_mode
                add("model.keras.tfsmlayer", "critical",
                    "Keras TFSMLayer loads an external TensorFlow SavedModel (arbitrary graph/files)", "TFSMLayer",
                    path)
            ref = node.get("config") if cls == "function" else cls
            if isinstance(ref, str) and ref in KERAS_GADGETS:
                add("model.keras.gadget", "critical",
                    f"Keras config references {ref!r}, a Keras function that downloads, loads a model or turns "
                    "safe_mode off when the model is loaded (CVE-2025-8747, CVE-2025-9906)", ref, path)
            conf = node.get("config")
            if (isinstance(cls, str) and cls.endswith(("Lookup", "TextVectorization")) and isinstance(conf, dict)
                    and isinstance(conf.get("vocabulary"), str)):
                add("model.keras.vocabulary-path", "high",
                    f"Keras {cls} reads its vocabulary from a path when loaded (a local file or URL: "
                    "GHSA-qg93-c7p6-gg7f)", "vocabulary", path)
            if isinstance(mod, str) and mod and not (mod == "keras" or mod.startswith("keras.")):
                top = mod.split(".")[0]
                dangerous = any(".".join(mod.split(".")[:i + 1]) in DANGEROUS_MODULES
                                for i in range(mod.count(".") + 1)) and top not in ("keras",)
                fn = f"{mod}.{node.get('config') if isinstance(node.get('config'), str) else cls}"
                add("model.keras.module", "critical" if dangerous else "high",
                    f"Keras config imports module {mod!r} outside keras (object {fn!r} is resolved on load)",
                    fn, path)
            for k, v in node.items():
                if k == "enable_unsafe_deserialization" or v == "enable_unsafe_deserialization":
                    add("model.keras.unsafe", "critical",
                        "Keras config references enable_unsafe_deserialization (turns safe_mode off)",
                        "enable_unsafe_deserialization", f"{path}.{k}")
                if isinstance(v, dict | list):
                    stack.append((v, f"{path}.{k}"))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, dict | list):
                    stack.append((v, f"{path}[{i}]"))
                elif v == "enable_unsafe_deserialization":
                    add("model.keras.unsafe", "critical",
                        "Keras config references enable_unsafe_deserialization (turns safe_mode off)",
                        "enable_unsafe_deserialization", path)
    return out


# ---- hdf5 (light) --------------------------------------------------------------------------------------

def hdf5_check(buf: Any, where: str, max_json: int = 64 << 20) -> list[ModelIssue]:
    # a fractal heap stored through filters (``models.hdf5``) hides its attributes, a Keras ``model_config``
    # among them, from a byte search: its decoded blocks are searched too, and one that cannot be decoded is a
    # finding (the HDF5 library decodes it on load; the library itself never writes one)
    from veritensor_fast.models import hdf5
    from veritensor_fast.models.sniff import hdf5_superblock

    blocks, problems = hdf5.filtered_heaps(buf, max(0, hdf5_superblock(buf))) if buf.find(b"FRHP") >= 0 else ([], [])
    hidden = [_i("model.h5.hidden", "high", f"HDF5 {p}: attributes or links stored in it (a Keras model_config) "
                 "are read by the HDF5 library but could not be analysed", "filtered fractal heap", where)
              for p in problems[:20]]
    parts = [buf, *blocks]
    lam = any(b.find(n) >= 0 for b in parts for n in (b'"class_name": "Lambda"', b'"class_name":"Lambda"'))
    if not lam and all(b.find(b"model_config") < 0 for b in parts):
        return hidden  # no Keras model configuration: a plain HDF5 data file, nothing a model loader would run
    out = [_i("model.h5.not-covered", "info",
              "HDF5 (.h5) Keras model: the HDF5 structure is not parsed (no dependency-light reader); the JSON "
              "configurations found in its bytes were checked as a .keras config is", "hdf5", where), *hidden]
    seen: set[tuple[str, str]] = set()
    configs: list[Any] = []
    complete = True
    for part in parts:
        found, done = hdf5.json_objects(part, max_json)
        configs += found
        complete = complete and done
    if not complete:
        out.append(_i("model.keras.invalid", "high", "HDF5 file holds too much JSON-like text to check every "
                      "configuration in it; not fully analysed", "limit", where))
    for cfg in configs:
        for i in _keras_walk(cfg, where):
            if (i.rule_id, i.evidence) not in seen:
                seen.add((i.rule_id, i.evidence))
                out.append(i)
    if lam and ("model.keras.lambda", "Lambda") not in seen:
        out.append(_i("model.keras.lambda", "critical",
                      "Keras H5 model config holds a Lambda layer: its marshalled Python function runs on load",
                      "Lambda", where))
    return out
