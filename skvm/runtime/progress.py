"""Progress display for ``skvm-run``: a live status line on a terminal, plain lines otherwise.

A :class:`Progress` is the interpreter's listener (:class:`OpEvent` in, text
out). On a TTY it redraws one status line (the running op, elapsed time,
tokens so far); elsewhere it prints nothing until the end unless ``trace``
is set, in which case every finished op is one line::

    ok       0.012s      0 tok  tool.exec  @main/0  SKILL.md:12:1
"""

from __future__ import annotations

import threading
import time
from typing import IO

from skvm.runtime.interpreter import OpEvent


def trace_line(event: OpEvent) -> str:
    """The one-line form of a finished op."""
    loc = f"  {event.location}" if event.location else ""
    detail = f"  -- {event.detail}" if event.detail and event.outcome != "ok" else ""
    return (
        f"{event.outcome:<9}{event.elapsed_s:8.3f}s {event.tokens:6d} tok  "
        f"{event.op_name:<13} {event.op_id}{loc}{detail}"
    )


class Progress:
    """Listener that shows what the VM is doing."""

    def __init__(self, stream: IO[str], *, tty: bool, trace: bool):
        self.stream = stream
        self.tty = tty
        self.trace = trace
        self.start = time.perf_counter()
        self.tokens = 0
        self.running: dict[str, str] = {}
        self._lock = threading.Lock()
        self._drawn = False

    def __call__(self, event: OpEvent) -> None:
        """Handle one event (called from any worker thread)."""
        with self._lock:
            if event.kind == "start":
                self.running[event.op_id] = event.op_name
            else:
                self.running.pop(event.op_id, None)
                self.tokens += event.tokens
                if self.trace:
                    self._clear()
                    self.stream.write(trace_line(event) + "\n")
            if self.tty:
                self._draw()

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[2K")
            self._drawn = False

    def _draw(self) -> None:
        elapsed = time.perf_counter() - self.start
        ops = sorted(self.running.values())
        doing = ", ".join(ops[:3]) + (f" +{len(ops) - 3}" if len(ops) > 3 else "")
        self.stream.write(f"\r\x1b[2K[{elapsed:6.1f}s] {self.tokens} tok  {doing or 'idle'}")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Erase the status line."""
        with self._lock:
            self._clear()
            self.stream.flush()
