"""Model calls served by worker processes, so concurrent calls do not share one GIL.

A litellm call costs the calling process 8-15 ms of CPU (building the request,
the provider SDK's parameter transform, parsing and pricing the answer), all
of it holding the GIL. When a ``ctl.parallel`` or ``ctl.map`` starts k model
steps at once, their requests therefore leave one after another, and the k-th
leaves k times that late. On a 2-core host that is 0.1 s at k = 8.

:class:`ModelWorkers` spreads such calls over a few worker processes. The
:class:`~skvm.runtime.models.ModelClient` keeps a call in its own process when
it is the only one in flight (no hand-over cost for sequential skills) and
sends it to a worker when others are in flight. Retries, backoff and token
accounting stay in the client; a worker makes exactly one litellm call per
request and returns the finished :class:`~skvm.runtime.models.Completion` or
the error's class name, text and whether it is worth retrying.

Workers are forked from a zygote process (``python -m
skvm.runtime.model_workers FD``) that has imported litellm and made one
refused loopback call (which imports the provider SDK stack), and does
nothing else. A pool costs one litellm import (on another core), not one
per worker, and never re-imports the VM's ``__main__`` (as ``multiprocessing``
would). A worker makes its calls with the VM's environment: it is sent before
the first call and again whenever it changed (API keys included: a worker is
part of the VM, it never runs skill code). A worker answers up to :data:`CALLS_PER_WORKER` requests at once on threads. A worker
exits when the VM closes its socket or dies. Calls that were in flight on a
worker that died fail as a retryable connection error, and the client retries
them (in its own process when no worker is left).

Only providers litellm reaches over the network go to workers: in-process
providers (the embedded model, the scripted fake of the tests) live in the
VM's process, as do requests that cannot be pickled.
"""

from __future__ import annotations

import atexit
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

#: Worker processes of the shared pool when neither the run nor $SKVM_MODEL_WORKERS
#: says, on a host with at least MIN_CORES usable cores (see default_workers).
DEFAULT_WORKERS = 4
MIN_CORES = 4
#: Requests one worker answers at once (each waits on its provider on a thread).
CALLS_PER_WORKER = 32
#: How long a pool may take to start (the fork server imports litellm: seconds).
START_TIMEOUT_S = 120.0


def default_workers() -> int:
    """:data:`DEFAULT_WORKERS` on a host with :data:`MIN_CORES` usable cores or more, else 0.

    Starting a pool costs about 6 s of CPU (the zygote's litellm import and
    warm-up) while the VM imports litellm itself. With idle cores that is
    free; on a 2-core host it made a cold ``skvm-run`` of 4 parallel steps
    0.4-0.5 s slower, more than the workers save a run with few parallel
    groups (10-40 ms each at k = 8). There, the pool is opt-in.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return DEFAULT_WORKERS if cores >= MIN_CORES else 0


def configured_workers(value: int | None = None) -> int:
    """The pool size: ``value`` if given, else $SKVM_MODEL_WORKERS, else the default."""
    if value is not None:
        return max(0, value)
    text = os.environ.get("SKVM_MODEL_WORKERS", "").strip()
    if text:
        try:
            return max(0, int(text))
        except ValueError:
            pass
    return default_workers()


class RemoteCallError(Exception):
    """A model call that failed in a worker: the provider error's class name and text."""

    def __init__(self, kind: str, message: str, retryable: bool):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


# ----------------------------------------------------------------- worker side


def _serve(sock: socket.socket) -> None:
    """A worker's main loop: one litellm call per request, answered on threads."""
    conn = Connection(sock.detach())
    from skvm.runtime import models

    lite = models.litellm()
    send_lock = threading.Lock()

    def answer(call_id: int, request: dict[str, Any]) -> None:
        try:
            response = lite.completion(**request)
            message: tuple = ("ok", call_id, *models.priced_result(response, request["model"]))
        except Exception as exc:  # noqa: BLE001  (every failure goes back to the VM)
            kind, retryable = models.classify_error(exc)
            message = ("error", call_id, kind, str(exc)[:4000], retryable)
        try:
            with send_lock:
                conn.send(message)
        except OSError:
            os._exit(0)  # the VM is gone

    pool = ThreadPoolExecutor(CALLS_PER_WORKER, thread_name_prefix="skvm-model")
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message[0] == "env":
            # The VM's environment changed (or this is the first call): litellm
            # reads keys and base URLs from it when it makes a call.
            os.environ.clear()
            os.environ.update(message[1])
        else:
            pool.submit(answer, message[1], message[2])
        del message
    # Calls still waiting on a provider answer nobody: leave without joining them.
    os._exit(0)


