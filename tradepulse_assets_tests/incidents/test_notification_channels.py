"""Each notification channel against a real loopback server: what is sent, and how an answer is judged.

Retrying is the outbox's job (``test_outbox.py``); a channel makes one bounded attempt and says
``delivered``, ``retry`` (no answer, 429, 5xx; with the server's Retry-After) or ``failed``.
"""

import datetime as dt
import json
import subprocess
import sys
import textwrap

import pytest

from tradepulse_assets.incidents.communications import (
    IncidentBrief,
    Message,
    Stage,
    kill_switch_notice,
    messages_for,
    pagerduty_resolve,
)
from tradepulse_assets.incidents.notifications import NotifierConfigError, Redactor, channels_from_env
from tradepulse_assets.incidents.notifications.confluence import ConfluencePages
from tradepulse_assets.incidents.notifications.pagerduty import PagerDutyEvents
from tradepulse_assets.incidents.notifications.slack import SlackWebhooks
from tradepulse_assets.incidents.notifications.statuspage import StatusPage
from tradepulse_assets_tests.support.capture_server import CaptureServer, Reply, closed_port_url

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 9, 14, 5, 0, tzinfo=UTC)
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


def slack(server):
    return SlackWebhooks({"#incidents": server.url(SLACK_PATH)})


def pagerduty(server, client_url=None):
    return PagerDutyEvents(server.url(PD_PATH), ROUTING_KEY, clock=lambda: NOW, client_url=client_url)


# ---------------------------------------------------------------------------------------------- Slack


def test_slack_success_posts_text_and_blocks_once(server):
    server.script(SLACK_PATH, [Reply(200, "ok")])
    attempt = slack(server).send(detection("#incidents"))
    assert (attempt.outcome, attempt.status, attempt.error, attempt.reference) == (
        "delivered",
        200,
        None,
        "ok",
    )
    (request,) = server.requests_to(SLACK_PATH)
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    body = request.json
    assert body["text"] == "Data incident INC-7 detected, markets impacted: XHKG"
    assert body["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}
    assert "INC-7" in body["blocks"][1]["elements"][0]["text"]


def test_slack_429_is_a_retry_carrying_the_servers_retry_after(server):
    server.script(SLACK_PATH, [Reply(429, "rate_limited", {"Retry-After": "700"})])
    attempt = slack(server).send(detection("#incidents"))
    assert (attempt.outcome, attempt.status, attempt.retry_after) == ("retry", 429, 700.0)
    assert len(server.requests_to(SLACK_PATH)) == 1  # one bounded attempt: the outbox schedules the next


def test_slack_5xx_is_a_retry_with_the_answer_in_the_error(server):
    server.script(SLACK_PATH, [Reply(500, "internal_error")])
    attempt = slack(server).send(detection("#incidents"))
    assert attempt.outcome == "retry" and attempt.status == 500 and "HTTP 500 internal_error" in attempt.error


@pytest.mark.parametrize(
    "status, body",
    [
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
    ],
)
def test_slack_permanent_errors_fail_for_good(server, status, body):
    server.script(SLACK_PATH, [Reply(status, body), Reply(200, "ok")])
    attempt = slack(server).send(detection("#incidents"))
    assert attempt.outcome == "failed" and attempt.status == status and body in attempt.error
    assert len(server.requests_to(SLACK_PATH)) == 1


def test_slack_200_without_ok_is_a_failure(server):
    server.script(SLACK_PATH, [Reply(200, "invalid_token")])
    assert slack(server).send(detection("#incidents")).outcome == "failed"


def test_timeouts_and_refused_connections_are_retries():
    with CaptureServer({SLACK_PATH: [Reply(200, "ok", delay=8.0)]}) as srv:
        from tradepulse_assets.core.http import HttpClient, HttpPolicy

        client = HttpClient(HttpPolicy(attempts=1, read_timeout=0.3, max_redirects=0))
        attempt = SlackWebhooks({"#incidents": srv.url(SLACK_PATH)}, client=client).send(
            detection("#incidents")
        )
    assert attempt.outcome == "retry" and attempt.status is None and "no answer" in attempt.error
    refused = SlackWebhooks({"#incidents": closed_port_url(SLACK_PATH)}).send(detection("#incidents"))
    assert refused.outcome == "retry" and "ConnectionRefused" in refused.error


def test_a_redirecting_webhook_is_not_followed(server):
    server.script(SLACK_PATH, [Reply(302, headers={"Location": "/elsewhere"})])
    attempt = slack(server).send(detection("#incidents"))
    assert attempt.outcome == "failed" and attempt.status == 302 and server.requests_to("/elsewhere") == []


def test_drill_messages_say_so_in_text_and_context(server):
    server.script(SLACK_PATH, [Reply(200, "ok")])
    assert slack(server).send(detection("#incidents").as_drill()).delivered
    body = server.requests_to(SLACK_PATH)[0].json
    assert body["text"].startswith("[DRILL] Data incident INC-7")
    assert "DRILL" in body["blocks"][1]["elements"][0]["text"]


# ------------------------------------------------------------------------------------------ PagerDuty


def test_pagerduty_trigger_sends_the_exact_events_v2_body(server):
    server.script(PD_PATH, [PD_ACCEPTED])
    brief = IncidentBrief(**{**BRIEF.__dict__, "links": {"timeline": "https://reports/t.md"}})
    message = next(m for m in messages_for(Stage.DETECTION, brief, at=NOW) if m.channel == "pagerduty")
    attempt = pagerduty(server, client_url="https://dagster.example").send(message)
    assert attempt.delivered and attempt.status == 202 and attempt.reference == "INC-7"
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
                "links": {"timeline": "https://reports/t.md"},
            },
        },
        "links": [{"href": "https://reports/t.md", "text": "timeline"}],
        "client": "TradePulse Assets (Dagster)",
        "client_url": "https://dagster.example",
    }


