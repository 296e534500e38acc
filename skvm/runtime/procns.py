"""A PID namespace with its own ``/proc`` for commands, so they cannot see the host's processes.

Landlock keeps a confined command out of ``/proc/<pid>/fd`` and ``mem`` of
processes outside its domain, but on the kernels measured (6.18) not out of
``environ``, ``maps`` or ``cmdline``: any command could read the start-up
environment of every process of the VM's user (as root, of every process),
such as the shell or CI step that started ``skvm-run`` with API keys in its
environment. Commands started in-process therefore run in a PID namespace of
their own, inside a mount namespace whose ``/proc`` shows that namespace only:
the command, what it starts, the VM's other commands, and the namespace's
init.

The namespaces are made once per VM process by a small helper (``python -I
-S``, empty environment). It unshares a PID and a mount namespace, makes its
mounts slaves of the host's (mounts made on the host later still show; the
new ``/proc`` does not leak out), and forks the namespace's init (pid 1),
which mounts a ``/proc`` for the namespace, reaps what commands leave
behind, and exits when the VM does (a pipe only the VM holds reaches EOF):
the kernel then kills everything left in the namespace.

A command enters them with three ``setns`` calls (see ``_spawn.c``): the
VM's calling thread sets the namespace its next child is born in, clones,
and sets its own back; the child enters the mount namespace before its
other steps. That costs 10-30 us per command, measured on this host. The
fork server does the same around its ``fork`` (``spawner.py``).

Entering a PID or mount namespace needs ``CAP_SYS_ADMIN`` (root, in
practice); elsewhere, and on the ``/bin/sh``-wrapper start path, commands
run in the host's PID namespace and ``ExecResult.processes_isolated`` is
false.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time

#: The helper: unshare, fork the namespace's init, report its host pid, then serve as init.
_HELPER = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_SLAVE = 2, 4, 8, 16384, 1 << 19
def check(result, what):
    if result != 0:
        os.write(1, ("error %s: %s\n" % (what, os.strerror(ctypes.get_errno()))).encode())
        os._exit(1)
keep = int(sys.argv[1])
check(libc.unshare(0x20000000 | 0x00020000), "unshare(CLONE_NEWPID | CLONE_NEWNS)")
check(libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None), "make the mounts slaves")
pid = os.fork()
if pid:  # stays, to reap the init: the VM reaps this process in turn
    os.write(1, ("pid %d\n" % pid).encode())
    os.close(1)
    os.waitpid(pid, 0)
    os._exit(0)
check(libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount /proc")
def reap(*_):
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return
signal.signal(signal.SIGCHLD, reap)
os.write(1, b"ready\n")
os.close(1)
while os.read(keep, 1):
    pass
"""

#: How long the helper may take to report (it imports nothing but ctypes).
START_TIMEOUT_S = 10.0


class ProcessNamespaceError(OSError):
    """The namespaces could not be made (no CAP_SYS_ADMIN, a seccomp filter, ...)."""


class ProcessNamespace:
    """The PID and mount namespaces this process's commands run in, and their init.

    ``pid_fd``/``mnt_fd``: the namespaces, open (close-on-exec);
    ``own_pid_fd``: this process's PID namespace, to return to after a
    clone; ``proc_root``: the namespace's ``/proc`` as seen from the host
    (for the Landlock rule that lets commands read it).
    """

    def __init__(self) -> None:
        keep_r, self._keep_w = os.pipe()  # both close-on-exec; the helper gets keep_r below
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _HELPER, str(keep_r)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env={}, pass_fds=(keep_r,), cwd="/",
            )
        except OSError:
            os.close(self._keep_w)
            raise
        finally:
            os.close(keep_r)
        try:
            report = _read_report(proc)
            lines = report.split()
            if not report.startswith("pid ") or "ready" not in lines:
                raise ProcessNamespaceError(0, report.strip() or "the namespace helper exited without a word")
            self.init_pid = int(lines[1])
            self.pid_fd = os.open(f"/proc/{self.init_pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            self.mnt_fd = os.open(f"/proc/{self.init_pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
            self.own_pid_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            os.close(self._keep_w)  # the init exits; the kernel kills the namespace
            proc.kill()
            proc.wait()
            raise
        self.proc_root = f"/proc/{self.init_pid}/root/proc"
        self._helper = proc


    def close(self) -> None:
        """End the namespace: its init exits, and the kernel kills what is left in it."""
        for fd in (self.pid_fd, self.mnt_fd, self.own_pid_fd, self._keep_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self.pid_fd = self.mnt_fd = self.own_pid_fd = self._keep_w = -1
        try:
            self._helper.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._helper.kill()
            self._helper.wait()


def _read_report(proc: subprocess.Popen) -> str:
    """The helper's stdout up to EOF (both its processes close it), or raise on timeout."""
    assert proc.stdout is not None
    chunks = []
    deadline = time.monotonic() + START_TIMEOUT_S
    fd = proc.stdout.fileno()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise ProcessNamespaceError(0, "the namespace helper did not report in time")
        chunk = os.read(fd, 4096)
        if not chunk:
            proc.stdout.close()
            return b"".join(chunks).decode(errors="replace")
        chunks.append(chunk)


_lock = threading.Lock()
_shared: dict[int, ProcessNamespace | str] = {}  # pid -> the namespace, or why there is none


def shared() -> ProcessNamespace | None:
    """This process's namespace, made on first use; None when it cannot be made here."""
    made = _shared.get(os.getpid())
    if made is None:
        with _lock:
            made = _shared.get(os.getpid())
            if made is None:
                try:
                    made = ProcessNamespace()
                except OSError as exc:
                    made = exc.strerror or str(exc)
                _shared[os.getpid()] = made
    return made if isinstance(made, ProcessNamespace) else None


def available() -> tuple[bool, str]:
    """Whether commands can run in a PID namespace of their own here, and if not, why."""
    if os.environ.get("SKVM_NO_PROCESS_NS"):
        return False, "disabled by $SKVM_NO_PROCESS_NS"
    if shared() is None:
        return False, f"no PID namespace for commands ({_shared[os.getpid()]}; it needs CAP_SYS_ADMIN)"
    return True, "a PID namespace and /proc of their own (shared by this process's commands)"

