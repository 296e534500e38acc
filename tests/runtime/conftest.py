"""Fixtures shared by the runtime tests: a work directory and a confinement probe."""

from __future__ import annotations

import json
import sys
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
