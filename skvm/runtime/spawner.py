"""A persistent fork server that starts the sandbox's commands.

Without it every command costs a ``/bin/sh`` wrapper exec'd to set the limits
before the command itself. The spawner is a small Python process (standard
library only, run with ``-I -S``) started once per VM process and network
mode, from the thread that entered the empty network namespace when the
network is off, so it and its children live there. It never sees the host's
environment: each request carries the command's (scrubbed) one.

Requests come over a ``SOCK_SEQPACKET`` socket pair (JSON: argv, environment,
working directory, rlimits, the pids cgroup to join), each with the command's
stdin/stdout/stderr pipe ends and a *status pipe* attached (``SCM_RIGHTS``,
received close-on-exec: a command holds fds 0-2 only).

Two kinds of server answer them:

* a **limited server** per distinct set of limits, forked by the main one: it
  sets the rlimits on itself (children inherit them) and starts commands with
  ``posix_spawn`` (vfork: no page tables copied), ``setsid`` and default
  signal actions, joining the command's pids cgroup just around the spawn. It
  retires (answers ``R``) when its own CPU time nears its CPU limit.
* the **main server** forks a child that restores the default
  SIGPIPE/SIGXFSZ/SIGINT actions, calls ``setsid``, joins the pids cgroup,
  sets ``RLIMIT_CORE``/``CPU``/``AS``/``FSIZE``/``NPROC``, enters the working
  directory, moves the pipes to fds 0-2 and execs. It serves limits a
  limited server cannot live under (a small address space), and any command
  ``posix_spawn`` refused: a failure before ``exec`` exits 126 (cannot set a
  limit, not executable) or 127 (not found) with the reason on stderr, and a
  file without ``#!`` runs under ``/bin/sh``, as a shell would.

Status pipe protocol (lines written by the server): ``P <pid>``, then ``X
<si_code> <si_status>`` when the command exits (both at once when it exits
within :data:`ANNOUNCE_DELAY_S`: the client then wakes once), then the pipe
closes; ``E <errno>`` (fork failed) or ``R`` (retired) mean it never started.
A closed pipe without ``X`` means the server died. Exited commands stay
unreaped (zombies) until the client releases them (with its next request), so
their process group ids cannot be reused while the client may ``killpg`` them.

When the client's socket closes (the VM exited, even by SIGKILL) a server
kills every command it still runs and exits. The client side,
:class:`Spawner`, is used by :mod:`skvm.runtime.sandbox`; supervision
(timeout, output caps, the pids cgroup's fork counter, killing the group)
stays in the VM.
"""

from __future__ import annotations

import array
import errno
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: Largest request sent to the spawner; bigger ones (huge argv/env) use the direct path.
MAX_REQUEST_BYTES = 128 * 1024
#: How long the client waits for the server to say it is ready, or for a pid.
HANDSHAKE_TIMEOUT_S = 10.0
READY = b"skvm-spawner ready"

#: rlimit names a request may set (``resource`` constants, resolved in the server).
LIMIT_NAMES = frozenset({"RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NPROC"})
#: Signals a command starts with at their default action (the spawner ignores them).
DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT)


# ============================================================================ server
# Everything from here to the client section runs inside the spawner process and
# must only use the standard library (the process runs with -I -S).


