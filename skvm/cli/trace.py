"""``skvm-trace``: list the runs recorded in a work directory's trace store, or show one.

    skvm-trace list [--workdir DIR]
    skvm-trace show RUN|last [--workdir DIR] [--json] [--messages]

``show --json`` prints the run as one JSON document matching
``skvm/schemas/trace.schema.json``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from skvm.cli import common

TOOL = "skvm-trace"


def build_parser() -> common.DriverArgumentParser:
    """The argument parser of skvm-trace."""
    p = common.DriverArgumentParser(prog=TOOL, description="Inspect skvm run traces.", allow_abbrev=False)
    p.add_argument("--workdir", default=".", help="work directory whose .skvm/traces.sqlite to read")
    p.add_argument("--store", default=None, help="path of a trace store (overrides --workdir)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list runs, oldest first")
    show = sub.add_parser("show", help="show one run's ops")
    show.add_argument("run", help="run id (or a unique prefix, or 'last')")
    show.add_argument("--json", action="store_true", help="print the run as JSON")
    show.add_argument("--messages", action="store_true", help="also print model messages and tool calls")
    return p


class TraceDriver(common.Driver):
    """skvm-trace as a class: ``TraceDriver(args).run()`` returns the exit code."""

    tool = TOOL

    def _run(self) -> int:
        from skvm.runtime.traces import NotATraceStore, default_store_path, open_readonly

        opts = build_parser().parse_args(self.argv)
        path = Path(opts.store) if opts.store else default_store_path(Path(opts.workdir))
        try:
            store = open_readonly(path)
        except FileNotFoundError:
            self.stderr.write(f"{TOOL}: error: no trace store at {path}\n")
            return 1
        except NotATraceStore as exc:
            self.stderr.write(f"{TOOL}: error: {exc}\n")
            return 1
        try:
            if opts.command == "list":
                return self._list(store)
            return self._show(store, opts)
        finally:
            store.close()

    def _list(self, store) -> int:
        runs = store.runs()
        if not runs:
            self.stdout.write("no runs recorded\n")
        for run in runs:
            elapsed = (run["finished"] - run["started"]) if run["finished"] else None
            shown = f"{elapsed:.2f}s" if elapsed is not None else "-"
            self.stdout.write(
                f"{run['run_id']}  {run['status']:<11} {run['skill']}/@{run['proc']}"
                f"  {run['ops']} ops  {run['tokens_in'] + run['tokens_out']} tok  {shown}\n"
            )
        return 0

    def _show(self, store, opts) -> int:
        run = store.run(opts.run)
        if run is None:
            self.stderr.write(f"{TOOL}: error: no single run matches '{opts.run}'\n")
            return 1
        if opts.json:
            self.stdout.write(json.dumps(store.export_run(run["run_id"]), indent=2, sort_keys=True) + "\n")
            return 0
        self.stdout.write(
            f"run {run['run_id']}: {run['skill']}/@{run['proc']} {run['status']}"
            + (f" ({run['error']})" if run["error"] else "")
            + "\n"
        )
        for op in store.ops(run["run_id"]):
            loc = f"  {op['location']}" if op["location"] else ""
            self.stdout.write(
                f"{op['seq']:4d} {op['outcome']:<9} {op['latency_s']:8.3f}s"
                f" {op['tokens_in'] + op['tokens_out']:6d} tok  {op['op_name']:<13} {op['op_id']}{loc}\n"
            )
            if op["error"]:
                self.stdout.write(f"       error: {op['error']}\n")
            if opts.messages:
                for call in op["tool_calls"] or ():
                    self.stdout.write(f"       tool {call.get('name')}({json.dumps(call.get('arguments'))[:200]})\n")
                for message in op["messages"] or ():
                    content = str(message.get("content") or "")[:200].replace("\n", " ")
                    self.stdout.write(f"       {message.get('role')}: {content}\n")
        return 0


def main(args: Sequence[str] | None = None) -> int:
    """Console entry point."""
    sys.exit(TraceDriver(args).run())


if __name__ == "__main__":  # pragma: no cover
    main()
