"""The one way this package runs ``git``: hardened so that no configuration can make git run a program.

The scanned repository is hostile: its ``.git/config`` (and files it pulls in with ``include.path`` /
``includeIf``) is written by whoever shipped it. The user's global and system configuration are not ours to
trust either (a shared CI image). Every git child started here therefore gets:

- **environment**: ``GIT_CONFIG_NOSYSTEM=1`` and ``GIT_CONFIG_GLOBAL=/dev/null`` (no system or global config);
  every inherited variable that names a program or injects configuration is removed (``GIT_SSH*``,
  ``GIT_EXTERNAL_DIFF``, ``GIT_PAGER``/``PAGER``, ``GIT_EDITOR``, ``GIT_ASKPASS``/``SSH_ASKPASS``,
  ``GIT_PROXY_COMMAND``, ``GIT_CONFIG_PARAMETERS``/``GIT_CONFIG_COUNT``/``_KEY_n``/``_VALUE_n``...); prompts
  are off, no optional locks (no index refresh writes), no replace objects, no system attributes, C locale;
  no inherited *location* variable (``GIT_DIR``, ``GIT_INDEX_FILE``, ``GIT_OBJECT_DIRECTORY``...: ``gitloc``):
  only those ``gitloc.locate`` kept for the repository, carried by the ``repo`` argument (a ``gitloc`` target);
  ``GIT_ALLOW_PROTOCOL`` is set to an empty allow-list, which overrides every ``protocol.*.allow``: no
  transport at all, so a partial clone's lazy fetch of a missing object (from a promisor remote whose URL may be
  ``ext::<command>`` or a remote helper) cannot start anything: the object is reported missing instead;
  ``GIT_GRAFT_FILE=/dev/null`` and ``GIT_NO_REPLACE_OBJECTS=1``: shipped grafts or replace refs cannot hide
  commits from the walk;
- **command-line configuration** (``-c``, the highest precedence: it wins over the repository's config and
  anything it includes) for every single-valued key that names a program: ``core.fsmonitor=false``,
  ``core.hooksPath=/dev/null``, ``gpg.program`` / ``gpg.{openpgp,x509,ssh}.program`` /
  ``gpg.ssh.defaultKeyCommand``, ``log.showSignature=false``, ``core.pager``, ``core.editor``,
  ``sequence.editor``, ``core.sshCommand``, ``core.askPass``, ``core.gitProxy``, ``core.alternateRefsCommand``,
  ``credential.helper=`` (an empty value clears the list), ``protocol.allow=never``, ``gc.auto=0``,
  ``maintenance.auto=false``, ``submodule.recurse=false``; and ``core.commitGraph=false`` (a shipped
  commit-graph file is believed for parents and root trees: it could hide history);
- **per-subcommand flags** for keys that cannot be overridden one by one because the repository names them
  (``diff.<driver>.textconv`` / ``.command``, ``diff.external``): ``log``/``show``/``diff`` always get
  ``--no-ext-diff --no-textconv`` (and ``--no-show-signature`` for ``log``/``show``); ``--no-pager`` always.
  ``filter.<driver>.{clean,smudge,process}`` run only when git converts work-tree content, which no command
  used here does (``cat-file`` is never given ``--filters``/``--textconv``: refused below);
- **no file the repository's config names is opened** by ``log``/``show``/``diff`` beyond those ``git_guard``
  checks (``include.path`` and the like): ``diff.orderFile`` and ``mailmap.file`` name files they open with a
  blocking ``open`` (a FIFO there hung ``scan --history`` forever once it had a finding): ``-O/dev/null`` (an
  empty order: git's own) and ``--no-mailmap`` / ``log.mailmap=false`` (no mailmap read; no format used here
  prints a name); and ``--no-relative``: ``diff.relative=true`` made a diff run from a subdirectory show only
  the paths under it, so a history sweep of ``repo/sub`` lost the provenance of every other finding.

``safe.directory=*``: a repository owned by another user (an extracted tarball, a shared volume) is scanned;
ownership is not the trust boundary here, the hardening above is. Every call site in the package goes through
``run``/``popen`` (a test fails on any other ``subprocess`` use with ``git``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO, Any

from veritensor_fast import gitloc

#: ``-c`` overrides on every call: each names a program, or enables something that runs one.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("sequence.editor", "false"),
    ("core.sshCommand", "false"),
    ("core.askPass", "false"),
    ("core.gitProxy", "none"),
    ("core.alternateRefsCommand", "false"),
    ("credential.helper", ""),
    ("gpg.program", "false"),
    ("gpg.openpgp.program", "false"),
    ("gpg.x509.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.ssh.defaultKeyCommand", "false"),
    ("log.showSignature", "false"),
    ("protocol.allow", "never"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("submodule.recurse", "false"),
    ("core.attributesFile", "/dev/null"),
    ("core.excludesFile", "/dev/null"),  # ``diff --cached`` (``--staged``) opens it: a FIFO there blocked forever
    ("core.commitGraph", "false"),  # a shipped commit-graph file is believed for parents: could hide history
    ("core.quotePath", "false"),
    ("log.mailmap", "false"),  # ``mailmap.file`` names a file git opens: a FIFO there blocked ``git log`` forever
    ("safe.directory", "*"),
)

#: Flags inserted right after these subcommands (repository-named drivers cannot be overridden one by one).
_LOG_FLAGS = ("--no-ext-diff", "--no-textconv", "--no-show-signature", "--no-mailmap", "-O/dev/null", "--no-relative")
SUBCOMMAND_FLAGS: dict[str, tuple[str, ...]] = {
    "log": _LOG_FLAGS,
    "show": _LOG_FLAGS,
    "diff": ("--no-ext-diff", "--no-textconv", "--ignore-submodules=all", "-O/dev/null", "--no-relative"),
}

#: Inherited variables removed from every git child: each names a program or injects configuration.
_DROP_EXACT = frozenset({
    "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_CONFIG_SYSTEM", "GIT_EXTERNAL_DIFF",
    "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSH_VARIANT", "GIT_PROXY_COMMAND", "GIT_EDITOR", "GIT_SEQUENCE_EDITOR",
    "GIT_ASKPASS", "SSH_ASKPASS", "GIT_PAGER", "PAGER", "EDITOR", "VISUAL", "GIT_TEMPLATE_DIR",
    "GIT_DIFF_OPTS",
})
_DROP_PREFIXES = ("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_", "GIT_TRACE")

_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_ATTR_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "GIT_NO_REPLACE_OBJECTS": "1",
    "GIT_PROTOCOL_FROM_USER": "0", "GIT_PAGER": "cat", "PAGER": "cat", "LC_ALL": "C",
    # an allow-list that names no protocol: every transport is refused, whatever the repository's
    # protocol.<name>.allow says (a partial clone's lazy fetch from an ext:: promisor would run a command)
    "GIT_ALLOW_PROTOCOL": "",
    # a shipped .git/info/grafts (deprecated, still honoured) would cut parents and hide history from the walk
    "GIT_GRAFT_FILE": os.devnull,
}


class GitError(Exception):
    """A git command failed (not a repository, git missing, bad revision): git's last error line."""