def _warm_up(lite) -> None:
    """Make one chat call to a loopback port nobody listens on, and ignore its failure.

    A process's first litellm call imports about 750 more modules (the
    provider SDK, httpx, h2, ...): 1.6-1.8 s of CPU that every worker would
    otherwise pay on its first call. Workers forked after this start warm.
    Proxy settings are dropped first (the call must stay on loopback); a
    worker gets the VM's environment with its first call.
    """
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        os.environ.pop(name, None)
    tool = {"type": "function", "function": {"name": "finish", "parameters": {"type": "object"}}}
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        try:
            lite.completion(
                model="openai/skvm-warm-up",
                api_base=f"http://127.0.0.1:{unused.getsockname()[1]}/v1",
                api_key="skvm-warm-up",
                messages=[{"role": "user", "content": "warm-up"}],
                tools=[tool],
                tool_choice="auto",
                timeout=5,
                max_retries=0,
                num_retries=0,
            )
        except Exception:  # noqa: BLE001  (refused, as intended)
            pass


def _zygote(control_fd: int) -> None:
    """The process workers fork from: litellm imported once, one thread, no state.

    Each byte the VM writes on the control socket asks for a worker; the reply
    carries the VM's end of a new socket pair as ancillary data. The zygote
    ends when the VM closes the control socket (or dies).
    """
    # The VM decides when workers stop (closing their sockets); a ^C is its to handle.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped by the kernel
    control = socket.socket(fileno=control_fd)
    from skvm.runtime import models

    _warm_up(models.litellm())
    control.sendall(b"R")
    while control.recv(1):
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            try:
                control.close()
                ours.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _serve(theirs)
            finally:
                os._exit(0)
        theirs.close()
        socket.send_fds(control, [str(pid).encode()], [ours.fileno()])
        ours.close()
    # Skip the interpreter's teardown of litellm's module graph (about a second).
    os._exit(0)


# ------------------------------------------------------------------- VM side


class _Worker:
    """One worker process, its connection, and the calls it has in flight."""

    def __init__(self, pid: int, conn: Connection):
        self.pid = pid
        self.conn = conn
        self.pending: dict[int, Future] = {}
        self.lock = threading.Lock()
        self.alive = True
        self.calls = 0
        self.environ: dict[str, str] | None = None  # as last sent to the worker
        self.reader = threading.Thread(
            target=self._read, name=f"skvm-model-reader-{pid}", daemon=True
        )
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            with self.lock:
                future = self.pending.pop(message[1], None)
            if future is None:
                continue
            if message[0] == "ok":
                _, _, result, cost = message
                future.set_result((result, cost))
            else:
                _, _, kind, text, retryable = message
                future.set_exception(RemoteCallError(kind, text, retryable))
        self._fail_pending("the model worker process exited")

    def _fail_pending(self, why: str) -> None:
        with self.lock:
            self.alive = False
            pending, self.pending = self.pending, {}
        for future in pending.values():
            future.set_exception(RemoteCallError("APIConnectionError", why, True))

    def submit(self, call_id: int, request: dict[str, Any]) -> Future | None:
        future: Future = Future()
        with self.lock:
            if not self.alive:
                return None
            self.pending[call_id] = future
            try:
                environ = dict(os.environ)
                if environ != self.environ:
                    self.conn.send(("env", environ))
                    self.environ = environ
                self.conn.send(("call", call_id, request))
            except Exception:  # noqa: BLE001  (an unpicklable request, or a dead socket)
                del self.pending[call_id]
                return None
            self.calls += 1
        return future

    def in_flight(self) -> int:
        return len(self.pending)

    def close(self) -> None:
        """Close the connection: the worker exits when it sees the end of it."""
        try:
            # close() alone would wait for the reader thread's recv() to return;
            # shutdown() ends it and tells the worker at once.
            with socket.socket(fileno=os.dup(self.conn.fileno())) as sock:
                sock.shutdown(socket.SHUT_RDWR)
            self.conn.close()
        except OSError:
            pass
        self.reader.join(timeout=5)
        self._fail_pending("the model workers were closed")


