"""Notifiers against a real loopback HTTP server: what is sent, what is retried, what is reported."""

import datetime as dt
import json
import logging
import subprocess
import sys
import textwrap

import pytest

from tradepulse_assets.incidents.communications import IncidentBrief, Message, Stage, messages_for
from tradepulse_assets.incidents.notifiers import (
    Delivery,
    Dispatcher,
    NotifierConfigError,
    OutboxNotifier,
    PagerDutyNotifier,
    Redactor,
    RetryPolicy,
    SlackWebhookNotifier,
    dispatcher_from_env,
    parse_retry_after,
)
from tradepulse_assets_tests.support.capture_server import CaptureServer, Reply, closed_port_url

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 9, 14, 5, 0, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=4, base_delay=0.25, max_delay=2.0, timeout=2.0)
SLACK_PATH = "/services/T0000/B0000/s3cr3tW3bh00kT0ken"
PD_PATH = "/v2/enqueue"
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"
PD_ACCEPTED = Reply(202, {"status": "success", "message": "Event processed", "dedup_key": "INC-7"})

BRIEF = IncidentBrief(
    incident_id="INC-7",
    markets=("XHKG",),
    cause="ingestion_lag",
    range_start=dt.datetime(2026, 3, 9, 1, 30, tzinfo=UTC),
    range_end=dt.datetime(2026, 3, 9, 4, 0, tzinfo=UTC),
    eta=dt.datetime(2026, 3, 9, 6, 0, tzinfo=UTC),
)


def detection(channel: str) -> Message:
    return next(m for m in messages_for(Stage.DETECTION, BRIEF, at=NOW) if m.channel == channel)


@pytest.fixture
def server():
    with CaptureServer() as srv:
        yield srv


@pytest.fixture
def sleeps():
    return []


def slack(server, sleeps, policy=FAST):
    return SlackWebhookNotifier({"#incidents": server.url(SLACK_PATH)}, policy=policy, sleep=sleeps.append)


def pagerduty(server, sleeps, policy=FAST):
    return PagerDutyNotifier(
        server.url(PD_PATH), ROUTING_KEY, policy=policy, sleep=sleeps.append, clock=lambda: NOW
    )


# ---------------------------------------------------------------------------------------------- Slack


