"""A lean process pool for ``executors_local``: one duplex pipe per worker, no threads in this process.

``concurrent.futures.ProcessPoolExecutor`` moves every task through a manager thread and a queue feeder thread,
and every result back through the manager thread: on the real tree those two threads cost 0.14-0.23 CPU-s of
the parent's 0.19-0.31 while the pool ran (0.4-0.55 ms a task), CPU that the one parent, serving all workers,
takes from them (at 16 workers the parent would be the bottleneck). Here the caller's thread writes each task
to a worker's pipe and reads results when it waits (``LeanPool.wait``).

The contract is ``ProcessPoolExecutor``'s, as ``executors_local.PoolExecutor`` relies on it:
- ``submit`` returns a ``Future`` (this module's: the part of ``concurrent.futures.Future`` used here, without its
  lock and condition; ``concurrent.futures``, logging and ``multiprocessing.queues`` with it, cost every
  ``--jobs N`` start ~2e7 instructions, ~5 ms, before the fork); a task that raises sets its exception (a result
  that cannot be pickled too);
- when a worker dies (SIGKILL, the OOM killer, a failing initializer), the pool is *broken*: results already
  sent are delivered, every other task fails with ``BrokenProcessPool`` (this module's), the other workers are
  terminated (SIGTERM), and ``submit`` raises ``BrokenProcessPool``;
- ``shutdown(wait=True)`` stops and joins the workers; ``_processes`` maps pid to ``multiprocessing.Process``.

A worker holds at most ``depth`` tasks of this pool at a time (one running, the others queued in its pipe, so it
never waits for this process between tasks); more wait here and go to the first worker with room. Tasks are
written without blocking (what a worker's socket does not take now is written when it can), results are read
whole: this process never waits on a worker that waits on it.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterable
from multiprocessing.reduction import ForkingPickler
from typing import Any, Generic, TypeVar

from veritensor_fast import reaper

T = TypeVar("T")


class BrokenProcessPool(RuntimeError):
    """A worker process died: the tasks the pool had fail with this, and ``submit`` refuses new ones (as
    ``concurrent.futures.process.BrokenProcessPool`` with ``ProcessPoolExecutor``)."""


class Future(Generic[T]):
    """A task's outcome, set by the pool in the thread that uses it: ``done``, ``result`` and ``exception`` answer
    once it is done (``LeanPool.wait`` reads results; they never block); ``cancel`` drops a task not sent yet."""

    __slots__ = ("_state", "_value")

    def __init__(self) -> None:
        self._state = ""  # "" pending, then "result", "exception" or "cancelled"
        self._value: Any = None

    def done(self) -> bool:
        return bool(self._state)

    def cancel(self) -> bool:
        if self._state:
            return self._state == "cancelled"
        self._state = "cancelled"
        return True

    def set_result(self, value: T) -> None:
        self._state, self._value = "result", value

    def set_exception(self, exc: BaseException) -> None:
        self._state, self._value = "exception", exc

    def exception(self) -> BaseException | None:
        if self._state in ("", "cancelled"):
            raise RuntimeError(f"the task is {'cancelled' if self._state else 'not done'}")
        return self._value if self._state == "exception" else None

    def result(self) -> T:
        exc = self.exception()
        if exc is not None:
            raise exc
        return self._value


class LeanPool:
    def __init__(self, jobs: int, ctx: Any, initializer: Callable[..., None], initargs: tuple[Any, ...],
                 depth: int = 2) -> None:
        self._depth = depth
        self._broken = False
        self._processes: dict[int, Any] = {}
        self._conns: list[Any] = []  # per worker: its end of the pipe (results are read from it, blocking)
        self._socks: list[socket.socket] = []  # the same socket, for tasks written without blocking
        self._out: list[bytearray] = []  # per worker: task bytes its socket did not take yet
        self._sent: list[deque[Future[Any]]] = []  # per worker: its tasks, oldest first
        self._waiting: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = deque()
        self._sel = selectors.DefaultSelector()
        try:
            for w in range(jobs):
                mine, theirs = ctx.Pipe(duplex=True)  # a socket pair
                reaper.before_workers()  # a killed worker's own children come to the CLI, not to PID 1
                p = ctx.Process(target=_serve, args=(theirs, initializer, initargs), daemon=True)
                _start(p)
                theirs.close()
                self._processes[p.pid] = p
                self._conns.append(mine)
                self._socks.append(socket.socket(fileno=os.dup(mine.fileno())))
                self._out.append(bytearray())
                self._sent.append(deque())
                self._sel.register(mine, selectors.EVENT_READ, ("r", w))
                self._sel.register(p.sentinel, selectors.EVENT_READ, ("d", w))
        except BaseException:
            self._break()
            self.shutdown()
            raise
        self._procs = list(self._processes.values())

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        if self._broken:
            raise BrokenProcessPool("a worker process died")
        fut: Future[Any] = Future()
        self._waiting.append((fut, fn, args))
        self._dispatch()
        if self._broken:
            raise BrokenProcessPool("a worker process died")
        return fut

    def _dispatch(self) -> None:
        while self._waiting and not self._broken:
            w = min(range(len(self._sent)), key=lambda i: len(self._sent[i]))
            if len(self._sent[w]) >= self._depth:
                return
            fut, fn, args = self._waiting.popleft()
            data = bytes(ForkingPickler.dumps((fn, args)))
            self._sent[w].append(fut)
            pending = bool(self._out[w])
            self._out[w] += struct.pack("!i", len(data)) + data  # ``Connection.send``'s framing
            if not pending and not self._flush(w):
                return

    def _flush(self, w: int) -> bool:
        """Write what the socket of worker ``w`` takes now, never blocking (a worker blocked on sending a big
        result while this process blocked on sending it a big task would hang the scan); False: it broke."""
        out = self._out[w]
        try:
            n = self._socks[w].send(out, socket.MSG_DONTWAIT)
        except BlockingIOError:
            n = 0
        except OSError:  # the worker is gone: its end is closed
            self._break()
            return False
        del out[:n]
        key = self._sel.get_map().get(self._socks[w].fileno())
        if out and key is None:
            self._sel.register(self._socks[w], selectors.EVENT_WRITE, ("w", w))
        elif not out and key is not None:
            self._sel.unregister(self._socks[w])
        return True

    def wait(self, futures: Iterable[Future[Any]], first: bool = True) -> set[Future[Any]]:
        """Read results until one of ``futures`` is done (``first``) or all are; return those done."""
        fs = set(futures)
        done = {f for f in fs if f.done()}
        while not (done if first else len(done) == len(fs)) and not self._broken:
            done.update(f for f in self._pump() if f in fs)
        return {f for f in fs if f.done()} if self._broken else done  # broken: every task it had failed

    def _pump(self) -> list[Future[Any]]:
        """Wait for results (or a worker's death) and read them: the tasks they finished."""
        if not any(self._sent):
            raise RuntimeError("waiting for a result no worker has")  # a bug: never a hang
        died = False
        finished: list[Future[Any]] = []
        for key, _ in self._sel.select():
            what, w = key.data
            if what == "w":
                if not self._flush(w):
                    return finished
                continue
            if what == "d":
                died = True
                continue
            value: Any
            try:
                ok, value = self._conns[w].recv()
            except (OSError, EOFError):
                died = True
                continue
            except Exception as exc:  # a result this process cannot unpickle: that task failed
                ok, value = False, exc
            if not self._sent[w]:  # nothing was asked of it
                died = True
                continue
            fut = self._sent[w].popleft()
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
            finished.append(fut)
        if died:
            self._drain()
            self._break()
        else:
            self._dispatch()
        return finished

    def _drain(self) -> None:
        """Results the living workers sent before the pool broke are theirs to keep."""
        for w, c in enumerate(self._conns):
            while self._sent[w]:
                try:
                    if not c.poll(0):
                        break
                    ok, value = c.recv()
                except (OSError, EOFError):
                    break
                except Exception as exc:
                    ok, value = False, exc
                fut = self._sent[w].popleft()
                (fut.set_result if ok else fut.set_exception)(value)

    def _break(self) -> None:
        if self._broken:
            return
        self._broken = True
        exc = BrokenProcessPool("a worker process died")
        for q in self._sent:
            while q:
                q.popleft().set_exception(exc)
        while self._waiting:
            self._waiting.popleft()[0].set_exception(exc)
        for p in self._processes.values():
            if p.exitcode is None:
                p.terminate()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        if not self._broken and not cancel_futures:  # (a pool stopped at once: its workers are killed next)
            stop = bytes(ForkingPickler.dumps(None))
            for w, sock in enumerate(self._socks):
                try:  # nothing is left to write to a worker when a scan ends: the message fits
                    sock.send(self._out[w] + struct.pack("!i", len(stop)) + stop, socket.MSG_DONTWAIT)
                except OSError:
                    pass
        for f, _, _ in self._waiting:
            f.cancel()
        self._waiting.clear()
        if wait:
            for p in self._processes.values():
                p.join()
        self._sel.close()
        for c in [*self._conns, *self._socks]:
            c.close()


#: Blocked in the parent while it starts a worker (:func:`_start`).
_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _start(p: Any) -> None:
    """Start worker ``p`` with SIGINT and SIGTERM blocked in this thread: a forked child inherits the mask, so
    neither can reach it before :func:`_serve` has put its own handlers in place. Without this, a SIGTERM sent
    by :meth:`LeanPool._break` (Ctrl-C while the workers start) could land in the child's at-fork hooks, where the
    parent's handler (the CLI's ``stop_on_sigterm`` raises ``SystemExit``) was swallowed ("Exception ignored");
    the worker then lived on, waiting for a task, and the parent's ``join`` waited for it forever. A signal
    that comes meanwhile reaches the parent when the mask is put back, in its own ``try``."""
    if threading.current_thread() is not threading.main_thread():
        p.start()
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        p.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _serve(conn: Any, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
    """A worker: initialise, then run tasks from ``conn`` until told to stop (``None``) or the pipe closes.
    SIGINT is ignored (the parent decides what Ctrl-C does and kills its workers) and SIGTERM ends the worker
    (it never runs the parent's handler); then the signals :func:`_start` blocked are let in."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    reaper.tag_worker()  # its git reader, orphaned if it is killed, is the command's to reap
    try:
        initializer(*initargs)
    except BaseException:  # the pool sees the exit: the workers cannot start
        os._exit(1)
    while True:
        try:
            msg = conn.recv()
        except (OSError, EOFError):
            return
        if msg is None:
            return
        fn, args = msg
        try:
            reply: tuple[bool, Any] = (True, fn(*args))
        except BaseException as exc:
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # a result or an exception that cannot be pickled
            conn.send((False, RuntimeError(f"result not sent: {type(exc).__name__}")))
