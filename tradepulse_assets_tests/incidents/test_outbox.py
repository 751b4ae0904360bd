"""The durable outbox and its delivery worker, on SQLite and PostgreSQL, against real servers.

What must hold: posting never touches the network; a message is retried with backoff until delivered or
expired; a resolve is never delivered before its trigger; nothing is lost when an endpoint never answers;
and an operator can list and resend.
"""

import datetime as dt
import json
import time

import dagster as dg
import pytest

from tradepulse_assets.incidents import exit_criteria as ec
from tradepulse_assets.incidents.communications import IncidentBrief, Stage, messages_for, pagerduty_resolve
from tradepulse_assets.incidents.notifications import (
    Notifications,
    Outbox,
    channels_from_env,
    notifications_for,
)
from tradepulse_assets.incidents.notifications.config import DRILL_MODE_WATERMARK, QUIET
from tradepulse_assets.incidents.notifications.outbox import backoff
from tradepulse_assets.incidents.signoff import Signoffs
from tradepulse_assets.pipeline.response import Responder
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets_tests.support.capture_server import CaptureServer, Reply
from tradepulse_assets_tests.support.smtp_server import smtp_server  # noqa: F401 - fixture

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
PD_PATH = "/v2/enqueue"
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"
PD_ACCEPTED = Reply(202, {"status": "success", "dedup_key": "x"})
SLACK = {
    "#incidents": "/hooks/incidents",
    "#leadership-tech": "/hooks/leadership",
    "#trading-ops": "/hooks/ops",
    "#live-trading": "/hooks/live",
}
BRIEF = IncidentBrief(
    "INC-1", ("XNYS",), cause="lag_breach", range_start=dt.date(2026, 3, 9), range_end=dt.date(2026, 3, 9)
)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


@pytest.fixture
def server():
    with CaptureServer() as srv:
        yield srv


def env_for(server, smtp_port=None) -> dict[str, str]:
    env = {
        "TRADEPULSE_PAGERDUTY_EVENTS_URL": server.url(PD_PATH),
        "TRADEPULSE_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "TRADEPULSE_STATUSPAGE_URL": server.url("/v1/pages/p1/incidents"),
        "TRADEPULSE_STATUSPAGE_TOKEN": "sp-token-0000",
        "TRADEPULSE_CONFLUENCE_URL": server.url("/wiki"),
        "TRADEPULSE_CONFLUENCE_SPACE": "OPS",
        "TRADEPULSE_CONFLUENCE_TOKEN": "conf-token-0000",
        "TRADEPULSE_DAGSTER_URL": "https://dagster.example",
        "TRADEPULSE_REPORTS_URL": "https://reports.example",
    }
    for channel, path in SLACK.items():
        env["TRADEPULSE_SLACK_WEBHOOK_" + channel.lstrip("#").upper().replace("-", "_")] = server.url(path)
    if smtp_port:
        env.update(
            {
                "TRADEPULSE_SMTP_HOST": "127.0.0.1",
                "TRADEPULSE_SMTP_PORT": str(smtp_port),
                "TRADEPULSE_EMAIL_FROM": "incidents@tradepulse.example",
                "TRADEPULSE_EMAIL_TO": "exec@tradepulse.example,compliance@tradepulse.example",
            }
        )
    return env


def script_all_ok(server) -> None:
    for path in SLACK.values():
        server.script(path, [Reply(200, "ok")])
    server.script(PD_PATH, [PD_ACCEPTED])
    server.script("/v1/pages/p1/incidents", [Reply(201, {"id": "sp-1"})])
    server.script("/wiki/rest/api/content", [Reply(200, {"id": "page-1"})])


def drain(notifications: Notifications, clock: Clock, passes: int = 12):
    """Run worker passes, moving the clock past the longest backoff between them (simulated time)."""
    reports = []
    for _ in range(passes):
        reports.append(notifications.deliver_due(budget_seconds=30))
        clock.advance(backoff(10))
    return reports