def git_env(location: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every git child (see the module docstring): no inherited location variable
    (``gitloc.LOCATION``), only those ``location`` gives (what ``gitloc.locate`` kept for the repository)."""
    env = {k: v for k, v in os.environ.items()
           if k not in _DROP_EXACT and k not in gitloc.LOCATION and not k.startswith(_DROP_PREFIXES)}
    env.update(_ENV)
    if location:
        env.update(location)
    return env


def git_argv(repo: str, args: Sequence[str]) -> list[str]:
    """``git --no-pager -C repo -c ... <subcommand> <hardening flags> <args...>``."""
    if not args:
        raise ValueError("no git subcommand")
    sub, rest = args[0], list(args[1:])
    if sub == "cat-file" and any(a in ("--filters", "--textconv") or a.startswith(("--filters", "--textconv"))
                                 for a in rest):
        raise ValueError("cat-file --filters/--textconv would run repository-configured programs")
    argv = ["git", "--no-pager", "-C", gitloc.path_of(repo)]
    for key, value in SAFE_CONFIG:
        argv += ["-c", f"{key}={value}"]
    return [*argv, sub, *SUBCOMMAND_FLAGS.get(sub, ()), *rest]


def printable(text: str) -> str:
    """``text`` with every control character escaped (git's messages may quote names the repository chose)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _last_line(err: bytes, args: Sequence[str], rc: int) -> str:
    msg = err.decode("utf-8", "replace").strip().splitlines()
    return printable(msg[-1]) if msg else f"git {args[0]} failed with status {rc}"


def _guard(repo: str) -> None:
    """``git_guard.check``: no FIFO or device where git would open a file (it would block forever)."""
    from veritensor_fast import git_guard

    try:
        git_guard.check(repo)
    except git_guard.UnsafeRepository as exc:
        raise GitError(f"not running git on {printable(gitloc.path_of(repo))}: {printable(str(exc.args[0]))} "
                       f"{exc.args[1]}") from None


def run(repo: str, args: Sequence[str], *, stdin: bytes | None = None, check: bool = True) -> bytes:
    """Run a short git command and return its stdout. Raises ``GitError`` (git's last error line) when it
    fails and ``check`` is true, or when git cannot be started."""
    _guard(repo)
    env = git_env(gitloc.split(repo)[1])
    try:
        if stdin is None:
            p = subprocess.run(git_argv(repo, args), stdin=subprocess.DEVNULL, capture_output=True, env=env,
                               check=False)
        else:
            p = subprocess.run(git_argv(repo, args), input=stdin, capture_output=True, env=env, check=False)
    except OSError as exc:
        raise GitError(f"cannot run git: {exc.strerror}") from None
    if check and p.returncode != 0:
        raise GitError(_last_line(p.stderr, args, p.returncode))
    return p.stdout


def popen(repo: str, args: Sequence[str], *, stdin: Any = subprocess.DEVNULL, stdout: Any = subprocess.PIPE,
          stderr: Any = subprocess.DEVNULL, bufsize: int = 1 << 16) -> subprocess.Popen[bytes]:
    """Start a streaming git command (hardened like ``run``). Raises ``GitError`` when git cannot start."""
    _guard(repo)
    try:
        return subprocess.Popen(git_argv(repo, args), stdin=stdin, stdout=stdout, stderr=stderr,
                                env=git_env(gitloc.split(repo)[1]), bufsize=bufsize)
    except OSError as exc:
        raise GitError(f"cannot run git: {exc.strerror}") from None


def feed(proc: subprocess.Popen[bytes], data: bytes | None) -> None:
    """Write ``data`` to a child's stdin and close it (for ``--stdin`` revision lists git reads in full)."""
    pipe: IO[bytes] | None = proc.stdin
    if data is None or pipe is None:
        return
    try:
        pipe.write(data)
    except (BrokenPipeError, OSError):
        pass  # git failed early; its exit status says why
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def stop(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
    """Wait for a child to exit (kill it after ``timeout``) and close its pipes; returns the exit status."""
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
