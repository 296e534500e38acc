"""A persistent fork server that starts the sandbox's commands.

Without it every command costs a ``/bin/sh`` wrapper exec'd to set the limits
before the command itself. The spawner is a small Python process (standard
library only, run with ``-I -S``) started once per VM process and network
mode, from the thread that entered the empty network namespace when the
network is off, so it and its children live there. It never sees the host's
environment: each request carries the command's (scrubbed) one.

Requests come over a ``SOCK_SEQPACKET`` socket pair, each with the command's
stdin (when it has one), stdout and stderr pipe ends and a *status pipe*
attached (``SCM_RIGHTS``, received close-on-exec: a command holds fds 0-2
only). A request is one message of NUL-separated fields (no path, argv entry
or environment entry can hold a NUL, so nothing needs quoting and the server
parses a request with one ``split``)::

    op NUL released-pids NUL payload
    spawn payload:  cwd NUL cgroup-procs NUL limits NUL argc NUL argv... (NUL name NUL value)...
    sub payload:    limits NUL cgroup-home NUL retire-cpu-seconds
    status payload: pid
    release payload: (empty; the message only carries released pids)

``released-pids`` are space-separated; ``limits`` are ``NAME:soft:hard``
items, space-separated; an empty ``cgroup-procs`` means no pids cgroup.

Two kinds of server answer them:

* a **limited server** per distinct set of limits, forked by the main one: it
  sets the rlimits on itself (children inherit them) and starts commands with
  ``posix_spawn`` (vfork: no page tables copied), ``setsid`` and default
  signal actions, joining the command's pids cgroup just around the spawn
  (through ``cgroup.procs`` files it keeps open). It retires (answers ``R``)
  when its own CPU time nears its CPU limit.
* the **main server** forks a child that restores the default
  SIGPIPE/SIGXFSZ/SIGINT actions, calls ``setsid``, joins the pids cgroup,
  sets ``RLIMIT_CORE``/``CPU``/``AS``/``FSIZE``/``NPROC``, enters the working
  directory, moves the pipes to fds 0-2 and execs. It serves limits a
  limited server cannot live under (a small address space), and any command
  ``posix_spawn`` refused: a failure before ``exec`` exits 126 (cannot set a
  limit, not executable) or 127 (not found) with the reason on stderr, and a
  file without ``#!`` runs under ``/bin/sh``, as a shell would.

Status pipe protocol (a line written by the server): ``P <pid>`` as soon as
the command started, ``E <errno>`` (fork failed) or ``R`` (retired) when it
did not. The server then keeps the pipe open, and the exited command
unreaped (a zombie), until the client releases it (with its next request):
so its process group id cannot be reused while the client may ``killpg``
it, and the client learns its exit itself, without waking the server: it
watches a pidfd of the command and reads the zombie's wait status from
``/proc/<pid>/stat`` (field 52, ``exit_code``). A status pipe closed before
that means the server died. When ``/proc`` cannot say, the client asks the
server (``status`` request; the server answers ``X <si_code> <si_status>``).

When the client's socket closes (the VM exited, even by SIGKILL) a server
kills every command it still runs and exits. The client side,
:class:`Spawner`, is used by :mod:`skvm.runtime.sandbox`; supervision
(timeout, output caps, the pids cgroup's fork counter, killing the group)
stays in the VM.
"""

from __future__ import annotations

import array
import errno
import functools
import itertools
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

#: Largest request sent to the spawner; bigger ones (huge argv/env) use the direct path.
MAX_REQUEST_BYTES = 128 * 1024
#: How long the client waits for the server to say it is ready, or for a pid.
HANDSHAKE_TIMEOUT_S = 10.0
READY = b"skvm-spawner ready"

#: rlimit names a request may set (``resource`` constants, resolved in the server).
LIMIT_NAMES = frozenset({"RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NPROC"})
#: Signals a command starts with at their default action (the spawner ignores them).
DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT)
#: Separates the fields of a request.
SEP = b"\0"

Limits = Sequence[tuple[str, int, int]]


def encode_limits(limits: Limits) -> str:
    """``limits`` as a request field: ``NAME:soft:hard`` items, space-separated."""
    return " ".join(f"{name}:{soft}:{hard}" for name, soft, hard in limits)


