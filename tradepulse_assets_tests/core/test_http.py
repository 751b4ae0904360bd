"""The one HTTP transport against real loopback servers: retries, Retry-After, redirects and credentials."""

import types

import pytest
import urllib3.util.retry

from tradepulse_assets.core.http import HttpClient, HttpPolicy, HttpRedirectError, HttpUnavailable
from tradepulse_assets_tests.support.capture_server import CaptureServer, Reply, closed_port_url

FAST = HttpPolicy(attempts=4, backoff=0.01, max_backoff=0.05, connect_timeout=1, read_timeout=1)
TOKEN = "Bearer s3cr3t-token-value"


@pytest.fixture
def server():
    with CaptureServer() as srv:
        yield srv


@pytest.fixture
def other_origin():
    with CaptureServer() as srv:
        yield srv


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """What urllib3 would have slept (Retry-After and backoff), recorded instead of slept."""
    recorded: list[float] = []
    fake_time = types.SimpleNamespace(sleep=recorded.append, time=__import__("time").time)
    monkeypatch.setattr(urllib3.util.retry, "time", fake_time)
    return recorded


def test_5xx_is_retried_until_an_answer(server, sleeps):
    server.script("/x", [Reply(503), Reply(502), Reply(200, {"ok": True})])
    answer = HttpClient(FAST).post(server.url("/x"), json={"a": 1})
    assert (answer.status, answer.json(), answer.attempts) == (200, {"ok": True}, 3)
    assert [r.json for r in server.requests_to("/x")] == [{"a": 1}] * 3


def test_5xx_after_every_attempt_is_returned_not_raised(server, sleeps):
    server.script("/x", [Reply(500, "boom")])
    answer = HttpClient(FAST).get(server.url("/x"))
    assert (answer.status, answer.attempts, len(server.requests_to("/x"))) == (500, 4, 4)


def test_429_waits_what_retry_after_asks(server, sleeps):
    server.script("/x", [Reply(429, headers={"Retry-After": "7"}), Reply(200, "ok")])
    answer = HttpClient(FAST).post(server.url("/x"), json={})
    assert answer.status == 200 and answer.attempts == 2
    assert sleeps == [7.0]


def test_retry_after_beyond_the_policy_is_returned_for_the_caller_to_schedule(server, sleeps):
    server.script("/x", [Reply(429, headers={"Retry-After": "3600"}), Reply(200, "ok")])
    answer = HttpClient(FAST).post(server.url("/x"), json={})
    assert (answer.status, answer.retry_after, answer.attempts) == (429, 3600.0, 1)
    assert len(server.requests_to("/x")) == 1 and sleeps == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_other_4xx_are_not_retried(server, sleeps, status):
    server.script("/x", [Reply(status, "no"), Reply(200, "ok")])
    answer = HttpClient(FAST).post(server.url("/x"), json={})
    assert answer.status == status and len(server.requests_to("/x")) == 1


def test_read_timeouts_are_retried_then_unavailable_without_the_path(server):
    server.script("/hooks/T0123/s3cr3tpath", [Reply(200, "late", delay=1.5)])
    policy = HttpPolicy(attempts=2, backoff=0, connect_timeout=1, read_timeout=0.2)
    with pytest.raises(HttpUnavailable) as err:
        HttpClient(policy).post(server.url("/hooks/T0123/s3cr3tpath"), json={})
    assert "s3cr3tpath" not in str(err.value) and server.base_url in str(err.value)
    assert "2 attempt(s)" in str(err.value)
    assert len(server.requests_to("/hooks/T0123/s3cr3tpath")) == 2


def test_refused_connection_is_unavailable():
    with pytest.raises(HttpUnavailable, match="no answer after 2 attempt"):
        HttpClient(HttpPolicy(attempts=2, backoff=0)).get(closed_port_url("/x"))


def test_same_origin_redirect_keeps_credentials(server, sleeps):
    server.script("/old", [Reply(307, headers={"Location": "/new"})])
    server.script("/new", [Reply(200, "here")])
    answer = HttpClient(FAST).get(server.url("/old"), headers={"Authorization": TOKEN})
    assert answer.text == "here" and answer.url == server.url("/new")
    assert server.requests_to("/new")[0].headers["Authorization"] == TOKEN


def test_cross_origin_redirect_drops_every_credential(server, other_origin, sleeps):
    target = other_origin.url("/file").replace("http://", "http://user:pw@")
    server.script("/file", [Reply(302, headers={"Location": target})])
    other_origin.script("/file", [Reply(200, "bytes")])
    client = HttpClient(FAST, credential_headers=["X-Api-Key"])
    headers = {"Authorization": TOKEN, "Cookie": "s=1", "X-Api-Key": "k3y", "X-Trace": "t"}
    answer = client.get(server.url("/file"), headers=headers)
    assert answer.text == "bytes"
    (seen,) = other_origin.requests_to("/file")
    lowered = {k.lower(): v for k, v in seen.headers.items()}
    assert "authorization" not in lowered and "cookie" not in lowered and "x-api-key" not in lowered
    assert lowered["x-trace"] == "t"
    assert server.requests_to("/file")[0].headers["Authorization"] == TOKEN


def test_redirects_are_capped(server, sleeps):
    server.script("/loop", [Reply(302, headers={"Location": "/loop"})])
    with pytest.raises(HttpRedirectError, match="more than 3 redirect"):
        HttpClient(FAST).get(server.url("/loop"))
    assert len(server.requests_to("/loop")) == 4


def test_no_redirects_returns_the_3xx(server, sleeps):
    server.script("/hook", [Reply(301, headers={"Location": "/elsewhere"})])
    answer = HttpClient(HttpPolicy(max_redirects=0)).post(server.url("/hook"), json={"t": 1})
    assert answer.status == 301 and server.requests_to("/elsewhere") == []


def test_see_other_turns_a_post_into_a_get(server, sleeps):
    server.script("/submit", [Reply(303, headers={"Location": "/result"})])
    server.script("/result", [Reply(200, "done")])
    assert HttpClient(FAST).post(server.url("/submit"), json={"x": 1}).text == "done"
    (seen,) = server.requests_to("/result")
    assert seen.method == "GET" and seen.body == b""


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="attempts"):
        HttpPolicy(attempts=0)
