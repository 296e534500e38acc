"""File-system confinement of sandboxed commands with Landlock (Linux 5.13+).

Landlock lets an unprivileged process restrict itself, and everything it
starts, to an allow-list of file hierarchies; nothing it does later (root
included) lifts the restriction. The VM builds one *ruleset* per work
directory and each command's child restricts itself to it just before exec
(``_spawn.c``). The ruleset says:

* **write** (create, remove, rename, write, truncate): only beneath the work
  directory, plus a few device files every program expects (``/dev/null``,
  ``/dev/tty``, the pseudo-terminals);
* **read and execute**: the whole file system except the home directories. In
  the VM user's own home every entry is readable but the known credential
  stores (``.ssh``, ``.aws``, ``.config``, ...: :data:`SECRET_HOME_PATHS`);
  other users' homes are not readable at all. ``/dev`` is not readable beyond
  those device files (a raw disk is every file at once);
* from ABI 4, when the network is not allowed, no TCP ``bind`` or ``connect``
  (the empty network namespace does more, but needs root);
* from ABI 6, no signals to processes outside the command's domain (the VM
  among them) and no abstract Unix sockets outside it.

Landlock also keeps a restricted process from ptrace-ing or reading the
``/proc/<pid>/environ``, ``mem`` or ``fd/`` of a process outside its domain:
the API keys in the VM's own environment stay out of reach.

Rules name directories that exist when the ruleset is built; what appears
later under the root directory or the home is not readable.
"""

from __future__ import annotations

import ctypes
import functools
import os
import pwd
import threading
from collections.abc import Iterable
from pathlib import Path

# linux/landlock.h
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_SYS_CREATE_RULESET, _SYS_ADD_RULE = 444, 445  # the same numbers on every architecture

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

#: Rights that apply to a file (a rule on a non-directory may grant only these).
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV

#: Under the VM user's home: entries a command may not read (credentials,
#: tokens, shell histories). ``HOME`` in a command's environment is the work
#: directory, so well-behaved tools never look here anyway.
SECRET_HOME_PATHS = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config",
    ".docker",
    ".kube",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".yarnrc",
    ".pypirc",
    ".pgpass",
    ".my.cnf",
    ".vault-token",
    ".claude",
    ".claude.json",
    ".codex",
    ".gemini",
    ".huggingface",
    ".cache/huggingface/token",
    ".password-store",
    ".local/share/keyrings",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".m2/settings.xml",
    ".gradle/gradle.properties",
    ".terraform.d",
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".psql_history",
    ".mysql_history",
    ".lesshst",
    ".viminfo",
)

#: Device files a command may read and write (``/dev/pts`` with what is beneath).
DEVICE_FILES = ("null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts")

#: Directories that hold users' homes; only the VM user's own is (partly) readable.
HOME_ROOTS = ("/home", "/root")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@functools.lru_cache(maxsize=1)
def libc() -> ctypes.CDLL:
    """The C library, for system calls Python has no wrapper for (errno kept)."""
    lib = ctypes.CDLL(None, use_errno=True)
    lib.syscall.restype = ctypes.c_long
    return lib


@functools.lru_cache(maxsize=1)
def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    try:
        version = libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                                  ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def available() -> tuple[bool, str]:
    """Whether commands can be confined with Landlock here, and if not, why."""
    if os.environ.get("SKVM_NO_LANDLOCK"):
        return False, "disabled by $SKVM_NO_LANDLOCK"
    if abi_version() == 0:
        return False, "the kernel has no Landlock (Linux 5.13+ with landlock in the LSM list)"
    return True, f"Landlock ABI {abi_version()}"


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def _home_of_vm_user() -> Path | None:
    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        return None


def read_roots(home: Path | None = None, root: Path = Path("/")) -> list[Path]:
    """The hierarchies a command may read: everything but homes, ``/dev`` and secrets.

    ``home`` is the VM user's home (default: from the password database);
    ``root`` stands for ``/`` (tests give a tree of their own).
    """
    home = home if home is not None else _home_of_vm_user()
    home_roots = {root / p.lstrip("/") for p in HOME_ROOTS}
    readable: list[Path] = []
    for entry in _entries(root):
        if entry == root / "dev":
            continue
        if entry == home:  # /root, or a home outside the usual places
            readable.extend(_allowed_beneath(entry, SECRET_HOME_PATHS))
        elif entry in home_roots:
            if home is not None and home.parent == entry:
                readable.extend(_allowed_beneath(home, SECRET_HOME_PATHS))
        else:
            readable.append(entry)
    return readable


def _entries(directory: Path) -> list[Path]:
    try:
        return sorted(directory / name for name in os.listdir(directory))
    except OSError:
        return []


