"""Start sandboxed commands from the VM process itself (the ``_spawn`` extension).

The fork server (:mod:`skvm.runtime.spawner`) costs a request, a reply and two
process wake-ups per command. When the ``_spawn`` C extension is built (the
package's install compiles it; it is optional), the sandbox starts commands
with one ``clone(CLONE_VM | CLONE_VFORK)`` in the VM's own process instead:
the child resets signal handlers, starts a session, sets the parent-death
signal, enters the empty network namespace, the commands' PID and mount
namespaces (:mod:`skvm.runtime.procns`) and the pids cgroup, sets the
rlimits, restricts itself to the Landlock ruleset, changes directory,
installs fds 0-2 and execs (see ``_spawn.c``).

A command started this way is the VM's child: its exit shows on a pidfd, its
status is read without reaping it (``waitid(WNOWAIT)``), and it is reaped only
after its process group was killed, so the group id cannot be reused while
the VM may still signal it.
"""

from __future__ import annotations

import errno
import os
import resource
from collections.abc import Mapping, Sequence

from skvm.runtime.procns import ProcessNamespace
from skvm.runtime.spawner import exec_candidates, wait_readable

try:
    from skvm.runtime import _spawn
except ImportError as exc:  # not built (no C compiler at install time)
    _spawn = None
    UNAVAILABLE: str | None = f"the _spawn extension is not built ({exc})"
else:
    UNAVAILABLE = None

#: What failed before exec, by ``_spawn`` step (the messages the fork server writes too).
_STEP_TEXT = {} if _spawn is None else {
    _spawn.STEP_SIGNALS: "reset the signal actions",
    _spawn.STEP_SESSION: "start a session",
    _spawn.STEP_NETNS: "enter the empty network namespace",
    _spawn.STEP_CGROUP: "join the pids cgroup",
    _spawn.STEP_CWD: "enter {cwd}",
    _spawn.STEP_STDIO: "set up the standard streams",
    _spawn.STEP_LANDLOCK: "restrict itself to the Landlock ruleset",
    _spawn.STEP_PROCNS: "enter the commands' process namespace",
}


def available() -> bool:
    """Whether commands can be started in-process on this machine."""
    return _spawn is not None


class NativeChild:
    """A command this process started: pid, pidfd, and its return code once it exited."""

    #: No fork server stands between us and the command, so no status pipe to watch.
    status_fd = None

    def __init__(self, pid: int, pidfd: int):
        self.pid = pid
        self.pidfd = pidfd
        self.returncode: int | None = None
        self.reaped = False

    def collect(self) -> bool:
        """After the pidfd fired: set :attr:`returncode`, leaving the zombie unreaped."""
        result = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if result is None:
            return False
        if result.si_code == os.CLD_EXITED:
            self.returncode = result.si_status
        else:
            self.returncode = -result.si_status
        return True

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the command to exit (up to ``timeout_s``) and collect its status."""
        return wait_readable(self.pidfd, timeout_s) and self.collect()

    def reap(self) -> int | None:
        """Reap the (killed or exited) command; close the pidfd; its return code."""
        if not self.reaped:
            _, status = os.waitpid(self.pid, 0)
            self.reaped = True
            if self.returncode is None:
                self.returncode = os.waitstatus_to_exitcode(status)
        self.close()
        return self.returncode

    def close(self) -> None:
        """Close the pidfd."""
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str,
    limits: Sequence[tuple[str, int, int]],
    cgroup_procs_fd: int = -1,
    netns_fd: int = -1,
    landlock_fd: int = -1,
    procns: ProcessNamespace | None = None,
    stdin_fd: int | None = None,
    stdout_fd: int,
    stderr_fd: int,
) -> NativeChild:
    """Start ``argv`` confined; the fds are the child's ends (the caller closes them).

    A failure before exec (a limit that cannot be set, a missing directory, a
    command not found) is written to ``stderr_fd`` as the fork server writes
    it, and the child has exited 126 or 127. OSError: the clone itself failed,
    nothing ran. ValueError: an argv or environment entry holds a NUL byte.
    """
    encoded_argv = [os.fsencode(arg) for arg in argv]
    # One encode for the whole environment (os.fsencode's codec); a NUL inside an
    # entry would split it, so the count is checked (the extension refuses NULs too).
    text = "\0".join([f"{name}={value}" for name, value in env.items()])
    encoded_env = text.encode("utf-8", "surrogateescape").split(b"\0") if env else []
    if len(encoded_env) != len(env):
        raise ValueError("an environment entry holds a NUL byte")
    path = env.get("PATH")
    pid, pidfd, step, index, error = _spawn.spawn(
        exec_candidates(encoded_argv[0], None if path is None else os.fsencode(path)),
        encoded_argv,
        encoded_env,
        os.fsencode(cwd),
        -1 if stdin_fd is None else stdin_fd,
        stdout_fd,
        stderr_fd,
        [(getattr(resource, name), soft, hard) for name, soft, hard in limits],
        cgroup_procs_fd,
        netns_fd,
        landlock_fd,
        *((procns.pid_fd, procns.own_pid_fd, procns.mnt_fd) if procns is not None else ()),
    )
    child = NativeChild(pid, pidfd)
    if step:
        if step == _spawn.STEP_EXEC:
            what = argv[0]
            reason = "not found" if error in (errno.ENOENT, errno.ENOTDIR) else os.strerror(error)
        elif step == _spawn.STEP_LIMIT:
            what, reason = f"set {limits[index][0]}", os.strerror(error)
        else:
            what, reason = _STEP_TEXT[step].format(cwd=cwd), os.strerror(error)
        try:
            os.write(stderr_fd, f"skvm-sandbox: {what}: {reason}\n".encode(errors="replace"))
        except OSError:
            pass
    return child


__all__ = ["UNAVAILABLE", "NativeChild", "available", "exec_candidates", "spawn"]