def test_slack_success_posts_text_and_blocks_once(server, sleeps):
    server.script(SLACK_PATH, [Reply(200, "ok")])
    delivery = slack(server, sleeps).deliver(detection("#incidents"))
    assert delivery == Delivery(True, 1, 200, None, "slack", "#incidents", "INC-7:detection:#incidents", "ok")
    (request,) = server.requests_to(SLACK_PATH)
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    body = request.json
    assert body["text"] == "Data incident INC-7 detected, markets impacted: XHKG"
    assert body["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}
    assert "INC-7" in body["blocks"][1]["elements"][0]["text"]
    assert sleeps == []


def test_slack_429_is_retried_after_the_servers_retry_after(server, sleeps):
    server.script(SLACK_PATH, [Reply(429, "rate_limited", {"Retry-After": "7"}), Reply(200, "ok")])
    delivery = slack(server, sleeps).deliver(detection("#incidents"))
    assert delivery.ok and delivery.attempts == 2 and delivery.status_code == 200
    assert sleeps == [7.0]  # the header, not the 0.25 s backoff
    assert len(server.requests_to(SLACK_PATH)) == 2


def test_slack_5xx_backs_off_exponentially_then_reports_failure_via_on_failure(server, sleeps):
    server.script(SLACK_PATH, [Reply(500, "internal_error")])
    failures = []
    dispatcher = Dispatcher(
        {"#incidents": [slack(server, sleeps)]}, on_failure=lambda m, d: failures.append((m, d))
    )
    (delivery,) = dispatcher.dispatch([detection("#incidents")])  # must not raise
    assert not delivery.ok and delivery.attempts == 4 and delivery.status_code == 500
    assert "HTTP 500 internal_error" in delivery.error and "gave up after 4 attempts" in delivery.error
    assert sleeps == [0.25, 0.5, 1.0]
    assert len(server.requests_to(SLACK_PATH)) == 4
    assert [(m.dedup_key, d) for m, d in failures] == [("INC-7:detection:#incidents", delivery)]


@pytest.mark.parametrize(
    "status, body",
    [
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
    ],
)
def test_slack_permanent_errors_are_not_retried(server, sleeps, status, body):
    server.script(SLACK_PATH, [Reply(status, body), Reply(200, "ok")])
    delivery = slack(server, sleeps).deliver(detection("#incidents"))
    assert not delivery.ok and delivery.attempts == 1 and delivery.status_code == status
    assert body in delivery.error
    assert len(server.requests_to(SLACK_PATH)) == 1 and sleeps == []


@pytest.mark.parametrize(
    "header, seconds",
    [
        ("0", 0.0),
        ("2.5", 2.5),
        (" 30 ", 30.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_header_forms(header, seconds):
    assert parse_retry_after(header) == seconds  # an HTTP date in the past means "now"


def test_retry_after_is_capped_so_a_server_cannot_park_the_engine():
    assert RetryPolicy(max_retry_after=60.0).delay(1, 86_400.0) == 60.0


def test_slack_timeouts_and_refused_connections_are_retried(server, sleeps):
    policy = RetryPolicy(max_attempts=3, base_delay=0.0, timeout=0.3)
    server.script(SLACK_PATH, [Reply(200, "ok", delay=1.0), Reply(200, "ok")])
    delivery = slack(server, sleeps, policy).deliver(detection("#incidents"))
    assert delivery.ok and delivery.attempts == 2

    refused = SlackWebhookNotifier(
        {"#incidents": closed_port_url(SLACK_PATH)}, policy=policy, sleep=sleeps.append
    )
    delivery = refused.deliver(detection("#incidents"))
    assert not delivery.ok and delivery.attempts == 3 and delivery.status_code is None
    assert "no answer" in delivery.error and "Connection" in delivery.error


def test_slack_channel_without_webhook_is_a_failed_delivery_not_an_exception(server, sleeps):
    delivery = slack(server, sleeps).deliver(messages_for(Stage.RECOVERY_START, BRIEF)[0])
    assert not delivery.ok and delivery.attempts == 0 and "#trading-ops" in delivery.error
    assert server.requests == []


# ------------------------------------------------------------------------------------------ PagerDuty


def test_pagerduty_trigger_sends_the_exact_events_v2_body(server, sleeps):
    server.script(PD_PATH, [PD_ACCEPTED])
    delivery = pagerduty(server, sleeps).deliver(detection("pagerduty"))
    assert delivery.ok and delivery.status_code == 202 and delivery.reference == "INC-7"
    (request,) = server.requests_to(PD_PATH)
    assert request.json == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "INC-7",
        "payload": {
            "summary": "Data incident INC-7 detected, markets impacted: XHKG",
            "source": "tradepulse-assets",
            "severity": "critical",
            "timestamp": "2026-03-09T14:05:00Z",
            "component": "XHKG",
            "group": "market-data",
            "class": "ingestion_lag",
            "custom_details": {
                "incident_id": "INC-7",
                "stage": "detection",
                "audience": ["Trading Ops", "Risk", "Quant On Call"],
                "markets": ["XHKG"],
                "cause": "ingestion_lag",
                "eta": "2026-03-09T06:00:00Z",
                "range": ["2026-03-09T01:30:00Z", "2026-03-09T04:00:00Z"],
            },
        },
    }


def test_pagerduty_resolve_reuses_the_incident_dedup_key(server, sleeps):
    server.script(PD_PATH, [PD_ACCEPTED])
    notifier = pagerduty(server, sleeps)
    resolve = next(m for m in messages_for(Stage.VALIDATION_PASS, BRIEF) if m.channel == "pagerduty")
    assert notifier.deliver(detection("pagerduty")).ok and notifier.deliver(resolve).ok
    trigger_body, resolve_body = (r.json for r in server.requests_to(PD_PATH))
    assert resolve_body == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "INC-7"}
    assert trigger_body["dedup_key"] == resolve_body["dedup_key"]


def test_pagerduty_summary_is_truncated_to_1024_characters(server, sleeps):
    server.script(PD_PATH, [PD_ACCEPTED])
    many = tuple(f"M{i:04d}" for i in range(400))
    message = messages_for(Stage.DETECTION, IncidentBrief("INC-8", many), at=NOW)[0]
    assert len(message.text) > 1024
    assert pagerduty(server, sleeps).deliver(message).ok
    summary = server.requests_to(PD_PATH)[0].json["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("...") and message.text.startswith(summary[:-3])


def test_pagerduty_400_is_never_retried(server, sleeps):
    server.script(
        PD_PATH, [Reply(400, {"status": "invalid event", "errors": ["'routing_key' invalid"]}), PD_ACCEPTED]
    )
    delivery = pagerduty(server, sleeps).deliver(detection("pagerduty"))
    assert not delivery.ok and delivery.attempts == 1 and delivery.status_code == 400
    assert len(server.requests_to(PD_PATH)) == 1 and sleeps == []


def test_pagerduty_429_and_5xx_are_retried_until_accepted(server, sleeps):
    server.script(PD_PATH, [Reply(429, headers={"Retry-After": "0"}), Reply(500), Reply(503), PD_ACCEPTED])
    delivery = pagerduty(server, sleeps).deliver(detection("pagerduty"))
    assert delivery.ok and delivery.attempts == 4
    assert sleeps == [0.0, 0.5, 1.0]  # Retry-After: 0, then backoff for attempts 2 and 3
    bodies = [r.json for r in server.requests_to(PD_PATH)]
    assert all(b == bodies[0] for b in bodies)  # the same event, so PagerDuty deduplicates


# ------------------------------------------------------------------------------- dispatcher and secrets


def test_dispatcher_survives_a_notifier_that_raises_and_still_delivers_the_rest(tmp_path):
    class Broken:
        name = "broken"

        def deliver(self, message):
            raise RuntimeError("boom")

    outbox = OutboxNotifier(tmp_path / "outbox.jsonl", clock=lambda: NOW)
    failures = []
    dispatcher = Dispatcher({"#incidents": [Broken(), outbox]}, on_failure=lambda m, d: failures.append(d))
    deliveries = dispatcher.dispatch(messages_for(Stage.DETECTION, BRIEF))
    assert [(d.notifier, d.ok) for d in deliveries] == [("none", False), ("broken", False), ("outbox", True)]
    assert [d.notifier for d in failures] == ["none", "broken"]  # pagerduty unrouted, then the bug
    assert "RuntimeError: boom" in failures[1].error
    assert len((tmp_path / "outbox.jsonl").read_text().splitlines()) == 1


def test_a_raising_on_failure_handler_does_not_escape_dispatch(tmp_path):
    def explode(message, delivery):
        raise ValueError("timeline unavailable")

    (delivery,) = Dispatcher({}, on_failure=explode).dispatch(messages_for(Stage.RECOVERY_START, BRIEF))
    assert not delivery.ok


def test_without_configuration_every_message_lands_in_the_outbox(tmp_path):
    outbox = tmp_path / "outbox.jsonl"
    dispatcher = dispatcher_from_env({}, outbox, clock=lambda: NOW)
    messages = [m for stage in Stage for m in messages_for(stage, BRIEF, at=NOW)]
    deliveries = dispatcher.dispatch(messages)
    assert all(d.ok and d.notifier == "outbox" for d in deliveries)
    records = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [(r["stage"], r["channel"]) for r in records] == [(m.stage.value, m.channel) for m in messages]
    assert records[0]["recorded_at"] == "2026-03-09T14:05:00Z"
    assert records[0]["text"] == "Data incident INC-7 detected, markets impacted: XHKG"


def test_configuration_routes_slack_channels_and_pagerduty_the_rest_to_the_outbox(server, tmp_path, sleeps):
    server.script(SLACK_PATH, [Reply(200, "ok")])
    server.script(PD_PATH, [PD_ACCEPTED])
    env = {
        "TRADEPULSE_SLACK_WEBHOOK_INCIDENTS": server.url(SLACK_PATH),
        "TRADEPULSE_SLACK_WEBHOOK_LEADERSHIP_TECH": server.url(SLACK_PATH),
        "TRADEPULSE_PAGERDUTY_EVENTS_URL": server.url(PD_PATH),
        "TRADEPULSE_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
    }
    dispatcher = dispatcher_from_env(env, tmp_path / "outbox.jsonl", sleep=sleeps.append)
    assert dispatcher.routes() == {
        "#incidents": ["slack"],
        "#leadership-tech": ["slack"],
        "pagerduty": ["pagerduty"],
    }
    messages = messages_for(Stage.DETECTION, BRIEF) + messages_for(Stage.CONTAINMENT, BRIEF)
    deliveries = dispatcher.dispatch(messages)
    assert [(d.channel, d.notifier, d.ok) for d in deliveries] == [
        ("pagerduty", "pagerduty", True),
        ("#incidents", "slack", True),
        ("email", "outbox", True),
        ("#leadership-tech", "slack", True),
    ]


def test_secrets_never_reach_errors_logs_reprs_or_the_outbox(server, tmp_path, caplog, sleeps):
    # Every transport fails, so every error path runs: permanent, exhausted and refused.
    server.script(SLACK_PATH, [Reply(404, f"channel_not_found for {SLACK_PATH} (token s3cr3tW3bh00kT0ken)")])
    server.script(PD_PATH, [Reply(500, {"status": "error", "routing_key": ROUTING_KEY})])
    env = {
        "TRADEPULSE_SLACK_WEBHOOK_INCIDENTS": server.url(SLACK_PATH),
        "TRADEPULSE_SLACK_WEBHOOK_TRADING_OPS": closed_port_url(SLACK_PATH),
        "TRADEPULSE_PAGERDUTY_EVENTS_URL": server.url(PD_PATH),
        "TRADEPULSE_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
    }
    failures = []
    outbox = tmp_path / "outbox.jsonl"
    caplog.set_level(logging.DEBUG, logger="tradepulse_assets")
    dispatcher = dispatcher_from_env(
        env, outbox, on_failure=lambda m, d: failures.append(d), sleep=sleeps.append
    )
    messages = messages_for(Stage.DETECTION, BRIEF) + messages_for(Stage.RECOVERY_START, BRIEF)
    deliveries = dispatcher.dispatch(messages)

    assert [d.ok for d in deliveries] == [False, False, False] and len(failures) == 3
    dead_letters = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [r["channel"] for r in dead_letters] == ["pagerduty", "#incidents", "#trading-ops"]
    assert all(r["note"].startswith("undelivered:") for r in dead_letters)
    exposed = "\n".join(
        [outbox.read_text(), caplog.text, repr(dispatcher)] + [repr(d) for d in deliveries + failures]
    )
    for secret in ("s3cr3tW3bh00kT0ken", "/services/T0000", ROUTING_KEY):
        assert secret not in exposed
    assert "[REDACTED]" in exposed  # the server echoed them; the echo was scrubbed


def test_a_malformed_webhook_is_rejected_without_echoing_it(tmp_path):
    with pytest.raises(NotifierConfigError) as error:
        dispatcher_from_env(
            {"TRADEPULSE_SLACK_WEBHOOK_INCIDENTS": "hooks.slack.com/services/XYZsecret"}, tmp_path
        )
    assert "TRADEPULSE_SLACK_WEBHOOK_INCIDENTS" in str(error.value) and "XYZsecret" not in str(error.value)


# ---------------------------------------------------------------------------------------------- outbox

WRITER = textwrap.dedent(
    """
    import sys
    from tradepulse_assets.incidents.communications import IncidentBrief, Stage, messages_for
    from tradepulse_assets.incidents.notifiers import OutboxNotifier

    path, writer, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    outbox = OutboxNotifier(path, fsync=False)
    # ~10 KB lines: larger than PIPE_BUF and the page size, so only the lock keeps them whole.
    brief = IncidentBrief(writer, tuple(f"{writer}-M{i:04d}" for i in range(1000)))
    (message,) = [m for m in messages_for(Stage.DETECTION, brief) if m.channel == "#incidents"]
    for _ in range(count):
        assert outbox.deliver(message).ok
    """
)


def test_outbox_appends_from_concurrent_processes_are_whole_lines(tmp_path):
    path = tmp_path / "outbox.jsonl"
    writers, count = 4, 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"W{w}", str(count)], stderr=subprocess.PIPE
        )
        for w in range(writers)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # ends with a newline, no partial tail
    records = [json.loads(line) for line in lines[:-1]]  # a torn line would not parse
    assert len(records) == writers * count
    for w in range(writers):
        mine = [r for r in records if r["incident_id"] == f"W{w}"]
        assert len(mine) == count
        assert all(len(r["details"]["markets"]) == 1000 for r in mine)
    assert min(len(line) for line in lines[:-1]) > 10_000


def test_redactor_scrubs_a_slack_url_its_path_and_token_but_not_ordinary_words():
    url = "https://hooks.slack.com/services/T024BE7LD/B01ABCDEF/abcdEFGHijklMNOPqrst1234"
    redact = Redactor([url])
    assert redact(f"POST {url} failed") == "POST [REDACTED] failed"
    assert redact("echo /services/T024BE7LD/B01ABCDEF/abcdEFGHijklMNOPqrst1234") == "echo [REDACTED]"
    assert redact("token=abcdEFGHijklMNOPqrst1234") == "token=[REDACTED]"
    assert redact("market-data services resumed") == "market-data services resumed"
