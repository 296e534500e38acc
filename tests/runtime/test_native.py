"""Tests for starting commands in-process (skvm.runtime.native and its _spawn extension)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from skvm.runtime import native, sandbox
from skvm.runtime.sandbox import SandboxPolicy, run

pytestmark = pytest.mark.skipif(not native.available(), reason=str(native.UNAVAILABLE))

PY = sys.executable



@pytest.fixture(autouse=True)
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here starts its commands in-process."""
    monkeypatch.setattr(sandbox, "NATIVE_ENABLED", True)




def _bit(sig: int) -> int:
    return 1 << (sig - 1)


def test_the_mechanism_is_in_process() -> None:
    assert sandbox.spawn_mechanism().startswith("in-process")


@pytest.mark.parametrize("memory", [1 << 30, 200 << 20])  # the fork server forks below 256 MB
def test_limits_session_and_directory(workdir: Path, memory: int, probe) -> None:
    policy = SandboxPolicy(workdir, timeout_s=7, memory_bytes=memory, file_size_bytes=3 << 20)
    seen = probe(policy)
    assert seen["limits"]["RLIMIT_CORE"] == [0, 0]
    assert seen["limits"]["RLIMIT_CPU"] == [8, 9]
    assert seen["limits"]["RLIMIT_AS"] == [memory, memory]
    assert seen["limits"]["RLIMIT_FSIZE"] == [3 << 20, 3 << 20]
    assert seen["pid"] == seen["pgid"] == seen["sid"]  # its own session and group
    # Started by the VM itself, which a command in the PID namespace cannot see.
    assert seen["ppid"] == (0 if seen["processes_isolated"] else os.getpid())
    assert seen["cwd"] == str(workdir)


def test_only_the_standard_fds_are_inherited(workdir: Path, probe) -> None:
    leaked = os.open(os.devnull, os.O_RDONLY)
    os.set_inheritable(leaked, True)  # even an fd the VM left inheritable stays behind
    try:
        seen = probe(SandboxPolicy(workdir, timeout_s=10))
    finally:
        os.close(leaked)
    assert [fd for fd in seen["fds"] if fd > 2] in ([], [3])  # 3: listdir's own fd


def test_signal_actions_and_mask(workdir: Path) -> None:
    """Handlers never reach the child; Python's ignored SIGPIPE/SIGXFSZ are restored;
    other ignored signals stay ignored, as across any exec; nothing is blocked."""
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # Python's start-up does this
    previous = {
        signal.SIGUSR1: signal.signal(signal.SIGUSR1, lambda *_: None),
        signal.SIGUSR2: signal.signal(signal.SIGUSR2, signal.SIG_IGN),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
    }
    try:
        # cat leaves its signal actions as it found them (Python would ignore SIGPIPE).
        result = run(["/bin/cat", "/proc/self/status"], SandboxPolicy(workdir, timeout_s=10))
    finally:
        for sig, action in previous.items():
            signal.signal(sig, action)
    assert result.ok, result.stderr
    status = dict(line.split(":", 1) for line in result.stdout.splitlines())
    ignored, blocked = int(status["SigIgn"], 16), int(status["SigBlk"], 16)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGUSR1):
        assert not ignored & _bit(sig), sig
    assert ignored & _bit(signal.SIGUSR2)
    assert blocked == 0


def test_pids_cgroup_is_joined(workdir: Path, probe) -> None:
    if sandbox.process_limit_mechanism() != "pids cgroup per command":
        pytest.skip("no writable pids cgroup here")
    seen = probe(SandboxPolicy(workdir, timeout_s=10))
    assert "/run-" in seen["cgroup"] and f"skvm-{os.getpid()}/" in seen["cgroup"]


def test_network_namespace_is_entered(workdir: Path) -> None:
    ok, why = sandbox.network_isolation_available()
    if not ok:
        pytest.skip(why)
    code = "import os; print(os.readlink('/proc/self/ns/net'))"
    isolated = run([PY, "-S", "-c", code], SandboxPolicy(workdir, timeout_s=10))
    shared = run([PY, "-S", "-c", code], SandboxPolicy(workdir, timeout_s=10, allow_network=True))
    assert isolated.ok and shared.ok, (isolated.stderr, shared.stderr)
    assert isolated.stdout != shared.stdout
    assert shared.stdout.strip() == os.readlink("/proc/self/ns/net")


# ------------------------------------------------------------------- failures before exec


def test_not_found_not_executable_and_no_shebang(workdir: Path) -> None:
    policy = SandboxPolicy(workdir, timeout_s=10)
    missing = run(["no-such-command-skvm"], policy)
    assert missing.returncode == 127
    assert "skvm-sandbox: no-such-command-skvm: not found" in missing.stderr
    (workdir / "plain.txt").write_text("echo hi\n")
    denied = run(["./plain.txt"], policy)
    assert denied.returncode == 126 and "Permission denied" in denied.stderr
    (workdir / "script").write_text("echo from sh $1\n")
    (workdir / "script").chmod(0o755)
    script = run(["./script", "arg"], policy)  # no #!: runs under /bin/sh, as a shell would
    assert script.ok and script.stdout == "from sh arg\n"


