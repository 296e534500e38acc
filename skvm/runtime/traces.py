"""The trace store: a durable record of every op the VM executes.

One SQLite file (standard library) per work directory,
``<workdir>/.skvm/traces.sqlite``, opened in WAL mode with
``synchronous=NORMAL``.

Op records are group-committed by the threads that run the ops: the VM
queues a record when its op ends, and the thread ending an op commits the
batch in one transaction once its first record is :data:`GATHER_S` old. A
sweeper thread per store commits a batch left waiting because the VM went
into a long op (a model call, a slow command); it looks every
:data:`SWEEP_S`, and stops when no record came for a second. A writer
thread used to do every commit: on two cores its work, its wake-ups and its
turns with the GIL, in the middle of the next command, cost 0.15-0.3 ms per
command, more than the commit itself. Every transaction is atomic, so a run
killed with SIGKILL leaves a readable, consistent store holding every op up
to the last commit, which trails the op's end by at most ``GATHER_S +
SWEEP_S`` plus a commit; the run itself stays ``running``. Reading a store,
finishing a run and closing a store first commit what is queued, so a
finished run's records are all on disk and a reader in the same process
sees every record.

A process keeps one connection per store (a few stores at most) for its
lifetime, shared by its :class:`TraceStore` objects, and closes them at exit.
Opening a store and closing its last connection cost four ``fsync`` calls
(the new write-ahead log's header and directory entry; the checkpoint's log
and database), milliseconds each, which a process running several skills,
or the same skill repeatedly, pays once rather than per run. Commits are not
synced either way (``synchronous=NORMAL``): records survive the writer's
death, not a power cut right after them.

Tables:

* ``runs``: one row per run (id, skill, proc, model, status, totals);
* ``ops``: one row per op execution (run id, sequence number, op id = the
  op's path in the module, name, location, inputs hash and preview, outcome,
  error, tokens in/out, latency, model messages and tool calls as JSON).

:meth:`TraceStore.export_run` gives the records as dicts matching
``skvm/schemas/trace.schema.json``.
"""

from __future__ import annotations

import atexit
import itertools
import json
import operator
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

TRACE_DIR = ".skvm"
TRACE_FILE = "traces.sqlite"
SCHEMA_VERSION = 1
#: Longest preview of inputs or results kept in a record.
PREVIEW_CHARS = 400

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY,
  skill TEXT NOT NULL,
  proc TEXT NOT NULL,
  model TEXT,
  started REAL NOT NULL,
  finished REAL,
  status TEXT NOT NULL,
  error TEXT,
  tokens_in INTEGER NOT NULL DEFAULT 0,
  tokens_out INTEGER NOT NULL DEFAULT 0,
  ops INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ops (
  run_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  op_id TEXT NOT NULL,
  op_name TEXT NOT NULL,
  location TEXT,
  inputs_hash TEXT,
  inputs_preview TEXT,
  result_preview TEXT,
  outcome TEXT NOT NULL,
  error TEXT,
  tokens_in INTEGER NOT NULL DEFAULT 0,
  tokens_out INTEGER NOT NULL DEFAULT 0,
  latency_s REAL NOT NULL,
  started REAL NOT NULL,
  messages TEXT,
  tool_calls TEXT,
  PRIMARY KEY (run_id, seq)
);
"""

# Stores made before 2026-11-22 also indexed ops by op id. Nothing reads by op
# id, and the third B-tree made every record dearer: on a run of short commands
# it was 0.07-0.37 ms per command, about as much as the rest of the store.
_DROP_UNUSED_INDEX = "DROP INDEX IF EXISTS ops_by_op"

#: Op outcomes a record may have.
OUTCOMES = ("ok", "failed", "cancelled", "skipped", "fallback")


def default_store_path(workdir: Path) -> Path:
    """Where a work directory's trace store lives."""
    return Path(workdir) / TRACE_DIR / TRACE_FILE


