"""Tests for the sandbox's fork server: limits, groups, environment, output, failures."""

from __future__ import annotations

import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from skvm.runtime import sandbox, spawner
from skvm.runtime.sandbox import SandboxPolicy, run
from skvm.runtime.spawner import Spawner, SpawnerError

PY = sys.executable



@pytest.fixture(autouse=True)
def fork_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here uses the fork server (and leaves the module's settings as they were).

    Without Landlock and the commands' PID namespace: a command confined by
    either always takes the main server's fork path, and these tests are about
    the limited servers' posix_spawn path as well (confinement through the
    fork server is tested in test_landlock.py and test_procns.py). They also
    read the pids a command sees as pids of this process's namespace.
    """
    monkeypatch.setattr(sandbox, "NATIVE_ENABLED", False)
    monkeypatch.setattr(sandbox, "SPAWNER_ENABLED", True)
    monkeypatch.setenv("SKVM_NO_LANDLOCK", "1")
    monkeypatch.setenv("SKVM_NO_PROCESS_NS", "1")




# ----------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    "memory",
    [1 << 30, 200 << 20],  # a limited server's posix_spawn path; the main server's fork path
    ids=["posix_spawn", "fork"],
)
def test_limits_are_applied(workdir: Path, memory: int, probe) -> None:
    policy = SandboxPolicy(workdir, timeout_s=7, memory_bytes=memory, file_size_bytes=3 << 20)
    seen = probe(policy)
    limits = seen["limits"]
    assert limits["RLIMIT_CORE"] == [0, 0]
    assert limits["RLIMIT_CPU"] == [8, 9]  # ceil(timeout) + 1, hard one above: SIGXCPU first
    assert limits["RLIMIT_AS"] == [memory, memory]
    assert limits["RLIMIT_FSIZE"] == [3 << 20, 3 << 20]
    if os.geteuid() != 0:
        assert limits["RLIMIT_NPROC"][0] <= limits["RLIMIT_NPROC"][1] != resource.RLIM_INFINITY
    assert seen["ppid"] != os.getpid()  # started by a spawner, not by the VM
    assert seen["cwd"] == str(workdir)


def test_own_session_and_process_group(workdir: Path, probe) -> None:
    seen = probe(SandboxPolicy(workdir, timeout_s=10))
    assert seen["pid"] == seen["pgid"] == seen["sid"]


def test_pids_cgroup_is_joined(workdir: Path, probe) -> None:
    if sandbox.process_limit_mechanism() != "pids cgroup per command":
        pytest.skip("no writable pids cgroup here")
    seen = probe(SandboxPolicy(workdir, timeout_s=10))
    assert re_search(r"pids:/.*skvm-\d+/run-\d+", seen["cgroup"])
    # The limited server went back to its own cgroup after starting the command.
    ppid_cgroup = Path(f"/proc/{seen['ppid']}/cgroup")
    if ppid_cgroup.exists():
        assert "/spawners" in ppid_cgroup.read_text()


def re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None


def test_cpu_limit_kills_through_the_spawner(workdir: Path) -> None:
    result = run([PY, "-c", "while True: pass"], SandboxPolicy(workdir, cpu_s=1, timeout_s=10))
    assert result.killed_reason == "CPU time limit exceeded"


# -------------------------------------------------------------- timeout, groups


def test_timeout_kills_the_whole_group(workdir: Path) -> None:
    start = time.perf_counter()
    result = run(
        "(sleep 1; touch late) & sleep 30", SandboxPolicy(workdir, timeout_s=0.3), shell=True
    )
    assert result.timed_out and result.returncode == -signal.SIGKILL
    assert time.perf_counter() - start < 2
    time.sleep(1.3)
    assert not (workdir / "late").exists()


def test_straggler_is_killed_when_the_command_exits(workdir: Path) -> None:
    start = time.perf_counter()
    result = run(
        "(sleep 1; touch late) & echo done", SandboxPolicy(workdir, timeout_s=10), shell=True
    )
    assert result.stdout == "done\n" and result.ok
    assert time.perf_counter() - start < 1
    time.sleep(1.3)
    assert not (workdir / "late").exists()


# ------------------------------------------------------------------ environment


def test_env_is_scrubbed_and_the_spawner_holds_no_secrets(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, probe
) -> None:
    monkeypatch.setenv("SKVM_TEST_SECRET_TOKEN", "hunter2-spawner")
    result = run(["env"], SandboxPolicy(workdir, timeout_s=10))
    assert result.ok and "hunter2" not in result.stdout
    assert f"HOME={workdir}" in result.stdout
    seen = probe(SandboxPolicy(workdir, timeout_s=10))
    environ = Path(f"/proc/{seen['ppid']}/environ").read_bytes()
    assert b"hunter2" not in environ and b"SKVM_TEST_SECRET_TOKEN" not in environ


def test_extra_env_reaches_the_command(workdir: Path) -> None:
    result = run(
        ["sh", "-c", "echo $SKVM_X"],
        SandboxPolicy(workdir, timeout_s=10),
        extra_env={"SKVM_X": "1"},
    )
    assert result.stdout == "1\n"


# ----------------------------------------------------------------------- output


def test_output_is_capped_and_drained(workdir: Path) -> None:
    policy = SandboxPolicy(workdir, timeout_s=10, output_limit_bytes=1000)
    result = run(["head", "-c", "3000000", "/dev/zero"], policy)
    assert result.ok and result.truncated and len(result.stdout) == 1000


def test_stdin_is_passed(workdir: Path) -> None:
    result = run(["wc", "-c"], SandboxPolicy(workdir, timeout_s=10), stdin="x" * 200_000)
    assert result.stdout.strip() == "200000"


def test_script_without_shebang_runs_as_sh(workdir: Path) -> None:
    script = workdir / "plain"
    script.write_text("echo from-sh\n")
    script.chmod(0o755)
    result = run(["./plain"], SandboxPolicy(workdir, timeout_s=10))
    assert result.stdout == "from-sh\n"


def test_not_executable_is_126(workdir: Path) -> None:
    (workdir / "data").write_text("x")
    result = run(["./data"], SandboxPolicy(workdir, timeout_s=10))
    assert result.returncode == 126 and "Permission denied" in result.stderr


def test_huge_request_uses_the_direct_path(workdir: Path) -> None:
    args = ["y" * 10_000] * (
        spawner.MAX_REQUEST_BYTES // 10_000 + 1
    )  # one arg may not pass 128 KiB
    result = run(["printf", "%s", *args], SandboxPolicy(workdir, timeout_s=10))
    assert result.ok and len(result.stdout) == sum(map(len, args))


@pytest.mark.parametrize("memory", [1 << 30, 200 << 20], ids=["posix_spawn", "fork"])
def test_command_inherits_only_its_standard_streams(workdir: Path, memory: int) -> None:
    # A leaked spawner socket would let a command start processes outside its limits.
    result = run(["ls", "/proc/self/fd"], SandboxPolicy(workdir, timeout_s=10, memory_bytes=memory))
    assert sorted(result.stdout.split()) == ["0", "1", "2", "3"]  # 3: ls's own directory fd


# ------------------------------------------------------------------- failures


def _run_and_kill_spawner(workdir: Path, kill_main: bool) -> sandbox.ExecResult:
    """Start a command, then SIGKILL the server that started it (and the main one)."""
    holder: dict[str, sandbox.ExecResult] = {}
    policy = SandboxPolicy(workdir, timeout_s=20)
    thread = threading.Thread(
        target=lambda: holder.setdefault(
            "r", run("echo $PPID > ppid; sleep 2; touch late", policy, shell=True)
        )
    )
    thread.start()
    ppid_file = workdir / "ppid"
    for _ in range(200):
        if ppid_file.exists() and ppid_file.read_text().strip():
            break
        time.sleep(0.01)
    server_pid = int(ppid_file.read_text())
    os.kill(server_pid, signal.SIGKILL)
    if kill_main:
        main = sandbox._spawners[
            not policy.allow_network and sandbox.network_isolation_available()[0]
        ]
        os.kill(main.proc.pid, signal.SIGKILL)
    thread.join(10)
    assert not thread.is_alive()
    return holder["r"]


@pytest.mark.parametrize("kill_main", [False, True], ids=["limited-server", "all-servers"])
def test_spawner_death_stops_the_command_and_is_recovered(workdir: Path, kill_main: bool) -> None:
    run(["true"], SandboxPolicy(workdir, timeout_s=20))  # servers up
    start = time.perf_counter()
    result = _run_and_kill_spawner(workdir, kill_main)
    assert result.killed_reason == sandbox.SPAWNER_DIED
    assert not result.ok
    assert time.perf_counter() - start < 1.5
    time.sleep(2.2)
    assert not (workdir / "late").exists()  # the orphaned command was killed too
    after = run(["echo", "again"], SandboxPolicy(workdir, timeout_s=20))
    assert after.ok and after.stdout == "again\n"
    assert sandbox.spawn_mechanism().startswith("fork server")


def test_start_failure_falls_back_to_the_direct_path(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args, **kwargs):
        raise SpawnerError("cannot start the spawner: test")

    monkeypatch.setattr(sandbox, "Spawner", broken)
    monkeypatch.setattr(sandbox, "_spawners", {})
    monkeypatch.setattr(sandbox, "_spawner_errors", {})
    monkeypatch.setattr(sandbox, "_spawner_starts", {})
    result = run(["sh", "-c", "ulimit -v; echo $$"], SandboxPolicy(workdir, timeout_s=10))
    assert result.ok
    assert result.stdout.split()[0] == str((1 << 30) // 1024)  # limits still set (by the wrapper)
    assert (
        sandbox.spawn_mechanism()
        == "direct: a /bin/sh wrapper per command (cannot start the spawner: test)"
    )


def test_limited_server_retires_and_is_replaced(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, probe
) -> None:
    monkeypatch.setattr(spawner, "RETIRE_FRACTION", 0.0)  # retire after every command
    policy = SandboxPolicy(workdir, timeout_s=13)  # limits of their own: a fresh server
    parents = [probe(policy)["ppid"] for _ in range(3)]
    assert len(set(parents)) == 3


def test_exit_status_from_the_server_when_proc_cannot_say(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spawner, "_zombie_status", lambda pid: None)
    policy = SandboxPolicy(workdir, timeout_s=10)
    assert run(["sh", "-c", "exit 3"], policy).returncode == 3
    killed = run(["sh", "-c", "kill -TERM $$"], policy)
    assert killed.returncode == -signal.SIGTERM and killed.killed_reason == "killed by signal 15"


def test_nul_in_argv_is_refused_and_the_spawner_survives(workdir: Path) -> None:
    policy = SandboxPolicy(workdir, timeout_s=10)
    with pytest.raises(ValueError):
        run(["echo", "a\0b"], policy)
    assert run(["echo", "ok"], policy).stdout == "ok\n"
    assert sandbox.spawn_mechanism().startswith("fork server")


# ------------------------------------------------------------------ client API


def test_client_protocol_and_shutdown(tmp_path: Path) -> None:
    client = Spawner()
    try:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        child = client.spawn(
            ["/bin/echo", "hello"],
            env={"PATH": "/bin:/usr/bin"},
            cwd=str(tmp_path),
            limits=[("RLIMIT_CORE", 0, 0)],
            stdout_fd=out_w,
            stderr_fd=err_w,
        )
        os.close(out_w)
        os.close(err_w)
        assert os.read(out_r, 100) == b"hello\n"
        assert child.wait(10), "no exit status"
        assert child.returncode == 0
        client.release(child)
        os.close(out_r)
        os.close(err_r)
    finally:
        client.close()
    assert client.proc.returncode == 0  # the server exits when its socket closes
    with pytest.raises(SpawnerError):
        client.spawn(["true"], env={}, cwd="/", limits=[], stdout_fd=0, stderr_fd=0)
