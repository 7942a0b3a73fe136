"""Pickle walker: every published bypass class of picklescan/modelscan/fickling, plus benign checkpoints.

Every malicious sample is raw opcode bytes built here; nothing is ever unpickled (the strings would be harmless
anyway: ``echo pwned``).
"""

from __future__ import annotations

import collections
import pickle
import struct

import pytest

from veritensor_fast.models import AnalyzeOptions, ModelIssue, analyze

# ---- a tiny opcode assembler ---------------------------------------------------------------------------


def su(s: str) -> bytes:  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def bu8(s: str) -> bytes:  # BINUNICODE8
    b = s.encode()
    return b"\x8d" + struct.pack("<Q", len(b)) + b


def glob(m: str, n: str) -> bytes:  # GLOBAL
    return b"c" + m.encode() + b"\n" + n.encode() + b"\n"


def sg(m: str, n: str) -> bytes:  # STACK_GLOBAL from two short unicode strings
    return su(m) + su(n) + b"\x93"


def call1(callee: bytes, arg: str = "echo pwned") -> bytes:
    return callee + su(arg) + b"\x85R"  # TUPLE1, REDUCE


P2 = b"\x80\x02"
P4 = b"\x80\x04"


def rules(issues: list[ModelIssue]) -> set[str]:
    return {i.rule_id for i in issues}


def evidence(issues: list[ModelIssue], rule: str = "model.pickle.dangerous-global") -> set[str]:
    return {i.evidence for i in issues if i.rule_id == rule}


def assert_dangerous(data: bytes, name: str, callable_name: str = "os.system", **kw: object) -> list[ModelIssue]:
    issues = analyze(data, name, **kw)  # type: ignore[arg-type]
    crit = [i for i in issues if i.severity == "critical"]
    assert crit, issues
    assert any(callable_name in i.evidence or callable_name in i.message for i in crit), issues
    return issues


# ---- benign samples that must pass ---------------------------------------------------------------------


def torch_data_pkl() -> bytes:
    """Hand-written data.pkl of a state dict {'weight': tensor(2x2)} in torch's format (protocol 2)."""
    storage = b"(" + su("storage") + glob("torch", "FloatStorage") + su("0") + su("cpu") + b"K\x04tQ"
    tensor = (glob("torch._utils", "_rebuild_tensor_v2") + b"(" + storage + b"K\x00" + b"K\x02K\x02\x86"
              + b"K\x02K\x01\x86" + b"\x89" + glob("collections", "OrderedDict") + b")R" + b"tR")
    return P2 + glob("collections", "OrderedDict") + b")Rq\x00(" + su("weight") + tensor + su("bias") + tensor \
        + b"u."