def test_posting_without_configuration_records_in_the_file_and_sends_nothing(db, tmp_path, server):
    clock = Clock(T0)
    notifications = notifications_for(db, tmp_path / "outbox.jsonl", env={}, clock=clock)
    messages = [m for stage in Stage for m in messages_for(stage, BRIEF, at=T0)]
    entries = notifications.post(messages)
    assert {e.status for e in entries} == {"recorded"}
    records = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["channel"]) for r in records] == [(m.stage.value, m.channel) for m in messages]
    assert records[0]["recorded_at"] == "2026-03-09T15:00:00Z"
    assert notifications.deliver_due().delivered == [] and server.requests == []


def test_a_resolve_is_never_delivered_before_its_trigger(db, tmp_path, server):
    clock = Clock(T0)
    server.script(PD_PATH, [Reply(500), Reply(500), PD_ACCEPTED])
    notifications = Notifications(
        Outbox(db), channels_from_env(env_for(server), clock=clock), tmp_path / "o.jsonl", clock=clock
    )
    trigger = messages_for(Stage.DETECTION, BRIEF)[0]
    notifications.post([trigger, pagerduty_resolve(BRIEF)])
    first = notifications.deliver_due()
    assert [e.event_action for e in first.retrying] == ["trigger"]  # the resolve waited behind it
    assert [r.json["event_action"] for r in server.requests_to(PD_PATH)] == ["trigger"]
    drain(notifications, clock)
    actions = [r.json["event_action"] for r in server.requests_to(PD_PATH)]
    assert actions == ["trigger", "trigger", "trigger", "resolve"]
    assert [e.status for e in notifications.outbox.list()] == ["delivered", "delivered"]


def test_retry_after_and_backoff_schedule_the_next_attempt(db, tmp_path, server):
    clock = Clock(T0)
    server.script(PD_PATH, [Reply(429, headers={"Retry-After": "600"}), PD_ACCEPTED])
    notifications = Notifications(
        Outbox(db), channels_from_env(env_for(server)), tmp_path / "o.jsonl", clock=clock
    )
    (entry,) = notifications.post(messages_for(Stage.DETECTION, BRIEF)[:1])
    notifications.deliver_due()
    entry = notifications.outbox.get(entry.id)
    assert entry.status == "pending" and entry.next_attempt_at == T0 + dt.timedelta(seconds=600)
    clock.advance(dt.timedelta(seconds=599))
    assert notifications.deliver_due().delivered == []
    clock.advance(dt.timedelta(seconds=1))
    assert [e.id for e in notifications.deliver_due().delivered] == [entry.id]
    assert backoff(1) == dt.timedelta(seconds=15) and backoff(3) == dt.timedelta(minutes=1)
    assert backoff(20) == dt.timedelta(minutes=15)


def test_a_refusal_is_given_up_at_once_and_can_be_resent(db, tmp_path, server):
    clock = Clock(T0)
    server.script("/hooks/incidents", [Reply(404, "channel_not_found"), Reply(200, "ok")])
    notifications = Notifications(
        Outbox(db), channels_from_env(env_for(server)), tmp_path / "o.jsonl", clock=clock
    )
    (entry,) = notifications.post(messages_for(Stage.DETECTION, BRIEF)[1:2])
    given_up = []
    report = notifications.deliver_due(on_give_up=given_up.append)
    assert [e.status for e in report.given_up] == ["failed"] and given_up[0].last_status == 404
    note = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[-1])["note"]
    assert note.startswith("refused:") and "channel_not_found" in note
    (resent,) = notifications.outbox.resend([entry.id], now=clock())
    assert resent.status == "pending"
    assert [e.id for e in notifications.deliver_due().delivered] == [entry.id]


def test_undelivered_messages_expire_onto_the_timeline_handler(db, tmp_path, server):
    clock = Clock(T0)
    server.script(PD_PATH, [Reply(503)])
    notifications = Notifications(
        Outbox(db, ttl=dt.timedelta(minutes=5)),
        channels_from_env(env_for(server)),
        tmp_path / "o.jsonl",
        clock=clock,
    )
    notifications.post(messages_for(Stage.DETECTION, BRIEF)[:1])
    given_up = []
    for _ in range(6):
        notifications.deliver_due(on_give_up=given_up.append)
        clock.advance(dt.timedelta(minutes=1))
    assert [e.status for e in given_up] == ["expired"]
    assert notifications.outbox.list()[0].status == "expired"


