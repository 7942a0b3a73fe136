"""Reviewed pickle globals as data: what real checkpoints import (allowed) and what is known to be dangerous.

Policy (allowlist, not denylist): a global is safe only when the exact ``(module, qualname)`` pair is listed in
``ALLOWED``. Everything else is a finding; names that are known to reach code execution, file/network access or
a nested loader are CRITICAL (``dangerous_reason`` says why), the rest are "unknown global" findings.

Review notes for the allowed entries (each one is a constructor or a rebuild helper that takes plain data):
- ``torch._utils._rebuild_*``: tensor/parameter rebuild helpers used by every ``torch.save`` checkpoint; they
  take storages, sizes, strides and flags. ``_rebuild_from_type_v2`` calls the *given* function, whose own
  global is checked separately like any other.
- ``torch.*Storage`` / ``torch.storage.*Storage``: storage type tags in persistent ids.
- ``collections.OrderedDict``, ``torch.Size``, ``torch.device``, dtypes: plain value types.
- numpy ``_reconstruct``/``ndarray``/``dtype``/``scalar``: what ``pickle.dumps(ndarray)`` emits.
- ``_codecs.encode``: numpy pickles (protocol 2) carry raw bytes as ``_codecs.encode(str, "latin1")``; it only
  converts text to bytes (no code path reaches import or I/O).
- ``builtins``: split name by name in ``BUILTIN_DATA`` / ``BUILTIN_CODE`` below (one line and reason each);
  a builtin in neither table is treated as dangerous.
- ``REVIEWED``: the other entries reviewed one by one (data or code), each with its reason.
"""

from __future__ import annotations

from veritensor_fast.models.allow_ml import ml_allowed

_TORCH_STORAGES = [
    "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage",
    "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage", "ComplexFloatStorage", "ComplexDoubleStorage",
    "QInt8Storage", "QUInt8Storage", "QInt32Storage", "QUInt4x2Storage", "QUInt2x4Storage",
    "Float8_e4m3fnStorage", "Float8_e5m2Storage", "UntypedStorage", "TypedStorage",
]

_TORCH_DTYPES = [
    "float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32", "int",
    "int16", "short", "int8", "uint8", "bool", "complex64", "complex128", "float8_e4m3fn", "float8_e5m2",
    "uint16", "uint32", "uint64", "qint8", "quint8", "qint32",
    # newer and sub-byte dtypes (FP8 "fnuz" of AMD checkpoints, MX/NVFP4 scales and packs, packed ints): a
    # tensor of one is written with its dtype as a global; torch's weights_only loader allows every one
    "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "complex32", "chalf", "cfloat",
    "cdouble", "quint4x2", "quint2x4", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2",
    *(f"uint{i}" for i in range(1, 8)), *(f"int{i}" for i in range(1, 8)),
]

#: quantized tensors' schemes (``_rebuild_qtensor`` takes one): enum values, as torch's weights_only loader has
_TORCH_QSCHEMES = ["per_tensor_affine", "per_tensor_symmetric", "per_channel_affine", "per_channel_symmetric",
                   "per_channel_affine_float_qparams"]
