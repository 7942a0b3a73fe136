"""Leave no process behind: a command adopts what its process tree orphans and reaps it at its end.

A pool worker's own children (its ``git cat-file --batch`` reader in a history scan) are orphaned when the
worker is killed (Ctrl-C, SIGTERM, a broken pool). Re-parented to PID 1, which in a container may never reap,
each stays a zombie for good. The command line calls :func:`adopt` when a command starts and :func:`reap` when
it ends; the pool calls :func:`before_workers` before it starts its workers, which makes the command's process
the *subreaper* of its descendants (``PR_SET_CHILD_SUBREAPER``, Linux), so orphans come to it. :func:`reap`
kills and reaps every child that was not there at :func:`adopt`: by then the scan has ended its pool and its
git commands, so each is an orphan adopted here or one a ``finally`` could not reach; multiprocessing's own
forkserver and resource tracker are stopped through multiprocessing (so that it starts them again when needed),
and each kill goes through a pidfd checked to be still this process's child. Only the process that
called :func:`adopt` does anything (forked workers inherit this module's state); a program that runs a scan
through the library is left as it is. ``ctypes`` is imported only when a pool starts (not on a one-file scan).

Only what the command started is killed, not a child another thread of the host program starts meanwhile (a
Jupyter kernel, a test runner, a service calling the CLI in-process): the command's thread blocks one real-time
signal, :data:`TAG`, from :func:`adopt` to :func:`reap`, and every pool worker blocks it too
(:func:`tag_worker`). A signal mask is inherited over ``fork`` and kept over ``exec`` (``subprocess``, git's own
children), so every process the command's thread or a worker starts, and what those start, carries the tag
(``SigBlk`` in ``/proc/PID/status``), orphans included; a child of another thread of the host does not, and a
child the host's thread left to us when it exited does not either. Nothing ever sends ``TAG``.
"""

from __future__ import annotations

import os
import signal
import sys

_owner: int | None = None  # the pid that called adopt()
_before: frozenset[int] = frozenset()
_set = False  # this module made the process a subreaper (undone by reap())
_tagger: int | None = None  # the thread that blocked TAG in adopt(), if it was not blocked there before

#: The signal whose being blocked marks a process as started by the command or its process tree (never sent).
TAG = signal.SIGRTMAX - 7 if hasattr(signal, "SIGRTMAX") else None


def children() -> list[int]:
    """This process's child pids (every thread's; ``/proc/self/task/<tid>/children``, Linux); [] elsewhere."""
    out: list[int] = []
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as fh:
                out.extend(int(x) for x in fh.read().split())
        except (OSError, ValueError):
            continue
    return out


def adopt() -> None:
    """A command starts: note the children this process already has (a program running the command in-process
    keeps its own), and tag what this thread starts from now on (:data:`TAG`)."""
    global _owner, _before, _tagger
    _owner, _before = os.getpid(), frozenset(children())
    if TAG is not None and _tagger is None:
        import threading

        if TAG not in signal.pthread_sigmask(signal.SIG_BLOCK, {TAG}):
            _tagger = threading.get_ident()


def tag_worker() -> None:
    """In a pool worker: what it starts (its ``git cat-file`` reader) carries :data:`TAG`, whichever process
    forked the worker (the host's own ``forkserver``, untagged, may have)."""
    if TAG is not None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {TAG})


def tagged(pid: int) -> bool:
    """Whether process ``pid`` blocks :data:`TAG` (it was started by a command's thread or a pool worker, or by
    one of their descendants)."""
    if TAG is None:
        return False
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"SigBlk:"):
                    return bool(int(line.split()[1], 16) >> (TAG - 1) & 1)
    except (OSError, ValueError, IndexError):
        pass
    return False


def before_workers() -> None:
    """Before a pool starts workers: become the subreaper of the process tree, if :func:`adopt` was called here."""
    global _set
    if _owner != os.getpid() or _set or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        prctl = ctypes.CDLL(None).prctl
        was = ctypes.c_int(0)
        prctl(37, ctypes.byref(was), 0, 0, 0)  # PR_GET_CHILD_SUBREAPER
        if not was.value and prctl(36, 1, 0, 0, 0) == 0:  # PR_SET_CHILD_SUBREAPER
            _set = True
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _stop_helpers() -> None:
    """Stop multiprocessing's own long-lived children that this command started (its forkserver and resource
    tracker) through multiprocessing itself: it closes their pipe, they exit and are reaped, and its state is
    reset. Killed and reaped behind its back (integ), the next ``forkserver`` pool of a program that runs
    commands in-process, or its own, failed with ``ChildProcessError``; kept alive, they outlived the command."""
    fs = sys.modules.get("multiprocessing.forkserver")
    rt = sys.modules.get("multiprocessing.resource_tracker")
    for obj, attr in ((getattr(fs, "_forkserver", None), "_forkserver_pid"),
                      (getattr(rt, "_resource_tracker", None), "_pid")):
        pid = getattr(obj, attr, None)
        if not isinstance(pid, int) or pid in _before or not tagged(pid):
            continue  # not running, or the program's own (from before the command, or another thread's)
        try:
            obj._stop()  # type: ignore[union-attr]
        except (AttributeError, OSError, RuntimeError):  # pragma: no cover - then killed below, as before
            pass


def _kill(pid: int) -> None:
    """SIGKILL child ``pid`` through a pidfd where there is one (the process is pinned, and checked to be still
    this process's child: reaped meanwhile by another thread's ``Popen``, its pid could name another process)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # pragma: no cover - before Linux 5.3: our unreaped child, as before
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        return
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        if ppid == os.getpid():
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass
    finally:
        os.close(fd)


def reap() -> None:
    """The command's work is over: kill and reap every child not there at :func:`adopt` that carries
    :data:`TAG`; stop being a subreaper if this module made the process one, and stop tagging."""
    global _owner, _set, _tagger
    if _owner != os.getpid():
        return
    _stop_helpers()
    keep = _before
    for _ in range(8):  # a killed orphan's own children come to us in turn (a subreaper): kill those too
        # ours: a pid is not reused before we reap it; a child of the host's other threads is not tagged
        pids = [pid for pid in children() if pid not in keep and tagged(pid)]
        if not pids:
            break
        for pid in pids:
            _kill(pid)
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass  # reaped by its own ``Popen`` meanwhile
    if _set:
        try:
            import ctypes

            ctypes.CDLL(None).prctl(36, 0, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover
            pass
        _set = False
    if _tagger is not None and TAG is not None:
        import threading

        if _tagger == threading.get_ident():
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {TAG})
            _tagger = None
    _owner = None
