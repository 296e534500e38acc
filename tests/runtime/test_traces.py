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
import time
from pathlib import Path

import jsonschema

from skvm.cli.trace import TraceDriver
from skvm.ir.parser import parse_module
from skvm.runtime.interpreter import Interpreter, OpFailure, RunOptions
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
