"""The model-file rule ids, their highest severity and what each reports (``rules list``, ``--disable-rule``).

A light module (no imports): the rules loader and the CLI read it without loading the analysers.
"""

from __future__ import annotations

#: rule id -> (highest severity it is reported with, what it reports)
MODEL_RULES: dict[str, tuple[str, str]] = {
    "model.pickle.dangerous-global": ("critical", "pickle imports/calls a known code-execution, I/O or loader global"),
    "model.pickle.unresolved-global": ("critical", "pickle global whose name cannot be resolved statically"),
    "model.pickle.unknown-global": ("high", "pickle global not on the reviewed allowlist (medium if only referenced)"),
    "model.pickle.build-global": ("high", "BUILD sets attributes on a class or function itself"),
    "model.pickle.dunder": ("high", "pickle carries an attribute name used to reach Python internals"),
    "model.pickle.frame": ("high", "pickle data straddles a FRAME boundary (readers disagree)"),
    "model.pickle.memory-corruption": ("critical", "tensor rebuilt past its storage, or SETITEM on a tensor "
                                       "(torch.load weights_only memory corruption, CVE-2026-24747)"),
    "model.pickle.dos": ("high", "memo/DUP expansion ('billion laughs') denial of service"),
    "model.pickle.limit": ("high", "pickle analysis limit reached; the rest was not analysed"),
    "model.pickle.truncated": ("high", "pickle ends without STOP (info when nothing unreviewed ran before)"),
    "model.pickle.corrupt": ("high", "pickle breaks (info when nothing unreviewed ran before)"),
    "model.torchscript.file-access": ("critical", "TorchScript code maps or writes any file: torch.from_file, torch.save"),
    "model.dcp.external-path": ("high", "Distributed Checkpoint metadata names a storage file outside the checkpoint"),
    "model.joblib.external-file": ("high", "old joblib header loads an array file outside the pickle's directory"),
    "model.pickle.trailing-data": ("info", "bytes after the last pickle stream"),
    "model.polyglot": ("high", "file is both a pickle and a zip archive"),
    "model.archive.corrupt": ("high", "archive structure unreadable"),
    "model.archive.limit": ("high", "archive depth, member or size limit reached"),
    "model.zip.anomaly": ("medium", "zip anomaly loaders disagree on (prefix, names, flags, CRC)"),
    "model.zip.bomb": ("high", "zip member with a bomb-like compression ratio or size"),
    "model.npy.invalid": ("medium", ".npy header invalid"),
    "model.npy.object": ("info", ".npy object array: its pickle's findings follow"),
    "model.safetensors.invalid": ("medium", "safetensors header invalid"),
    "model.gguf.invalid": ("medium", "GGUF structure invalid"),
    "model.gguf.template": ("critical", "GGUF chat template reaching Python internals (SSTI)"),
    "model.keras.lambda": ("critical", "Keras Lambda layer (code runs on load)"),
    "model.keras.module": ("critical", "Keras config imports a module outside keras"),
    "model.keras.unsafe": ("critical", "Keras config turns safe_mode off"),
    "model.keras.tfsmlayer": ("critical", "Keras TFSMLayer loads an external SavedModel"),
    "model.keras.gadget": ("critical", "Keras config names a function that downloads, loads or unlocks on load"),
    "model.keras.vocabulary-path": ("high", "Keras lookup layer reads its vocabulary from a path on load"),
    "model.keras.invalid": ("high", "Keras config unreadable"),
    "model.h5.not-covered": ("info", "HDF5 structure not parsed (its JSON configs are checked)"),
    "model.onnx.external-path": ("high", "ONNX external data location absolute or climbing out with '..'"),
    "model.onnx.invalid": ("high", "ONNX model not fully analysed (limit, or damage after a finding)"),
    "model.h5.hidden": ("high", "HDF5 fractal heap stored through filters that could not be undone"),
}
