"""A static file server on 127.0.0.1 (free port) that wants a bearer token: a vendor serving files over HTTPS.

Vendors that deliver by download (Databento batch jobs, flat files) serve plain files under a folder URL;
this stands in for them, so the vendor-format connectors are tested over real HTTP, offline.
"""

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path


class _BearerFiles(http.server.SimpleHTTPRequestHandler):
    token = ""

    def do_GET(self):
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_error(401)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_files(root: Path, token: str) -> Iterator[str]:
    """Serve ``root`` until the block ends; yields the base URL (``http://127.0.0.1:<port>``)."""
    handler = type("Handler", (_BearerFiles,), {"token": token})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