#: legacy tensor and storage classes (``torch.cuda.FloatStorage`` in GPU checkpoints of torch < 1.12): type tags
#: that torch's weights_only loader allows; constructing one only allocates a tensor or storage
_TORCH_LEGACY_TYPES = [
    (mod, f"{t}{kind}") for t in ("Float", "Double", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte",
                                  "Bool", "ComplexFloat", "ComplexDouble")
    for mod, kind in (("torch", "Tensor"), ("torch.cuda", "Tensor"), ("torch.cuda", "Storage"),
                      ("torch.sparse", "Tensor"), ("torch.cuda.sparse", "Tensor"))
    if not (kind == "Tensor" and t.startswith("Complex")) and not ("sparse" in mod and t in ("Bool",))
]
#: PyTorch Distributed Checkpoint (``torch.distributed.checkpoint.save``): the ``.metadata`` file is a plain
#: pickle of these dataclasses (sizes, offsets, dtypes, file names); their ``__setstate__`` only assigns fields
_TORCH_DCP = [("torch.distributed.checkpoint.metadata", n) for n in (
    "Metadata", "MetadataIndex", "StorageMeta", "TensorStorageMetadata", "BytesStorageMetadata",
    "ChunkStorageMetadata", "TensorProperties", "_MEM_FORMAT_ENCODING")] + [
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo")]


#: builtins that are data: constructors of plain values and pure functions. Each can only call what it is
#: given (``map``/``sorted``/``max`` with a key), and every callable a pickle gives it is a global judged itself.
BUILTIN_DATA: dict[str, str] = {
    **{n: "value constructor" for n in (
        "bool int float complex str bytes bytearray tuple list dict set frozenset slice range object "
        "memoryview").split()},
    **{n: "pure function of its arguments" for n in (
        "len abs divmod pow round min max sum all any chr ord hex oct bin ascii repr format hash id "
        "isinstance issubclass callable sorted reversed enumerate zip map filter iter next").split()},
    "Ellipsis": "constant", "NotImplemented": "constant",
    "type": "type(x) is how pickle writes NoneType/NotImplementedType/ellipsis; the 3-argument form only wires "
            "together values and globals that are judged themselves",
    **{n: "exception class: constructing one only stores its arguments" for n in (
        "BaseException Exception ArithmeticError AssertionError AttributeError EOFError IndexError KeyError "
        "LookupError NameError NotImplementedError OverflowError RuntimeError StopIteration TypeError "
        "ValueError ZeroDivisionError UnicodeError UnicodeDecodeError UnicodeEncodeError OSError IOError "
        "FileNotFoundError PermissionError TimeoutError ConnectionError Warning UserWarning DeprecationWarning "
        "RuntimeWarning FutureWarning").split()},
}

#: builtins that run code, reach the interpreter's internals, do I/O or wait for input: CRITICAL.
BUILTIN_CODE: dict[str, str] = {
    "eval": "evaluates a Python expression", "exec": "executes Python code", "compile": "creates code objects",
    "__import__": "imports any module", "__build_class__": "runs a class body",
    "getattr": "reaches any attribute (os.system from a module object)", "setattr": "overwrites attributes",
    "delattr": "deletes attributes", "hasattr": "runs attribute lookups (properties, __getattr__)",
    "globals": "the interpreter's global namespace", "locals": "a frame's namespace",
    "vars": "an object's namespace", "dir": "walks an object's attributes",
    "open": "file I/O", "input": "reads stdin (blocks the loader)", "print": "writes to stdout or to a given file",
    "breakpoint": "starts a debugger", "help": "starts the interactive help (pager, imports modules)",
    "exit": "exits the interpreter", "quit": "exits the interpreter",
    "copyright": "site pager object", "credits": "site pager object", "license": "site pager; reads files",
    "super": "reaches parent methods",
    "classmethod": "turns callables into descriptors (gadget building)", "staticmethod": "same as classmethod",
    "property": "turns callables into descriptors (gadget building)",
}

#: Other reviewed globals: (module, qualname) -> (is data, reason).
REVIEWED: dict[tuple[str, str], tuple[bool, str]] = {
    ("collections", "defaultdict"): (True, "its default_factory is a global of its own, judged separately"),
    ("copyreg", "_reconstructor"): (True, "base.__new__(cls) (+ base.__init__); cls and base are judged globals"),
    ("copyreg", "__newobj__"): (True, "cls.__new__(cls, *args) for protocol 0/1; cls is a judged global"),
    ("copyreg", "__newobj_ex__"): (True, "cls.__new__(cls, *args, **kw); cls is a judged global"),
    ("random", "Random"): (True, "PRNG; __setstate__ takes a tuple of integers"),
    ("zoneinfo", "ZoneInfo"): (True, "IANA time zone; ZoneInfo(key) reads that zone from the tz database and "
                                     "rejects keys that are absolute or leave it"),
    ("zoneinfo", "ZoneInfo._unpickle"): (True, "how pickle rebuilds a ZoneInfo (getattr(ZoneInfo, '_unpickle')): "
                                               "ZoneInfo(key) or ZoneInfo.no_cache(key); tz-aware pandas/datetime"),
    ("argparse", "Namespace"): (True, "attribute bag; __init__ only stores keyword arguments"),
    ("pathlib", "Path"): (True, "pure path value; construction does no I/O"),
    ("pathlib", "PosixPath"): (True, "pure path value; construction does no I/O"),
    ("pathlib", "WindowsPath"): (True, "pure path value (fails to build on POSIX)"),
    ("pathlib", "PurePath"): (True, "pure path value"),
    ("pathlib", "PurePosixPath"): (True, "pure path value"),
    ("pathlib", "PureWindowsPath"): (True, "pure path value"),
    ("numpy", "matrix"): (True, "ndarray subclass rebuilt by _reconstruct"),
    ("numpy.matrixlib.defmatrix", "matrix"): (True, "ndarray subclass rebuilt by _reconstruct"),
    ("numpy.core._internal", "*"): (False, "ctypes helpers (_ctypes, _getintp_ctype) and dtype parsing"),
    ("numpy._core._internal", "*"): (False, "ctypes helpers (_ctypes, _getintp_ctype) and dtype parsing"),
    ("numpy.core", "_ufunc_reconstruct"): (False, "imports any module by name and returns its attribute"),
    ("numpy._core", "_ufunc_reconstruct"): (False, "imports any module by name and returns its attribute"),
    ("collections.abc", "*"): (True, "abstract base classes: no behaviour, cannot be instantiated"),
    ("__future__", "*"): (True, "feature flags (_Feature records of version tuples)"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): (True, "joblib array header; the raw array bytes after it "
                                                         "are skipped exactly as joblib reads them"),
    ("joblib.numpy_pickle_compat", "NDArrayWrapper"): (True, "joblib < 0.10 header; array in a separate .npy "
                                                            "(scanned as its own file; a path outside the "
                                                            "pickle's directory is a finding)"),
    ("joblib.numpy_pickle_compat", "ZNDArrayWrapper"): (True, "joblib 0.9 header; array in a separate z-file"),
    ("joblib.numpy_pickle", "NDArrayWrapper"): (True, "the same class under its joblib 0.9 module path"),
    ("joblib.numpy_pickle", "ZNDArrayWrapper"): (True, "the same class under its joblib 0.9 module path"),
    ("numpy.core._internal", "_reconstruct"): (True, "pre-1.0 ndarray pickles: ndarray.__new__(subtype, shape, "
                                                     "dtype), kept by numpy for them"),
    ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"): (True, "sklearn's vendored joblib copy"),
    ("torch.jit._pickle", "build_intlist"): (True, "TorchScript pickles: returns the list it is given"),
    ("torch.jit._pickle", "build_doublelist"): (True, "TorchScript pickles: returns the list it is given"),
    ("torch.jit._pickle", "build_boollist"): (True, "TorchScript pickles: returns the list it is given"),
    ("torch.jit._pickle", "build_tensorlist"): (True, "TorchScript pickles: returns the list it is given"),
    ("torch.jit._pickle", "build_tensor_from_id"): (True, "TorchScript pickles: looks up a tensor by index"),
    ("torch.jit._pickle", "restore_type_tag"): (True, "TorchScript pickles: returns the value it is given"),
    ("__torch__", "*"): (True, "TorchScript class names: resolved in the archive's TorchScript compilation "
                               "unit, not imported (pickle.load cannot import __torch__ and fails)"),
}

ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [
        ("torch._utils", n) for n in (
            "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
            "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
            "_rebuild_nested_tensor", "_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass",
            "_rebuild_device_tensor_from_numpy", "_rebuild_xla_tensor", "_rebuild_mtia_tensor",
        )
    ]
    + [("torch", s) for s in _TORCH_STORAGES]
    + [("torch.storage", s) for s in ("UntypedStorage", "TypedStorage", "_LegacyStorage")]
    + [("torch", d) for d in _TORCH_DTYPES + _TORCH_QSCHEMES]
    + _TORCH_LEGACY_TYPES + _TORCH_DCP
    + [("torch._utils", "_rebuild_device_tensor_from_cpu_tensor")]
    + [
        ("torch", "Size"), ("torch", "device"), ("torch", "Tensor"), ("torch", "dtype"),
        ("torch", "layout"), ("torch", "strided"), ("torch", "sparse_coo"), ("torch", "memory_format"),
        ("torch", "contiguous_format"), ("torch", "channels_last"), ("torch", "preserve_format"),
        ("torch._tensor", "_rebuild_from_type_v2"), ("torch._tensor", "_rebuild_from_type"),
        ("torch.nn.parameter", "Parameter"), ("torch.nn.parameter", "UninitializedParameter"),
        ("torch.nn.parameter", "Buffer"),
        ("torch.serialization", "_get_layout"),
        ("collections", "OrderedDict"), ("collections", "Counter"), ("collections", "deque"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.dtypes", "Float32DType"), ("numpy.dtypes", "Float64DType"), ("numpy.dtypes", "Int64DType"),
        ("numpy.dtypes", "Int32DType"), ("numpy.dtypes", "Float16DType"), ("numpy.dtypes", "UInt8DType"),
        ("numpy.dtypes", "BoolDType"),
        ("_codecs", "encode"),
        ("datetime", "datetime"), ("datetime", "date"), ("datetime", "timedelta"), ("datetime", "timezone"), ("datetime", "time"),
        ("decimal", "Decimal"), ("fractions", "Fraction"), ("uuid", "UUID"),
        # transformers / accelerate training arguments (training_args.bin) and their enums
        ("transformers.training_args", "TrainingArguments"),
        ("transformers.training_args_seq2seq", "Seq2SeqTrainingArguments"),
        ("transformers.training_args", "OptimizerNames"),
        ("transformers.trainer_utils", "IntervalStrategy"), ("transformers.trainer_utils", "SchedulerType"),
        ("transformers.trainer_utils", "HubStrategy"), ("transformers.trainer_utils", "SaveStrategy"),
        ("transformers.trainer_utils", "EvaluationStrategy"), ("transformers.trainer_utils", "FSDPOption"),
        ("transformers.utils.generic", "ExplicitEnum"), ("transformers.utils.generic", "PaddingStrategy"),
        ("transformers.debug_utils", "DebugOption"),
        ("transformers.generation.configuration_utils", "GenerationConfig"),
        ("transformers.trainer_pt_utils", "AcceleratorConfig"),  # a dataclass of flags (transformers >= 4.38)
        ("accelerate.utils.dataclasses", "DistributedType"),
        ("accelerate.state", "PartialState"),
        ("enum", "Enum"),
        ("numpy", "float64"), ("numpy", "float32"), ("numpy", "int64"), ("numpy", "int32"), ("numpy", "bool_"),
    ]
    + [("builtins", n) for n in BUILTIN_DATA]
    + [k for k, (data, _) in REVIEWED.items() if data and k[1] != "*"]
    + ml_allowed()
)

#: Modules every global of which was reviewed as data (``REVIEWED`` entries with qualname ``*``).
DATA_MODULES: frozenset[str] = frozenset(m for (m, q), (data, _) in REVIEWED.items() if data and q == "*")

#: Modules (any submodule included) whose globals are dangerous: code execution, process/file/network access,
#: dynamic import, nested deserialisers, debuggers/profilers that run code.
DANGEROUS_MODULES: frozenset[str] = frozenset(
    """
    os posix nt posixpath ntpath subprocess sys runpy importlib imp pty socket ctypes _ctypes pip ensurepip
    webbrowser shutil marshal pickle _pickle cPickle pickletools cloudpickle dill joblib shelve code codeop
    commands multiprocessing asyncio _asyncio concurrent threading _thread signal pdb bdb pydoc pkgutil idlelib
    lib2to3 profile cProfile _lsprof trace timeit _pyrepl test tkinter turtle uuid imaplib smtplib ftplib poplib
    nntplib telnetlib http urllib urllib2 requests httplib xmlrpc socketserver ssl select selectors mmap
    logging distutils setuptools venv zipimport tempfile glob fileinput io _io operator _operator functools
    types inspect gc builtins __builtin__ __builtins__ copyreg copy_reg platform sysconfig site ast dis
    compileall py_compile linecache tarfile zipfile bz2 lzma gzip zlib sqlite3 dbm ctypes.util
    numpy.f2py numpy.testing numpy.distutils numpy.ctypeslib numpy.lib.format numpy.load
    torch.jit torch._inductor torch.utils.collect_env torch.serialization torch.storage torch.hub torch.package
    torch._dynamo torch.utils.cpp_extension torch.cuda._utils torch.distributed torch.testing torch.fx
    torch._ops torch.ops torch.library torch._C torch.backends torch.onnx torch.export torch.compiler
    keras tensorflow tf_keras jinja2 yaml _posixsubprocess _winapi msvcrt winreg antigravity this _osx_support _aix_support
    numpy.core._internal numpy._core._internal
    doctest numexpr jsonpickle aiohttp torch.utils._config_module torch.utils.data.datapipes.utils.decoder
    torch.utils.bottleneck
    transformers.dynamic_module_utils huggingface_hub IPython pstats torch._export torch.utils._import_utils
    """.split()
)

#: Attribute names that are dangerous wherever they appear in a dotted name (``pathlib`` + ``os.system``).
DANGEROUS_ATTRS: frozenset[str] = frozenset(
    """
    system popen popen2 popen3 spawn spawnl spawnv spawnve spawnlp execv execve execl execlp execvp fork
    eval exec execfile compile __import__ getattr setattr delattr globals locals vars open input breakpoint
    load loads load_module import_module __builtins__ __globals__ __subclasses__ __class__ __bases__ __base__
    __mro__ __dict__ __code__ __closure__ __getattribute__ __reduce__ __reduce_ex__ __init__ __new__
    __call__ __func__ __self__ __module__ __loader__ __spec__ _load_from_bytes run run_path run_module call
    check_call check_output Popen main methodcaller attrgetter itemgetter partial resolve_name locate
    execWrapper compile_file CodeType FunctionType write_text write_bytes unlink rmtree remove
    from_pretrained hf_hub_download snapshot_download get_class_from_dynamic_module
    """.split()
)

#: Exact callables that are dangerous although their module is not wholly dangerous.
DANGEROUS_NAMES: frozenset[tuple[str, str]] = frozenset(
    [
        ("numpy", "load"), ("numpy", "loads"), ("numpy", "fromfile"), ("numpy", "save"), ("numpy", "tofile"),
        ("torch", "load"), ("torch", "save"), ("torch", "compile"), ("torch", "hub"),
        # a pickle loaded by path, or a string evaluated as code
        ("pandas", "read_pickle"), ("pandas.io.pickle", "read_pickle"), ("sympy", "sympify"),
        ("sympy.core.sympify", "sympify"), ("sympy", "parse_expr"), ("sympy.parsing.sympy_parser", "parse_expr"),
        ("sympy", "lambdify"), ("sympy.utilities.lambdify", "lambdify"),
        # a dataset script or file loaded by name (network, code), an HDF5 file opened (``"w"`` truncates it)
        ("datasets", "load_dataset"), ("datasets.load", "load_dataset"), ("datasets", "load_from_disk"),
        ("h5py", "File"), ("h5py._hl.files", "File"),
        # numpy readers of a file by path (``numpy.fromfile`` above), under each module numpy has kept them in
        *((m, n) for m in ("numpy", "numpy.lib.npyio", "numpy.lib._npyio_impl") for n in ("loadtxt", "genfromtxt")),
        *((m, "fromfile") for m in ("numpy.rec", "numpy.core.records", "numpy._core.records")),
    ]
)


_BUILTIN_MODULES = ("builtins", "__builtin__", "__builtins__")


def parse_allow(entries: tuple[str, ...] | list[str]) -> frozenset[tuple[str, str]]:
    """User allow entries: ``module:qualname`` (exact) or ``module.qualname`` (every split of the dots)."""
    out: set[tuple[str, str]] = set()
    for e in entries:
        e = e.strip()
        if not e:
            continue
        if ":" in e:
            m, _, q = e.partition(":")
            out.add((m, q))
            continue
        parts = e.split(".")
        for i in range(1, len(parts)):
            out.add((".".join(parts[:i]), ".".join(parts[i:])))
    return frozenset(out)


def dangerous_reason(module: str, qualname: str) -> str | None:
    """Why ``module.qualname`` is known to be dangerous, or ``None``. Every dotted component is checked."""
    mparts = module.split(".")
    qparts = qualname.split(".")
    if module in ("builtins", "__builtin__") and qparts[0] in BUILTIN_CODE:
        return f"builtin {qparts[0]}: {BUILTIN_CODE[qparts[0]]}"
    rev = REVIEWED.get((module, qualname))
    if rev is not None and not rev[0]:
        return rev[1]
    for i in range(1, len(mparts) + 1):
        prefix = ".".join(mparts[:i])
        if prefix in DANGEROUS_MODULES:
            return f"module {prefix} gives code execution, I/O or nested deserialisation"
    if (module, qualname) in DANGEROUS_NAMES or (module, qparts[0]) in DANGEROUS_NAMES:
        return "known dangerous callable"
    # a dotted qualname walks attributes: ``pathlib`` + ``os.system`` reaches os.system
    for i, part in enumerate(qparts):
        if i < len(qparts) - 1 and part in DANGEROUS_MODULES:
            return f"attribute path reaches module {part}"
        if part in DANGEROUS_ATTRS:
            return f"attribute {part} is dangerous"
    for part in mparts[1:]:
        if part in DANGEROUS_ATTRS:
            return f"module path component {part} is dangerous"
    if mparts[0] == "pandas" and qparts[-1].startswith("read_"):
        return "pandas reader: opens a file or URL (read_pickle, read_csv of a URL, read_sql)"
    if not module or not qualname or any(not p.isidentifier() for p in mparts + qparts):
        return "not a valid dotted identifier (resolution cannot be predicted)"
    return None


def is_data_module(module: str) -> bool:
    """Whether every global of ``module`` (or of a module it belongs to) was reviewed as data."""
    parts = module.split(".")
    return any(".".join(parts[:i]) in DATA_MODULES for i in range(1, len(parts) + 1))


#: Loaders whose literal bytes argument the walker analyses as a nested pickle.
NESTED_LOADERS = frozenset({
    ("pickle", "loads"), ("_pickle", "loads"), ("pickle", "load"), ("_pickle", "load"), ("dill", "loads"),
    ("cloudpickle", "loads"), ("joblib", "load"), ("torch", "load"), ("torch.serialization", "load"),
    ("torch.storage", "_load_from_bytes"), ("numpy", "loads"), ("marshal", "loads"),
})
#: Attribute names that reach Python internals: a pickle string equal to one is a finding.
DUNDER_STRINGS = frozenset({
    "__builtins__", "__globals__", "__subclasses__", "__import__", "__code__", "__getattribute__",
    "__reduce_ex__", "__reduce__", "__class__", "__mro__", "__bases__",
})
#: ``builtins`` callables that allocate as many elements as their integer argument.
ALLOCATORS = frozenset({"bytes", "bytearray", "range", "list", "tuple", "set", "frozenset"})


def ident(s: str) -> bool:
    return all(p.isidentifier() for p in s.split("."))
