"""Serve a vendor drop over HTTP with bearer-token auth, so the HTTP connector has a real peer.

Stdlib only: it exists for tests, demos and chaos replays, binds 127.0.0.1 by default and serves only the
vendor-visible layout (never ``_ground_truth`` or dot files), and never anything outside its root: every read
goes through ``feeds.confined`` (symlinks, hard links and traversal names are refused with 403 naming the
entry).

Why a bounded pool instead of ``ThreadingHTTPServer``: that server starts one thread per connection and keeps
it while the client stays silent, so 2,000 idle connections held 2,006 threads. Here ``workers`` threads serve
connections, at most ``max_pending`` more wait for a worker, and any connection beyond is answered 503 at once;
a connection that sends no request line within ``idle_timeout`` seconds is closed, and every read or write of
a request is bounded by ``request_timeout``.

Endpoints: ``GET /v1/health``, ``/v1/<market>/sessions``, ``/v1/<market>/<session>/manifest``,
``/v1/<market>/<session>/files/<name>``.
"""

import hmac
import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from tradepulse_assets.core.environment import read
from tradepulse_assets.feeds.confined import ConfinementError, EntryNotFound, list_dirs_confined, read_confined
from tradepulse_assets.feeds.connectors import TOKEN_ENV
from tradepulse_assets.feeds.manifest import MANIFEST_NAME

MARKET_RE = re.compile(r"^[A-Z0-9]+$")
SESSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
BUSY = b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class TokenError(ValueError):
    """No usable token: the message says where one is looked for."""


def load_token(token_file: str | os.PathLike | None = None, environ=None) -> str:
    """The bearer token from ``token_file`` (first line) or ``$TRADEPULSE_VENDOR_TOKEN``; never from argv,
    which every user of the machine can read in the process list."""
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise TokenError(f"token file {token_file}: {exc.strerror or exc}") from None
        if not token:
            raise TokenError(f"token file {token_file} is empty")
        return token
    token = read(TOKEN_ENV, environ) or ""
    if not token:
        raise TokenError(f"no token: set {TOKEN_ENV} or pass --token-file")
    return token


def make_handler(root: Path, token: str):
    class Handler(BaseHTTPRequestHandler):
        server_version = "TradePulseVendor/1"

        def log_message(self, format, *args):  # quiet: tests and CLI print their own lines
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str) -> None:
            self._send(status, json.dumps({"error": message}).encode())

        def parse_request(self) -> bool:  # the request line arrived: the rest has request_timeout
            self.connection.settimeout(self.server.request_timeout)
            return super().parse_request()

        def _read(self, *parts: str) -> bytes | None:
            try:
                return read_confined(root, *parts)
            except ConfinementError as exc:
                self._send(403, json.dumps({"error": str(exc), "refused": exc.entry}).encode())
            except EntryNotFound:
                self._error(404, f"{parts[0]} {parts[1]}: {parts[-1]} not published")
            return None

        def do_GET(self):  # noqa: N802 - http.server naming
            supplied = self.headers.get("Authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
                return self._error(401, "missing or invalid bearer token")
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if parts == ["v1", "health"]:
                return self._send(200, b'{"status": "ok"}')
            if len(parts) < 3 or parts[0] != "v1" or not MARKET_RE.match(parts[1]):
                return self._error(404, "unknown endpoint")
            market = parts[1]
            if parts[2:] == ["sessions"]:
                names = [n for n in list_dirs_confined(root, market) if SESSION_RE.match(n)]
                return self._send(200, json.dumps({"market": market, "sessions": names}).encode())
            if not SESSION_RE.match(parts[2]):
                return self._error(404, "unknown endpoint")
            if parts[3:] == ["manifest"]:
                name = MANIFEST_NAME
            elif len(parts) == 5 and parts[3] == "files" and FILE_RE.match(parts[4]):
                name = parts[4]
            else:
                return self._error(404, "unknown endpoint")
            body = self._read(market, parts[2], name)
            if body is not None:
                content_type = "application/json" if name.endswith(".json") else "application/octet-stream"
                self._send(200, body, content_type)

    return Handler


class BoundedHTTPServer(HTTPServer):
    """``HTTPServer`` on a fixed pool of worker threads with a bounded wait list (see the module docstring)."""

    daemon_threads = True
    request_queue_size = 128  # the kernel's accept backlog; the bound on work is the pool below

    def __init__(self, address, handler, *, workers: int, max_pending: int, idle_timeout: float,
                 request_timeout: float):
        if workers < 1 or max_pending < 0 or idle_timeout <= 0 or request_timeout <= 0:
            raise ValueError("vendor server: workers >= 1, max_pending >= 0 and positive timeouts")
        self.idle_timeout, self.request_timeout = idle_timeout, request_timeout
        self._slots = threading.BoundedSemaphore(workers + max_pending)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="vendor-serve")
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):  # every worker busy and the wait list full
            try:
                request.settimeout(1.0)
                request.sendall(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        request.settimeout(self.idle_timeout)  # no request line within idle_timeout: closed
        self._pool.submit(self._serve_one, request, client_address)

    def _serve_one(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one broken connection must not take a worker down
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def make_server(
    root: str | Path,
    token: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    workers: int = 8,
    max_pending: int = 64,
    idle_timeout: float = 10.0,
    request_timeout: float = 30.0,
) -> BoundedHTTPServer:
    """A server bound to (host, port); port 0 picks a free one (``server.server_address[1]``)."""
    if not token:
        raise ValueError("vendor server needs a non-empty token")
    return BoundedHTTPServer(
        (host, port), make_handler(Path(root), token), workers=workers, max_pending=max_pending,
        idle_timeout=idle_timeout, request_timeout=request_timeout,
    )


def serve_in_thread(root: str | Path, token: str, host: str = "127.0.0.1", port: int = 0, **limits):
    """Start a server in a daemon thread; returns (server, base_url). Stop with ``server.shutdown()``."""
    server = make_server(root, token, host, port, **limits)
    threading.Thread(target=server.serve_forever, name="vendor-server", daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}"
