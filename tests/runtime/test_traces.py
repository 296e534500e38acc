"""Tests for the trace store: records, export against the JSON Schema, skvm-trace, and a
store that survives its writer being SIGKILLed mid-run."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import jsonschema

from skvm.cli.trace import TraceDriver
from skvm.ir.parser import parse_module
from skvm.runtime.interpreter import Interpreter, OpFailure, RunOptions
from skvm.runtime import traces
from skvm.runtime.traces import TraceStore

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "skvm" / "schemas" / "trace.schema.json").read_text()
)
SKILL = """
skill @t {
  proc @main(%task: text) -> text {
    %a = tool.exec ["echo", %task] : text loc("SKILL.md":3:1)
    %b = tool.exec ["sh", "-c", "exit $0", %a] : text loc("SKILL.md":4:1)
    ctl.return (%b)
  }
}
"""


def _run(tmp_path: Path, task: str) -> None:
    Interpreter(parse_module(SKILL, "t.skir"), RunOptions(workdir=tmp_path)).run("main", {"task": task})


def test_records_and_export_match_schema(tmp_path: Path) -> None:
    _run(tmp_path, "0")
    try:
        _run(tmp_path, "7")
    except OpFailure:
        pass
    store = TraceStore(tmp_path / ".skvm" / "traces.sqlite")
    runs = store.runs()
    assert [r["status"] for r in runs] == ["ok", "failed"]
    assert "exited with status 7" in runs[1]["error"]
    exported = store.export_run(runs[1]["run_id"])
    store.close()
    jsonschema.validate(exported, SCHEMA)
    first, second = exported["ops"]
    assert (first["op_id"], first["location"], first["outcome"]) == ("@main/0", "SKILL.md:3:1", "ok")
    assert first["inputs_preview"] == '["7"]' and len(first["inputs_hash"]) == 16
    assert second["outcome"] == "failed" and "status 7" in second["error"]


def test_skvm_trace_list_and_show(tmp_path: Path) -> None:
    _run(tmp_path, "0")
    out, err = io.StringIO(), io.StringIO()
    assert TraceDriver(["--workdir", str(tmp_path), "list"], stdout=out, stderr=err).run() == 0
    line = out.getvalue().strip()
    assert " ok " in line and "t/@main  2 ops" in line
    out = io.StringIO()
    assert TraceDriver(["--workdir", str(tmp_path), "show", "last"], stdout=out, stderr=err).run() == 0
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("t/@main ok") and "tool.exec" in lines[1] and "SKILL.md:3:1" in lines[1]
    out = io.StringIO()
    assert TraceDriver(["--workdir", str(tmp_path), "show", "last", "--json"], stdout=out).run() == 0
    jsonschema.validate(json.loads(out.getvalue()), SCHEMA)
    err = io.StringIO()
    assert TraceDriver(["--workdir", str(tmp_path / "none"), "list"], stderr=err).run() == 1
    assert "no trace store" in err.getvalue()
    assert TraceDriver(["--workdir", str(tmp_path), "show", "nope"], stderr=err).run() == 1


KILLED = """
import sys
import threading
from skvm.ir.parser import parse_module
from skvm.runtime.interpreter import Interpreter, RunOptions
ops = "".join(f'    %a{i} = tool.exec ["sh", "-c", "echo {i}; sleep 0.05"] : text\\n' for i in range(400))
text = "skill @t {\\n  proc @main(%task: text) -> text {\\n" + ops + "    ctl.return (%a0)\\n  }\\n}\\n"
Interpreter(parse_module(text, "k.skir"), RunOptions(workdir=sys.argv[1])).run("main", {})
"""


def test_trace_cli_reads_only_and_refuses_other_files(tmp_path: Path) -> None:
    import hashlib
    import sqlite3

    foreign = tmp_path / "other.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE notes (x)")
    db.commit()
    db.close()
    before = hashlib.sha256(foreign.read_bytes()).hexdigest()
    err = io.StringIO()
    assert TraceDriver(["--store", str(foreign), "list"], stderr=err).run() == 1
    assert f"skvm-trace: error: {foreign} is not a skvm trace store (no runs and ops tables)" in err.getvalue()
    assert hashlib.sha256(foreign.read_bytes()).hexdigest() == before  # no tables added, no WAL switch
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    err = io.StringIO()
    assert TraceDriver(["--store", str(text), "list"], stderr=err).run() == 1
    assert "is not a skvm trace store (file is not a database)" in err.getvalue()
    assert text.read_text() == "not a database\n"


def test_store_survives_sigkill(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path)])
    store_path = tmp_path / ".skvm" / "traces.sqlite"
    deadline = time.monotonic() + 30
    recorded = 0
    while time.monotonic() < deadline and recorded < 5:
        time.sleep(0.1)
        if store_path.exists():
            try:
                with sqlite3.connect(store_path) as db:
                    recorded = db.execute("SELECT count(*) FROM ops").fetchone()[0]
            except sqlite3.OperationalError:
                recorded = 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert recorded >= 5, "the run never recorded ops"
    store = TraceStore(store_path)
    (run,) = store.runs()
    ops = store.ops(run["run_id"])
    store.close()
    assert run["status"] == "running" and run["finished"] is None
    assert len(ops) >= recorded and [o["seq"] for o in ops] == list(range(1, len(ops) + 1))
    assert all(o["outcome"] == "ok" for o in ops)
    with sqlite3.connect(store_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _indexes(store_path: Path) -> set[str]:
    with sqlite3.connect(store_path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}


def test_records_update_no_index_but_the_key(tmp_path: Path) -> None:
    # Every index is written on every record, in the writer thread, while commands run.
    _run(tmp_path, "0")
    assert _indexes(tmp_path / ".skvm" / "traces.sqlite") == {"sqlite_autoindex_ops_1", "sqlite_autoindex_runs_1"}


def test_an_older_store_loses_its_unused_index_and_keeps_its_runs(tmp_path: Path) -> None:
    store_path = tmp_path / ".skvm" / "traces.sqlite"
    _run(tmp_path, "0")
    traces._close_all()  # the next run opens the store afresh, as a new process would
    with sqlite3.connect(store_path) as db:  # as stores made before 2026-11-22 were
        db.execute("CREATE INDEX ops_by_op ON ops (op_id)")
    _run(tmp_path, "0")
    assert "ops_by_op" not in _indexes(store_path)
    store = TraceStore(store_path)
    assert [len(store.ops(run["run_id"])) for run in store.runs()] == [2, 2]
    store.close()


def _committed_ops(store_path: Path) -> int:
    with sqlite3.connect(store_path) as db:  # another connection: sees only commits
        return db.execute("SELECT count(*) FROM ops").fetchone()[0]


def _sweepers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "skvm-trace-sweeper"]


def test_a_batch_left_waiting_by_a_long_op_is_committed_and_the_sweeper_stops(
    tmp_path: Path, monkeypatch
) -> None:
    # The thread that ends an op commits the batch once it is old enough. When
    # no op ends for a while (the VM waits on a model), the sweeper commits it.
    monkeypatch.setattr(traces, "SWEEPER_IDLE_S", 0.2)
    store_path = tmp_path / "t.sqlite"
    store = TraceStore(store_path)
    run_id = store.start_run("s", "main", None)

    def record() -> None:
        store.record_op(run_id, op_id="@main/0", op_name="tool.exec", location=None, inputs=[],
                        inputs_hash="0" * 16, result="done", outcome="ok")

    def wait_for(condition) -> bool:
        deadline = time.monotonic() + 10
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        return condition()

    record()
    assert wait_for(lambda: _committed_ops(store_path) == 1), "nothing committed the waiting record"
    assert wait_for(lambda: not _sweepers()), "the sweeper did not stop when records stopped coming"
    record()  # starts a sweeper again
    assert wait_for(lambda: _committed_ops(store_path) == 2)
    store.close()