# json.dumps(x, default=str) builds an encoder per call; one is enough.
_JSON = json.JSONEncoder(default=str)


def _truncate(text: str | None, limit: int = PREVIEW_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


def _identity(path: str) -> tuple[int, int] | None:
    """Which file ``path`` names now (device, inode), or None."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


#: How long op records may gather before the thread ending an op commits them.
GATHER_S = 0.05
#: How often the sweeper looks for a batch nobody committed (the VM went into
#: a long op): a record trails its op's end by at most this plus GATHER_S.
SWEEP_S = 0.05
#: The sweeper stops after this long without a record (the next one starts it).
SWEEPER_IDLE_S = 1.0


class _Connection:
    """This process's connection to one store, shared by its TraceStores."""

    def __init__(self, path: str):
        # Autocommit mode: each statement below is its own atomic transaction.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        # Guards the connection and the batch: a batch is taken and committed
        # under it, so batches reach the file in the order they were queued.
        self.lock = threading.Lock()
        self.users = 0
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE name='ops_by_op'").fetchone():
                self.db.execute(_DROP_UNUSED_INDEX)
            if self.db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self.identity = _identity(path)
        # Group commit (see the module docstring): statements queued by submit().
        self._pending: list[tuple[str, Any]] = []
        self._pending_since = 0.0
        self._last_submit = 0.0
        self._sweeper: threading.Thread | None = None
        self._closing = threading.Event()
        self._error: Exception | None = None

    def submit(self, sql: str, params: tuple | Callable[[], tuple]) -> None:
        """Queue one statement, and commit the batch once it is old enough.

        ``params`` may be a callable, called when the batch is committed.
        Raises the failure of the last commit, if it failed.
        """
        self._raise_failure()
        now = time.monotonic()
        with self.lock:
            if not self._pending:
                self._pending_since = now
            self._pending.append((sql, params))
            self._last_submit = now
            if now - self._pending_since >= GATHER_S:
                self._commit_pending()
            elif self._sweeper is None and not self._closing.is_set():
                self._sweeper = threading.Thread(target=self._sweep_loop, name="skvm-trace-sweeper",
                                                 daemon=True)
                self._sweeper.start()

    def flush(self) -> None:
        """Commit every queued statement now (raises the last commit's failure)."""
        with self.lock:
            if self._pending:
                self._commit_pending()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _sweep_loop(self) -> None:
        while not self._closing.wait(SWEEP_S):
            with self.lock:
                now = time.monotonic()
                if self._pending and now - self._pending_since >= GATHER_S:
                    self._commit_pending()
                elif not self._pending and now - self._last_submit >= SWEEPER_IDLE_S:
                    self._sweeper = None
                    return

    def _commit_pending(self) -> None:
        """Write the batch in one transaction (the caller holds the lock).

        On failure the error is kept for the next submit or flush to raise:
        the sweeper cannot raise it to anyone.
        """
        statements, self._pending = self._pending, []
        try:
            rows = [(sql, params() if callable(params) else params) for sql, params in statements]
            self.db.execute("BEGIN")
            # One executemany per run of equal statements.
            for sql, group in itertools.groupby(rows, key=operator.itemgetter(0)):
                self.db.executemany(sql, [params for _, params in group])
            self.db.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - raised by the next submit or flush
            if self.db.in_transaction:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the connection is unusable; the error below says why
            self._error = exc

    def close(self) -> None:
        try:
            self.flush()
        except sqlite3.Error:
            pass  # already reported to the run that wrote the records, if it was still running
        self._closing.set()
        sweeper = self._sweeper
        if sweeper is not None:
            sweeper.join()
        with self.lock:
            try:
                self.db.close()
            except sqlite3.Error:
                pass  # e.g. its work directory was removed meanwhile


#: Idle connections kept open per process (least recently used ones are closed).
MAX_IDLE_STORES = 4
_connections: dict[str, _Connection] = {}  # resolved path -> connection, in LRU order
_connections_owner = os.getpid()
_connections_lock = threading.Lock()
_abandoned: list[dict[str, _Connection]] = []  # a parent's connections, never touched


def _acquire(path: Path) -> _Connection:
    """The shared connection to the store at ``path``, opened on first use."""
    global _connections, _connections_owner
    key = os.path.realpath(path)
    with _connections_lock:
        if _connections_owner != os.getpid():
            # A forked child must not use (or close: that would checkpoint and
            # delete the log under the parent) its parent's connections.
            _abandoned.append(_connections)
            _connections, _connections_owner = {}, os.getpid()
        connection = _connections.pop(key, None)
        if connection is not None and connection.identity != _identity(key):
            # The file was deleted or replaced since: that connection writes nowhere.
            if connection.users == 0:
                connection.close()
            connection = None
        if connection is None:
            connection = _Connection(key)
        _connections[key] = connection  # most recently used last
        connection.users += 1
        idle = [k for k, c in _connections.items() if c.users == 0]
        for stale in idle[: max(0, len(idle) - MAX_IDLE_STORES)]:
            _connections.pop(stale).close()
        return connection


def _release(connection: _Connection) -> None:
    with _connections_lock:
        connection.users -= 1
        if connection.users == 0 and connection not in _connections.values():
            connection.close()  # replaced while in use


def _close_all() -> None:
    """Close this process's connections at exit (checkpointing their logs)."""
    with _connections_lock:
        if _connections_owner != os.getpid():
            return
        for connection in _connections.values():
            connection.close()
        _connections.clear()


atexit.register(_close_all)


class TraceStore:
    """Appends run and op records to the SQLite store; safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection: _Connection | None = _acquire(self.path)
        self._db = self._connection.db
        self._lock = self._connection.lock
        self._seq_lock = threading.Lock()  # orders sequence numbers and queued records
        self._seq: dict[str, int] = {}

    # ------------------------------------------------------------------ writing
    def start_run(self, skill: str, proc: str, model: str | None) -> str:
        """Record a new run and return its id."""
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        with self._lock:
            self._db.execute(
                "INSERT INTO runs (run_id, skill, proc, model, started, status)"
                " VALUES (?, ?, ?, ?, ?, 'running')",
                (run_id, skill, proc, model, time.time()),
            )
            self._seq[run_id] = 0
        return run_id

    def record_op(
        self,
        run_id: str,
        *,
        op_id: str,
        op_name: str,
        location: str | None,
        inputs: Any,
        inputs_hash: str | Callable[[], str],
        result: str | None | Callable[[], str | None],
        outcome: str,
        error: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        latency_s: float = 0.0,
        started: float = 0.0,
        messages: Any = None,
        tool_calls: Any = None,
    ) -> int:
        """Queue one op record for the writer thread and return its sequence number.

        The record is committed atomically, in order, shortly after (see the
        module docstring); :meth:`flush` waits for it. ``inputs``,
        ``inputs_hash`` and ``result`` may be callables returning the value:
        the writer thread calls them, off the VM's critical path, so what they
        read must not change after the op (the VM never mutates a value).
        """

        def row() -> tuple:
            shown = inputs() if callable(inputs) else inputs
            value = result() if callable(result) else result
            return (
                run_id,
                seq,
                op_id,
                op_name,
                location,
                inputs_hash() if callable(inputs_hash) else inputs_hash,
                _truncate(shown if isinstance(shown, str) else _JSON.encode(shown)),
                _truncate(value),
                outcome,
                _truncate(error, 2000),
                tokens_in,
                tokens_out,
                latency_s,
                started,
                _JSON.encode(messages) if messages is not None else None,
                _JSON.encode(tool_calls) if tool_calls is not None else None,
            )

        with self._seq_lock:
            seq = self._seq.get(run_id, 0) + 1
            self._seq[run_id] = seq
            self._connection_in_use().submit(
                "INSERT INTO ops VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row
            )
        return seq

    def finish_run(
        self, run_id: str, status: str, error: str | None, tokens_in: int, tokens_out: int
    ) -> None:
        """Mark a run finished with its status and totals (after all its op records)."""
        self.flush()
        with self._lock:
            ops = self._seq.get(run_id, 0)
            self._db.execute(
                "UPDATE runs SET finished=?, status=?, error=?, tokens_in=?, tokens_out=?, ops=?"
                " WHERE run_id=?",
                (time.time(), status, _truncate(error, 2000), tokens_in, tokens_out, ops, run_id),
            )

    def flush(self) -> None:
        """Wait until every op record queued so far is committed."""
        if self._connection is not None:
            self._connection.flush()

    def _connection_in_use(self) -> _Connection:
        if self._connection is None:
            raise sqlite3.ProgrammingError("the trace store is closed")
        return self._connection

    def close(self) -> None:
        """Stop using the store (its connection stays open for this process; see above)."""
        if self._connection is not None:
            self.flush()
            _release(self._connection)
            self._connection = None

    # ------------------------------------------------------------------ reading
    def runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first."""
        self.flush()
        with self._lock:
            cursor = self._db.execute("SELECT * FROM runs ORDER BY started, run_id")
            return _rows(cursor)

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run by id or unique id prefix (``last`` = the newest run)."""
        self.flush()
        with self._lock:
            if run_id == "last":
                cursor = self._db.execute("SELECT * FROM runs ORDER BY started DESC LIMIT 1")
            else:
                cursor = self._db.execute(
                    "SELECT * FROM runs WHERE run_id LIKE ? ORDER BY started", (run_id + "%",)
                )
            rows = _rows(cursor)
        return rows[0] if len(rows) == 1 else None

    def ops(self, run_id: str) -> list[dict[str, Any]]:
        """The op records of a run, in execution order."""
        self.flush()
        with self._lock:
            cursor = self._db.execute("SELECT * FROM ops WHERE run_id=? ORDER BY seq", (run_id,))
            rows = _rows(cursor)
        for row in rows:
            for key in ("messages", "tool_calls"):
                if row[key] is not None:
                    row[key] = json.loads(row[key])
        return rows

    def export_run(self, run_id: str) -> dict[str, Any]:
        """A run and its op records as one JSON-ready dict (trace.schema.json)."""
        run = self.run(run_id)
        if run is None:
            raise KeyError(run_id)
        return {"schema_version": SCHEMA_VERSION, "run": run, "ops": self.ops(run["run_id"])}


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


class NotATraceStore(Exception):
    """A file that is not a readable skvm trace store."""


class _ReadOnlyConnection:
    """A read-only connection: the file is never created, migrated or written."""

    def __init__(self, path: Path):
        uri = path.resolve().as_uri() + "?mode=ro"
        try:
            self.db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)
            tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.Error as exc:
            raise NotATraceStore(f"{path} is not a skvm trace store ({exc})") from None
        if not {"runs", "ops"} <= tables:
            self.db.close()
            raise NotATraceStore(f"{path} is not a skvm trace store (no runs and ops tables)")
        self.lock = threading.Lock()

    def flush(self) -> None:
        """Nothing is ever queued."""


class _ReadOnlyTraceStore(TraceStore):
    def __init__(self, path: Path):
        self.path = path
        self._connection = _ReadOnlyConnection(path)  # type: ignore[assignment]
        self._db = self._connection.db
        self._lock = self._connection.lock
        self._seq_lock = threading.Lock()
        self._seq = {}

    def close(self) -> None:
        if self._connection is not None:
            self._db.close()
            self._connection = None


def open_readonly(path: str | os.PathLike[str]) -> TraceStore:
    """Open an existing store for reading only.

    FileNotFoundError when absent; NotATraceStore when the file is not one
    (a foreign SQLite file is left exactly as it was).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(path)
    return _ReadOnlyTraceStore(Path(path))
