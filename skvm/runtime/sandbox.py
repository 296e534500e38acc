"""The sandbox: confines the commands and file operations of untrusted skills.

Every ``tool.*`` op and every tool call a model makes goes through this module:

* :func:`resolve_path` keeps file paths inside the run's work directory;
* :func:`scrub_env` hands children an environment without secrets;
* :func:`run` executes argv with resource limits (rlimits), its own session
  and process group, an optional pids cgroup, an optional empty network
  namespace, an optional PID namespace with a ``/proc`` of its own
  (:mod:`skvm.runtime.procns`), a Landlock ruleset that confines its writes to the work
  directory (:mod:`skvm.runtime.landlock`), a wall-clock timeout and capped
  output;
* :func:`check_tool_allowed` enforces the skill's ``allowed-tools``.

This is defence in depth for a single-user machine, not a container; see
``docs/security.md`` for what holds and what does not.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import ctypes
import errno
import fnmatch
import functools
import itertools
import math
import os
import re
import resource
import select
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from skvm.diagnostics import Diagnostic, Location, Severity, SkvmError
from skvm.runtime import landlock, native, procns
from skvm.runtime.native import NativeChild
from skvm.runtime.spawner import CommandLost, SpawnedChild, Spawner, SpawnerError

GIB = 1 << 30
MIB = 1 << 20


class SandboxViolation(SkvmError):
    """An operation the sandbox refused (path escape, forbidden tool, ...)."""

    def __init__(self, message: str, loc: Location | None = None):
        super().__init__(Diagnostic(Severity.ERROR, message, loc))
        self.reason = message


def _frozen_names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _tools_tuple(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


@attrs.frozen
class SandboxPolicy:
    """Limits and permissions for everything a skill runs in one work directory."""

    workdir: Path = attrs.field(converter=Path)
    timeout_s: float = 60.0
    # None: derived from the wall-clock timeout (a CPU-bound child cannot use more).
    cpu_s: int | None = None
    memory_bytes: int | None = GIB
    file_size_bytes: int | None = 64 * MIB
    # Counts threads too where a pids cgroup enforces it.
    max_processes: int | None = 128
    allow_network: bool = False
    # Landlock (where the kernel has it and commands start in-process): writes
    # only beneath the work directory, no reads of homes' credential stores.
    confine_files: bool = True
    # A PID namespace and /proc of their own (root; not on the /bin/sh-wrapper path):
    # commands cannot read other processes' environments there (skvm.runtime.procns).
    isolate_processes: bool = True
    allowed_env: frozenset[str] = attrs.field(default=frozenset(), converter=_frozen_names)
    allowed_tools: tuple[str, ...] | None = attrs.field(default=None, converter=_tools_tuple)
    output_limit_bytes: int = MIB


@attrs.frozen
class ExecResult:
    """What a sandboxed command did: exit status, captured output and why it was stopped."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    # Set whenever the sandbox (or a limit) ended the command; None for a normal exit.
    killed_reason: str | None = None
    truncated: bool = False
    network_isolated: bool = False
    files_confined: bool = False
    processes_isolated: bool = False

    @property
    def ok(self) -> bool:
        """True when the command exited 0 and was not stopped by the sandbox."""
        return self.returncode == 0 and self.killed_reason is None


# --------------------------------------------------------------------------- paths


def resolve_path(policy: SandboxPolicy, rel: str | os.PathLike[str]) -> Path:
    """Resolve a user- or model-supplied path inside the work directory, or raise.

    Relative paths are taken from the work directory; absolute paths are only
    accepted when they already point inside it. Symlinks are followed before
    the check, so a link pointing out of the work directory is refused too.
    """
    text = os.fspath(rel)
    if "\x00" in text:
        raise SandboxViolation(f"path {text!r} contains a NUL byte")
    root = policy.workdir.resolve()
    candidate = Path(text) if os.path.isabs(text) else root / text
    resolved = candidate.resolve(strict=False)
    if not resolved.is_relative_to(root):
        raise SandboxViolation(
            f"path '{text}' resolves outside the work directory"
            f" (to '{resolved}'); only paths inside it are allowed"
        )
    return resolved