def test_pagerduty_acknowledge_and_resolve_reuse_the_incident_dedup_key(server):
    server.script(PD_PATH, [PD_ACCEPTED])
    notifier = pagerduty(server)
    ack = next(m for m in messages_for(Stage.RECOVERY_START, BRIEF) if m.channel == "pagerduty")
    for message in (detection("pagerduty"), ack, pagerduty_resolve(BRIEF)):
        assert notifier.send(message).delivered
    trigger, acknowledge, resolve = (r.json for r in server.requests_to(PD_PATH))
    assert acknowledge == {"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": "INC-7"}
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "INC-7"}
    assert trigger["dedup_key"] == "INC-7" and trigger["event_action"] == "trigger"


def test_pagerduty_summary_is_truncated_to_1024_characters(server):
    server.script(PD_PATH, [PD_ACCEPTED])
    many = tuple(f"M{i:04d}" for i in range(400))
    message = messages_for(Stage.DETECTION, IncidentBrief("INC-8", many), at=NOW)[0]
    assert len(message.text) > 1024
    assert pagerduty(server).send(message).delivered
    summary = server.requests_to(PD_PATH)[0].json["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("...") and message.text.startswith(summary[:-3])


def test_pagerduty_400_fails_and_429_retries(server):
    server.script(PD_PATH, [Reply(400, {"status": "invalid event", "errors": ["'routing_key' invalid"]})])
    assert pagerduty(server).send(detection("pagerduty")).outcome == "failed"
    server.script(PD_PATH, [Reply(429, headers={"Retry-After": "0"})])
    assert pagerduty(server).send(detection("pagerduty")).outcome == "retry"


# ---------------------------------------------------------------------- status page and Confluence


def test_status_page_posts_a_resolved_incident_with_the_oauth_key(server):
    server.script("/v1/pages/p1/incidents", [Reply(201, {"id": "sp-1"})])
    message = next(m for m in messages_for(Stage.VALIDATION_PASS, BRIEF) if m.channel == "status-page")
    attempt = StatusPage(server.url("/v1/pages/p1/incidents"), "sp-key-123").send(message)
    assert attempt.delivered and attempt.reference == "sp-1"
    (request,) = server.requests_to("/v1/pages/p1/incidents")
    assert request.headers["Authorization"] == "OAuth sp-key-123"
    assert request.json["incident"]["status"] == "resolved"
    assert request.json["incident"]["body"] == "Data restored and validated, resuming normal ops"
    assert request.json["incident"]["name"] == "Market data incident INC-7 (XHKG)"


def test_confluence_creates_the_postmortem_page_and_a_duplicate_counts_as_delivered(server):
    brief = IncidentBrief(**{**BRIEF.__dict__, "postmortem_path": "reports/incidents/data/x/postmortem.md"})
    (message,) = messages_for(Stage.POSTMORTEM_READY, brief)
    pages = ConfluencePages(server.url("/wiki"), "OPS", "conf-token-1", parent_id="42")
    server.script(
        "/wiki/rest/api/content",
        [Reply(200, {"id": "777"}), Reply(400, "A page with this title already exists")],
    )
    assert pages.send(message).reference == "777"
    assert pages.send(message).delivered
    body = server.requests_to("/wiki/rest/api/content")[0].json
    assert body["title"] == "Incident INC-7 retrospective" and body["space"] == {"key": "OPS"}
    assert body["ancestors"] == [{"id": "42"}]
    assert "reports/incidents/data/x/postmortem.md" in body["body"]["storage"]["value"]
    assert server.requests_to("/wiki/rest/api/content")[0].headers["Authorization"] == "Bearer conf-token-1"


def test_kill_switch_notice_names_the_frozen_strategies():
    notice = kill_switch_notice(BRIEF, ["strategy promotions on XHKG"], at=NOW)
    assert notice.channel == "#live-trading" and notice.audience == ("Live Trading",)
    assert "strategy promotions on XHKG" in notice.text and "kill-switch" in notice.text
    assert notice.details["frozen"] == ["strategy promotions on XHKG"]


# ---------------------------------------------------------------------------------- configuration


def test_configuration_names_each_configured_channel(server):
    env = {
        "TRADEPULSE_SLACK_WEBHOOK_INCIDENTS": server.url(SLACK_PATH),
        "TRADEPULSE_SLACK_WEBHOOK_LEADERSHIP_TECH": server.url(SLACK_PATH),
        "TRADEPULSE_PAGERDUTY_EVENTS_URL": server.url(PD_PATH),
        "TRADEPULSE_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "TRADEPULSE_SMTP_HOST": "127.0.0.1",
        "TRADEPULSE_EMAIL_FROM": "ops@example.com",
        "TRADEPULSE_EMAIL_TO": "exec@example.com, compliance@example.com",
    }
    config = channels_from_env(env)
    routed = {
        c: getattr(config.channel_for(c), "name", None)
        for c in [
            "#incidents",
            "#leadership-tech",
            "#trading-ops",
            "pagerduty",
            "email",
            "status-page",
            "confluence",
        ]
    }
    assert routed == {
        "#incidents": "slack",
        "#leadership-tech": "slack",
        "#trading-ops": None,
        "pagerduty": "pagerduty",
        "email": "email",
        "status-page": None,
        "confluence": None,
    }
    assert channels_from_env({}).channels == ()


def test_a_drill_uses_the_drill_routing_key_when_one_is_set(server):
    server.script(PD_PATH, [PD_ACCEPTED])
    env = {
        "TRADEPULSE_PAGERDUTY_EVENTS_URL": server.url(PD_PATH),
        "TRADEPULSE_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "TRADEPULSE_PAGERDUTY_DRILL_ROUTING_KEY": "DRILLKEY000000000000000000000000",
    }
    channel = channels_from_env(env, drill=True).channel_for("pagerduty")
    assert channel.send(detection("pagerduty").as_drill()).delivered
    body = server.requests_to(PD_PATH)[0].json
    assert body["routing_key"] == "DRILLKEY000000000000000000000000"
    assert (
        body["payload"]["summary"].startswith("[DRILL]")
        and body["payload"]["custom_details"]["drill"] is True
    )
    assert channels_from_env(env).channel_for("pagerduty")._routing_key == ROUTING_KEY


def test_a_malformed_webhook_is_rejected_without_echoing_it():
    with pytest.raises(NotifierConfigError) as error:
        channels_from_env({"TRADEPULSE_SLACK_WEBHOOK_INCIDENTS": "hooks.slack.com/services/XYZsecret"})
    assert "#incidents" in str(error.value) and "XYZsecret" not in str(error.value)


def test_secrets_never_reach_errors_or_reprs(server):
    server.script(SLACK_PATH, [Reply(404, f"channel_not_found for {SLACK_PATH} (token s3cr3tW3bh00kT0ken)")])
    server.script(PD_PATH, [Reply(500, {"status": "error", "routing_key": ROUTING_KEY})])
    env = {
        "TRADEPULSE_SLACK_WEBHOOK_INCIDENTS": server.url(SLACK_PATH),
        "TRADEPULSE_SLACK_WEBHOOK_TRADING_OPS": closed_port_url(SLACK_PATH),
        "TRADEPULSE_PAGERDUTY_EVENTS_URL": server.url(PD_PATH),
        "TRADEPULSE_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
    }
    config = channels_from_env(env)
    messages = messages_for(Stage.DETECTION, BRIEF) + messages_for(Stage.RECOVERY_START, BRIEF)[:1]
    attempts = [config.channel_for(m.channel).send(m) for m in messages]
    assert [a.outcome for a in attempts] == ["retry", "failed", "retry"]
    exposed = "\n".join([repr(config)] + [repr(c) for c in config.channels] + [repr(a) for a in attempts])
    for secret in ("s3cr3tW3bh00kT0ken", "/services/T0000", ROUTING_KEY):
        assert secret not in exposed
    assert "[REDACTED]" in exposed  # the server echoed them; the echo was scrubbed


# ------------------------------------------------------------------------------------- outbox file

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tradepulse_assets.incidents.communications import IncidentBrief, Stage, messages_for
    from tradepulse_assets.core.io import append_jsonl

    path, writer, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    # ~10 KB lines: larger than PIPE_BUF and the page size, so only the lock keeps them whole.
    brief = IncidentBrief(writer, tuple(f"{writer}-M{i:04d}" for i in range(1000)))
    (message,) = [m for m in messages_for(Stage.DETECTION, brief) if m.channel == "#incidents"]
    for _ in range(count):
        append_jsonl(path, message.to_record(), fsync=False)
    """
)


def test_outbox_file_appends_from_concurrent_processes_are_whole_lines(tmp_path):
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