class ModelWorkers:
    """A pool of worker processes answering litellm calls (see the module docstring)."""

    def __init__(self, size: int):
        self.size = size
        self.error: str | None = None
        self._workers: list[_Worker] = []
        self._zygote: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._started = False
        self._closed = False
        self._ids = itertools.count()

    def start(self) -> ModelWorkers:
        """Start the workers in the background (the zygote imports litellm first)."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        threading.Thread(target=self._start, name="skvm-model-workers", daemon=True).start()
        return self

    def _start(self) -> None:
        try:
            self._spawn_zygote()
            control = self._control
            control.settimeout(START_TIMEOUT_S)
            if control.recv(1) != b"R":
                raise RuntimeError("the model workers' zygote exited while starting")
            for _ in range(self.size):
                control.sendall(b"F")
                data, fds, _, _ = socket.recv_fds(control, 32, 1)
                if not data or not fds:
                    raise RuntimeError("the model workers' zygote did not start a worker")
                # Received descriptors are inheritable: keep them from the VM's
                # other children, or a worker would not see the VM close its socket.
                os.set_inheritable(fds[0], False)
                conn = Connection(fds[0])
                with self._lock:
                    if self._closed:
                        conn.close()
                        break
                    self._workers.append(_Worker(int(data), conn))
        except Exception as exc:  # noqa: BLE001  (no workers: calls stay in-process)
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self._ready.set()

    def _spawn_zygote(self) -> None:
        ours, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        from skvm.runtime.sandbox import looks_secret  # VM side only: the zygote stays lean

        # Workers get the VM's environment with their first call: the zygote's
        # own, which any process of this user can read in /proc, holds no keys.
        environ = {k: v for k, v in os.environ.items() if not looks_secret(k, v)}
        environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, environ.get("PYTHONPATH")) if p
        )
        try:
            self._zygote = subprocess.Popen(
                [sys.executable, "-m", "skvm.runtime.model_workers", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                # Failures come back as errors of the calls (or of the start, in
                # ModelWorkers.error); litellm's own chatter stays off the VM's terminal.
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=environ,
                close_fds=True,
            )
        finally:
            theirs.close()
        self._control = ours

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> bool:
        """Start the pool if needed and wait until every worker is up."""
        self.start()
        return self._ready.wait(timeout) and self.error is None

    @property
    def ready(self) -> bool:
        """Whether the workers are up (calls made before then run in-process)."""
        return self._ready.is_set() and self.error is None

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (for tests and diagnostics)."""
        return [w.pid for w in self._workers]

    def submit(self, request: dict[str, Any]) -> Future | None:
        """Send one call to the least busy worker; None when no worker can take it."""
        if not self._ready.is_set():
            self.start()
            return None
        live = [w for w in self._workers if w.alive]
        if not live:
            return None
        worker = min(live, key=_Worker.in_flight)
        return worker.submit(next(self._ids), request)

    def stats(self) -> dict[str, Any]:
        """Workers alive and calls each has been given."""
        return {
            "workers": sum(1 for w in self._workers if w.alive),
            "calls": [w.calls for w in self._workers],
        }

    def close(self) -> None:
        """Stop every worker and the zygote; calls in flight fail as retryable errors."""
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.close()
        if self._control is not None:
            try:
                self._control.shutdown(socket.SHUT_RDWR)  # wakes a start still waiting on it
            except OSError:
                pass
            self._control.close()
        if self._zygote is not None:
            if not self._ready.is_set():
                # Still importing litellm: it has no workers, and a VM about to
                # exit should not wait for the import.
                self._zygote.kill()
            try:
                self._zygote.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()


_shared: ModelWorkers | None = None
_shared_lock = threading.Lock()


def shared(size: int | None = None) -> ModelWorkers:
    """The process's pool (created, not started, on the first call; later sizes are ignored)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ModelWorkers(configured_workers(size))
            atexit.register(_shared.close)
        return _shared


def close_shared() -> None:
    """Stop the process's pool (a new one is created on the next :func:`shared`)."""
    global _shared
    with _shared_lock:
        pool, _shared = _shared, None
    if pool is not None:
        pool.close()


__all__ = [
    "CALLS_PER_WORKER",
    "DEFAULT_WORKERS",
    "ModelWorkers",
    "RemoteCallError",
    "close_shared",
    "configured_workers",
    "default_workers",
    "shared",
]


if __name__ == "__main__":
    _zygote(int(sys.argv[1]))
