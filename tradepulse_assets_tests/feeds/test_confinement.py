"""Nothing outside a drop is read, and no token leaves its origin.

Symlinks (to a file, to a session folder), hard links and traversal names in a drop, against the directory
connector and ``vendor serve`` over HTTP; redirects of the HTTP connector to another origin; the server's
bounded worker pool under 2,000 idle connections; the token never on the command line.
"""

import datetime as dt
import os
import shutil
import socket
import threading
import time

import pytest

from tradepulse_assets.cli.main import main
from tradepulse_assets.feeds.connectors import DirectoryConnector, HttpConnector, VendorNotFound, VendorRefused
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.server import TokenError, load_token, serve_in_thread
from tradepulse_assets_tests.support.capture_server import CaptureServer, Reply

SESSION = dt.date(2026, 3, 9)
OTHER = dt.date(2026, 3, 10)
TOKEN = "tok-0123456789"
SECRET = b"outside-the-drop: root:x:0:0\n"


@pytest.fixture()
def drop(tmp_path):
    root = tmp_path / "drop"
    Publisher(drop_store(root), seed=3, n_symbols=2).publish_range("XNYS", SESSION, SESSION)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return root


def _first_file(root) -> str:
    return DirectoryConnector(root).read_manifest("XNYS", SESSION).files[0].name


def _symlink_file(root) -> str:
    name = _first_file(root)
    target = root / "XNYS" / SESSION.isoformat() / name
    target.unlink()
    target.symlink_to(root.parent / "secret.txt")
    return name


def _symlink_session(root) -> None:
    outside = root.parent / "elsewhere"
    shutil.copytree(root / "XNYS" / SESSION.isoformat(), outside)
    (root / "XNYS" / OTHER.isoformat()).symlink_to(outside, target_is_directory=True)


def test_directory_connector_refuses_a_symlinked_file_and_names_it(drop):
    name = _symlink_file(drop)
    with pytest.raises(VendorRefused, match=f"XNYS/{SESSION}/{name}: refused, it is a symbolic link") as info:
        DirectoryConnector(drop).read_file("XNYS", SESSION, name)
    assert SECRET.decode() not in str(info.value)


def test_directory_connector_refuses_a_symlinked_session_folder(drop):
    _symlink_session(drop)
    conn = DirectoryConnector(drop)
    assert conn.list_sessions("XNYS") == [SESSION]  # the linked folder is not a session of the drop
    with pytest.raises(VendorRefused, match=f"XNYS/{OTHER}/manifest.json: refused, it is a symbolic link"):
        conn.read_manifest("XNYS", OTHER)


def test_directory_connector_refuses_hard_links_and_traversal(drop):
    name = _first_file(drop)
    os.link(drop / "XNYS" / SESSION.isoformat() / name, drop.parent / "a-second-name")
    with pytest.raises(VendorRefused, match=f"{name}: refused, it has 2 hard links"):
        DirectoryConnector(drop).read_file("XNYS", SESSION, name)
    for bad in ("../../secret.txt", "..", "a/b", "x\x00y"):
        with pytest.raises(VendorRefused, match="path traversal"):
            DirectoryConnector(drop).read_file("XNYS", SESSION, bad)


@pytest.fixture()
def served(drop):
    server, url = serve_in_thread(drop, TOKEN)
    yield url
    server.shutdown()
    server.server_close()


def test_vendor_serve_refuses_symlinks_with_the_entry_named(drop, served):
    name = _symlink_file(drop)
    _symlink_session(drop)
    conn = HttpConnector(served, TOKEN, timeout=5, retries=0)
    with pytest.raises(VendorRefused, match=f"refused XNYS/{SESSION}/{name}: refused, it is a symbolic link"):
        conn.read_file("XNYS", SESSION, name)
    assert conn.list_sessions("XNYS") == [SESSION]
    with pytest.raises(VendorRefused, match=f"XNYS/{OTHER}"):
        conn.read_manifest("XNYS", OTHER)
    with pytest.raises(VendorNotFound):  # not a file name the server accepts at all
        conn.read_file("XNYS", SESSION, "_ground_truth")


