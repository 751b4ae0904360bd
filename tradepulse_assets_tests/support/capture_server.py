"""A real HTTP server on 127.0.0.1 that records requests and answers from a script per path.

Why a real server rather than mocking ``urllib``: the notifiers' behaviour that matters (status
codes, ``Retry-After`` headers, timeouts, the exact JSON bytes sent) lives at the HTTP boundary,
and a mock of ``urlopen`` would test our assumptions about urllib instead of urllib itself.

Usage::

    with CaptureServer({"/v2/enqueue": [Reply(429, headers={"Retry-After": "0"}), Reply(202, {...})]}) as srv:
        notifier = PagerDutyNotifier(srv.url("/v2/enqueue"), "key")
        ...
        assert srv.requests_to("/v2/enqueue")[0].json["event_action"] == "trigger"

A script's last reply repeats once the script is used up; a path without a script answers 404.
``Reply(delay=...)`` holds the answer back, to exercise client timeouts.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Reply:
    status: int
    body: str | Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()

    def content_type(self) -> str:
        return "application/json" if isinstance(self.body, Mapping) else "text/plain; charset=utf-8"


@dataclass(frozen=True)
class CapturedRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class CaptureServer:
    """``ThreadingHTTPServer`` in a daemon thread on an ephemeral loopback port."""

    def __init__(self, scripts: Mapping[str, Sequence[Reply]] | None = None) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Reply]] = {
            path: list(replies) for path, replies in (scripts or {}).items()
        }
        self._served: dict[str, int] = {}
        self.requests: list[CapturedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ----------------------------------------------------------------------------
    def script(self, path: str, replies: Sequence[Reply]) -> None:
        with self._lock:
            self._scripts[path] = list(replies)
            self._served[path] = 0

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            replies = self._scripts.get(path)
            if not replies:
                return Reply(404, f"no script for {path}")
            index = self._served.get(path, 0)
            self._served[path] = index + 1
            return replies[min(index, len(replies) - 1)]

    def _record(self, request: CapturedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def requests_to(self, path: str) -> list[CapturedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> CaptureServer:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="capture-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> CaptureServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler_for(capture: CaptureServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            self._handle()

        def do_GET(self) -> None:  # noqa: N802
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            capture._record(CapturedRequest(self.command, path, dict(self.headers.items()), body))
            reply = capture._next_reply(path)
            if reply.delay:
                time.sleep(reply.delay)
            payload = reply.encoded()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type())
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test): nothing to answer

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep pytest output quiet
            pass

    return Handler


def closed_port_url(path: str = "/") -> str:
    """A loopback URL where nothing listens (connection refused), for connection-error tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


@pytest.fixture
def capture_server() -> Iterator[CaptureServer]:
    """A started ``CaptureServer`` with no scripts; call ``.script(path, replies)`` in the test."""
    with CaptureServer() as server:
        yield server
