"""Fixtures shared by the runtime tests: a work directory and a confinement probe."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from skvm.runtime import native, sandbox
from skvm.runtime.sandbox import SandboxPolicy, run

# What a command sees of its own confinement, as JSON.
PROBE = """
import json, os, resource
names = ("RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NPROC")
print(json.dumps({
    "limits": {n: list(resource.getrlimit(getattr(resource, n))) for n in names},
    "pid": os.getpid(), "pgid": os.getpgrp(), "sid": os.getsid(0), "ppid": os.getppid(),
    "cwd": os.getcwd(), "cgroup": open("/proc/self/cgroup").read(),
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
}))
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty work directory (test_sandbox.py has its own, with a sibling to protect)."""
    work = tmp_path / "work"
    work.mkdir()
    return work


def _probe(policy: SandboxPolicy) -> dict:
    result = run([sys.executable, "-I", "-S", "-c", PROBE], policy)
    assert result.ok, result.stderr
    return {**json.loads(result.stdout), "processes_isolated": result.processes_isolated}


@pytest.fixture(params=["in-process", "fork-server"])
def confining_start_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both start paths that confine: in-process (the _spawn extension) and the fork server."""
    if request.param == "in-process" and not native.available():
        pytest.skip(native.UNAVAILABLE)
    monkeypatch.setattr(sandbox, "NATIVE_ENABLED", request.param == "in-process")
    monkeypatch.setattr(sandbox, "SPAWNER_ENABLED", True)
    return request.param


@pytest.fixture
def probe() -> Callable[[SandboxPolicy], dict]:
    """Run the confinement probe under a policy; what it saw, as a dict."""
    return _probe


def _live_pid(cmdline: str) -> int | None:
    """The pid (as this process sees it) of a live, not zombie, process running ``cmdline``.

    Commands in the PID namespace know only their pid there (``$$``): tests find
    them by their command line instead, NUL-separated as in /proc.
    """
    for entry in Path("/proc").iterdir():
        try:
            if (
                entry.name.isdigit()
                and (entry / "cmdline").read_text() == cmdline
                and (entry / "stat").read_text().rpartition(")")[2].split()[0] != "Z"
            ):
                return int(entry.name)
        except OSError:
            pass
    return None


def _wait_until(condition: Callable[[], object], timeout_s: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; whether it holds."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(condition())


@pytest.fixture
def live_pid() -> Callable[[str], int | None]:
    """:func:`_live_pid`: find a process by its command line."""
    return _live_pid


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """:func:`_wait_until`: poll a condition for up to 10 s."""
    return _wait_until
