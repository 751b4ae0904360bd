"""Connectors against real peers: a directory, moto's S3 HTTP server, and ``vendor serve`` over HTTP."""

import datetime as dt
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config

from tradepulse_assets.feeds.connectors import (
    DirectoryConnector,
    HttpConnector,
    S3Connector,
    VendorAuthError,
    VendorNotFound,
    VendorUnavailable,
)
from tradepulse_assets.feeds.publisher import Publisher
from tradepulse_assets.storage.object_store import LocalObjectStore, S3ObjectStore
from tradepulse_assets.feeds.server import serve_in_thread
from tradepulse_assets_tests.support.s3 import moto_s3

SESSIONS = [dt.date(2026, 3, 9), dt.date(2026, 3, 10)]
TOKEN = "s3cr3t-token-value"


def _publish(dest):
    Publisher(dest, seed=2, n_symbols=3).publish_range("XNYS", SESSIONS[0], SESSIONS[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def drop(tmp_path_factory):
    root = tmp_path_factory.mktemp("drop")
    _publish(LocalObjectStore(root))
    return root


def _contract(conn, drop):
    """What every connector must do on the same drop: same sessions, manifests and bytes."""
    assert conn.list_sessions("XNYS") == SESSIONS
    assert conn.list_sessions("XLON") == []
    manifest = conn.read_manifest("XNYS", SESSIONS[0])
    assert manifest == DirectoryConnector(drop).read_manifest("XNYS", SESSIONS[0])
    data = conn.read_file("XNYS", SESSIONS[0], manifest.files[0].name)
    assert data == (drop / "XNYS" / "2026-03-09" / manifest.files[0].name).read_bytes()
    assert conn.read_manifest("XNYS", dt.date(2026, 3, 11)) is None  # not published yet
    with pytest.raises(VendorNotFound, match="2026-03-09"):
        conn.read_file("XNYS", SESSIONS[0], "nope.parquet")
    conn.check_connectivity()


def test_directory_connector(drop):
    _contract(DirectoryConnector(drop), drop)
    with pytest.raises(VendorUnavailable, match="does-not-exist"):
        DirectoryConnector(drop / "does-not-exist").check_connectivity()


def test_s3_connector_against_a_real_s3_endpoint(drop):
    with moto_s3("vendor-drop") as s3:
        client = s3.client()
        _publish(S3ObjectStore(client, s3.bucket, "feeds/sim"))
        _contract(S3Connector(client, s3.bucket, "feeds/sim"), drop)
        with pytest.raises(VendorNotFound, match="no-such-bucket"):
            S3Connector(client, "no-such-bucket").check_connectivity()


def test_s3_connector_unreachable_endpoint_is_unavailable():
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{_free_port()}",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}),
    )
    with pytest.raises(VendorUnavailable, match="unreachable"):
        S3Connector(client, "vendor-drop").check_connectivity()


@pytest.fixture()
def served(drop):
    server, url = serve_in_thread(drop, TOKEN)
    yield url
    server.shutdown()
    server.server_close()


def test_http_connector_against_vendor_serve(served, drop):
    _contract(HttpConnector(served, TOKEN, timeout=5, retries=0), drop)


def test_http_wrong_token_is_an_auth_error_without_retry_or_token_leak(served):
    conn = HttpConnector(served, "wrong-token", timeout=5, retries=3, backoff=5.0)
    with pytest.raises(VendorAuthError) as info:
        conn.list_sessions("XNYS")  # a 401 is not retried (a 5 s backoff would show as a slow test)
    assert "401" in str(info.value) and "wrong-token" not in str(info.value)
    assert "wrong-token" not in repr(conn)


def test_http_ground_truth_is_not_served(served):
    conn = HttpConnector(served, TOKEN, timeout=5, retries=0)
    with pytest.raises(VendorNotFound):
        conn.read_file("XNYS", SESSIONS[0], "_ground_truth")


def test_http_unreachable_port_is_unavailable_after_retries():
    conn = HttpConnector(f"http://127.0.0.1:{_free_port()}", TOKEN, timeout=0.5, retries=2, backoff=0.01)
    with pytest.raises(VendorUnavailable, match="after 3 attempt") as info:
        conn.check_connectivity()
    assert TOKEN not in str(info.value)


class _Failing(BaseHTTPRequestHandler):
    """Answers 503 a scripted number of times, then 200."""

    failures = 0
    seen = 0

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        type(self).seen += 1
        status = 503 if type(self).seen <= type(self).failures else 200
        body = b'{"market": "XNYS", "sessions": ["2026-03-09"]}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("failures, outcome", [(2, "ok"), (10, "unavailable")])
def test_http_5xx_is_retried_with_backoff_then_unavailable(failures, outcome):
    handler = type("Scripted", (_Failing,), {"failures": failures, "seen": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn = HttpConnector(f"http://127.0.0.1:{server.server_address[1]}", TOKEN, timeout=5, retries=3, backoff=0.01)
    try:  # the backoff schedule itself is core.http's (tested there)
        if outcome == "ok":
            assert conn.list_sessions("XNYS") == [dt.date(2026, 3, 9)]
            assert handler.seen == 3
        else:
            with pytest.raises(VendorUnavailable, match="HTTP 503"):
                conn.list_sessions("XNYS")
            assert handler.seen == 4
    finally:
        server.shutdown()
        server.server_close()