def test_path_comes_from_the_command_environment(workdir: Path, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "skvm-only-here").write_text("#!/bin/sh\necho found\n")
    (tools / "skvm-only-here").chmod(0o755)
    policy = SandboxPolicy(workdir, timeout_s=10)
    assert run(["skvm-only-here"], policy).returncode == 127
    found = run(["skvm-only-here"], policy, extra_env={"PATH": f"{tools}:/usr/bin:/bin"})
    assert found.ok and found.stdout == "found\n"


def _spawn(workdir: Path, argv: list[str], **kwargs) -> tuple[int | None, str]:
    """native.spawn directly: (return code, stderr)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        child = native.spawn(
            argv,
            env=kwargs.pop("env", {"PATH": "/usr/bin:/bin"}),
            cwd=kwargs.pop("cwd", str(workdir)),
            limits=kwargs.pop("limits", []),
            stdout_fd=out_w,
            stderr_fd=err_w,
        )
    finally:
        os.close(out_w)
        os.close(err_w)
    try:
        child.wait(10)
        return child.reap(), os.read(err_r, 4096).decode()
    finally:
        os.close(out_r)
        os.close(err_r)


def test_a_limit_that_cannot_be_set_stops_the_command(workdir: Path) -> None:
    code, stderr = _spawn(workdir, ["/bin/true"], limits=[("RLIMIT_CPU", 10, 5)])  # soft > hard
    assert code == 126
    assert stderr == "skvm-sandbox: set RLIMIT_CPU: Invalid argument\n"


def test_a_missing_directory_stops_the_command(workdir: Path) -> None:
    code, stderr = _spawn(workdir, ["/bin/true"], cwd=str(workdir / "gone"))
    assert code == 126
    assert stderr.startswith(f"skvm-sandbox: enter {workdir / 'gone'}: No such file")


@pytest.mark.parametrize(
    "argv, env", [(["/bin/echo", "a\0b"], {}), (["/bin/true"], {"X": "a\0b"})], ids=["argv", "env"]
)
def test_nul_bytes_are_refused(workdir: Path, argv: list[str], env: dict) -> None:
    with pytest.raises(ValueError):
        _spawn(workdir, argv, env=env)


# ------------------------------------------------------------------ concurrency and cleanup


def test_concurrent_starts_from_threads(workdir: Path) -> None:
    """ctl.parallel starts commands from several threads at once: each gets its own output."""
    policy = SandboxPolicy(workdir, timeout_s=20)
    results: dict[tuple[int, int], str] = {}

    def worker(thread: int) -> None:
        for index in range(15):
            result = run(["/bin/echo", f"{thread}-{index}"], policy)
            results[thread, index] = result.stdout if result.ok else result.stderr

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {(t, i): f"{t}-{i}\n" for t in range(6) for i in range(15)}


def test_the_command_dies_with_the_vm(tmp_path: Path, live_pid, wait_until) -> None:
    """A VM killed with SIGKILL takes its running command with it (parent-death signal)."""
    pid_file = tmp_path / "pid"
    marker = os.getpid()
    vm = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from pathlib import Path
        from skvm.runtime.sandbox import SandboxPolicy, run
        run(["/bin/sh", "-c", "echo $$ > {pid_file}; exec sleep 60.{marker}"],
            SandboxPolicy(Path({str(tmp_path)!r}), timeout_s=120))
    """)
    proc = subprocess.Popen([PY, "-c", vm])
    try:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.02)
        command_line = f"sleep\0" f"60.{marker}\0"  # $$ is its pid in its PID namespace
        assert wait_until(lambda: live_pid(command_line)), "the command never exec'd sleep"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # Gone, or a zombie waiting for init to reap it.
        assert wait_until(lambda: not live_pid(command_line), 20), "the command outlived its VM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_dead_vms_cgroups_are_swept(tmp_path: Path) -> None:
    """What a dead VM's commands left running in their pids cgroups is killed by the next VM."""
    if sandbox.process_limit_mechanism() != "pids cgroup per command":
        pytest.skip("no writable pids cgroup here")
    root = sandbox._pids_cgroup_root().parent
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()  # a pid that no longer runs
    group = root / f"skvm-{dead.pid}" / "run-1"
    group.mkdir(parents=True)
    straggler = subprocess.Popen(["sleep", "60"])
    try:
        (group / "cgroup.procs").write_text(str(straggler.pid))
        sandbox._sweep_dead_cgroups(root)
        assert straggler.wait(timeout=10) == -signal.SIGKILL
        assert not group.parent.exists()
    finally:
        if straggler.poll() is None:
            straggler.kill()
            straggler.wait()
        for path in (group, group.parent):
            if path.exists():
                path.rmdir()