_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = 437  # the same number on every architecture


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def open_beneath(policy: SandboxPolicy, rel: str | os.PathLike[str], flags: int, mode: int = 0o666) -> int:
    """Open a path inside the work directory and return the fd, or raise SandboxViolation.

    :func:`resolve_path` checks the path first; the open then resolves it
    again with ``openat2(RESOLVE_BENEATH)`` from the work directory, so a
    command running meanwhile cannot swap a directory for a link out of it
    between the check and the open. Without ``openat2`` (Linux < 5.6) the
    checked path is opened as is.
    """
    target = resolve_path(policy, rel)
    root = policy.workdir.resolve()
    inside = os.fspath(target.relative_to(root)) if target != root else "."
    dirfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        how = _OpenHow(flags=flags | os.O_CLOEXEC, mode=mode if flags & os.O_CREAT else 0,
                       resolve=_RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
        fd = landlock.libc().syscall(_SYS_OPENAT2, dirfd, os.fsencode(inside), ctypes.byref(how),
                                     ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err == errno.EXDEV:
            raise SandboxViolation(f"path '{os.fspath(rel)}' left the work directory while it was opened")
        if err != errno.ENOSYS:
            raise OSError(err, os.strerror(err), os.fspath(rel))
        return os.open(target, flags | os.O_CLOEXEC, mode)
    finally:
        os.close(dirfd)


def make_parents_beneath(policy: SandboxPolicy, rel: str | os.PathLike[str]) -> None:
    """Create the missing parent directories of ``rel``, each one opened beneath the work directory.

    Like ``mkdir -p`` on the parent, but every directory it goes through is
    opened with :func:`open_beneath`, so a link swapped in meanwhile is not
    followed out of the work directory (SandboxViolation).
    """
    target = resolve_path(policy, rel)
    root = policy.workdir.resolve()
    parts = target.relative_to(root).parts[:-1]
    for depth in range(1, len(parts) + 1):
        here = Path(*parts[:depth])
        try:
            os.close(open_beneath(policy, here, os.O_PATH | os.O_DIRECTORY))
            continue
        except FileNotFoundError:
            pass
        parent = open_beneath(policy, Path(*parts[: depth - 1]) if depth > 1 else ".", os.O_PATH | os.O_DIRECTORY)
        try:
            os.mkdir(parts[depth - 1], dir_fd=parent)
        except FileExistsError:
            pass
        finally:
            os.close(parent)


# ----------------------------------------------------------------------- environment

# Names always given to children (when the host has them), whatever they look like.
SAFE_ENV_NAMES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "USER", "LOGNAME", "SHELL")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# A variable whose NAME matches one of these looks like a secret and is dropped.
SECRET_NAME_PATTERNS = (
    r"KEY",
    r"TOKEN",
    r"SECRET",
    r"PASSWORD",
    r"PASSWD",
    r"PASSPHRASE",
    r"CREDENTIAL",
    r"AUTH(?!OR)",
    r"SESSION",
    r"COOKIE",
    r"PRIVATE",
    r"SIGNATURE",
    r"(^|_)PAT($|_)",
    r"(^|_)DSN($|_)",
    r"DATABASE_URL",
    r"^AWS_",
    r"^AZURE_",
    r"^GCP_|^GOOGLE_",
    r"^GITHUB_|^GH_",
    r"^GITLAB_",
    r"^OPENAI_",
    r"^ANTHROPIC_",
    r"^HF_|^HUGGING",
    r"^NPM_",
    r"^PYPI_|^TWINE_",
    r"^DOCKER_",
    r"^SSH_",
    r"^GPG_|^GNUPG",
    r"^KUBECONFIG$",
)

# A variable whose VALUE matches one of these is a credential whatever its name.
SECRET_VALUE_PATTERNS = (
    r"^sk-[A-Za-z0-9_-]{16,}",  # OpenAI / Anthropic style keys
    r"^gh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
    r"^github_pat_",
    r"^xox[abposr]-",  # Slack
    r"^AKIA[0-9A-Z]{16}",  # AWS access key id
    r"^hf_[A-Za-z0-9]{20,}",  # Hugging Face
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"://[^/\s:@]+:[^/\s@]+@",  # URL with embedded user:password
)
# One alternation each: the environment is scrubbed for every command.
_SECRET_NAME = re.compile("|".join(f"(?:{p})" for p in SECRET_NAME_PATTERNS), re.IGNORECASE)
_SECRET_VALUE = re.compile("|".join(f"(?:{p})" for p in SECRET_VALUE_PATTERNS))


def looks_secret(name: str, value: str = "") -> bool:
    """True when an environment variable's name or value looks like a credential."""
    return bool(_SECRET_NAME.search(name) or _SECRET_VALUE.search(value))


def scrub_env(
    environ: Mapping[str, str],
    allowed: Iterable[str] = (),
    *,
    workdir: Path | None = None,
) -> dict[str, str]:
    """Return a child environment without anything that looks like a secret.

    Variables named in ``allowed`` pass even when they look secret (the skill's
    ``env.require`` entries the user allowed). ``HOME`` and ``TMPDIR`` point
    into ``workdir`` when it is given, so tools do not read the host's dotfiles.
    """
    allowed = frozenset(allowed)
    env = {
        name: value
        for name, value in environ.items()
        if name in allowed or name in SAFE_ENV_NAMES or not looks_secret(name, value)
    }
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("LANG", "C.UTF-8")
    if workdir is not None:
        env["HOME"] = str(workdir)
        env["TMPDIR"] = str(workdir / ".tmp")
    return dict(sorted(env.items()))


def _host_env_items() -> tuple[tuple[Any, Any], ...]:
    """The VM's environment as a hashable snapshot, for :func:`_scrubbed_host_env`.

    ``os.environ`` decodes every item in Python (about 50 us per command on a
    slow host); the dict of encoded items behind it, where every change lands,
    is copied in a few microseconds. Falls back to the decoded items.
    """
    data = getattr(os.environ, "_data", None)
    return tuple(data.items()) if isinstance(data, dict) else tuple(os.environ.items())


@functools.lru_cache(maxsize=16)
def _scrubbed_host_env(items: tuple[tuple[Any, Any], ...], allowed, workdir) -> dict[str, str]:
    """scrub_env of the host environment, cached: it rarely changes between commands.

    The result is shared: callers must not modify it.
    """
    return scrub_env({os.fsdecode(k): os.fsdecode(v) for k, v in items}, allowed, workdir=workdir)


# ----------------------------------------------------------------------- isolation

_CLONE_NEWNET = 0x40000000


@functools.cache
def _libc_unshare():
    """The libc ``unshare`` function (Python 3.11 has no ``os.unshare``), or None."""
    try:
        return ctypes.CDLL(None, use_errno=True).unshare
    except (OSError, AttributeError):
        return None


class _IsolatedSpawner:
    """A thread that left the host's network namespace; children it spawns inherit that.

    ``unshare(CLONE_NEWNET)`` applies to the calling thread only, and a child
    takes its namespaces from the thread that spawned it. Spawning from this
    thread therefore isolates children without a ``preexec_fn`` (which forces
    ``fork`` instead of ``vfork``: 15 ms per command once litellm is loaded)
    and without an extra ``unshare`` executable per command.
    """

    def __init__(self) -> None:
        self.error: str | None = None
        self.netns_fd = -1  # the empty namespace, open (close-on-exec); -1: not entered
        self.pool = concurrent.futures.ThreadPoolExecutor(1, "skvm-netns", self._enter)
        # Run the initializer now so failures are known before the first command.
        self.pool.submit(lambda: None).result()

    def _enter(self) -> None:
        unshare = _libc_unshare()
        if unshare is None:
            self.error = "libc has no unshare()"
        elif unshare(_CLONE_NEWNET) != 0:
            self.error = (
                f"unshare(CLONE_NEWNET) failed ({os.strerror(ctypes.get_errno())});"
                " it needs root or CAP_SYS_ADMIN"
            )
        else:
            # Commands started in-process (skvm.runtime.native) enter it with setns.
            try:
                self.netns_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
            except OSError:
                self.netns_fd = -1

    def popen(self, *args: Any, **kwargs: Any) -> subprocess.Popen:
        """Start a process from the isolated thread."""
        return self.pool.submit(subprocess.Popen, *args, **kwargs).result()


@functools.cache
def _spawner() -> _IsolatedSpawner:
    return _IsolatedSpawner()


@functools.cache
def network_isolation_available() -> tuple[bool, str]:
    """Whether children can be put into an empty network namespace (checked once)."""
    spawner = _spawner()
    if spawner.error:
        return False, spawner.error
    return True, "empty network namespace (shared by this process's commands)"


# Where a writable pids controller may live (cgroup v1 first: v2 needs the
# controller delegated to the subtree, which a plain container rarely does).
_PIDS_CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")


@functools.cache
def _pids_cgroup_root() -> Path | None:
    """A directory under which per-command pids cgroups can be made, or None."""
    for root in map(Path, _PIDS_CGROUP_ROOTS):
        if not (root / "cgroup.procs").exists():
            continue
        if root.name != "pids" and "pids" not in _read(root / "cgroup.subtree_control"):
            continue
        base = root / f"skvm-{os.getpid()}"
        try:
            base.mkdir(exist_ok=True)
            probe = base / "probe"
            probe.mkdir()
            ok = (probe / "pids.max").exists()
            probe.rmdir()
        except OSError:
            continue
        if ok:
            _sweep_dead_cgroups(root)
            return base
        _rmdir_quiet(base)
    return None


def _sweep_dead_cgroups(root: Path) -> None:
    """Kill what is left in the cgroups of skvm processes that died, and remove them.

    A VM killed with SIGKILL cannot clean up: its commands die with it (their
    parent-death signal, or their fork server's shutdown), but what they
    started in the background lives on in their pids cgroups. The next skvm
    process to use the sandbox ends them.
    """
    try:
        entries = [entry for entry in os.scandir(root) if entry.name.startswith("skvm-")]
    except OSError:
        return
    for entry in entries:
        pid = entry.name[5:]
        if not pid.isdigit() or os.path.exists(f"/proc/{pid}"):
            continue  # alive (or not ours to judge)
        groups = [Path(entry.path) / name for name in _listdir_quiet(entry.path)]
        for group in groups:
            procs = os.fsencode(group / "cgroup.procs")
            for _ in range(50):
                pids = _read_bytes(procs).split()
                if not pids:
                    break
                for member in pids:
                    try:
                        os.kill(int(member), signal.SIGKILL)
                    except (ProcessLookupError, ValueError):
                        pass
                time.sleep(0.002)
            _rmdir_quiet(group)
        _rmdir_quiet(Path(entry.path))


def _listdir_quiet(path: str) -> list[str]:
    try:
        return [entry.name for entry in os.scandir(path) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def process_limit_mechanism() -> str:
    """Say how ``max_processes`` is enforced on this machine."""
    if _pids_cgroup_root() is not None:
        return "pids cgroup per command"
    if os.geteuid() == 0:
        return "session watchdog (RLIMIT_NPROC does not bind root)"
    return "RLIMIT_NPROC and session watchdog"


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _read_bytes(path: bytes) -> bytes:
    """A small (cgroup) file's bytes, b"" when unreadable; no Path or decoding per call."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _rmdir_quiet(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


_MAX_EVENTS = re.compile(rb"max (\d+)")
_cgroup_counter = itertools.count()
_cgroup_pool: list[_PidsCgroup] = []
_cgroup_pool_lock = threading.Lock()


class _PidsCgroup:
    """A pids cgroup holding one command and all its descendants at a time.

    Making and removing a cgroup per command costs milliseconds, so empty
    ones go back to a pool. Forks the limit refused are counted from the
    ``max`` counter of ``pids.events``, against its value when the cgroup
    was last emptied (nothing in an empty cgroup can move it).
    """

    def __init__(self, base: Path):
        self.path = base / f"run-{next(_cgroup_counter)}"
        self.path.mkdir()
        self.limit = -1
        self.procs_file = os.fsencode(self.path / "cgroup.procs")
        self.procs_text = os.fsdecode(self.procs_file)
        self._procs_wfd = -1
        # Kept open and read with pread: each read shows the counters afresh.
        self.events_fd = os.open(self.path / "pids.events", os.O_RDONLY)
        self.baseline = self._fork_failures()

    @classmethod
    def acquire(cls, base: Path, limit: int) -> _PidsCgroup:
        """Take an empty cgroup from the pool (or make one) limited to ``limit`` tasks."""
        with _cgroup_pool_lock:
            group = _cgroup_pool.pop() if _cgroup_pool else None
        if group is None:
            group = cls(base)
        if group.limit != limit:
            (group.path / "pids.max").write_text(str(limit))
            group.limit = limit
        return group

    @property
    def procs_wfd(self) -> int:
        """``cgroup.procs`` open for writing (kept open): a child joins by writing "0"."""
        if self._procs_wfd < 0:
            self._procs_wfd = os.open(self.procs_file, os.O_WRONLY)
        return self._procs_wfd

    def close(self) -> None:
        """Close the files kept open (the cgroup leaves the pool)."""
        for fd in (self.events_fd, self._procs_wfd):
            if fd >= 0:
                os.close(fd)
        self.events_fd = self._procs_wfd = -1

    def _fork_failures(self) -> int:
        try:
            events = os.pread(self.events_fd, 4096, 0)
        except OSError:
            return 0
        match = _MAX_EVENTS.search(events)
        return int(match.group(1)) if match else 0

    def refused_forks(self) -> int:
        """How many forks the limit refused since this command started."""
        return self._fork_failures() - self.baseline

    def release(self) -> int:
        """SIGKILL every member until the cgroup is empty, then pool it.

        Returns how many forks the limit refused while the command ran (its
        stragglers' attempts included).
        """
        for _ in range(200):
            pids = _read_bytes(self.procs_file).split()
            if not pids:
                refused = self.refused_forks()
                self.baseline += refused
                with _cgroup_pool_lock:
                    _cgroup_pool.append(self)
                return refused
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.002)
        # Unkillable members (stuck in the kernel): leave this cgroup out of the pool.
        refused = self.refused_forks()
        self.close()
        return refused


def _session_members(sid: int) -> int:
    """Count the processes in session ``sid`` (fallback when there is no cgroup)."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _read(Path(entry.path) / "stat")
        # Fields after the parenthesised command: state ppid pgrp session ...
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 3 and fields[3] == str(sid):
            count += 1
    return count


@functools.cache
def _own_uid_processes() -> int:
    """Processes of our uid when first asked; RLIMIT_NPROC counts them all."""
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


# ------------------------------------------------------------------------ running

# Why a child that died of a signal died, when the sandbox did not kill it itself.
SIGNAL_REASONS = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded",
    signal.SIGKILL: "killed (SIGKILL: CPU hard limit or out of memory)",
    signal.SIGSEGV: "crashed (SIGSEGV; possibly the memory limit)",
    signal.SIGABRT: "aborted (SIGABRT; possibly the memory limit)",
}

_TICK_S = 0.05  # how often a long-running command's limits are checked
SPAWNER_DIED = "the sandbox's spawner died; the command was killed"


def _preamble(policy: SandboxPolicy, cgroup: _PidsCgroup | None) -> str:
    """Shell builtins that confine the wrapper shell before it execs the command.

    Limits are set by ``/bin/sh`` builtins rather than a ``preexec_fn`` so that
    Python can spawn with ``vfork``; the cost is one exec of ``/bin/sh`` (none
    for commands that need a shell anyway).
    """
    cpu = policy.cpu_s if policy.cpu_s is not None else math.ceil(policy.timeout_s) + 1
    steps = []
    if cgroup is not None:
        steps.append(f"echo $$ > {shlex.quote(os.fsdecode(cgroup.procs_file))}")
    # POSIX/dash ulimit takes one limit per call: -t seconds, -v KiB, -f 512-byte blocks.
    limits = [("c", 0), ("S -t", cpu)]
    if policy.memory_bytes is not None:
        limits.append(("v", max(1, policy.memory_bytes // 1024)))
    if policy.file_size_bytes is not None:
        limits.append(("f", max(1, policy.file_size_bytes // 512)))
    if policy.max_processes is not None and os.geteuid() != 0:
        limits.append(("p", policy.max_processes + _own_uid_processes()))
    # Both limits to cpu+1, then soft to cpu: with soft == hard the kernel sends
    # SIGKILL instead of SIGXCPU, and the cause would be lost.
    steps.append(f"ulimit -t {cpu + 1}")
    steps += [f"ulimit -{flag} {value}" for flag, value in limits]
    return "".join(f"{step} || exit 126\n" for step in steps)


def _command(argv: Sequence[str] | str, shell: bool) -> tuple[str, ...]:
    if isinstance(argv, str):
        argv = [argv] if shell else shlex.split(argv)
    argv = tuple(argv)
    if not argv or not argv[0]:
        raise SandboxViolation("empty command")
    if shell:
        return ("/bin/sh", "-c", argv[0] if len(argv) == 1 else shlex.join(argv))
    return argv


def _wrapped(command: tuple[str, ...], preamble: str, shell: bool) -> list[str]:
    """The argv actually spawned: the preamble, then the command (exec'd, or inline)."""
    if shell:
        return ["/bin/sh", "-c", preamble + command[2]]
    return ["/bin/sh", "-c", preamble + 'exec "$@"', "skvm-sandbox", *command]


def _exited(pid: int) -> bool:
    """True when ``pid`` has exited, without reaping it (so its pgid stays ours)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _rlimits(policy: SandboxPolicy) -> tuple[tuple[str, int, int], ...]:
    """The (name, soft, hard) rlimits of a command; the same values ``_preamble`` sets."""
    cpu = policy.cpu_s if policy.cpu_s is not None else math.ceil(policy.timeout_s) + 1
    return _rlimits_for(cpu, policy.memory_bytes, policy.file_size_bytes, policy.max_processes)


@functools.lru_cache(maxsize=64)
def _rlimits_for(
    cpu: int, memory: int | None, file_size: int | None, max_processes: int | None
) -> tuple[tuple[str, int, int], ...]:
    """:func:`_rlimits`, cached: they depend on the policy and this process's own limits."""
    # Soft CPU below hard: the soft limit sends SIGXCPU, so the cause is known.
    limits = [("RLIMIT_CORE", 0, 0), ("RLIMIT_CPU", cpu, cpu + 1)]
    if memory is not None:
        limits.append(("RLIMIT_AS", memory, memory))
    if file_size is not None:
        limits.append(("RLIMIT_FSIZE", file_size, file_size))
    if max_processes is not None and os.geteuid() != 0:
        nproc = max_processes + _own_uid_processes()
        limits.append(("RLIMIT_NPROC", nproc, nproc))
    if os.geteuid() == 0:
        return tuple(limits)
    # An unprivileged process cannot raise a hard limit: keep the stricter one.
    clamped = []
    for name, soft, hard in limits:
        current = resource.getrlimit(getattr(resource, name))[1]
        if current != resource.RLIM_INFINITY:
            soft, hard = min(soft, current), min(hard, current)
        clamped.append((name, soft, hard))
    return tuple(clamped)


#: Set to False to start commands through the fork server (when the extension is built).
NATIVE_ENABLED = True
#: Set to False to start every command directly (the slower fallback path).
SPAWNER_ENABLED = True
#: How many times a dead spawner is replaced before the direct path is used for good.
SPAWNER_RESTARTS = 3
_spawners: dict[bool, Spawner] = {}
_all_spawners: list[Spawner] = []  # replaced ones too: all are stopped at exit
_spawner_starts: dict[bool, int] = {}
_spawner_errors: dict[bool, str] = {}
_spawners_lock = threading.Lock()


def _command_spawner(isolate_net: bool) -> Spawner | None:
    """The fork server for this network mode, started on first use; None: spawn directly."""
    if not SPAWNER_ENABLED:
        return None
    current = _spawners.get(isolate_net)
    if current is not None and current.usable:
        return current
    with _spawners_lock:
        current = _spawners.get(isolate_net)
        if current is not None and current.usable:
            return current
        if current is not None and current.owner_pid == os.getpid():
            current.retire()  # its running commands finish; their releases close it
        if (
            isolate_net in _spawner_errors
            or _spawner_starts.get(isolate_net, 0) >= SPAWNER_RESTARTS
        ):
            return None
        _spawner_starts[isolate_net] = _spawner_starts.get(isolate_net, 0) + 1
        try:
            # Started from the netns thread, the spawner and its children have no network.
            current = Spawner(popen=_spawner().popen if isolate_net else subprocess.Popen)
        except SpawnerError as exc:
            _spawner_errors[isolate_net] = str(exc)
            _spawners.pop(isolate_net, None)
            return None
        _spawners[isolate_net] = current
        _all_spawners.append(current)
        return current


def spawn_mechanism(allow_network: bool = False) -> str:
    """Say how commands are started on this machine (in-process, fork server, or why not)."""
    if NATIVE_ENABLED and native.available():
        return "in-process vfork (skvm.runtime._spawn)"
    isolate_net = not allow_network and network_isolation_available()[0]
    if _command_spawner(isolate_net) is not None:
        return "fork server (one per VM process and network mode)"
    why = _spawner_errors.get(isolate_net) or (
        "disabled" if not SPAWNER_ENABLED else "restarted too often"
    )
    return f"direct: a /bin/sh wrapper per command ({why})"


def _close_spawners() -> None:
    """Stop this process's spawners at exit (each kills what it still runs)."""
    for spawner in _all_spawners:
        if spawner.owner_pid == os.getpid():
            spawner.close()
    _all_spawners.clear()
    _spawners.clear()


class _Launched:
    """A started command: pid and our ends of its pipes; started directly or by the spawner."""

    def __init__(
        self,
        pid: int,
        stdin: int | None,
        stdout: int,
        stderr: int,
        proc: subprocess.Popen | None = None,
        spawned: SpawnedChild | NativeChild | None = None,
    ):
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.proc = proc
        self.spawned = spawned

    def close(self) -> None:
        """Close our pipe ends."""
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if stream is not None and not stream.closed:
                    stream.close()
            return
        for fd in (self.stdin, self.stdout, self.stderr):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.stdin = None


def _launch_spawned(spawner: Spawner, command, cwd, policy, env, cgroup, stdin, ruleset_fd,
                    namespace) -> _Launched:
    """Start a command through the fork server (SpawnerError: not started)."""
    return _launch_piped(
        functools.partial(
            spawner.spawn,
            command,
            env=env,
            cwd=cwd,
            limits=_rlimits(policy),
            cgroup_procs=cgroup.procs_text if cgroup is not None else None,
            cgroup_home=_spawner_cgroup(),
            landlock_fd=ruleset_fd,
            namespace_fds=(namespace.pid_fd, namespace.mnt_fd) if namespace is not None else None,
        ),
        stdin,
    )


def _launch_native(command, cwd, policy, env, cgroup, stdin, isolate_net, ruleset_fd, namespace) -> _Launched:
    """Start a command in-process with vfork semantics (OSError: not started)."""
    return _launch_piped(
        functools.partial(
            native.spawn,
            command,
            env=env,
            cwd=cwd,
            limits=_rlimits(policy),
            cgroup_procs_fd=cgroup.procs_wfd if cgroup is not None else -1,
            netns_fd=_spawner().netns_fd if isolate_net else -1,
            landlock_fd=ruleset_fd,
            procns=namespace,
        ),
        stdin,
    )


def _launch_piped(start, stdin) -> _Launched:
    """Make the command's pipes and ``start(stdin_fd=, stdout_fd=, stderr_fd=)`` it."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe() if stdin is not None else (None, None)
    try:
        spawned = start(stdin_fd=in_r, stdout_fd=out_w, stderr_fd=err_w)
    except BaseException:
        for fd in (out_r, err_r, in_w):
            if fd is not None:
                os.close(fd)
        raise
    finally:
        # The spawner has its own copies now (or the command never started).
        for fd in (out_w, err_w, in_r):
            if fd is not None:
                os.close(fd)
    return _Launched(spawned.pid, in_w, out_r, err_r, spawned=spawned)


def _launch_direct(command, policy, env, cgroup, stdin, shell, isolate_net) -> _Launched:
    """Start a command with vfork and a ``/bin/sh`` wrapper that sets the limits."""
    spawn = _spawner().popen if isolate_net else subprocess.Popen
    proc = spawn(
        _wrapped(command, _preamble(policy, cgroup), shell),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=policy.workdir,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    return _Launched(
        proc.pid,
        proc.stdin.fileno() if proc.stdin else None,
        proc.stdout.fileno(),
        proc.stderr.fileno(),
        proc=proc,
    )


def run(
    argv: Sequence[str] | str,
    policy: SandboxPolicy,
    *,
    shell: bool = False,
    stdin: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> ExecResult:
    """Run a command inside the sandbox and return what it did.

    ``shell=True`` runs ``argv`` (one string) with ``/bin/sh -c`` for pipelines;
    otherwise ``argv`` is exec'd as is (no shell parses it). Commands are
    started in-process with vfork semantics (:mod:`skvm.runtime.native`), the
    child confining itself before exec; without that extension, by the fork
    server (:mod:`skvm.runtime.spawner`); when it cannot run either, by a
    ``/bin/sh`` wrapper that sets the limits with ``ulimit``. ``extra_env`` is added after scrubbing (the
    caller vouches for it). A missing executable gives return code 127, as in
    a shell. Never raises for anything the command itself does.
    """
    command = _command(argv, shell)
    hide_secrets_of_this_process()
    workdir = policy.workdir
    cwd, tmpdir = _work_paths(workdir)
    if not os.path.isdir(tmpdir):  # TMPDIR: commands may remove it
        os.makedirs(tmpdir, exist_ok=True)
    env = _scrubbed_host_env(_host_env_items(), policy.allowed_env, workdir)
    if extra_env:
        env = {**env, **extra_env}

    isolate_net = not policy.allow_network and network_isolation_available()[0]
    native_start = NATIVE_ENABLED and native.available()
    namespace = _process_namespace(policy) if native_start or SPAWNER_ENABLED else None
    ruleset_fd = _ruleset(cwd, policy, namespace)
    cgroup = None
    cgroup_base = _pids_cgroup_root() if policy.max_processes is not None else None
    if cgroup_base is not None:
        try:
            cgroup = _PidsCgroup.acquire(cgroup_base, policy.max_processes)
        except OSError:
            cgroup = None
    start = time.perf_counter()
    launched = None
    spawner = None
    try:
        if native_start:
            try:
                launched = _launch_native(command, cwd, policy, env, cgroup, stdin, isolate_net, ruleset_fd,
                                          namespace)
            except OSError:
                pass  # clone failed (no memory, no pids left): nothing ran
        if launched is None:
            spawner = _command_spawner(isolate_net)
        if launched is None and spawner is not None:
            try:
                launched = _launch_spawned(spawner, command, cwd, policy, env, cgroup, stdin, ruleset_fd,
                                           namespace)
            except CommandLost:
                # It may have started: never run it twice. Its cgroup is emptied below.
                return _lost(command, cgroup, start, isolate_net)
            except SpawnerError:
                spawner = None  # not started: take the direct path
        if launched is None:
            launched = _launch_direct(command, policy, env, cgroup, stdin, shell, isolate_net)
    except BaseException:
        if cgroup:
            cgroup.release()
        raise
    try:
        outcome = _supervise(launched, policy, stdin, cgroup, start)
    finally:
        _killpg(launched.pid)
        refused = cgroup.release() if cgroup else 0
        launched.close()
        returncode = _reap(launched, spawner)
    stdout, stderr, truncated, killed_reason, timed_out = outcome
    if killed_reason is None and refused:
        killed_reason = _process_limit_reason(policy)
    if returncode is None:
        returncode = -signal.SIGKILL
        killed_reason = killed_reason or SPAWNER_DIED
    if killed_reason is None and returncode < 0:
        killed_reason = SIGNAL_REASONS.get(-returncode, f"killed by signal {-returncode}")
    return ExecResult(
        argv=command,
        returncode=returncode,
        stdout=stdout.decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace"),
        duration_s=time.perf_counter() - start,
        timed_out=timed_out,
        killed_reason=killed_reason,
        truncated=truncated,
        network_isolated=isolate_net,
        files_confined=ruleset_fd >= 0 and launched.spawned is not None,
        processes_isolated=namespace is not None and launched.spawned is not None,
    )


#: Landlock rulesets of this process, one per work directory and network mode.
_RULESETS = landlock.RulesetCache()


def file_confinement_available() -> tuple[bool, str]:
    """Whether commands' file access can be confined here (Landlock), and if not, why."""
    if not (NATIVE_ENABLED and native.available()) and not SPAWNER_ENABLED:
        return False, "commands start by the /bin/sh wrapper, which cannot apply Landlock"
    return landlock.available()


def _ruleset(workdir: str, policy: SandboxPolicy, namespace: procns.ProcessNamespace | None) -> int:
    """The Landlock ruleset fd for commands in ``workdir``, or -1 (not confined)."""
    if not policy.confine_files or not landlock.available()[0]:
        return -1
    try:
        # Commands in the PID namespace read its /proc, a file system of its own.
        return _RULESETS.get(workdir, policy.allow_network, (namespace.proc_root,) if namespace else ())
    except OSError:
        return -1  # the kernel refused it: run unconfined, as without Landlock


def process_isolation_available() -> tuple[bool, str]:
    """Whether commands can run in a PID namespace and /proc of their own here, and if not, why."""
    if not (NATIVE_ENABLED and native.available()) and not SPAWNER_ENABLED:
        return False, "commands start by the /bin/sh wrapper, which cannot enter the namespace"
    return procns.available()


def _process_namespace(policy: SandboxPolicy) -> procns.ProcessNamespace | None:
    if not policy.isolate_processes or not procns.available()[0]:
        return None
    return procns.shared()


@functools.cache
def hide_secrets_of_this_process() -> int:
    """Blank the secret-looking values in this process's initial environment block.

    A command can read ``/proc/<vm pid>/environ`` (Landlock does not stop it
    on this kernel, nor does a non-dumpable VM), and that file shows the
    environment the VM was *started* with: the block in the VM's memory from
    ``env_start`` to ``env_end``. Python has its own copy (``os.environ``),
    so the values are overwritten with NULs in the block and handed back to
    the C library with ``putenv`` (which copies them to the heap), so both
    ``os.environ`` and C's ``getenv`` still see them. Returns how many were
    blanked. Runs once, before the first command.
    """
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        start, end = int(fields[50 - 3]), int(fields[51 - 3])  # proc(5): env_start, env_end
    except (OSError, ValueError, IndexError):
        return 0
    if not 0 < start < end:
        return 0
    block = (ctypes.c_char * (end - start)).from_address(start)
    blanked = 0
    offset = 0
    for entry in bytes(block).split(b"\0"):
        name, sep, value = entry.partition(b"=")
        if sep and value:
            text_name, text_value = os.fsdecode(name), os.fsdecode(value)
            if looks_secret(text_name, text_value):
                ctypes.memset(start + offset + len(name) + 1, 0, len(value))
                if text_name in os.environ:
                    os.putenv(text_name, os.environ[text_name])
                blanked += 1
        offset += len(entry) + 1
    return blanked


@functools.lru_cache(maxsize=32)
def _work_paths(workdir: Path) -> tuple[str, str]:
    """A work directory and its ``.tmp`` as text (the commands' cwd and TMPDIR)."""
    root = os.fspath(workdir)
    return root, os.path.join(root, ".tmp")


def _lost(command, cgroup, start: float, isolate_net: bool) -> ExecResult:
    """The result of a command whose spawner died before saying whether it started."""
    if cgroup:
        cgroup.release()  # kills it if it did start
    return ExecResult(
        argv=command,
        returncode=-signal.SIGKILL,
        stdout="",
        stderr="",
        duration_s=time.perf_counter() - start,
        killed_reason=SPAWNER_DIED,
        network_isolated=isolate_net,
    )


def _reap(launched: _Launched, spawner: Spawner | None) -> int | None:
    """Reap a killed-or-exited command; its return code (None: the spawner died first)."""
    if launched.proc is not None:
        return launched.proc.wait()
    spawned = launched.spawned
    if isinstance(spawned, NativeChild):
        return spawned.reap()  # after the group was killed: its id cannot be reused meanwhile
    if spawned.returncode is None:
        # Killed before its exit was collected: it follows the SIGKILL closely.
        spawned.wait(2.0)
    spawner.release(spawned)
    return spawned.returncode


@functools.cache
def _spawner_cgroup() -> str | None:
    """``cgroup.procs`` of the cgroup limited spawners return to after each command."""
    base = _pids_cgroup_root()
    if base is None:
        return None
    home = base / "spawners"
    try:
        home.mkdir(exist_ok=True)
    except OSError:
        return None
    return os.fsdecode(home / "cgroup.procs")


_READ = select.POLLIN
_WRITE = select.POLLOUT
_HANGUP = select.POLLHUP


def _supervise(launched: _Launched, policy, stdin, cgroup, start):
    """Pump the pipes, enforce the timeout and the process limit; leave the command unreaped.

    The pipes we read stay blocking: ``poll`` says when a read will not block
    (we are their only reader). Stdin is written non-blocking, a slice at a time.
    """
    limit = policy.output_limit_bytes
    buffers = {launched.stdout: bytearray(), launched.stderr: bytearray()}
    spawned = launched.spawned
    truncated = False
    killed_reason = None
    timed_out = False
    pending_in = memoryview(stdin.encode()) if stdin is not None else None
    deadline = start + policy.timeout_s
    next_check = start + _TICK_S
    exit_seen = False

    poller = select.poll()
    watched = len(buffers)
    for fd in buffers:
        poller.register(fd, _READ)
    if spawned is not None:
        # Its exit (pidfd), or the spawner's death (the status pipe closes).
        poller.register(spawned.pidfd, _READ)
        watched += 1
        if spawned.status_fd is not None:
            poller.register(spawned.status_fd, _READ)
            watched += 1
    if pending_in is not None:
        os.set_blocking(launched.stdin, False)
        poller.register(launched.stdin, _WRITE)
        watched += 1
    while watched and killed_reason is None:
        if spawned is not None and spawned.returncode is not None and not exit_seen:
            # The main process is gone (its report may have come with the pid);
            # whatever still holds the pipes is a straggler.
            exit_seen = True
            _killpg(launched.pid)
        now = time.perf_counter()
        if now >= deadline:
            timed_out = True
            killed_reason = f"wall-clock timeout after {policy.timeout_s:g} s"
            break
        if now >= next_check:
            next_check = now + _TICK_S
            killed_reason = _check_processes(launched.pid, policy, cgroup)
            if killed_reason:
                break
            if spawned is None and _exited(launched.pid):
                # The main process is gone; whatever still holds the pipes is a straggler.
                _killpg(launched.pid)
        for fd, event in poller.poll(1000 * min(_TICK_S, max(0.0, deadline - now))):
            if fd in buffers:
                buffer = buffers[fd]
                while True:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        poller.unregister(fd)
                        watched -= 1
                        break
                    room = limit - len(buffer)
                    if len(chunk) > room:
                        truncated = True
                        chunk = chunk[: max(room, 0)]
                    buffer += chunk
                    if not event & _HANGUP:
                        break  # a writer remains: the next read could block
                    # No writer left: read on to the end now, no read can block.
            elif spawned is not None and fd == spawned.pidfd:
                poller.unregister(spawned.pidfd)
                watched -= 1
                if spawned.status_fd is not None:
                    poller.unregister(spawned.status_fd)
                    watched -= 1
                if not spawned.collect():
                    killed_reason = SPAWNER_DIED
                    break
            elif spawned is not None and fd == spawned.status_fd:
                if spawned.returncode is None and not os.read(fd, 256):
                    # Closed while the command runs: the spawner died.
                    killed_reason = SPAWNER_DIED
                    break
            else:  # stdin
                try:
                    written = os.write(fd, pending_in[:65536])
                except (BrokenPipeError, BlockingIOError) as exc:
                    written = 0 if isinstance(exc, BlockingIOError) else len(pending_in)
                pending_in = pending_in[written:]
                if not pending_in:
                    poller.unregister(fd)
                    watched -= 1
                    if launched.proc is not None:
                        launched.proc.stdin.close()
                    else:
                        os.close(fd)
                    launched.stdin = None

    if killed_reason is None and spawned is None:
        # Pipes are closed; wait for the main process without reaping it.
        delay = 0.0005
        while not _exited(launched.pid):
            if time.perf_counter() >= deadline:
                timed_out = True
                killed_reason = f"wall-clock timeout after {policy.timeout_s:g} s"
                break
            time.sleep(delay)
            delay = min(delay * 2, _TICK_S)
    out, err = buffers[launched.stdout], buffers[launched.stderr]
    return bytes(out), bytes(err), truncated, killed_reason, timed_out


def _process_limit_reason(policy: SandboxPolicy) -> str:
    return f"process limit exceeded (max_processes={policy.max_processes})"


def _check_processes(pid: int, policy: SandboxPolicy, cgroup: _PidsCgroup | None) -> str | None:
    """Return a reason to stop the command when it spawned too many processes."""
    if policy.max_processes is None:
        return None
    if cgroup is not None:
        refused = cgroup.refused_forks() > 0
    else:
        refused = _session_members(pid) > policy.max_processes
    return _process_limit_reason(policy) if refused else None


# --------------------------------------------------------------------- allowed-tools

# VM tool kinds and the Claude-style tool names that grant them.
TOOL_KIND_GRANTS: dict[str, tuple[str, ...]] = {
    "exec": ("Bash",),
    "read": ("Read",),
    "write": ("Write", "Edit", "MultiEdit"),
    "edit": ("Edit", "MultiEdit", "Write"),
    "fetch": ("WebFetch",),
    "search": ("WebSearch",),
    "list": ("Glob", "LS", "Read"),
    "grep": ("Grep", "Read"),
}

# One allowed-tools entry: a tool name with an optional (specifier).
_ENTRY = re.compile(r"([A-Za-z_][\w.-]*)\s*(?:\(([^)]*)\))?")
# Shell syntax that hides further commands from a per-command check.
_SHELL_SPLIT = re.compile(r"\|\||&&|[|;&\n]")
_SHELL_HIDDEN = re.compile(r"\$\(|`|<\(|>\(")


@attrs.frozen
class ToolGrant:
    """One parsed allowed-tools entry, e.g. ``Bash(git:*)`` or ``Read``."""

    tool: str
    specifier: str | None = None

    def __str__(self) -> str:
        return self.tool if self.specifier is None else f"{self.tool}({self.specifier})"


def parse_allowed_tools(entries: Iterable[str]) -> tuple[ToolGrant, ...]:
    """Parse allowed-tools entries; each may hold several, space- or comma-separated."""
    grants = []
    for entry in entries:
        for match in _ENTRY.finditer(entry):
            spec = match.group(2)
            grants.append(ToolGrant(match.group(1), spec.strip() if spec is not None else None))
    return tuple(grants)


def _command_matches(spec: str, words: Sequence[str]) -> bool:
    """Match a Bash(...) specifier: ``git:*`` / ``git *`` prefixes, or a glob."""
    if spec in ("", "*"):
        return True
    if spec.endswith(":*"):
        prefix = shlex.split(spec[:-2])
        return list(words[: len(prefix)]) == prefix
    text = shlex.join(words)
    if spec.endswith(" *") and "*" not in spec[:-2]:
        prefix = shlex.split(spec[:-2])
        return list(words[: len(prefix)]) == prefix
    return fnmatch.fnmatchcase(text, spec) or text == spec


def _path_matches(spec: str, words: Sequence[str]) -> bool:
    if spec in ("", "*", "**"):
        return True
    paths = [w.removeprefix("./") for w in words] or [""]
    pattern = spec.removeprefix("./")
    return all(fnmatch.fnmatchcase(p, pattern) for p in paths)


def _shell_commands(text: str) -> list[list[str]] | None:
    """Split shell text into simple commands, or None when it hides some."""
    if _SHELL_HIDDEN.search(text):
        return None
    try:
        return [shlex.split(part) for part in _SHELL_SPLIT.split(text) if part.strip()]
    except ValueError:
        return None


def check_tool_allowed(policy: SandboxPolicy, tool: str, argv: Sequence[str] | None = None) -> None:
    """Raise :class:`SandboxViolation` unless ``allowed-tools`` permits this call.

    ``tool`` is a VM tool kind (``exec``, ``read``, ``write``, ``fetch``,
    ``list``, ...) or a Claude tool name. For ``exec``, ``argv`` is the command;
    a one-element argv holding shell text is split at ``|``, ``&&``, ``;`` and
    each command must be allowed (command substitution is refused outright).
    For file tools, ``argv`` holds the paths.
    """
    if policy.allowed_tools is None:
        return
    grants = parse_allowed_tools(policy.allowed_tools)
    names = TOOL_KIND_GRANTS.get(tool, (tool,))
    words = list(argv or ())
    shown = f"{names[0]}({shlex.join(words)})" if words else names[0]
    matching = [g for g in grants if g.tool in names]
    allowed_text = " ".join(map(str, grants)) or "(none)"
    if not matching:
        raise SandboxViolation(f"tool {shown} is not in the skill's allowed-tools: {allowed_text}")
    if any(g.specifier is None for g in matching) or not words:
        return
    if names[0] == "Bash":
        commands = _shell_commands(words[0]) if len(words) == 1 and " " in words[0] else [words]
        if commands is None:
            raise SandboxViolation(
                f"tool {shown} uses command substitution, which allowed-tools"
                f" '{allowed_text}' cannot vouch for"
            )
        ok = all(any(_command_matches(g.specifier, c) for g in matching) for c in commands)
    else:
        ok = any(_path_matches(g.specifier, words) for g in matching)
    if not ok:
        raise SandboxViolation(f"tool {shown} is not in the skill's allowed-tools: {allowed_text}")


def _cleanup_cgroups() -> None:
    """Remove this process's cgroups at exit (they are empty by then)."""
    if not _pids_cgroup_root.cache_info().currsize:
        return
    base = _pids_cgroup_root()
    if base is None:
        return
    spawners = base / "spawners"
    # A limited spawner orphaned by its main one's death exits on its own when its
    # socket closes (just now): give it a moment to leave.
    for _ in range(100):
        if not _read_bytes(os.fsencode(spawners / "cgroup.procs")).strip():
            break
        time.sleep(0.01)
    with _cgroup_pool_lock:
        for group in _cgroup_pool:
            group.close()
        _cgroup_pool.clear()
    for group in [*base.glob("run-*"), spawners]:
        _rmdir_quiet(group)
    _rmdir_quiet(base)


atexit.register(_cleanup_cgroups)
# Registered last, so it runs first: the spawners' children leave the cgroups.
atexit.register(_close_spawners)

__all__ = [
    "ExecResult",
    "SandboxPolicy",
    "SandboxViolation",
    "ToolGrant",
    "check_tool_allowed",
    "file_confinement_available",
    "hide_secrets_of_this_process",
    "looks_secret",
    "make_parents_beneath",
    "network_isolation_available",
    "open_beneath",
    "parse_allowed_tools",
    "process_limit_mechanism",
    "resolve_path",
    "run",
    "scrub_env",
    "spawn_mechanism",
]