def _allowed_beneath(directory: Path, denied: Iterable[str]) -> list[Path]:
    """Entries of ``directory`` minus the ``denied`` relative paths (descending as needed)."""
    denied = tuple(denied)
    out: list[Path] = []
    for entry in _entries(directory):
        name = entry.name
        if name in denied:
            continue
        deeper = tuple(d.split("/", 1)[1] for d in denied if d.startswith(name + "/"))
        if deeper and entry.is_dir() and not entry.is_symlink():
            out.extend(_allowed_beneath(entry, deeper))
        else:
            out.append(entry)
    return out


def _without_nested(paths: list[Path]) -> list[Path]:
    """The resolved ``paths``, minus those inside another (``/bin`` is ``/usr/bin``).

    Every rule is copied into each command's domain: fewer rules, cheaper starts.
    """
    resolved = sorted({Path(os.path.realpath(p)) for p in paths})
    kept: list[Path] = []
    for path in resolved:
        if not kept or not path.is_relative_to(kept[-1]):
            kept.append(path)
    return kept


class RulesetError(OSError):
    """The kernel refused to build a ruleset."""


def build_ruleset(workdir: Path, *, allow_network: bool, home: Path | None = None,
                  extra_read: Iterable[str] = ()) -> int:
    """A Landlock ruleset fd (close-on-exec) for commands working in ``workdir``.

    ``extra_read``: more hierarchies to let them read and execute (the
    ``/proc`` of their PID namespace, which is not the host's).
    """
    abi = abi_version()
    if abi == 0:
        raise RulesetError(0, "Landlock is not available")
    fs_rights = _fs_rights(abi)
    attr = _RulesetAttr(handled_access_fs=fs_rights)
    if abi >= 4 and not allow_network:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    fd = libc().syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                      ctypes.c_uint32(0))
    if fd < 0:
        err = ctypes.get_errno()
        raise RulesetError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    try:
        read = (READ_FILE | READ_DIR | EXECUTE) & fs_rights
        for path in _without_nested(read_roots(home)):
            _add_rule(fd, path, read)
        for extra in extra_read:
            _add_rule(fd, Path(extra), read, required=True)
        device = (READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV) & fs_rights
        for name in DEVICE_FILES:
            _add_rule(fd, Path("/dev") / name, device | (READ_DIR if name == "pts" else 0))
        _add_rule(fd, Path(workdir), fs_rights, required=True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _add_rule(ruleset_fd: int, path: Path, rights: int, *, required: bool = False) -> None:
    try:
        target = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        if required:
            raise
        return  # gone since it was listed, or a dangling link: nothing to allow
    try:
        if not os.path.isdir(f"/proc/self/fd/{target}"):
            rights &= _FILE_RIGHTS
        rule = _PathBeneathAttr(allowed_access=rights, parent_fd=target)
        if libc().syscall(_SYS_ADD_RULE, ruleset_fd, _RULE_PATH_BENEATH, ctypes.byref(rule),
                           ctypes.c_uint32(0)) != 0:
            err = ctypes.get_errno()
            raise RulesetError(err, f"landlock_add_rule({path}): {os.strerror(err)}")
    finally:
        os.close(target)


class RulesetCache:
    """One ruleset fd per (work directory, network permission), kept open for reuse.

    Rules hold inodes, not paths: a work directory removed and made again
    under the same name is a new directory and gets a new ruleset (the key
    has its device and inode numbers).
    """

    def __init__(self, size: int = 32):
        self.size = size
        self._fds: dict[tuple[str, int, int, bool, tuple[str, ...]], int] = {}
        self._lock = threading.Lock()

    def get(self, workdir: str, allow_network: bool, extra_read: tuple[str, ...] = ()) -> int:
        """The ruleset fd for ``workdir`` (built on first use). OSError: Landlock refused."""
        st = os.stat(workdir)
        key = (workdir, st.st_dev, st.st_ino, allow_network, extra_read)
        fd = self._fds.get(key)  # the common case, without the lock
        if fd is not None:
            return fd
        with self._lock:
            fd = self._fds.pop(key, None)
            if fd is None:
                fd = build_ruleset(Path(key[0]), allow_network=allow_network, extra_read=extra_read)
            self._fds[key] = fd  # most recently used last
            while len(self._fds) > self.size:
                os.close(self._fds.pop(next(iter(self._fds))))
            return fd

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


__all__ = [
    "DEVICE_FILES",
    "HOME_ROOTS",
    "SECRET_HOME_PATHS",
    "RulesetCache",
    "RulesetError",
    "abi_version",
    "available",
    "build_ruleset",
    "libc",
    "read_roots",
]
