"""Test helper: a real Dask cluster of separate processes on loopback (``dask scheduler`` + ``dask worker``).

Every process runs in its own session under ``timeout -s KILL`` (it stops itself even if the test run dies),
workers exit 30 s after losing their scheduler, and ``stop()`` kills them all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: No cluster process lives longer than this (seconds), whatever happens to the test run.
LIFETIME = 600
HERE = Path(__file__).parent


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.file = tmp / "scheduler.json"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _spawn(self, args: list[str], env: dict[str, str] | None = None,
               wrap: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        log = open(self.dir / f"proc{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed with the process
        p = subprocess.Popen(["timeout", "-s", "KILL", str(LIFETIME), *wrap, sys.executable, "-m", *args],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                             env={**os.environ, **(env or {})})
        self.procs.append(p)
        return p

    def start_scheduler(self, env: dict[str, str] | None = None) -> str:
        self.file.unlink(missing_ok=True)
        self.scheduler = self._spawn(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                      "--no-dashboard", "--scheduler-file", str(self.file),
                                      "--idle-timeout", str(LIFETIME)], env)
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                self.address = json.loads(self.file.read_text())["address"]
                return self.address
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        raise AssertionError("the scheduler did not start: " + self.logs())

    def start_worker(self, name: str, nthreads: int = 1, env: dict[str, str] | None = None,
                     wrap: tuple[str, ...] = (), preload: bool = True, nanny: bool = True) -> subprocess.Popen[bytes]:
        args = ["distributed.cli.dask_worker", self.address, "--name", name, "--nthreads", str(nthreads),
                "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "30",
                "--memory-limit", "0"]
        if not nanny:  # nobody restarts it
            args.append("--no-nanny")
        if preload:  # the test helper that can slow reads down or fake another version (env variables)
            args += ["--preload", str(HERE / "faulty_worker.py")]
        return self._spawn(args, {"PYTHONPATH": os.pathsep.join(sys.path), **(env or {})}, wrap)

    def client(self) -> Any:
        import distributed

        return distributed.Client(self.address, timeout=30, set_as_default=False)

    def wait_workers(self, n: int) -> dict[str, int]:
        """Wait until ``n`` workers are connected; their process ids by address."""
        with self.client() as c:
            c.wait_for_workers(n, timeout=90)
            return dict(c.run(os.getpid))

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in sorted(self.dir.glob("proc*.log")))

    def stop(self) -> None:
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            p.wait(30)
