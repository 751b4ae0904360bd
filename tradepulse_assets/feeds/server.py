"""Serve a vendor drop over HTTP with bearer-token auth, so the HTTP connector has a real peer.

Stdlib only (``ThreadingHTTPServer``): it exists for tests, demos and chaos replays, binds 127.0.0.1 by
default and serves only the vendor-visible layout (never ``_ground_truth`` or dot files).

Endpoints: ``GET /v1/health``, ``/v1/<market>/sessions``, ``/v1/<market>/<session>/manifest``,
``/v1/<market>/<session>/files/<name>``.
"""

import hmac
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tradepulse_assets.feeds.manifest import MANIFEST_NAME

MARKET_RE = re.compile(r"^[A-Z0-9]+$")
SESSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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

        def do_GET(self):  # noqa: N802 - http.server naming
            supplied = self.headers.get("Authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
                return self._error(401, "missing or invalid bearer token")
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if parts == ["v1", "health"]:
                return self._send(200, b'{"status": "ok"}')
            if len(parts) < 3 or parts[0] != "v1" or not MARKET_RE.match(parts[1]):
                return self._error(404, "unknown endpoint")
            market_dir = root / parts[1]
            if parts[2:] == ["sessions"]:
                names = (
                    sorted(p.name for p in market_dir.iterdir() if p.is_dir() and SESSION_RE.match(p.name))
                    if market_dir.is_dir()
                    else []
                )
                return self._send(200, json.dumps({"market": parts[1], "sessions": names}).encode())
            if not SESSION_RE.match(parts[2]):
                return self._error(404, "unknown endpoint")
            session_dir = market_dir / parts[2]
            if parts[3:] == ["manifest"]:
                path = session_dir / MANIFEST_NAME
            elif len(parts) == 5 and parts[3] == "files" and FILE_RE.match(parts[4]):
                path = session_dir / parts[4]
            else:
                return self._error(404, "unknown endpoint")
            if not path.is_file():
                return self._error(404, f"{parts[1]} {parts[2]}: {path.name} not published")
            content_type = "application/json" if path.suffix == ".json" else "application/octet-stream"
            return self._send(200, path.read_bytes(), content_type)

    return Handler


def make_server(root: str | Path, token: str, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A server bound to (host, port); port 0 picks a free one (``server.server_address[1]``)."""
    if not token:
        raise ValueError("vendor server needs a non-empty token")
    server = ThreadingHTTPServer((host, port), make_handler(Path(root), token))
    server.daemon_threads = True
    return server


def serve_in_thread(root: str | Path, token: str, host: str = "127.0.0.1", port: int = 0):
    """Start a server in a daemon thread; returns (server, base_url). Stop with ``server.shutdown()``."""
    server = make_server(root, token, host, port)
    threading.Thread(target=server.serve_forever, name="vendor-server", daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"http://{host}:{port}"