def test_http_connector_never_sends_the_token_to_another_origin():
    with CaptureServer() as elsewhere, CaptureServer() as vendor:
        elsewhere.script("/steal", [Reply(200, {"sessions": []})])
        target = elsewhere.url("/steal").replace("127.0.0.1", "localhost")  # another origin, same machine
        vendor.script("/v1/XNYS/sessions", [Reply(302, headers={"Location": target})])
        conn = HttpConnector(vendor.base_url, TOKEN, timeout=5, retries=0)
        with pytest.raises(VendorRefused, match="redirected to another origin") as info:
            conn.list_sessions("XNYS")
        assert TOKEN not in str(info.value)
        assert vendor.requests_to("/v1/XNYS/sessions")[0].headers["Authorization"] == f"Bearer {TOKEN}"
        for request in elsewhere.requests:
            assert "Authorization" not in request.headers and TOKEN not in str(request.headers)


def test_http_connector_follows_same_origin_redirects_up_to_a_cap():
    with CaptureServer() as vendor:
        vendor.script("/v1/XNYS/sessions", [Reply(302, headers={"Location": "/v2/XNYS/sessions"})])
        vendor.script("/v2/XNYS/sessions", [Reply(200, {"market": "XNYS", "sessions": ["2026-03-09"]})])
        vendor.script("/v1/loop", [Reply(302, headers={"Location": "/v1/loop"})])
        conn = HttpConnector(vendor.base_url, TOKEN, timeout=5, retries=0, max_redirects=3)
        assert conn.list_sessions("XNYS") == [SESSION]
        assert vendor.requests_to("/v2/XNYS/sessions")[0].headers["Authorization"] == f"Bearer {TOKEN}"
        with pytest.raises(VendorRefused, match="more than 3 redirect"):
            conn._get("/v1/loop", "a redirect loop")
        assert len(vendor.requests_to("/v1/loop")) == 4


def test_two_thousand_idle_connections_do_not_hold_two_thousand_threads(drop):
    server, url = serve_in_thread(drop, TOKEN, workers=4, max_pending=8, idle_timeout=0.5, request_timeout=2.0)
    baseline = threading.active_count()
    port = server.server_address[1]
    idle = []
    try:
        for _ in range(2000):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle.append(sock)
        peak = threading.active_count() - baseline
        assert peak <= 4, f"{peak} extra threads for 2,000 idle connections"
        # The server closes silent connections (idle timeout) or turns them away at once (pool full).
        idle[0].settimeout(10)
        assert idle[0].recv(1) == b""
        busy = idle[-1]
        busy.settimeout(10)
        assert busy.recv(100).startswith(b"HTTP/1.0 503")
        for sock in idle:
            sock.close()
        idle.clear()
        deadline = time.monotonic() + 15
        conn = HttpConnector(url, TOKEN, timeout=5, retries=5, backoff=0.2)
        while True:  # once the silent ones are timed out, the pool serves again
            try:
                assert conn.list_sessions("XNYS") == [SESSION]
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
        assert threading.active_count() - baseline <= 4
    finally:
        for sock in idle:
            sock.close()
        server.shutdown()
        server.server_close()


def test_token_comes_from_the_environment_or_a_file_never_argv(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TRADEPULSE_VENDOR_TOKEN", raising=False)
    with pytest.raises(TokenError, match="set TRADEPULSE_VENDOR_TOKEN or pass --token-file"):
        load_token(None)
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert load_token(path) == "from-file"
    assert load_token(None, {"TRADEPULSE_VENDOR_TOKEN": "from-env"}) == "from-env"
    code = main(["vendor", "serve", "--root", str(tmp_path), "--token", "visible"])
    err = capsys.readouterr().err
    assert code != 0 and "process list" in err and err.count("\n") <= 2
