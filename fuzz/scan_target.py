"""Coverage-guided fuzzing (atheris, libFuzzer) of the scanner's parsers through the worker.

    pip install -e '.[fuzz]'
    python3 fuzz/make_seeds.py fuzz/corpus                      # seed corpora from valid files
    python3 fuzz/scan_target.py TARGET fuzz/corpus/TARGET -max_total_time=600 -rss_limit_mb=2048

TARGET is one of: notebook, zip, tar, gzip, 7z, pickle, npy, safetensors, gguf, any (the first byte of the
input picks the file name). Each input is scanned as a file of that kind with the contract of
tests/fuzz/fuzzkit.py (no exception escapes, no detector crash, reports render). A violation raises, and
libFuzzer writes the input to crash-*; make it a regression test in tests/fuzz/test_fuzz_regressions.py.
Set FUZZ_HANG_S to tune the hang watchdog (default 60 s); libFuzzer's -timeout= works too.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fuzz"))

with atheris.instrument_imports(include=["veritensor_fast"]):
    import fuzzkit

    import veritensor_fast.detectors.archive
    import veritensor_fast.detectors.notebook
    import veritensor_fast.models.analyzer  # noqa: F401 - imported here to be instrumented

    fuzzkit.ctx()  # build the worker (rules, Hyperscan, detectors) before fuzzing starts

NAMES = {
    "notebook": ["a.ipynb"], "zip": ["a.zip", "model.pt", "a.npz"], "tar": ["a.tar", "a.tar.gz"],
    "gzip": ["a.gz", "a.pkl.gz"], "7z": ["a.7z"], "pickle": ["data.pkl", "noext", "w.bin"], "npy": ["a.npy"],
    "safetensors": ["m.safetensors"], "gguf": ["m.gguf"],
}
NAMES["any"] = sorted({n for v in NAMES.values() for n in v} | {"a.py", "a.env", "a.json", "a.yaml"})


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in NAMES:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(NAMES)}}} [CORPUS_DIR] [libFuzzer flags]")
    names = NAMES[sys.argv.pop(1)]

    def one(data: bytes) -> None:
        name = names[data[0] % len(names)] if data and len(names) > 1 else names[0]
        fuzzkit.scan_bytes(data, name)

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