def test_a_never_answering_endpoint_costs_a_tick_nothing_and_loses_nothing(db, tmp_path):
    """The sensor tick only counts due rows (no network): under 5 s with an endpoint that never answers.
    The worker's pass is bounded by its budget; the message stays pending and is delivered later."""
    from tradepulse_assets.defs.resources import ClockResource, StateResource
    from tradepulse_assets.defs.sensors.notification_delivery import notification_delivery_sensor

    clock = Clock(T0)
    with CaptureServer({"/hooks/incidents": [Reply(200, "ok", delay=30.0)]}) as hung:
        env = {"TRADEPULSE_SLACK_WEBHOOK_INCIDENTS": hung.url("/hooks/incidents")}
        notifications = Notifications(Outbox(db), channels_from_env(env), tmp_path / "o.jsonl", clock=clock)
        entries = notifications.post(messages_for(Stage.DETECTION, BRIEF)[1:2] * 3)

        with dg.instance_for_test() as instance:
            context = dg.build_sensor_context(
                instance=instance,
                resources={
                    "state": StateResource(url=db.url),
                    "clock": ClockResource(spec=f"fixed:{T0.isoformat()}"),
                },
            )
            started = time.monotonic()
            result = notification_delivery_sensor(context)
            tick_seconds = time.monotonic() - started
        # one due now: the other two wait behind the first of their incident and channel
        assert isinstance(result, dg.RunRequest) and result.tags["tradepulse/notifications-due"] == "1"
        assert tick_seconds < 5.0 and hung.requests == []

        report = notifications.deliver_due(budget_seconds=1.0)
        assert len(hung.requests) == 1  # one bounded attempt, then the others of this channel wait behind it
        assert report.delivered == [] and len(report.retrying) == 1
        assert [e.status for e in notifications.outbox.list()] == ["pending"] * 3

    with CaptureServer({"/hooks/incidents": [Reply(200, "ok")]}) as back:
        env = {"TRADEPULSE_SLACK_WEBHOOK_INCIDENTS": back.url("/hooks/incidents")}
        notifications = Notifications(Outbox(db), channels_from_env(env), tmp_path / "o.jsonl", clock=clock)
        clock.advance(dt.timedelta(minutes=1))
        report = notifications.deliver_due()
        assert [e.id for e in report.delivered] == [e.id for e in entries]
        assert len(back.requests) == 3


def test_a_quiet_drill_state_db_sends_nothing_and_marks_every_message(db, tmp_path, server):
    script_all_ok(server)
    db.set_watermark(DRILL_MODE_WATERMARK, QUIET)
    notifications = notifications_for(db, tmp_path / "o.jsonl", env=env_for(server))
    entries = notifications.post(messages_for(Stage.DETECTION, BRIEF))
    assert all(e.drill and e.status == "recorded" for e in entries)
    assert all(
        json.loads(line)["text"].startswith("[DRILL] ")
        for line in (tmp_path / "o.jsonl").read_text().splitlines()
    )
    notifications.deliver_due()
    assert server.requests == []


def evidence_met(now: dt.datetime) -> ec.ExitEvidence:
    samples = tuple(ec.LagSample(now - dt.timedelta(seconds=s), 5.0) for s in range(0, 7 * 60, 30))
    return ec.ExitEvidence(now=now, lag={"XNYS": ec.MarketLag(120.0, samples)})