def numpy_array_pickle() -> bytes:
    """What pickle.dumps(np.arange(3.0)) emits (protocol 2), written by hand: _reconstruct + _codecs.encode."""
    return (P2 + glob("numpy.core.multiarray", "_reconstruct") + glob("numpy", "ndarray") + b"K\x00\x85"
            + b"C\x01b" + b"\x87R(K\x01K\x03\x85" + glob("numpy", "dtype") + su("f8") + b"\x89\x88\x87R"
            + b"(K\x03" + su("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
            + glob("_codecs", "encode") + su("\x00" * 8) + su("latin1") + b"\x86R" + b"tb.")


def test_benign_torch_state_dict_pickle_passes() -> None:
    assert analyze(torch_data_pkl(), "data.pkl") == []


def test_benign_plain_dict_of_5000_floats_passes() -> None:
    data = pickle.dumps({f"k{i}": i * 0.5 for i in range(5000)}, protocol=4)
    assert analyze(data, "weights.pkl") == []


def test_benign_dumps_of_plain_containers_all_protocols() -> None:
    obj = collections.OrderedDict(a=[1, 2.5, "x", b"y", None, True], b={"c": (1, 2)}, s={1, 2}, f=frozenset())
    for proto in range(6):
        assert analyze(pickle.dumps(obj, protocol=proto), "x.pkl") == [], proto


def test_benign_numpy_array_pickle_passes() -> None:
    assert analyze(numpy_array_pickle(), "arr.pkl") == []


def test_benign_training_args_enum_passes() -> None:
    data = P2 + glob("transformers.trainer_utils", "IntervalStrategy") + su("steps") + b"\x85R."
    assert analyze(data, "training_args.bin") == []


def test_text_files_are_not_pickles() -> None:
    for text in [b"copyright\nfoo\nbar baz\n", b"import os\nos.system('x')\n", b"(a, b)\n", b"Name,Value\n1,2\n",
                 b"S3 bucket list\n", b"Vendor notes\nline two\n", b"1,2,3\n4,5,6\n", b"]]]"]:
        assert analyze(text, "notes") == [], text


# ---- class 1: STACK_GLOBAL operands from memo, old string opcodes, non-strings ------------------------


def test_stack_global_operands_from_memo_picklescan_issue_14() -> None:
    """picklescan#14 / modelscan PR#54: memo mixed PUT/MEMOIZE so a naive memo model sees safe names."""
    data = (P4 + su("os") + b"q\x00" + b"0" + su("system") + b"q\x01" + b"0" + su("torch._utils") + b"\x94"
            + b"0" + su("_rebuild_tensor_v2") + b"\x94" + b"0" + b"h\x00h\x01\x93" + su("echo pwned") + b"\x85R.")
    assert_dangerous(data, "m.pkl")


def test_stack_global_operands_from_long_binget_and_get() -> None:
    data = (P4 + su("posix") + b"r\x05\x00\x00\x00" + su("system") + b"p7\n" + b"00" + b"j\x05\x00\x00\x00"
            + b"g7\n\x93" + su("echo pwned") + b"\x85R.")
    assert_dangerous(data, "m.pkl", "posix.system")


def test_stack_global_operands_from_string_binstring_opcodes() -> None:
    """Old-style STRING/BINSTRING/SHORT_BINSTRING operands (resolved as str by the unpickler)."""
    for mod, name in [(b"S'os'\n", b"U\x06system"), (b"T\x02\x00\x00\x00os", b"S\"system\"\n")]:
        data = P4 + mod + name + b"\x93" + su("echo pwned") + b"\x85R."
        assert_dangerous(data, "m.pkl")


def test_stack_global_operands_from_binunicode8_and_unicode() -> None:
    data = P4 + bu8("subprocess") + b"Vcheck_output\n" + b"\x93" + su("echo pwned") + b"\x85R."
    assert_dangerous(data, "m.pkl", "subprocess.check_output")


def test_stack_global_with_non_string_operands_modelscan_issue_85() -> None:
    """modelscan#85: operands are globals planted with BUILD (numpy.prod.a = 'os'); unresolvable => dangerous."""
    data = (P4 + glob("numpy", "prod") + b"N(Va\nVos\nd\x86b0" + glob("numpy", "prod.a") + b"p0\n0"
            + glob("numpy", "prod.b") + b"p1\n0" + b"g0\ng1\n\x93" + su("echo pwned") + b"\x85R.")
    issues = analyze(data, "m.pkl")
    assert "model.pickle.unresolved-global" in rules(issues)
    assert "model.pickle.build-global" in rules(issues)
    assert any(i.severity == "critical" for i in issues)


def test_missing_memo_key_is_reported() -> None:
    data = P4 + b"h\x09" + su("system") + b"\x93."
    issues = analyze(data, "m.pkl")
    assert "model.pickle.corrupt" in rules(issues)


# ---- class 2: denylist gaps (allowlist makes each one a finding, CRITICAL when known) ------------------

GAPS = [
    ("pip", "main", "CVE-2025-1716 (picklescan pip.main)"),
    ("pkgutil", "resolve_name", "GHSA-vvpj-8cmc-gx39"),
    ("timeit", "timeit", "GHSA-v7x6-rv5q-mhwc"),
    ("ensurepip", "_run_pip", "GHSA-xp4f-hrf8-rxw7"),
    ("pydoc", "locate", "picklescan advisories 2025"),
    ("operator", "methodcaller", "GHSA-955r-x9j8-7rhh (_operator)"),
    ("_operator", "attrgetter", "GHSA-46h3-79wf-xr6c"),
    ("functools", "partial", "fickling unsafe imports"),
    ("idlelib.pyshell", "ModifiedInterpreter.runcode", "picklescan idlelib"),
    ("lib2to3.pgen2.pgen", "ParserGenerator.make_label", "lib2to3"),
    ("cProfile", "run", "profile/cProfile"),
    ("profile", "Profile.run", "profile"),
    ("trace", "Trace.run", "trace"),
    ("ctypes", "CDLL", "ctypes"),
    ("pty", "spawn", "pty"),
    ("_pyrepl.pager", "pipe_pager", "_pyrepl"),
    ("test.support.script_helper", "assert_python_ok", "test.support"),
    ("uuid", "_get_command_stdout", "uuid"),
    ("imaplib", "IMAP4_stream", "imaplib"),
    ("_io", "FileIO", "_io.FileIO"),
    ("urllib.request", "urlopen", "urllib.request"),
    ("logging", "FileHandler", "logging.FileHandler"),
    ("types", "CodeType", "types.CodeType"),
    ("cloudpickle.cloudpickle", "_make_function", "cloudpickle helpers"),
    ("numpy.f2py", "compile", "numpy.f2py"),
    ("numpy.testing._private.utils", "runstring", "numpy.testing"),
    ("distutils.spawn", "spawn", "distutils"),
    ("torch.jit.unsupported_tensor_ops", "execWrapper", "torch execWrapper"),
    ("torch._inductor.codecache", "compile_file", "torch._inductor"),
    ("torch.utils.collect_env", "run", "torch.utils.collect_env"),
    ("torch.serialization", "load", "torch.serialization.load"),
    ("torch.storage", "_load_from_bytes", "torch.storage._load_from_bytes"),
    ("asyncio.unix_events", "_UnixSubprocessTransport._start", "asyncio submodules"),
    ("builtins", "getattr", "builtins getattr"),
    ("__builtin__", "eval", "py2 builtins"),
    ("runpy", "_run_code", "runpy"),
    ("webbrowser", "open", "webbrowser"),
    ("shutil", "rmtree", "shutil"),
    ("marshal", "loads", "marshal"),
    ("importlib", "import_module", "picklescan#66"),
    ("socket", "create_connection", "socket"),
]


@pytest.mark.parametrize("module,name,ref", GAPS, ids=[g[2] + ":" + g[0] + "." + g[1] for g in GAPS])
def test_denylist_gap_is_critical(module: str, name: str, ref: str) -> None:
    for data in (P4 + call1(sg(module, name)) + b".", call1(glob(module, name)) + b"."):
        assert_dangerous(data, "model.bin", f"{module}.{name}" if module != "__builtin__" else "eval")


def test_unknown_global_fails_but_is_not_critical() -> None:
    data = P4 + call1(sg("mypkg.layers", "Custom")) + b"."
    issues = analyze(data, "m.pkl")
    assert rules(issues) == {"model.pickle.unknown-global"}
    assert issues[0].severity in ("medium", "high") and issues[0].evidence == "mypkg.layers.Custom"


def test_allow_global_option_silences_custom_class_only() -> None:
    data = P4 + call1(sg("mypkg.layers", "Custom")) + b"."
    assert analyze(data, "m.pkl", AnalyzeOptions(allow_globals=("mypkg.layers.Custom",))) == []
    assert analyze(data, "m.pkl", AnalyzeOptions(allow_globals=("mypkg.layers:Custom",))) == []
    # an allow entry never turns a known-dangerous callable into a safe one
    bad = P4 + call1(sg("os", "system")) + b"."
    assert_dangerous(bad, "m.pkl", options=AnalyzeOptions(allow_globals=("os.system",)))


# ---- class 3: dotted names, __builtins__ through an allowed module ------------------------------------


def test_dotted_qualname_pathlib_os_system() -> None:
    """STACK_GLOBAL('pathlib', 'os.system'): every dotted component is checked."""
    assert_dangerous(P4 + call1(sg("pathlib", "os.system")) + b".", "m.pkl", "pathlib.os.system")


def test_builtins_reached_through_allowed_module_attribute() -> None:
    data = P4 + sg("torch._utils", "_rebuild_tensor_v2.__globals__") + b"0" + sg("collections", "OrderedDict.__init__.__builtins__") + b"."
    issues = analyze(data, "m.pkl")
    ev = evidence(issues)
    assert "torch._utils._rebuild_tensor_v2.__globals__" in ev
    assert "collections.OrderedDict.__init__.__builtins__" in ev


def test_dunder_strings_in_state_are_flagged() -> None:
    data = P4 + glob("collections", "OrderedDict") + b")R" + b"}" + su("__builtins__") + su("x") + b"sb."
    assert "model.pickle.dunder" in rules(analyze(data, "m.pkl"))


# ---- class 4: broken pickles fail closed ----------------------------------------------------------------


def test_truncated_stream_keeps_globals_and_reports_truncation() -> None:
    full = P4 + call1(sg("os", "system"))
    issues = assert_dangerous(full, "model.bin")  # no STOP: payload already ran in a real unpickler
    assert "model.pickle.truncated" in rules(issues)
    assert any(i.severity == "high" and "could not be fully analysed" in i.message for i in issues)


def test_invalid_opcode_after_payload_keeps_payload() -> None:
    issues = assert_dangerous(P4 + call1(sg("os", "system")) + b"\xff\xff", "model.bin")
    assert "model.pickle.corrupt" in rules(issues)


def test_stack_underflow_after_payload() -> None:
    issues = assert_dangerous(P2 + call1(glob("nt", "system")) + b"0000R.", "model.bin", "nt.system")
    assert "model.pickle.corrupt" in rules(issues)


# ---- class 5 (pickle part): stacked streams, legacy torch.save, trailing data ---------------------------


def test_every_stacked_pickle_is_scanned() -> None:
    data = pickle.dumps({"a": 1}, protocol=2) + pickle.dumps([1, 2], protocol=4) + P4 + call1(sg("os", "system")) + b"."
    assert_dangerous(data, "stack.pkl")


def test_legacy_torch_save_with_payload_in_the_object_pickle() -> None:
    magic = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
    proto = pickle.dumps(1001, protocol=2)
    sysinfo = pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    keys = pickle.dumps(["0"], protocol=2)
    benign = magic + proto + sysinfo + torch_data_pkl() + keys + b"\x10\x00\x00\x00\x00\x00\x00\x00" + b"\x80\x02" * 8
    assert analyze(benign, "legacy.pt") == []
    bad = magic + proto + sysinfo + P2 + call1(glob("os", "system")) + b"." + keys
    assert_dangerous(bad, "legacy.pt")


def test_plain_pickle_named_bin_without_proto_header() -> None:
    """Protocol-0 pickle without PROTO, extension-less and under .bin (class 5)."""
    data = b"cos\nsystem\n(S'echo pwned'\ntR."
    assert_dangerous(data, "pytorch_model.bin")
    assert_dangerous(data, "noext")


def test_inst_opcode_modelscan_issue_51() -> None:
    """modelscan#51: INST instead of GLOBAL+REDUCE."""
    assert_dangerous(b"(S'print(1)'\ni__builtin__\nexec\n.", "m.pkl", "exec")


def test_ext_opcodes_are_unresolvable_and_critical() -> None:
    for op in (b"\x82\x01", b"\x83\x01\x00", b"\x84\x01\x00\x00\x00"):
        issues = analyze(P2 + op + su("echo") + b"\x85R.", "m.pkl")
        assert "model.pickle.unresolved-global" in rules(issues)
        assert any(i.severity == "critical" for i in issues)


def test_obj_and_newobj_ex_calls() -> None:
    assert_dangerous(P2 + b"(" + glob("subprocess", "Popen") + su("echo pwned") + b"o.", "m.pkl", "subprocess.Popen")
    assert_dangerous(P4 + sg("subprocess", "Popen") + b")}\x92.", "m.pkl", "subprocess.Popen")


# ---- class 6: FRAME straddling ---------------------------------------------------------------------------


def test_frame_straddle_hidden_opcodes_cpython_154848() -> None:
    """python/cpython#154848, fickling PR #317: a string straddling a FRAME hides opcodes from linear readers.

    Linear view: a tuple of two strings. C unpickler over a non-peekable file: reads the string from the frame
    end and then runs os.system.
    """
    hidden = sg("os", "system") + su("echo pwned") + b"\x85R"
    data = (P4 + b"\x95" + struct.pack("<Q", 5) + b"C\x05AAA" + b"BB" + b"C" + bytes([1 + len(hidden)])
            + b"Z" + hidden + b"\x86.")
    # sanity: a linear disassembly sees no global at all
    import pickletools

    assert not any(op.name in ("STACK_GLOBAL", "GLOBAL") for op, _, _ in pickletools.genops(data))
    issues = assert_dangerous(data, "m.pkl")
    assert "model.pickle.frame" in rules(issues)
    assert any("hidden by FRAME straddle" in i.message for i in issues)


def test_frame_opened_inside_frame_is_reported() -> None:
    data = P4 + b"\x95" + struct.pack("<Q", 20) + b"\x95" + struct.pack("<Q", 2) + b"N." + b"\x00" * 9
    assert "model.pickle.frame" in rules(analyze(data, "m.pkl"))


# ---- class 7 and 8: nested loads, calls dropped with POP ----------------------------------------------


def test_nested_pickle_loads_names_inner_callable() -> None:
    inner = P4 + call1(sg("os", "system")) + b"."
    data = P4 + sg("pickle", "loads") + b"C" + bytes([len(inner)]) + inner + b"\x85R."
    issues = analyze(data, "m.pkl")
    assert "pickle.loads" in evidence(issues)
    assert any(i.message.startswith("nested pickle") and i.evidence == "os.system" for i in issues)


def test_nested_torch_load_via_codecs_encode() -> None:
    inner = (P2 + call1(glob("os", "system")) + b".").decode("latin-1")
    data = (P2 + glob("torch.storage", "_load_from_bytes") + glob("_codecs", "encode") + su(inner)
            + su("latin1") + b"\x86R\x85R.")
    issues = analyze(data, "m.pkl")
    assert "torch.storage._load_from_bytes" in evidence(issues)
    assert any(i.message.startswith("nested pickle") and i.evidence == "os.system" for i in issues)


def test_call_dropped_with_pop_after_obj() -> None:
    """Class 8: OBJ result popped; the call still counts (globals are classified when resolved)."""
    data = P2 + b"(" + glob("os", "system") + su("echo pwned") + b"o0" + b"N."
    assert_dangerous(data, "m.pkl")


def test_resource_limits_are_findings() -> None:
    from veritensor_fast.models import ModelLimits

    data = P4 + b"(" * 50 + b"N" * 50 + b"."
    issues = analyze(data, "m.pkl", AnalyzeOptions(limits=ModelLimits(max_marks=10)))
    assert "model.pickle.limit" in rules(issues)
    issues = analyze(P4 + b"N0" * 100 + b"N.", "m.pkl", AnalyzeOptions(limits=ModelLimits(max_ops=50)))
    assert "model.pickle.limit" in rules(issues)
