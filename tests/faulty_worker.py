"""Test helper, run as a script: the real CLI, with a file reader that misbehaves on chosen files.

Not a test module (pytest does not collect it). The patch is made before the scan starts, so forked workers
inherit it: a worker that reads a file whose name ends with ``$FAULT_NAME`` (default ``poison.txt``) is killed
by the signal named in ``$FAULT`` (SIGKILL, SIGBUS, ...), raises when ``$FAULT`` is ``raise``, or is truncated
right after it was opened when ``$FAULT`` is ``truncate``. ``$SLOW``
(seconds) makes every read that slow; ``FAULT=init`` makes every worker fail to start; ``FAULT_AFTER`` (with
``FAULT_COUNT``) arms the fault only after that many files were opened. Loaded into a Dask worker
(``--preload``), ``FAKE_VERSION`` and ``FAKE_DISABLE_RULE`` make it a worker of another release or rule set, so signals can be sent while the workers are busy.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from veritensor_fast.sources.fs import FileReader

_real_open = getattr(FileReader, "_unpatched_open", FileReader.open)  # (a Dask preload may run this twice)
FileReader._unpatched_open = _real_open  # type: ignore[attr-defined]


def _armed() -> bool:
    """``$FAULT_AFTER`` (N) and ``$FAULT_COUNT`` (a file): the fault hits every file once N files were opened,
    counted in that file across workers and their restarts (memory that runs out mid-scan)."""
    after = os.environ.get("FAULT_AFTER")
    if not after:
        return True
    with open(os.environ["FAULT_COUNT"], "ab") as f:
        f.write(b".")
        return f.tell() > int(after)


def _open(self: FileReader, item: Any) -> Any:
    if item.path.endswith(os.environ.get("FAULT_NAME", "poison.txt")) and _armed():
        fault = os.environ.get("FAULT", "SIGKILL")
        if fault == "raise":
            raise RuntimeError("reader bug")
        if fault == "truncate":  # the file shrinks after it was opened (memory-mapped: a real SIGBUS)
            opened = _real_open(self, item)
            os.truncate(item.key, 0)
            return opened
        os.kill(os.getpid(), getattr(signal, fault))
        time.sleep(10)  # a signal whose default action is not to die must not let the read go on
    slow = float(os.environ.get("SLOW", "0"))
    if slow:
        time.sleep(slow)
    return _real_open(self, item)


def _init_fails(*_: Any) -> None:
    raise RuntimeError("cannot start")


FileReader.open = _open  # type: ignore[method-assign]
if os.environ.get("FAKE_VERSION"):  # a worker of another release (run as a Dask worker --preload)
    import veritensor_fast

    veritensor_fast.__version__ = os.environ["FAKE_VERSION"]
if os.environ.get("FAKE_DISABLE_RULE"):  # a worker whose rule set differs
    import veritensor_fast.worker

    _real_load = getattr(veritensor_fast.worker, "_unpatched_load_rules", veritensor_fast.worker.load_rules)
    veritensor_fast.worker._unpatched_load_rules = _real_load  # type: ignore[attr-defined]

    def _load_rules(files: Any = (), disabled: Any = (), *a: Any, **kw: Any) -> Any:
        return _real_load(files, (*disabled, os.environ["FAKE_DISABLE_RULE"]), *a, **kw)

    veritensor_fast.worker.load_rules = _load_rules
if os.environ.get("FAULT") == "init":  # every worker fails to initialise
    import veritensor_fast.executors_tasks

    veritensor_fast.executors_tasks.init_worker = _init_fails

if __name__ == "__main__":
    from veritensor_fast.cli import main

    sys.argv = ["veritensor-fast", *sys.argv[1:]]
    main()
