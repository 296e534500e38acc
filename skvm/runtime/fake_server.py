"""A loopback OpenAI-compatible server that answers after a fixed delay.

Benchmarks (the parallel-speedup one above all) need a model whose latency is
known and whose answers cost nothing: every ``POST /v1/chat/completions`` is
answered after ``delay_s`` with a canned reply, a tool call when tools were
sent. Reach it through litellm as ``openai/<alias>`` with ``api_base`` set to
:attr:`FakeOpenAIServer.api_base` and any non-empty ``api_key``.

The server binds 127.0.0.1 on a free port, serves each request on its own
thread, and stops by itself after ``lifetime_s`` or ``max_requests`` so a
forgotten server cannot outlive a benchmark.

With ``process=True`` the server runs in a child process (``python -m
skvm.runtime.fake_server``), as a real model server would: its request
handling then does not compete for the VM's GIL, which matters when timing
many concurrent model steps. Replies must then be plain data (text or a
:class:`~skvm.runtime.models.ToolCall`), and :meth:`FakeOpenAIServer.stats`
asks the child over HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from skvm.runtime.models import ToolCall, response_dict

DEFAULT_ALIAS = "skvm-fake-server"
#: Where a server reports :meth:`FakeOpenAIServer.stats` (used across processes).
STATS_PATH = "/v1/_skvm/stats"

# What to answer: text, or a tool call; a function gets the request body.
Reply = str | ToolCall
Responder = Callable[[dict[str, Any]], Reply]


class _Handler(BaseHTTPRequestHandler):
    """Serves /v1/chat/completions and /v1/models for one FakeOpenAIServer."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the OpenAI client expects
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body
    # waits for the client's delayed ACK (40 ms) and every answer comes late.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: benchmarks print their own figures."""

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, sort_keys=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        """List the one model this server pretends to be (or report its stats)."""
        owner = self.server.owner
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [{"id": owner.alias, "object": "model"}]})
        elif self.path.rstrip("/") == STATS_PATH:
            self._send(200, owner.stats())
        else:
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        """Answer a chat completion after the configured delay."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"error": {"message": "body is not JSON", "type": "invalid_request"}})
            return
        owner = self.server.owner
        owner._enter()
        try:
            time.sleep(owner.delay_s)
            self._send(200, owner.answer(body))
        finally:
            owner._leave()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: FakeOpenAIServer


class FakeOpenAIServer:
    """An OpenAI-compatible chat server on loopback with a fixed answer latency.

    Use as a context manager; ``stats()`` reports requests served and the
    highest number answered at once (how parallel the client really was).
    """

    def __init__(
        self,
        *,
        delay_s: float = 0.2,
        reply: Reply | Responder = "ok",
        tool_arguments: dict[str, Any] | None = None,
        alias: str = DEFAULT_ALIAS,
        lifetime_s: float = 600.0,
        max_requests: int | None = None,
        process: bool = False,
    ):
        if process and callable(reply):
            raise ValueError("a server in its own process needs a text or ToolCall reply")
        self.process = process
        self._child: subprocess.Popen | None = None
        self._port: int | None = None
        self.delay_s = delay_s
        self.reply = reply
        self.tool_arguments = tool_arguments or {}
        self.alias = alias
        self.lifetime_s = lifetime_s
        self.max_requests = max_requests
        self.requests = 0
        self.max_concurrent = 0
        self._active = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> FakeOpenAIServer:
        """Bind a free loopback port and serve in the background (or in a child process)."""
        if self.process:
            return self._start_child()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        serve = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        # The watchdog ends a server nobody stopped (bounded lifetime).
        watchdog = threading.Thread(target=self._expire, daemon=True)
        self._threads = [serve, watchdog]
        for thread in self._threads:
            thread.start()
        return self

    def _expire(self) -> None:
        if not self._stopped.wait(self.lifetime_s):
            self.stop()

    def _start_child(self) -> FakeOpenAIServer:
        reply = self.reply
        config = {
            "delay_s": self.delay_s,
            "reply": {"tool": reply.name, "arguments": reply.arguments}
            if isinstance(reply, ToolCall)
            else reply,
            "tool_arguments": self.tool_arguments,
            "alias": self.alias,
            "lifetime_s": self.lifetime_s,
            "max_requests": self.max_requests,
        }
        self._child = subprocess.Popen(
            [sys.executable, "-m", "skvm.runtime.fake_server", json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._child.stdout.readline()
        if not line.strip().isdigit():
            self._child.kill()
            self._child.wait()
            raise RuntimeError("the fake server's process did not start")
        self._port = int(line)
        return self

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._child is not None:
            self._child.stdin.close()  # the child stops when its stdin closes
            try:
                self._child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            self._child.stdout.close()
        if self._server is not None:
            # Never called from the serving thread (handlers have their own), so
            # shutdown() cannot wait for itself.
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port bound on 127.0.0.1."""
        if self._port is not None:
            return self._port
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def api_base(self) -> str:
        """The base URL to give litellm (``api_base``) or an OpenAI client."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        """The litellm model id that reaches this server."""
        return f"openai/{self.alias}"

    def stats(self) -> dict[str, int]:
        """Requests served so far and the most served at the same time."""
        if self._child is not None:
            with urllib.request.urlopen(
                self.api_base.removesuffix("/v1") + STATS_PATH, timeout=5
            ) as r:
                return json.loads(r.read())
        with self._lock:
            return {"requests": self.requests, "max_concurrent": self.max_concurrent}

    # ------------------------------------------------------------------- answers

    def _enter(self) -> None:
        with self._lock:
            self.requests += 1
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)
            done = self.max_requests is not None and self.requests >= self.max_requests
        if done:
            # Stop accepting after this one; the current answer still goes out.
            threading.Thread(target=self.stop, daemon=True).start()

    def _leave(self) -> None:
        with self._lock:
            self._active -= 1

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """Build the response for one request body."""
        reply = self.reply(body) if callable(self.reply) else self.reply
        model = body.get("model") or self.alias
        tokens_in = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", ()))
        tool = _tool_to_call(body)
        if isinstance(reply, ToolCall):
            return response_dict(model, tool_calls=[reply], tokens_in=tokens_in, tokens_out=8)
        if tool is not None:
            call = ToolCall(tool, dict(self.tool_arguments), "call_0")
            return response_dict(model, tool_calls=[call], tokens_in=tokens_in, tokens_out=8)
        return response_dict(model, text=reply, tokens_in=tokens_in, tokens_out=len(reply.split()))


def _tool_to_call(body: dict[str, Any]) -> str | None:
    """The tool a request wants called: the forced one, else the first offered."""
    tools = body.get("tools") or ()
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict) and choice.get("function", {}).get("name"):
        return choice["function"]["name"]
    return tools[0].get("function", {}).get("name")


def _serve_child(config_text: str) -> None:
    """Body of ``python -m skvm.runtime.fake_server CONFIG``: serve until stdin closes."""
    config = json.loads(config_text)
    reply = config.pop("reply")
    if isinstance(reply, dict):
        reply = ToolCall(reply["tool"], reply.get("arguments") or {})
    with FakeOpenAIServer(reply=reply, **config) as server:
        print(server.port, flush=True)
        # EOF on stdin: the parent stopped us (or died); the lifetime still bounds us.
        done = threading.Thread(target=sys.stdin.read, daemon=True)
        done.start()
        done.join(server.lifetime_s)


if __name__ == "__main__":
    _serve_child(sys.argv[1])

__all__ = ["DEFAULT_ALIAS", "STATS_PATH", "FakeOpenAIServer"]