def test_one_incident_through_all_five_stages_with_pagerduty_down_for_three_attempts(
    db,
    tmp_path,
    server,
    smtp_server,
    monkeypatch,
):
    sink, smtp_port = smtp_server
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path / "home"))
    script_all_ok(server)
    server.script(PD_PATH, [Reply(503), Reply(502), Reply(500), PD_ACCEPTED])
    clock = Clock(T0)
    notifications = notifications_for(
        db, tmp_path / "outbox.jsonl", env=env_for(server, smtp_port), clock=clock
    )
    responder = Responder(db, LocalObjectStore(tmp_path / "lake"), notifications, clock)

    incident, opened = responder.detect("lag_breach", "XNYS", now=clock(), description="XNYS stalled")
    assert opened
    drain(notifications, clock, passes=2)
    clock.advance(dt.timedelta(minutes=5))
    incident = responder.start_recovery(
        incident,
        now=clock(),
        start=dt.date(2026, 3, 9),
        end=dt.date(2026, 3, 9),
        message="backfill launched",
        run_id="run-123",
    )
    clock.advance(dt.timedelta(minutes=20))
    responder.evaluate(incident.id, evidence_met(clock()))
    assert responder.engine.store.get(incident.id).state.value == "validating"
    clock.advance(dt.timedelta(minutes=5))
    Signoffs(db).record(incident.id, owner="quant-strategies", now=clock())
    responder.resolve(
        incident.id, now=clock(), root_cause="vendor stall", owners=["ops"], actions=["failover"]
    )
    drain(notifications, clock)

    iid = incident.id
    assert all(e.status == "delivered" for e in notifications.outbox.list()), notifications.outbox.list()
    # PagerDuty: down for the first three attempts, then the whole lifecycle in order on one dedup key.
    pd = [r.json for r in server.requests_to(PD_PATH)]
    assert [b["event_action"] for b in pd] == ["trigger"] * 4 + ["acknowledge", "resolve"]
    assert {b["dedup_key"] for b in pd} == {iid} and {b["routing_key"] for b in pd} == {ROUTING_KEY}
    trigger = pd[0]
    assert trigger["payload"]["summary"] == f"Data incident {iid} detected, markets impacted: XNYS"
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["class"] == "lag_breach"
    timeline = f"https://reports.example/reports/incidents/data/2026-03-09-{iid}/timeline.md"
    assert {"href": timeline, "text": "timeline"} in trigger["links"]
    assert trigger["client_url"] == "https://dagster.example" and trigger["client"].startswith("TradePulse")
    assert all(set(b) == {"routing_key", "event_action", "dedup_key"} for b in pd[4:])
    # Slack: detection, containment, kill-switch notice, recovery start, validation pass: the runbook's texts.
    texts = {path: [r.json["text"] for r in server.requests_to(path)] for path in SLACK.values()}
    assert texts["/hooks/incidents"] == [f"Data incident {iid} detected, markets impacted: XNYS"]
    assert texts["/hooks/leadership"] == ["Ingestion paused for XNYS, ETA 2026-03-09 16:00 UTC"]
    assert texts["/hooks/live"] == [
        f"Strategy promotions frozen for strategy promotions on XNYS (incident {iid}, markets XNYS):"
        " evaluate kill-switch posture"
    ]
    assert texts["/hooks/ops"] == [
        "Backfill initiated for XNYS covering 2026-03-09",
        "Data restored and validated, resuming normal ops",
    ]
    run_link = server.requests_to("/hooks/ops")[0].json["blocks"][1]["elements"][0]["text"]
    assert "<https://dagster.example/runs/run-123|Dagster run>" in run_link
    # Email over SMTP: the containment notice to Executives and Compliance.
    ((sender, recipients, mail),) = sink.messages
    assert sender == "incidents@tradepulse.example"
    assert recipients == ["exec@tradepulse.example", "compliance@tradepulse.example"]
    assert mail["Subject"] == f"[critical] incident {iid}: containment"
    assert "Ingestion paused for XNYS, ETA 2026-03-09 16:00 UTC" in mail.get_payload()
    # Status page and Confluence over their REST APIs.
    (status,) = server.requests_to("/v1/pages/p1/incidents")
    assert status.json["incident"]["body"] == "Data restored and validated, resuming normal ops"
    assert status.headers["Authorization"] == "OAuth sp-token-0000"
    (page,) = server.requests_to("/wiki/rest/api/content")
    assert page.json["title"] == f"Incident {iid} retrospective"
    assert f"reports/incidents/data/2026-03-09-{iid}/postmortem.md" in page.json["body"]["storage"]["value"]