_encode_limits_cached = functools.lru_cache(maxsize=64)(encode_limits)


def decode_limits(field: bytes) -> list[tuple[str, int, int]]:
    """The inverse of :func:`encode_limits`."""
    limits = []
    for item in field.decode().split():
        name, soft, hard = item.split(":")
        limits.append((name, int(soft), int(hard)))
    return limits


# ============================================================================ server
# Everything from here to the client section runs inside the spawner process and
# must only use the standard library (the process runs with -I -S). Paths, argv
# and environment stay bytes there: they go to the kernel as they came.


class _Command:
    """A parsed spawn request."""

    __slots__ = ("argv", "cgroup_procs", "cwd", "env", "landlock", "limits", "namespace")

    def __init__(self, payload: bytes):
        fields = payload.split(SEP)
        if len(fields) < 6:
            raise ValueError("malformed spawn request")
        self.cwd = fields[0]
        self.cgroup_procs = fields[1] or None
        self.limits = fields[2]  # decoded only where they are set: the fork path
        self.landlock = b"1" in fields[3]  # a Landlock ruleset fd comes first
        self.namespace = b"p" in fields[3]  # then the commands' PID and mount namespaces
        argc = int(fields[4])
        self.argv = fields[5 : 5 + argc]
        pairs = fields[5 + argc :]
        self.env = dict(zip(pairs[0::2], pairs[1::2]))
        if not self.argv or len(pairs) % 2:
            raise ValueError("malformed spawn request")


@functools.lru_cache(maxsize=1)
def _libc():
    """The C library, for the two Landlock calls (loaded in the server, before any fork)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _setns(fd: int, kind: int) -> None:
    """``setns(fd, kind)`` (OSError when refused)."""
    import ctypes

    if _libc().setns(fd, kind) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def _restrict(ruleset_fd: int) -> None:
    """``no_new_privs``, then ``landlock_restrict_self`` (OSError when refused)."""
    import ctypes

    libc = _libc()
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    if libc.syscall(446, ruleset_fd, 0) != 0:  # landlock_restrict_self, the same on every arch
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


_CLONE_NEWNS = 0x00020000
_CLONE_NEWPID = 0x20000000


def _child(command: _Command, fds: list[int], ruleset_fd: int = -1, mntns_fd: int = -1) -> None:
    """In the forked child: confine, then exec the command. Never returns."""
    code = 126
    err = fds[2]
    name = os.fsdecode(command.argv[0])
    try:
        # Python ignores these (and the spawner SIGINT); a command expects the defaults.
        for sig in DEFAULT_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        if mntns_fd >= 0:
            # Its /proc is that of the PID namespace this child was born in.
            step = "enter the commands' process namespace"
            _setns(mntns_fd, _CLONE_NEWNS)
        step = "join the pids cgroup"
        if command.cgroup_procs:
            fd = os.open(command.cgroup_procs, os.O_WRONLY)
            os.write(fd, b"0")  # this process (its pid here may be that of its namespace)
            os.close(fd)
        for limit, soft, hard in decode_limits(command.limits):
            step = f"set {limit}"
            _setrlimit(limit, soft, hard)
        if ruleset_fd >= 0:
            step = "restrict itself to the Landlock ruleset"
            _restrict(ruleset_fd)
        step = f"enter {os.fsdecode(command.cwd)}"
        os.chdir(command.cwd)
        step = "set up the standard streams"
        stdin = fds[0] if fds[0] >= 0 else os.open(os.devnull, os.O_RDONLY)
        for target, source in enumerate((stdin, fds[1], fds[2])):
            os.dup2(source, target)
        err = 2
        step = name
        code = 127
        _exec(command.argv, command.env)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR) or step != name:
            code = 126
        reason = "not found" if code == 127 else (exc.strerror or str(exc))
        _write_quiet(err, f"skvm-sandbox: {step}: {reason}\n".encode(errors="replace"))
    except BaseException as exc:  # noqa: BLE001  (a child must never return)
        _write_quiet(err, f"skvm-sandbox: {exc!r}\n".encode(errors="replace"))
    finally:
        os._exit(code)


def _exec_path(env: Mapping[bytes, bytes]) -> list[bytes]:
    """The directories a command name is looked up in (``os.get_exec_path`` for bytes)."""
    return env.get(b"PATH", os.fsencode(os.defpath)).split(b":")


def exec_candidates(name: bytes, path: bytes | None = None) -> list[bytes]:
    """The paths ``name`` is exec'd as, in order: as is with a ``/``, else along ``path``.

    ``path`` is the command's PATH (None: ``os.defpath``), looked up as ``sh`` does.
    """
    if b"/" in name:
        return [name]
    directories = (os.fsencode(os.defpath) if path is None else path).split(b":")
    return [os.path.join(directory or b".", name) for directory in directories]


def _exec(argv: list[bytes], env: dict[bytes, bytes]) -> None:
    """``execvpe`` as ``sh`` does it: PATH from ``env``; a file without #! runs as a script."""
    error: OSError | None = None
    for path in exec_candidates(argv[0], env.get(b"PATH")):
        try:
            os.execve(path, argv, env)
        except OSError as exc:
            if exc.errno == errno.ENOEXEC:
                os.execve(b"/bin/sh", [b"/bin/sh", path, *argv[1:]], env)
            # Keep the first error that says more than "not found" (EACCES, ...).
            if error is None or error.errno in (errno.ENOENT, errno.ENOTDIR):
                error = exc
    raise error if error is not None else OSError(errno.ENOENT, "not found")


