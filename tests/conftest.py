"""Shared test helpers: synthetic (never real) tokens and a runner for the real CLI."""

from __future__ import annotations

import io
import json
import os
import random
import string
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Property tests replay the same examples every run (deterministic in CI, never failing on a slow machine's
# timing); HYPOTHESIS_PROFILE=explore searches new examples on each run.
settings.register_profile("default", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ALNUM = string.ascii_letters + string.digits
_rng = random.Random(1234)


def rand(n: int, alphabet: str = ALNUM, rng: random.Random | None = None) -> str:
    r = rng or _rng
    return "".join(r.choice(alphabet) for _ in range(n))


def hf_token(rng: random.Random | None = None) -> str:
    """A synthetic Hugging Face user token with realistic entropy."""
    return "hf_" + rand(34, rng=rng)


CLI = [sys.executable, "-m", "veritensor_fast.cli"]


def run_cli(*args: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None,
            env: dict[str, str] | None = None, timeout: float = 120,
            cap: int | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``veritensor-fast`` command line (as a subprocess) and capture its output; with ``cap``,
    under an address-space cap of that many bytes per process (``prlimit --as``: inputs that test a bound)."""
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    if env:
        e.update(env)
    pre = ["prlimit", f"--as={cap}", "--"] if cap else []
    return subprocess.run([*pre, *CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=e,
                          timeout=timeout, check=False)


def scan_json(*args: str | os.PathLike[str], **kw: Any) -> tuple[int, dict[str, Any]]:
    """Run ``scan ... --format json`` and return (exit code, parsed report)."""
    p = run_cli("scan", "--format", "json", "--no-progress", *args, **kw)
    assert p.stdout, p.stderr
    return p.returncode, json.loads(p.stdout)


@pytest.fixture
def token() -> str:
    return hf_token()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "tree"
    d.mkdir()
    return d


GIT_ID = ["-c", "user.email=t@example.invalid", "-c", "user.name=t", "-c", "commit.gpgsign=false"]


def git_run(repo: str | os.PathLike[str], *args: str, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real git CLI in ``repo`` with a fixed identity (no user config needed)."""
    return subprocess.run(["git", "-C", str(repo), *GIT_ID, *args], capture_output=True, text=True,
                          check=check, env=env)


def init_repo(path: Path, readme: str = "hi\n") -> Path:
    """A new repository at ``path`` on branch ``main`` with one commit (a README)."""
    path.mkdir(parents=True, exist_ok=True)
    git_run(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text(readme)
    git_run(path, "add", "README.md")
    git_run(path, "commit", "-q", "-m", "init")
    return path


#: A plain git pre-push hook running this checkout's scanner (``scan --pre-push REMOTE``).
PRE_PUSH_HOOK = '#!/bin/sh\nexec {py} -m veritensor_fast.cli scan --pre-push "$1" --no-progress\n'


def plain_hook_repo(tmp_path: Path) -> Path:
    """A work repository with the plain pre-push hook, its main already pushed to the bare remote 'origin'."""
    import shlex

    remote = tmp_path / "remote.git"
    git_run(tmp_path, "init", "-q", "--bare", str(remote))
    r = init_repo(tmp_path / "work")
    hook = r / ".git" / "hooks" / "pre-push"
    hook.write_text(PRE_PUSH_HOOK.format(py=shlex.quote(sys.executable)))
    hook.chmod(0o755)
    git_run(r, "remote", "add", "origin", str(remote))
    assert git_run(r, "push", "-q", "origin", "main", check=False).returncode == 0
    return r


def on_remote(repo: Path, ref: str) -> bool:
    """Whether ``plain_hook_repo``'s remote holds ``ref``."""
    return git_run(repo.parent / "remote.git", "rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0


def zip_bytes(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip archive (in memory) holding ``members``."""
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return bio.getvalue()



def child_argvs() -> dict[int, list[bytes]]:
    """pid -> argv of this process's live (not zombie) child processes, read from ``/proc`` (Linux)."""
    me = str(os.getpid())
    out: dict[int, list[bytes]] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                state, ppid = fh.read().rsplit(")", 1)[1].split()[:2]
            with open(f"/proc/{pid}/cmdline", "rb") as fh2:
                argv = fh2.read().split(b"\0")
        except OSError:
            continue
        if ppid == me and state != "Z":
            out[int(pid)] = argv
    return out


@pytest.fixture(scope="session", autouse=True)
def _own_disk_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The suite's derived-data cache (databases of the many rule sets tests build) lives in a directory of its
    own, not the user's ``~/.cache/veritensor-fast``; subprocesses inherit it. A test that sets its own keeps it."""
    old = os.environ.get("VERITENSOR_FAST_CACHE")
    if old is None:
        os.environ["VERITENSOR_FAST_CACHE"] = str(tmp_path_factory.mktemp("vf-cache"))
    yield
    if old is None:
        os.environ.pop("VERITENSOR_FAST_CACHE", None)


#: A scan's own peak resident set, in a subprocess: a first scan of a warm-up directory builds the rules database
#: and the AST prefilter's plan (or reads them from the disk cache: building them peaks at about 1 GB in a fresh
#: cache, which is not what is measured), then the peak is reset (``/proc/self/clear_refs``, Linux 4.0+) before
#: the measured scan; ``VmHWM`` is its high-water mark.
_SCAN_PEAK = r"""
import json, sys
from veritensor_fast import scan_paths
scan_paths([sys.argv[2]], jobs=1)
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
r = scan_paths([sys.argv[1]], jobs=1)
hwm = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps({"rss_kb": hwm, "errors": [[e.kind, e.reason] for e in r.errors], "findings": len(r.findings)}))
"""


def scan_peak(target: Path, env: dict[str, str], cap: int = 2_000_000_000) -> dict:
    """Scan ``target`` (``jobs=1``) in a subprocess under an address-space cap of ``cap`` bytes; its findings'
    count, its errors as ``[kind, reason]`` and ``rss_kb``, the scan's own peak (the rules built before, in a
    warm-up run outside the cap that fills the disk cache, and again in-process from that cache)."""
    warm = target.parent / (target.name + "-warm")
    warm.mkdir(exist_ok=True)
    (warm / "a.txt").write_text("warm-up\n")
    (warm / "a.py").write_text('t = "hf_" + "x"\n')  # builds the AST prefilter's plan too
    subprocess.run([sys.executable, "-c", _SCAN_PEAK, str(warm), str(warm)], capture_output=True, timeout=300,
                   check=True, env=env)
    p = subprocess.run(["prlimit", f"--as={cap}", "--", sys.executable, "-c", _SCAN_PEAK, str(target), str(warm)],
                       capture_output=True, text=True, env=env, timeout=120, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout)


def token_repo(path: Path) -> Path:
    """A git repository at ``path`` whose one commit adds ``k.txt`` holding a Hugging Face token."""
    repo = init_repo(path)
    (repo / "k.txt").write_text(f"token = {hf_token()}\n")
    git_run(repo, "add", "k.txt")
    git_run(repo, "commit", "-q", "-m", "k")
    return repo
