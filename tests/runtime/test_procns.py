"""Commands run in a PID namespace with a /proc of their own (skvm.runtime.procns).

Without it a command could read, through /proc/<pid>/environ, the start-up
environment of any process of the VM's user, such as the shell or CI step
that started skvm-run with API keys in it: Landlock does not stop that.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from skvm.runtime import procns, sandbox
from skvm.runtime.sandbox import SandboxPolicy, run

pytestmark = pytest.mark.skipif(
    not sandbox.process_isolation_available()[0], reason=sandbox.process_isolation_available()[1]
)

MARKER = "hunter3-not-a-key"

# Every environment a command can read in /proc, and the pids it can see.
LOOK = """
import json, os
pids, leaked = [], []
for name in os.listdir("/proc"):
    if name.isdigit():
        pids.append(int(name))
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if b"MARKER" in f.read():
                    leaked.append(int(name))
        except OSError:
            pass
print(json.dumps([sorted(pids), leaked, os.getpid()]))
""".replace("MARKER", MARKER)


@pytest.fixture(autouse=True)
def start_path(confining_start_path: str) -> str:
    return confining_start_path


@pytest.fixture
def holder():
    """A process outside the sandbox holding a secret in its start-up environment."""
    proc = subprocess.Popen(["sleep", "60"], env={**os.environ, "SKVM_TEST_SECRET": MARKER})
    yield proc
    proc.kill()
    proc.wait()


def _look(policy: SandboxPolicy) -> tuple[list[int], list[int], int]:
    result = run([sys.executable, "-I", "-S", "-c", LOOK], policy)
    assert result.ok, result.stderr
    visible, leaked, me = json.loads(result.stdout)
    return visible, leaked, me


def test_a_command_cannot_read_the_environment_of_processes_outside(workdir: Path, holder) -> None:
    result = run(["cat", f"/proc/{holder.pid}/environ"], SandboxPolicy(workdir))
    assert result.processes_isolated and result.files_confined
    assert MARKER not in result.stdout
    visible, leaked, me = _look(SandboxPolicy(workdir))
    assert leaked == []
    assert holder.pid not in visible or holder.pid == me  # a pid number of its own namespace at most
    assert os.getpid() not in visible or os.getpid() == me


def test_without_the_namespace_the_same_command_reads_it(workdir: Path, holder) -> None:
    # What the namespace prevents (this is the test above failing without it).
    result = run(["cat", f"/proc/{holder.pid}/environ"], SandboxPolicy(workdir, isolate_processes=False))
    assert not result.processes_isolated
    assert MARKER in result.stdout


def test_a_command_sees_only_the_namespace(workdir: Path) -> None:
    visible, _, me = _look(SandboxPolicy(workdir))
    assert 1 in visible and me in visible  # the namespace's init, and itself
    init = run(["cat", "/proc/1/environ", "/proc/1/cmdline"], SandboxPolicy(workdir))
    assert init.ok and "\0" not in init.stdout.split("python")[0]  # the init's environment is empty


def test_proc_self_works_under_landlock(workdir: Path) -> None:
    code = "import os; print(len(os.listdir('/proc/self/fd')), open('/proc/self/status').read().count('\\n') > 5)"
    result = run([sys.executable, "-I", "-S", "-c", code], SandboxPolicy(workdir))
    assert result.ok, result.stderr
    assert result.files_confined and result.processes_isolated
    assert result.stdout.split()[1] == "True"


def test_threads_that_started_commands_can_start_threads(workdir: Path) -> None:
    # The calling thread sets where its next child is born, and must set it back:
    # otherwise it could not start a thread (clone(CLONE_THREAD) would fail).
    def work(i: int) -> bool:
        assert run(["echo", str(i)], SandboxPolicy(workdir)).processes_isolated
        started = threading.Thread(target=lambda: None)
        started.start()
        started.join()
        return True

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(16)))
    assert work(99)


def test_ending_the_namespace_kills_what_was_left_in_it(workdir: Path, monkeypatch, live_pid, wait_until) -> None:
    namespace = procns.ProcessNamespace()
    monkeypatch.setattr(procns, "shared", lambda: namespace)
    marker = f"60.{os.getpid()}"
    # No pids cgroup, and a new session: nothing but the namespace holds the straggler.
    result = run(["sh", "-c", f"setsid sleep {marker} >/dev/null 2>&1 & sleep 0.5"], SandboxPolicy(workdir, max_processes=None))
    assert result.ok and result.processes_isolated
    command_line = f"sleep\0{marker}\0"
    assert wait_until(lambda: live_pid(command_line)), "the straggler did not start"
    namespace.close()  # what the VM's exit does
    assert wait_until(lambda: not live_pid(command_line)), "the straggler outlived the namespace"


def test_it_can_be_turned_off(workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("SKVM_NO_PROCESS_NS", "1")
    assert not sandbox.process_isolation_available()[0]
    assert not run(["true"], SandboxPolicy(workdir)).processes_isolated


def test_the_sh_wrapper_path_does_not_enter_it(workdir: Path, monkeypatch) -> None:
    monkeypatch.setattr(sandbox, "NATIVE_ENABLED", False)
    monkeypatch.setattr(sandbox, "SPAWNER_ENABLED", False)
    assert not sandbox.process_isolation_available()[0]
    result = run(["true"], SandboxPolicy(workdir))
    assert result.ok and not result.processes_isolated


def test_what_commands_left_dies_with_a_vm_killed_with_sigkill(
    tmp_path: Path, start_path: str, live_pid, wait_until
) -> None:
    # No pids cgroup and a new session: only the namespace holds the straggler.
    # When the VM dies, its pipe to the namespace's init closes, the init
    # exits, and the kernel kills everything left in the namespace.
    marker = f"61.{os.getpid()}"
    vm = f"""
import sys
from skvm.runtime import sandbox
sandbox.NATIVE_ENABLED = {start_path == "in-process"}
result = sandbox.run(["sh", "-c", "setsid sleep {marker} >/dev/null 2>&1 & sleep 0.5"],
                     sandbox.SandboxPolicy({str(tmp_path)!r}, max_processes=None))
print(result.processes_isolated, flush=True)
sys.stdin.read()  # until killed
"""
    proc = subprocess.Popen([sys.executable, "-c", vm], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "True"
        command_line = f"sleep\0{marker}\0"
        assert wait_until(lambda: live_pid(command_line)), "the straggler did not start"
        proc.kill()
        proc.wait()
        assert wait_until(lambda: not live_pid(command_line)), "the straggler outlived its VM"
    finally:
        proc.kill()
        proc.wait()