def _which(name: bytes, env: Mapping[bytes, bytes]) -> bytes | None:
    """The file command ``name`` (no ``/`` in it) runs as, looked up in ``env``'s PATH."""
    for directory in _exec_path(env):
        path = os.path.join(directory or b".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


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


def _recv_fds(sock: socket.socket, buffer: bytearray) -> tuple[bytes, list[int]]:
    """One request (read into ``buffer``, reused: no 128 KiB allocation per request) and its fds.

    ``socket.recv_fds`` drops its ``flags`` argument (CPython 3.11), so a
    command would inherit the request's fds, the spawner's socket among them,
    and could ask for processes outside its limits. ``MSG_CMSG_CLOEXEC`` makes
    the kernel install them close-on-exec, atomically.
    """
    fds = array.array("i")
    size, ancdata, _, _ = sock.recvmsg_into(
        [buffer], socket.CMSG_LEN(8 * fds.itemsize), socket.MSG_CMSG_CLOEXEC
    )
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return bytes(memoryview(buffer)[:size]), list(fds)


def _setrlimit(name: str, soft: int, hard: int) -> None:
    if name not in LIMIT_NAMES:
        raise OSError(errno.EINVAL, f"unknown limit {name}")
    resource.setrlimit(getattr(resource, name), (soft, hard))


class _Server:
    """A spawner's event loop: requests on its socket (and pidfds of released commands).

    The main server forks each command (limits set in the child) and forks
    *limited* servers on request. A limited server has set one set of limits
    on itself, so its children inherit them and it can start them with
    ``posix_spawn`` (vfork: no page tables copied; about 3x faster than a
    Python ``fork`` here); it retires (answers ``R``) once its own CPU time
    nears its CPU limit. A server does not watch its commands run: it wakes
    for requests only (and to reap a released command that was still dying).
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        retire_cpu_s: float | None = None,
        cgroup_home: bytes | None = None,
    ):
        self.sock = sock
        self.sock_fd = sock.fileno()
        self.limited = retire_cpu_s is not None
        self.retire_cpu_s = retire_cpu_s
        self.cgroup_home = cgroup_home
        self.retiring = False
        self.epoll = select.epoll()
        self.epoll.register(self.sock_fd, select.EPOLLIN)
        self.children: dict[int, int] = {}  # started, not released: pid -> status fd
        self.dying: dict[int, int] = {}  # released, still running: pidfd -> pid
        self.subs: dict[int, int] = {}  # limited servers we forked: pidfd -> pid
        # cgroup.procs files this server moves itself through, kept open (close-on-exec).
        self.procs_fds: dict[bytes, int] = {}
        self.pid_text = str(os.getpid()).encode()
        self.own_pidns_fd = -1
        self.buffer = bytearray(MAX_REQUEST_BYTES + 1024)

    def serve(self) -> None:
        """Answer requests until the client goes away."""
        self.sock.sendall(READY)
        while True:
            for fd, _ in self.epoll.poll():
                if fd == self.sock_fd:
                    if not self._request():
                        self._shutdown()
                        return
                elif fd in self.dying:
                    self._unwatch(fd)
                    self._reap(self.dying.pop(fd))
                elif fd in self.subs:
                    self._unwatch(fd)
                    self._reap(self.subs.pop(fd))

    def _request(self) -> bool:
        try:
            data, fds = _recv_fds(self.sock, self.buffer)
        except OSError:
            return False
        if not data:
            _close_all(fds)
            return False
        parts = data.split(SEP, 2)
        if len(parts) != 3:
            _close_all(fds)
            return True
        op, released, payload = parts
        if op == b"spawn":
            self._spawn(payload, fds)
        elif op == b"status":
            self._status(int(payload or 0))
        elif op == b"sub" and not self.limited and len(fds) == 1:
            self._start_sub(payload, fds[0])
        else:
            _close_all(fds)
        # Reaping takes a while (tens of microseconds): do it once the new command
        # is on its way, while it runs, rather than before starting it.
        for pid in released.split():
            self._release(int(pid))
        return True

    # --------------------------------------------------------------- commands
    def _spawn(self, payload: bytes, fds: list[int]) -> None:
        try:
            command = _Command(payload)
        except (ValueError, IndexError):
            command = None
        # fds: [Landlock ruleset], [PID namespace, mount namespace], stdin (absent:
        # /dev/null), stdout, stderr, status
        ruleset = fds.pop(0) if command is not None and command.landlock and fds else -1
        namespace = [fds.pop(0), fds.pop(0)] if command and command.namespace and len(fds) > 2 else []
        extra = ([ruleset] if ruleset >= 0 else []) + namespace
        if len(fds) == 3:
            fds = [-1, *fds]
        if len(fds) != 4:
            _close_all([*fds, *extra])
            return
        status = fds[3]
        if self.retiring or command is None:
            _write_quiet(status, b"R\n" if self.retiring else b"E %d\n" % errno.EINVAL)
            _close_all([*fds, *extra])
            return
        # posix_spawn runs no code in the child: a confined command takes the fork path.
        pid = self._posix_spawn(command, fds) if self.limited and not extra else None
        if pid is None:
            if extra:
                _libc()  # loaded once here, not in every child
            try:
                pid = self._fork(namespace[0] if namespace else -1)
            except OSError as exc:
                _write_quiet(status, b"E %d\n" % exc.errno)
                _close_all([*fds, *extra])
                return
            if pid == 0:
                _child(command, fds, ruleset, namespace[1] if namespace else -1)
        _write_quiet(status, b"P %d\n" % pid)
        _close_all([*fds[:3], *extra])
        self.children[pid] = status
        if self.limited:
            # RLIMIT_CPU counts this process's CPU time, as process_time() does.
            self.retiring = time.process_time() >= self.retire_cpu_s

    def _fork(self, pidns_fd: int) -> int:
        """``os.fork``, the child born in the PID namespace ``pidns_fd`` when not -1.

        setns(CLONE_NEWPID) sets where this process's next child is born, not
        where it lives; it is set back right after the fork. Should that fail,
        the child is killed: a command the VM is told did not start must not run.
        """
        if pidns_fd < 0:
            return os.fork()
        if self.own_pidns_fd < 0:
            self.own_pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        _setns(pidns_fd, _CLONE_NEWPID)
        try:
            pid = os.fork()
        except OSError:
            _setns(self.own_pidns_fd, _CLONE_NEWPID)
            raise
        if pid:
            try:
                _setns(self.own_pidns_fd, _CLONE_NEWPID)
            except OSError:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise
        return pid

    def _posix_spawn(self, command: _Command, fds: list[int]) -> int | None:
        """Start the command with vfork semantics; None: use the fork path (it reports errors)."""
        argv, env, cgroup = command.argv, command.env, command.cgroup_procs
        try:
            os.chdir(command.cwd)
        except OSError:
            return None
        # A path is spawned as is (posix_spawn refuses what the fork path must explain:
        # not found, not executable, no #!); a name is looked up in the command's PATH.
        path = argv[0] if b"/" in argv[0] else _which(argv[0], env)
        if path is None or (cgroup and not (self.cgroup_home and self._join(cgroup))):
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
        except (OSError, ValueError):
            return None  # ENOEXEC (a script without #!), EACCES, ...: the fork path handles it
        finally:
            if cgroup and not self._join(self.cgroup_home):
                # Stuck in a command's cgroup (which gets killed): take no more requests.
                self.retiring = True

    def _join(self, procs_file: bytes) -> bool:
        """Move this process into the cgroup whose ``cgroup.procs`` is given.

        The file stays open for the next command (most reuse the same pooled
        cgroups); a cgroup removed and made again gets a fresh fd.
        """
        for _ in range(2):
            fd = self.procs_fds.pop(procs_file, None)
            try:
                if fd is None:
                    fd = os.open(procs_file, os.O_WRONLY)
                os.write(fd, self.pid_text)
            except OSError:
                _close_all([fd] if fd is not None else [])
                continue
            self.procs_fds[procs_file] = fd
            return True
        return False

    def _status(self, pid: int) -> None:
        """Report a command's exit on its status pipe (for a client /proc did not answer)."""
        status = self.children.get(pid)
        if status is None:
            return
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            info = None
        if info is not None:
            _write_quiet(status, b"X %d %d\n" % (info.si_code, info.si_status))

    def _release(self, pid: int) -> None:
        """Kill the command's group, close its status pipe and reap it (once it is gone)."""
        status = self.children.pop(pid, None)
        if status is None:
            return
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        _close_all([status])
        try:
            reaped = os.waitpid(pid, os.WNOHANG)[0] != 0
        except ChildProcessError:
            reaped = True
        if not reaped:
            # Still dying (SIGKILL is on its way): reaped when its pidfd says so.
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                self._reap(pid)
                return
            self.dying[pidfd] = pid
            self.epoll.register(pidfd, select.EPOLLIN)

    def _unwatch(self, pidfd: int) -> None:
        self.epoll.unregister(pidfd)
        os.close(pidfd)

    @staticmethod
    def _reap(pid: int) -> None:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    # ------------------------------------------------------- limited servers
    def _start_sub(self, payload: bytes, theirs: int) -> None:
        try:
            pid = os.fork()
        except OSError:
            _close_all([theirs])
            return
        if pid == 0:
            code = 0
            try:
                self._become_sub(payload, theirs)
            except BaseException:  # noqa: BLE001  (a forked server must never return)
                code = 1
            finally:
                os._exit(code)
        _close_all([theirs])
        pidfd = os.pidfd_open(pid)
        self.subs[pidfd] = pid
        self.epoll.register(pidfd, select.EPOLLIN)

    def _become_sub(self, payload: bytes, theirs: int) -> None:
        limits, home, retire_cpu_s = payload.split(SEP)
        # Drop every fd of the main server: a copy of a status pipe held here
        # would hide a command's end from the client.
        self.epoll.close()
        self.sock.close()
        _close_all([*self.children.values(), *self.dying, *self.subs])
        _close_all(list(self.procs_fds.values()))
        sub = _Server(
            socket.socket(fileno=theirs),
            retire_cpu_s=float(retire_cpu_s),
            cgroup_home=home or None,
        )
        if sub.cgroup_home and not sub._join(sub.cgroup_home):
            sub.cgroup_home = None
        for name, soft, hard in decode_limits(limits):
            _setrlimit(name, soft, hard)
        sub.serve()

    def _shutdown(self) -> None:
        for pid in self.children:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid in [*self.children, *self.dying.values()]:
            self._reap(pid)
        # Limited servers end when the client closes their sockets; wait for them
        # (briefly) so the client can remove their cgroup afterwards.
        for pid in self.subs.values():
            self._reap(pid)


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


class CommandLost(SpawnerError):
    """The server went away (or stopped answering) after taking the request.

    The command may have started: it must not be started again elsewhere.
    """


class RequestTooLarge(SpawnerError):
    """The command's argv and environment do not fit in one request (or hold a NUL)."""


class SpawnedChild:
    """A command started by a spawner: its pid, a pidfd and the status pipe to watch.

    The pidfd becomes readable when the command exits; :meth:`collect` then
    reads its wait status. The status pipe closing first means the server died.
    """

    def __init__(self, pid: int, status_fd: int, channel: _Channel):
        self.pid = pid
        self.status_fd = status_fd
        self.channel = channel
        self.returncode: int | None = None
        # Race-free: the server keeps the command unreaped until it is released.
        self.pidfd = os.pidfd_open(pid)

    def collect(self) -> bool:
        """After the pidfd fired: set :attr:`returncode`; False when the server died first.

        The exit status comes from the zombie's ``/proc/<pid>/stat``, else from
        the server (a ``status`` request answered on the status pipe).
        """
        status = _zombie_status(self.pid)
        if status is not None:
            try:
                # Still ours (a zombie the server holds): the status read was its own.
                signal.pidfd_send_signal(self.pidfd, 0)
            except OSError:
                return False
            self.returncode = os.waitstatus_to_exitcode(status)
            return True
        if not self.channel.ask_status(self.pid):
            return False
        line, _ = _read_line(self.status_fd, HANDSHAKE_TIMEOUT_S)
        if not line.startswith(b"X "):
            return False
        code, value = map(int, line.split()[1:3])
        self.returncode = value if code == os.CLD_EXITED else -value
        return True

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the command to exit (up to ``timeout_s``) and collect its status."""
        return wait_readable(self.pidfd, timeout_s) and self.collect()

    def close(self) -> None:
        """Close our fds (the pidfd and the status pipe)."""
        _close_all([self.pidfd, self.status_fd])
        self.pidfd = self.status_fd = -1


def wait_readable(fd: int, timeout_s: float | None) -> bool:
    """Wait until ``fd`` (a pidfd: the process exited) is readable; False on timeout."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(None if timeout_s is None else 1000 * timeout_s))


def _zombie_status(pid: int) -> int | None:
    """The wait status of exited process ``pid`` from /proc (None: not readable, or running)."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        stat = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    # Fields after the parenthesised command: state (field 3) ... exit_code (field 52).
    fields = stat.rpartition(b")")[2].split()
    if len(fields) < 50 or fields[0] != b"Z":
        return None
    return int(fields[49])


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

    def _message(self, op: bytes, payload: bytes) -> bytes:
        """A request carrying the pending releases (taken from the list)."""
        with self.lock:
            pending, self.pending = self.pending, []
        return SEP.join((op, " ".join(map(str, pending)).encode(), payload))

    def spawn(self, payload: bytes, fds: list[int]) -> SpawnedChild:
        """Send one spawn request with the child's fds (not closed here)."""
        if self.dead or self.retired:
            raise SpawnerError("spawner channel closed")
        status_r, status_w = os.pipe()
        try:
            socket.send_fds(self.sock, [self._message(b"spawn", payload)], [*fds, status_w])
        except OSError as exc:
            os.close(status_r)
            self.dead = True
            raise SpawnerError(f"the spawner is gone: {exc}") from None
        finally:
            os.close(status_w)
        line, _ = _read_line(status_r, HANDSHAKE_TIMEOUT_S)
        if not line.startswith(b"P "):
            os.close(status_r)
            if line == b"R":
                self.retire()
                raise SpawnerError("the spawner retired")
            if line.startswith(b"E "):
                raise SpawnerError(
                    f"fork failed in the spawner: {os.strerror(int(line.split()[1]))}"
                )
            # Died (or hung) with the request in hand, perhaps after starting the
            # command but before announcing it: closing the socket makes a hung
            # server kill whatever it started once it wakes.
            self.close()
            raise CommandLost("the spawner died while starting the command")
        try:
            child = SpawnedChild(int(line[2:]), status_r, self)
        except OSError:
            # No such process: the server died and the command was reaped by another.
            os.close(status_r)
            self.close()
            raise CommandLost("the spawner died while starting the command") from None
        with self.lock:
            self.outstanding += 1
        return child

    def ask_status(self, pid: int) -> bool:
        """Ask the server to report ``pid``'s exit on its status pipe."""
        try:
            self.sock.send(self._message(b"status", str(pid).encode()))
        except OSError:
            self.dead = True
            return False
        return True

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
        message = self._message(b"release", b"")
        if message != b"release\0\0" and not self.dead:
            try:
                self.sock.send(message)
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


#: Released children whose reaping may wait for the next request (zombies held meanwhile).
MAX_PENDING_RELEASES = 16
#: A limited server retires when its own CPU time reaches this share of its CPU limit.
RETIRE_FRACTION = 0.5
#: Limited servers kept per spawner (one per distinct set of limits).
MAX_LIMITED = 4
#: Below this address-space limit a limited server would not fit: commands are forked.
MIN_LIMITED_AS = 256 << 20


def _spawn_payload(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    cgroup_procs: str | None,
    limits: Limits,
    landlock: bool = False,
    namespace: bool = False,
) -> bytes:
    """The payload of a spawn request (RequestTooLarge: it cannot be sent)."""
    flags = ("1" if landlock else "") + ("p" if namespace else "")
    head = (cwd, cgroup_procs or "", _encode_limits_cached(tuple(limits)), flags, str(len(argv)))
    text = "\0".join(itertools.chain(head, argv, itertools.chain.from_iterable(env.items())))
    if text.count("\0") != len(head) + len(argv) + 2 * len(env) - 1:
        # Not a valid C string: the direct path reports it (ValueError) as before.
        raise RequestTooLarge("an argv or environment entry holds a NUL byte")
    payload = text.encode("utf-8", "surrogateescape")  # os.fsencode, in one call
    if len(payload) > MAX_REQUEST_BYTES:
        raise RequestTooLarge(f"a {len(payload)}-byte request is too large for the spawner")
    return payload


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
        limits: Limits,
        cgroup_procs: str | None = None,
        cgroup_home: str | None = None,
        stdin_fd: int | None = None,
        stdout_fd: int,
        stderr_fd: int,
        landlock_fd: int = -1,
        namespace_fds: tuple[int, int] | None = None,
    ) -> SpawnedChild:
        """Start ``argv``; the fds are the child's ends (the caller closes its copies).

        Uses a limited server for these limits when one fits (``posix_spawn``),
        else the main server (``fork``). With a Landlock ruleset (``landlock_fd``)
        the main server forks and the child restricts itself before exec; with
        ``namespace_fds`` (a PID and a mount namespace) it forks the child into
        them. Raises :class:`SpawnerError` when no server could start it; the command
        has then not run.
        """
        payload = _spawn_payload(argv, env, cwd, cgroup_procs, limits, landlock_fd >= 0,
                                 namespace_fds is not None)
        fds = [stdout_fd, stderr_fd] if stdin_fd is None else [stdin_fd, stdout_fd, stderr_fd]
        if landlock_fd >= 0 or namespace_fds is not None:
            extra = ([landlock_fd] if landlock_fd >= 0 else []) + list(namespace_fds or ())
            return self.main.spawn(payload, [*extra, *fds])
        key = tuple(map(tuple, limits))
        for _ in range(2):  # a limited server that just retired is replaced once
            channel = self._limited(key, cgroup_home)
            if channel is None:
                break
            try:
                return channel.spawn(payload, fds)
            except CommandLost:
                with self._lock:
                    if self.limited.get(key) is channel:
                        del self.limited[key]
                raise
            except SpawnerError:
                with self._lock:
                    if self.limited.get(key) is channel:
                        del self.limited[key]
                channel.retire()  # closed once its running commands are released
        return self.main.spawn(payload, fds)

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
            payload = "\0".join(
                (
                    encode_limits(limits),
                    cgroup_home or "",
                    repr(values["RLIMIT_CPU"] * RETIRE_FRACTION),
                )
            )
            try:
                socket.send_fds(
                    self.main.sock,
                    [self.main._message(b"sub", os.fsencode(payload))],
                    [theirs.fileno()],
                )
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
        """Kill the child's group and let its server reap it; closes our fds of it."""
        child.close()
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
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while b"\n" not in buffer:
        if not poller.poll(timeout_s * 1000):
            return b"", b""
        chunk = os.read(fd, 256)
        if not chunk:
            return buffer, b""
        buffer += chunk
    line, _, rest = buffer.partition(b"\n")
    return line, rest


if __name__ == "__main__":
    serve(int(sys.argv[1]))

__all__ = [
    "CommandLost",
    "RequestTooLarge",
    "SpawnedChild",
    "Spawner",
    "SpawnerError",
    "exec_candidates",
    "serve",
    "wait_readable",
]
