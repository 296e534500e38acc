"""Commands started in-process are confined by Landlock: writes stay in the work directory."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from skvm.runtime import landlock, sandbox
from skvm.runtime.sandbox import SandboxPolicy, run

AVAILABLE, WHY = sandbox.file_confinement_available()
needs_landlock = pytest.mark.skipif(not AVAILABLE, reason=f"no file confinement: {WHY}")


@pytest.fixture(autouse=True)
def start_path(confining_start_path: str) -> str:
    return confining_start_path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A work directory with a sibling 'host' directory that must stay untouched."""
    (tmp_path / "work").mkdir()
    (tmp_path / "host").mkdir()
    (tmp_path / "host" / "keep.txt").write_text("host data\n")
    return tmp_path / "work"


def sh(script: str, workdir: Path, **policy) -> sandbox.ExecResult:
    return run(script, SandboxPolicy(workdir, timeout_s=20, **policy), shell=True)


def host_unchanged(workdir: Path) -> bool:
    host = workdir.parent / "host"
    return sorted(p.name for p in host.iterdir()) == ["keep.txt"] and (host / "keep.txt").read_text() == "host data\n"


@needs_landlock
@pytest.mark.parametrize(
    "script",
    [
        "echo pwned > ../host/x",
        "echo pwned > {host}/x",
        "ln -s {host} out && echo pwned > out/x",
        "echo pwned >> ../host/keep.txt",
        ": > ../host/keep.txt",
        "rm ../host/keep.txt",
        "mv ../host/keep.txt stolen.txt",
        "mkdir ../host/d",
        "ln -s /etc/passwd ../host/link",
        "cp /etc/hostname ../host/",
        "{python} -c \"open('../host/x', 'w')\"",
        "cd .. && touch host/x",
    ],
)
def test_commands_cannot_change_files_outside(workdir: Path, script: str) -> None:
    script = script.format(host=workdir.parent / "host", python=sys.executable)
    result = sh(script, workdir)
    assert result.files_confined
    assert result.returncode != 0, result
    assert "Permission denied" in result.stderr or "PermissionError" in result.stderr, result.stderr
    assert host_unchanged(workdir)


@needs_landlock
def test_commands_work_normally_inside(workdir: Path) -> None:
    script = (
        "mkdir -p a/b && echo one > a/b/f && mv a/b/f a/g && ln -s g a/link && cat a/link"
        " && : > a/g && rm -r a && t=$(mktemp) && echo tmp > $t && cat $t"
        " && echo quiet > /dev/null && head -c 4 /dev/urandom | wc -c"
        f" && {sys.executable} -c 'import json, sqlite3; print(json.dumps([1]))'"
    )
    result = sh(script, workdir)
    assert result.ok, result.stderr
    assert result.stdout.split() == ["one", "tmp", "4", "[1]"]
    assert sorted(p.name for p in workdir.iterdir()) == [".tmp"]


@needs_landlock
def test_the_vm_itself_stays_unrestricted(workdir: Path) -> None:
    assert sh("echo x > ../host/y", workdir).returncode != 0
    (workdir.parent / "host" / "y").write_text("the VM may\n")
    assert (workdir.parent / "host" / "y").read_text() == "the VM may\n"


@needs_landlock
def test_confinement_can_be_turned_off(workdir: Path) -> None:
    result = sh("echo allowed > ../host/x", workdir, confine_files=False)
    assert result.ok and not result.files_confined
    assert (workdir.parent / "host" / "x").read_text() == "allowed\n"


@needs_landlock
def test_raw_devices_and_the_vm_are_out_of_reach(workdir: Path) -> None:
    disks = [p for p in ("/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/mem") if os.path.exists(p)]
    script = "; ".join(f"head -c 1 {d} >/dev/null && echo READ {d}" for d in disks) or "true"
    result = sh(f"{script}; readlink /proc/{os.getpid()}/fd/1 && echo SAW-FDS; true", workdir)
    assert "READ" not in result.stdout and "SAW-FDS" not in result.stdout, result.stdout
    if landlock.abi_version() >= 6:  # signals are scoped from ABI 6
        killed = sh(f"kill -0 {os.getpid()} && echo SIGNALLED", workdir)
        assert "SIGNALLED" not in killed.stdout


def test_read_roots_hide_homes_and_their_secrets(tmp_path: Path) -> None:
    root = tmp_path / "fs"
    for d in ("usr/bin", "etc", "dev", "root", "home/bob/data", "home/alice/.ssh", "home/alice/proj",
              "home/alice/.cargo/bin", "home/alice/.config/gh", "home/alice/.cache/huggingface"):
        (root / d).mkdir(parents=True)
    for f in ("home/alice/.cargo/credentials.toml", "home/alice/.netrc", "home/alice/.cache/huggingface/token",
              "home/alice/.cache/huggingface/hub.json", "home/alice/notes.txt"):
        (root / f).write_text("x")
    readable = landlock.read_roots(home=root / "home/alice", root=root)
    assert sorted(str(p.relative_to(root)) for p in readable) == [
        "etc",
        "home/alice/.cache/huggingface/hub.json",
        "home/alice/.cargo/bin",
        "home/alice/notes.txt",
        "home/alice/proj",
        "usr",
    ]
    # A home directly under the root (as /root is) is handled the same way.
    readable = landlock.read_roots(home=root / "root", root=root)
    assert "home" not in [p.name for p in readable] and root / "root" not in readable


def test_the_direct_path_cannot_confine(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    monkeypatch.setattr(sandbox, "NATIVE_ENABLED", False)
    monkeypatch.setattr(sandbox, "SPAWNER_ENABLED", False)
    assert sandbox.file_confinement_available() == (
        False, "commands start by the /bin/sh wrapper, which cannot apply Landlock"
    )
    result = sh("echo fine", workdir)
    assert result.ok and not result.files_confined


def test_unavailable_without_landlock(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    monkeypatch.setenv("SKVM_NO_LANDLOCK", "1")
    assert landlock.available() == (False, "disabled by $SKVM_NO_LANDLOCK")
    result = sh("echo fine", workdir)
    assert result.ok and not result.files_confined


def test_rules_are_not_repeated_for_what_another_rule_covers(tmp_path: Path) -> None:
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr-local").mkdir()
    (tmp_path / "bin").symlink_to(tmp_path / "usr" / "bin")
    paths = [tmp_path / "bin", tmp_path / "usr", tmp_path / "usr-local", tmp_path / "usr" / "bin"]
    assert landlock._without_nested(paths) == [tmp_path / "usr", tmp_path / "usr-local"]


@needs_landlock
def test_a_work_directory_made_again_under_the_same_name_is_writable(workdir: Path) -> None:
    # Landlock rules hold the directory's inode: a new directory needs a new ruleset.
    assert sh("echo one > f && cat f", workdir).stdout == "one\n"
    shutil.rmtree(workdir)
    workdir.mkdir()
    result = sh("echo two > f && cat f", workdir)
    assert result.ok and result.files_confined, result.stderr
    assert result.stdout == "two\n"