def _child(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: confine, then exec the command. Never returns."""
    code = 126
    err = fds[2]
    try:
        # Python ignores these (and the spawner SIGINT); a command expects the defaults.
        for sig in DEFAULT_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        step = "join the pids cgroup"
        if request.get("cgroup_procs"):
            fd = os.open(request["cgroup_procs"], os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
        for name, soft, hard in request.get("limits", ()):
            step = f"set {name}"
            _setrlimit(name, soft, hard)
        step = f"enter {request['cwd']}"
        os.chdir(request["cwd"])
        step = "set up the standard streams"
        stdin = fds[0] if fds[0] >= 0 else os.open(os.devnull, os.O_RDONLY)
        for target, source in enumerate((stdin, fds[1], fds[2])):
            os.dup2(source, target)
        err = 2
        argv = request["argv"]
        step = argv[0]
        code = 127
        _exec(argv, request["env"])
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR) or step != request["argv"][0]:
            code = 126
        reason = "not found" if code == 127 else (exc.strerror or str(exc))
        _write_quiet(err, f"skvm-sandbox: {step}: {reason}\n".encode(errors="replace"))
    except BaseException as exc:  # noqa: BLE001  (a child must never return)
        _write_quiet(err, f"skvm-sandbox: {exc!r}\n".encode(errors="replace"))
    finally:
        os._exit(code)


def _exec(argv: list[str], env: dict[str, str]) -> None:
    """``execvpe`` as ``sh`` does it: PATH from ``env``; a file without #! runs as a script."""
    candidates = (
        [argv[0]]
        if "/" in argv[0]
        else [os.path.join(d or ".", argv[0]) for d in os.get_exec_path(env)]
    )
    error: OSError | None = None
    for path in candidates:
        try:
            os.execve(path, argv, env)
        except OSError as exc:
            if exc.errno == errno.ENOEXEC:
                os.execve("/bin/sh", ["/bin/sh", path, *argv[1:]], env)
            # Keep the first error that says more than "not found" (EACCES, ...).
            if error is None or error.errno in (errno.ENOENT, errno.ENOTDIR):
                error = exc
    raise error if error is not None else OSError(errno.ENOENT, "not found")


def _write_quiet(fd: int, data: bytes) -> None:
    try:
        os.write(fd, data)
    except OSError:
        pass


def _close_all(fds: Sequence[int]) -> None:
    for fd in fds:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def _recv_fds(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One request and its fds, close-on-exec.

    ``socket.recv_fds`` drops its ``flags`` argument (CPython 3.11), so a
    command would inherit the request's fds, the spawner's socket among them,
    and could ask for processes outside its limits. Received fds are made
    non-inheritable here, atomically where the kernel allows.
    """
    fds = array.array("i")
    data, ancdata, _, _ = sock.recvmsg(
        MAX_REQUEST_BYTES + 1024, socket.CMSG_LEN(8 * fds.itemsize), socket.MSG_CMSG_CLOEXEC
    )
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    for fd in fds:
        os.set_inheritable(fd, False)
    return data, list(fds)


def _setrlimit(name: str, soft: int, hard: int) -> None:
    if name not in LIMIT_NAMES:
        raise OSError(errno.EINVAL, f"unknown limit {name}")
    resource.setrlimit(getattr(resource, name), (soft, hard))


def _which(name: str, env: Mapping[str, str]) -> str | None:
    """The file ``name`` runs as, looked up in ``env``'s PATH (None: let the fork path say why)."""
    candidates = (
        [name] if "/" in name else [os.path.join(d or ".", name) for d in os.get_exec_path(env)]
    )
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _move_to(procs_file: str) -> bool:
    """Move this process into the cgroup whose ``cgroup.procs`` is given."""
    try:
        fd = os.open(procs_file, os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
    except OSError:
        return False
    return True


class _Server:
    """A spawner's event loop: requests on its socket, exits on pidfds.

    The main server forks each command (limits set in the child) and forks
    *limited* servers on request. A limited server has set one set of limits
    on itself, so its children inherit them and it can start them with
    ``posix_spawn`` (vfork: no page tables copied; about 3x faster than a
    Python ``fork`` here); it retires (answers ``R``) once its own CPU time
    nears its CPU limit.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        retire_cpu_s: float | None = None,
        cgroup_home: str | None = None,
    ):
        self.sock = sock
        self.limited = retire_cpu_s is not None
        self.retire_cpu_s = retire_cpu_s
        self.cgroup_home = cgroup_home
        self.retiring = False
        self.sel = selectors.DefaultSelector()
        self.sel.register(sock, selectors.EVENT_READ, None)
        # pid -> [pidfd, status fd or -1, exited, released]
        self.children: dict[int, list[Any]] = {}
        self.subs: dict[int, int] = {}  # limited servers we forked: pid -> pidfd
        self.unannounced: dict[int, float] = {}  # pid -> when to send "P" without "X"

    def serve(self) -> None:
        """Answer requests until the client goes away."""
        self.sock.sendall(READY)
        while True:
            timeout = None
            if self.unannounced:
                timeout = max(0.0, min(self.unannounced.values()) - time.monotonic())
            events = self.sel.select(timeout)
            self._announce_due()
            for key, _ in events:
                if key.data is None:
                    if not self._request():
                        self._shutdown()
                        return
                elif key.data[0] == "sub":
                    self._reap_sub(key.data[1])
                else:
                    self._exited(key.data[1])

    def _request(self) -> bool:
        try:
            data, fds = _recv_fds(self.sock)
        except OSError:
            return False
        if not data:
            return False
        request = json.loads(data)
        for pid in request.get("release", ()):
            self._release(pid)
        op = request.get("op")
        if op == "spawn":
            self._spawn(request, fds if request.get("stdin") else [-1, *fds])
        elif op == "sub" and not self.limited and len(fds) == 1:
            self._start_sub(request, fds[0])
        else:
            _close_all(fds)
        return True

    # --------------------------------------------------------------- commands
    def _spawn(self, request: dict[str, Any], fds: list[int]) -> None:
        # fds: stdin (or -1 for /dev/null), stdout, stderr, status
        if len(fds) != 4:
            _close_all(fds)
            return
        status = fds[3]
        if self.retiring:
            _write_quiet(status, b"R\n")
            _close_all(fds)
            return
        pid = self._posix_spawn(request, fds) if self.limited else None
        if pid is None:
            try:
                pid = os.fork()
            except OSError as exc:
                _write_quiet(status, f"E {exc.errno}\n".encode())
                _close_all(fds)
                return
            if pid == 0:
                _child(request, fds)
        _close_all(fds[:3])
        pidfd = os.pidfd_open(pid)
        self.children[pid] = [pidfd, status, False, False]
        # The pid is announced with the exit report when the command ends within
        # ANNOUNCE_DELAY_S: the client then wakes once, not three times.
        self.unannounced[pid] = time.monotonic() + ANNOUNCE_DELAY_S
        self.sel.register(pidfd, selectors.EVENT_READ, ("child", pid))
        if self.limited:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self.retiring = usage.ru_utime + usage.ru_stime >= self.retire_cpu_s

    def _posix_spawn(self, request: dict[str, Any], fds: list[int]) -> int | None:
        """Start the command with vfork semantics; None: use the fork path (it reports errors)."""
        argv, env = request["argv"], request["env"]
        cgroup = request.get("cgroup_procs")
        try:
            os.chdir(request["cwd"])
        except OSError:
            return None
        path = _which(argv[0], env)
        if path is None or (cgroup and not (self.cgroup_home and _move_to(cgroup))):
            return None
        stdin = (
            (os.POSIX_SPAWN_DUP2, fds[0], 0)
            if fds[0] >= 0
            else (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
        )
        try:
            return os.posix_spawn(
                path,
                argv,
                env,
                file_actions=[
                    stdin,
                    (os.POSIX_SPAWN_DUP2, fds[1], 1),
                    (os.POSIX_SPAWN_DUP2, fds[2], 2),
                ],
                setsid=True,
                setsigdef=DEFAULT_SIGNALS,
            )
        except OSError:
            return None  # ENOEXEC (a script without #!), EACCES, ...: the fork path handles it
        finally:
            if cgroup and not _move_to(self.cgroup_home):
                # Stuck in a command's cgroup (which gets killed): take no more requests.
                self.retiring = True

    def _exited(self, pid: int) -> None:
        entry = self.children[pid]
        pidfd, status, _, released = entry
        self.sel.unregister(pidfd)
        os.close(pidfd)
        entry[0] = -1
        entry[2] = True
        if released:
            self._reap(pid)
            return
        # Report without reaping: the zombie keeps the pid and group id reserved.
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        report = f"P {pid}\n" if self.unannounced.pop(pid, None) is not None else ""
        if info is not None:
            report += f"X {info.si_code} {info.si_status}\n"
        _write_quiet(status, report.encode())
        _close_all([status])
        entry[1] = -1

    def _announce_due(self) -> None:
        now = time.monotonic()
        for pid, due in list(self.unannounced.items()):
            if due <= now:
                del self.unannounced[pid]
                if self.children[pid][1] >= 0:
                    _write_quiet(self.children[pid][1], f"P {pid}\n".encode())

    def _release(self, pid: int) -> None:
        entry = self.children.get(pid)
        if entry is None:
            return
        self.unannounced.pop(pid, None)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        entry[3] = True
        _close_all([entry[1]])
        entry[1] = -1
        if entry[2]:
            self._reap(pid)
        # else: reaped when its pidfd says it exited (SIGKILL is on its way).

    def _reap(self, pid: int) -> None:
        entry = self.children.pop(pid)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        _close_all([entry[0], entry[1]])

    # ------------------------------------------------------- limited servers
    def _start_sub(self, request: dict[str, Any], theirs: int) -> None:
        try:
            pid = os.fork()
        except OSError:
            _close_all([theirs])
            return
        if pid == 0:
            code = 0
            try:
                self._become_sub(request, theirs)
            except BaseException:  # noqa: BLE001  (a forked server must never return)
                code = 1
            finally:
                os._exit(code)
        _close_all([theirs])
        pidfd = os.pidfd_open(pid)
        self.subs[pid] = pidfd
        self.sel.register(pidfd, selectors.EVENT_READ, ("sub", pid))

    def _become_sub(self, request: dict[str, Any], theirs: int) -> None:
        self.unannounced.clear()
        # Drop every fd of the main server: a copy of a status pipe held here
        # would hide a command's end from the client.
        self.sel.close()
        self.sock.close()
        _close_all([fd for entry in self.children.values() for fd in entry[:2]])
        _close_all(list(self.subs.values()))
        home = request.get("cgroup_home")
        if home and not _move_to(home):
            home = None
        for name, soft, hard in request["limits"]:
            _setrlimit(name, soft, hard)
        os.set_inheritable(theirs, False)
        sub = _Server(
            socket.socket(fileno=theirs),
            retire_cpu_s=float(request["retire_cpu_s"]),
            cgroup_home=home,
        )
        sub.serve()

    def _reap_sub(self, pid: int) -> None:
        pidfd = self.subs.pop(pid)
        self.sel.unregister(pidfd)
        os.close(pidfd)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    def _shutdown(self) -> None:
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in list(self.children):
            self._reap(pid)
        # Limited servers end when the client closes their sockets; wait for them
        # (briefly) so the client can remove their cgroup afterwards.
        for pid in list(self.subs):
            os.close(self.subs.pop(pid))
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def serve(fd: int) -> None:
    """Run the main spawner on an inherited ``SOCK_SEQPACKET`` socket fd."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the VM decides when we stop
    if not hasattr(os, "pidfd_open"):
        sys.exit(2)  # no handshake: the client falls back to spawning directly
    sock = socket.socket(fileno=fd)
    os.set_inheritable(fd, False)
    _Server(sock).serve()


# ============================================================================ client


class SpawnerError(Exception):
    """The spawner could not start, or could not start a command (it has not run)."""


class RequestTooLarge(SpawnerError):
    """The command's argv and environment do not fit in one request."""


class SpawnedChild:
    """A command started by a spawner: its pid and the status pipe to watch."""

    def __init__(self, pid: int, status_fd: int, channel: _Channel):
        self.pid = pid
        self.status_fd = status_fd
        self.channel = channel
        self.returncode: int | None = None
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        """Parse status bytes; sets :attr:`returncode` on the ``X`` line."""
        self._buffer += chunk
        for line in self._buffer.split(b"\n"):
            if line.startswith(b"X "):
                code, status = map(int, line.split()[1:3])
                self.returncode = status if code == os.CLD_EXITED else -status


class _Channel:
    """The client's socket to one server (main or limited); thread-safe."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.dead = False
        self.retired = False  # no new commands; closed when the last one is released
        self.outstanding = 0
        self.lock = threading.Lock()
        # Releases ride on the next request: one message (and server wake-up) less per command.
        self.pending: list[int] = []

    def handshake(self) -> None:
        """Wait for the server's READY (SpawnerError when it does not come)."""
        try:
            self.sock.settimeout(HANDSHAKE_TIMEOUT_S)
            ready = self.sock.recv(64)
        except OSError as exc:
            raise SpawnerError(f"the spawner did not start: {exc}") from None
        finally:
            self.sock.settimeout(None)
        if ready != READY:
            raise SpawnerError("the spawner did not start (no handshake)")

    def _take_pending(self) -> list[int]:
        with self.lock:
            pending, self.pending = self.pending, []
        return pending

    def spawn(self, request: dict[str, Any], fds: list[int]) -> SpawnedChild:
        """Send one spawn request with the child's fds (not closed here)."""
        if self.dead or self.retired:
            raise SpawnerError("spawner channel closed")
        pending = self._take_pending()
        data = json.dumps({**request, "release": pending}).encode()
        if len(data) > MAX_REQUEST_BYTES:
            with self.lock:
                self.pending[:0] = pending
            raise RequestTooLarge(f"a {len(data)}-byte request is too large for the spawner")
        status_r, status_w = os.pipe()
        try:
            socket.send_fds(self.sock, [data], [*fds, status_w])
        except OSError as exc:
            os.close(status_r)
            self.dead = True
            raise SpawnerError(f"the spawner is gone: {exc}") from None
        finally:
            os.close(status_w)
        line, rest = _read_line(status_r, HANDSHAKE_TIMEOUT_S)
        if not line.startswith(b"P "):
            os.close(status_r)
            if line == b"R":
                self.retire()
                raise SpawnerError("the spawner retired")
            if line.startswith(b"E "):
                raise SpawnerError(
                    f"fork failed in the spawner: {os.strerror(int(line.split()[1]))}"
                )
            self.dead = True
            raise SpawnerError("the spawner died before starting the command")
        child = SpawnedChild(int(line.split()[1]), status_r, self)
        with self.lock:
            self.outstanding += 1
        if rest:
            child.feed(rest)
        return child

    def release(self, child: SpawnedChild) -> None:
        """Let the server kill the child's group and reap it (with the next request)."""
        with self.lock:
            self.pending.append(child.pid)
            self.outstanding -= 1
            flush = len(self.pending) >= MAX_PENDING_RELEASES
            done = self.retired and self.outstanding <= 0
        if flush and not done:
            self.flush()
        if done:
            self.close()

    def flush(self) -> None:
        """Send the pending releases now."""
        pending = self._take_pending()
        if pending and not self.dead:
            try:
                self.sock.send(json.dumps({"op": "release", "release": pending}).encode())
            except OSError:
                self.dead = True

    def retire(self) -> None:
        """Take no new commands; close once the running ones are released."""
        with self.lock:
            self.retired = True
            done = self.outstanding <= 0
        if done:
            self.close()

    def close(self) -> None:
        """Close the socket: the server kills what it still runs, reaps it and exits."""
        self.dead = True
        self.sock.close()


#: A command still running after this long gets its pid announced on its own.
ANNOUNCE_DELAY_S = 0.002
#: Released children whose reaping may wait for the next request (zombies held meanwhile).
MAX_PENDING_RELEASES = 16
#: A limited server retires when its own CPU time reaches this share of its CPU limit.
RETIRE_FRACTION = 0.5
#: Limited servers kept per spawner (one per distinct set of limits).
MAX_LIMITED = 4
#: Below this address-space limit a limited server would not fit: commands are forked.
MIN_LIMITED_AS = 256 << 20


class Spawner:
    """Client of one spawner process and the limited servers it forked."""

    def __init__(self, popen: Callable[..., subprocess.Popen] = subprocess.Popen):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={"PATH": os.defpath, "LANG": "C.UTF-8"},
                cwd="/",
                start_new_session=True,  # a terminal's Ctrl-C is for the VM, not for us
                close_fds=True,
            )
        except OSError as exc:
            ours.close()
            raise SpawnerError(f"cannot start the spawner: {exc}") from None
        finally:
            theirs.close()
        self.main = _Channel(ours)
        self.owner_pid = os.getpid()
        self.limited: dict[tuple, _Channel] = {}
        self._channels: list[_Channel] = []  # every limited channel made, retired ones too
        self.limited_error: str | None = None
        self._lock = threading.Lock()
        try:
            self.main.handshake()
        except SpawnerError:
            self.close()
            raise

    @property
    def usable(self) -> bool:
        """Whether requests can be sent (alive, and owned by this process)."""
        return not self.main.dead and self.owner_pid == os.getpid() and self.proc.poll() is None

    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str,
        limits: Sequence[tuple[str, int, int]],
        cgroup_procs: str | None = None,
        cgroup_home: str | None = None,
        stdin_fd: int | None = None,
        stdout_fd: int,
        stderr_fd: int,
    ) -> SpawnedChild:
        """Start ``argv``; the fds are the child's ends (the caller closes its copies).

        Uses a limited server for these limits when one fits (``posix_spawn``),
        else the main server (``fork``). Raises :class:`SpawnerError` when no
        server could start it; the command has then not run.
        """
        request = {
            "op": "spawn",
            "argv": list(argv),
            "env": dict(env),
            "cwd": cwd,
            "limits": [list(limit) for limit in limits],
            "cgroup_procs": cgroup_procs,
            "stdin": stdin_fd is not None,
        }
        fds = [fd for fd in (stdin_fd, stdout_fd, stderr_fd) if fd is not None]
        key = tuple(map(tuple, limits))
        for _ in range(2):  # a limited server that just retired is replaced once
            channel = self._limited(key, cgroup_home)
            if channel is None:
                break
            try:
                return channel.spawn(request, fds)
            except RequestTooLarge:
                raise
            except SpawnerError:
                with self._lock:
                    if self.limited.get(key) is channel:
                        del self.limited[key]
                channel.retire()  # closed once its running commands are released
        return self.main.spawn(request, fds)

    def _limited(self, limits: tuple, cgroup_home: str | None) -> _Channel | None:
        """The limited server for ``limits``, forked on first use (None: not possible)."""
        channel = self.limited.get(limits)
        if channel is not None and not channel.dead and not channel.retired:
            return channel
        if self.limited_error is not None or not hasattr(os, "posix_spawn"):
            return None
        values = {name: soft for name, soft, _ in limits}
        if values.get("RLIMIT_AS", MIN_LIMITED_AS) < MIN_LIMITED_AS or "RLIMIT_CPU" not in values:
            return None
        with self._lock:
            channel = self.limited.get(limits)
            if channel is not None and not channel.dead and not channel.retired:
                return channel
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            request = json.dumps(
                {
                    "op": "sub",
                    "limits": [list(x) for x in limits],
                    "cgroup_home": cgroup_home,
                    "retire_cpu_s": values["RLIMIT_CPU"] * RETIRE_FRACTION,
                }
            ).encode()
            try:
                socket.send_fds(self.main.sock, [request], [theirs.fileno()])
            except OSError:
                ours.close()
                self.main.dead = True
                return None
            finally:
                theirs.close()
            channel = _Channel(ours)
            try:
                channel.handshake()
            except SpawnerError as exc:
                channel.close()
                self.limited_error = str(exc)
                return None
            if len(self.limited) >= MAX_LIMITED:
                # Least recently made first: a run's limits rarely change.
                self.limited.pop(next(iter(self.limited))).retire()
            self.limited[limits] = channel
            self._channels = [c for c in self._channels if not c.dead] + [channel]
            return channel

    def release(self, child: SpawnedChild) -> None:
        """Kill the child's group and let its server reap it; closes the status pipe."""
        try:
            os.close(child.status_fd)
        except OSError:
            pass
        child.channel.release(child)

    def retire(self) -> None:
        """Take no new commands; every server stops once its commands are released."""
        with self._lock:
            channels = [*self.limited.values(), self.main]
            self.limited.clear()
        for channel in channels:
            channel.retire()

    def close(self) -> None:
        """Stop every server (each kills what it still runs) and wait for the main one."""
        with self._lock:
            channels = [*self._channels, self.main]
            self.limited.clear()
            self._channels = []
        for channel in channels:
            channel.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _read_line(fd: int, timeout_s: float) -> tuple[bytes, bytes]:
    """Read the first line from a pipe: (line, bytes read after it); b"" on EOF or timeout."""
    buffer = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            if not sel.select(timeout_s):
                return b"", b""
            chunk = os.read(fd, 256)
            if not chunk:
                return buffer, b""
            buffer += chunk
    line, _, rest = buffer.partition(b"\n")
    return line, rest


if __name__ == "__main__":
    serve(int(sys.argv[1]))

__all__ = ["RequestTooLarge", "SpawnedChild", "Spawner", "SpawnerError", "serve"]
