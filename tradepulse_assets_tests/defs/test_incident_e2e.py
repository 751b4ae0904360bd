"""The runbook end to end on a real Dagster instance with the sensors ticking on simulated time.

A corrupted delivery on a batch market and a stall on a streaming market are each detected within one
sensor interval of the SLA breach, contained, backfilled, validated and resolved; the artefacts and the
notifier payloads are asserted; a clean replay opens no incident.
"""

import dataclasses
import datetime as dt
import json

import dagster as dg
import pytest

from tradepulse_assets.cli.main import main as cli
from tradepulse_assets.drills.replay import Replay
from tradepulse_assets.defs.sensors.exit_criteria import DASHBOARD_KEY
from tradepulse_assets.incidents.control_plane import ControlPlane
from tradepulse_assets.incidents.model import IncidentState
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import MarketRegistry, calendar_for, load_registry
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario
from tradepulse_assets_tests.support.capture_server import CaptureServer, Reply

UTC = dt.timezone.utc
REGISTRY = load_registry()
INTERVAL = dt.timedelta(seconds=30)  # the lag sensors' minimum interval


@pytest.fixture
def notifications(monkeypatch):
    """Slack webhooks and PagerDuty pointed at a local capture server."""
    with CaptureServer({}) as server:
        server.script("/slack/incidents", [Reply(200, "ok")])
        server.script("/slack/trading-ops", [Reply(500, "boom"), Reply(200, "ok")])  # one retry
        server.script("/slack/leadership", [Reply(200, "ok")])
        server.script("/v2/enqueue", [Reply(202, json.dumps({"status": "success"}))])
        monkeypatch.setenv("TRADEPULSE_SLACK_WEBHOOK_INCIDENTS", server.url("/slack/incidents"))
        monkeypatch.setenv("TRADEPULSE_SLACK_WEBHOOK_TRADING_OPS", server.url("/slack/trading-ops"))
        monkeypatch.setenv("TRADEPULSE_SLACK_WEBHOOK_LEADERSHIP_TECH", server.url("/slack/leadership"))
        monkeypatch.setenv("TRADEPULSE_PAGERDUTY_EVENTS_URL", server.url("/v2/enqueue"))
        monkeypatch.setenv("TRADEPULSE_PAGERDUTY_ROUTING_KEY", "R0UTINGKEY0000000000000000000000")
        yield server


def replay_for(platform, market_id: str, start: dt.datetime, vendor) -> Replay:
    """A replay of one market (the others have no vendor data here and would rightly raise lag incidents)."""
    settings = dataclasses.replace(platform.settings, lag_lookback_sessions=1)
    registry = MarketRegistry("test", (REGISTRY.get(market_id),))
    return Replay(settings, platform.instance, registry, start, vendor=vendor)


def latest_observation(platform, key: dg.AssetKey):
    (record,) = platform.instance.fetch_observations(key, limit=1).records
    return record.asset_observation.metadata


def caught_up(incident) -> bool:
    """The exit criteria saw every consumer partition a hold skipped re-run (needed to resolve)."""
    criteria = {c["name"]: c["status"] for c in (incident.last_evaluation or {}).get("criteria", [])}
    return criteria.get("consumers_caught_up") == "met"


def store_of(platform) -> LocalObjectStore:
    return LocalObjectStore(platform.home / "store")


def incidents_of(platform) -> IncidentStore:
    return IncidentStore(StateDB(platform.settings.state_db_url))


# --------------------------------------------------------------------------------------- batch market
XNYS = REGISTRY.get("XNYS")
PREVIOUS, SESSION = dt.date(2026, 3, 9), dt.date(2026, 3, 10)
CLOSE = calendar_for("XNYS", "XNYS").hours(SESSION).close  # 20:00 UTC
PUBLISHED = CLOSE + dt.timedelta(minutes=2)


def test_corrupted_batch_is_detected_contained_backfilled_validated_and_resolved(platform, notifications, capsys):
    vendor_dir = platform.settings.vendor_source
    corrupt = Scenario("corrupt", "", (FaultSpec("checksum_corruption", "XNYS", SESSION, SESSION, {"bytes": 8}),))
    publisher = Publisher(drop_store(vendor_dir), seed=5, scenarios=(corrupt,))
    publisher.publish_session("XNYS", PREVIOUS)

    def vendor(now):  # the vendor publishes the session two minutes after the close
        if now >= PUBLISHED:
            publisher.publish_session("XNYS", SESSION)

    replay = replay_for(platform, "XNYS", CLOSE - dt.timedelta(minutes=1), vendor)
    assert replay.materialize("XNYS", PREVIOUS).success  # the history before the incident
    incidents = incidents_of(platform)

    # Detection: the publication sensor lands the delivery at the first tick after it appears; landing
    # verification fails, the quality-failure sensor opens the incident and quarantines the batch.
    replay.run_until(lambda: bool(incidents.list()), INTERVAL, limit=20)
    assert PUBLISHED <= replay.now < PUBLISHED + INTERVAL, "detected within one sensor interval"
    (incident,) = incidents.list()
    assert incident.cause == "checksum_mismatch" and incident.state is IncidentState.CONTAINED
    control = ControlPlane(StateDB(platform.settings.state_db_url))
    assert control.is_paused("XNYS", "feature_store_writer") and control.promotions_frozen("XNYS")
    (landing,) = [r for r in replay.runs if r.sensor == "xnys_publication_sensor"]
    assert not landing.success and landing.partition == "2026-03-10"
    (batch,) = incidents.quarantined_batches(incident.id)
    (quarantine_run,) = [r for r in replay.runs if r.job == "quarantine_batch"]
    assert quarantine_run.success
    store = store_of(platform)
    manifest = json.loads((platform.home.parent / "vendor" / "XNYS" / "2026-03-10" / "manifest.json").read_text())
    name = manifest["files"][0]["name"]
    vendor_bytes = (platform.home.parent / "vendor" / "XNYS" / "2026-03-10" / name).read_bytes()
    quarantined = store.get_bytes(f"quarantine/{incident.id}/{batch.batch_id}/{name}")
    assert quarantined == vendor_bytes  # original bytes, bit for bit
    assert store.get_tags(f"quarantine/{incident.id}/{batch.batch_id}/{name}")["incident_id"] == incident.id
    # The UI shows it: the lag metric is observed every tick and the dashboard lists the incident.
    dashboard = latest_observation(platform, DASHBOARD_KEY)
    assert incident.id in dashboard["dashboard"].value and dashboard["stages"].value == {incident.id: "contained"}
    lag = latest_observation(platform, dg.AssetKey(["xnys", "ingestion_lag"]))
    assert lag["sla_seconds"].value == 300 and lag["breached"].value is False
    # Repeated ticks launch nothing twice.
    runs_before = len(replay.runs)
    replay.advance(INTERVAL)
    replay.step()
    assert len(replay.runs) == runs_before

    # Nothing changed at the vendor: no retry, however long we wait (never on a timer alone), and the lag
    # breach joins the incident (one fault, one incident) without a second quarantine.
    for _ in range(12):
        replay.advance(INTERVAL)
        replay.step()
    assert len(replay.runs) == runs_before and len(incidents.quarantined_batches(incident.id)) == 1
    assert incidents.get(incident.id).cause == "checksum_mismatch"

    # Vendor liaison: the vendor re-delivers the file intact (same manifest): a new delivery, fetched at once.
    fixed_dir = platform.home.parent / "vendor-fixed"
    Publisher(drop_store(str(fixed_dir)), seed=5).publish_session("XNYS", SESSION)
    intact = (fixed_dir / "XNYS" / "2026-03-10" / name).read_bytes()
    assert intact != vendor_bytes
    (platform.home.parent / "vendor" / "XNYS" / "2026-03-10" / name).write_bytes(intact)
    replay.run_until(
        lambda: any(r.success and r.partition == "2026-03-10" for r in replay.runs), INTERVAL, limit=30
    )
    (retry,) = [r for r in replay.runs if r.success and r.partition == "2026-03-10"]
    assert retry.sensor == "xnys_publication_sensor"  # the first launcher to see the changed delivery
    assert len([r for r in replay.runs if r.partition == "2026-03-10" and r.job == "xnys_ingest"]) == 2
    assert incidents.list() == [incidents.get(incident.id)]  # the breach joined the incident: one fault, one incident
    assert store.exists(lake.partition_key("production", "XNYS", SESSION))
    (record,) = incidents.backfills(incident.id)
    assert record.verdict == "reconciled" and record.rows == record.vendor_rows == XNYS.universe_size * 390

    # Validation: ingestion stable for 2 x SLA, quality suite and tolerance gates green -> consumers resume.
    try:
        replay.run_until(lambda: incidents.get(incident.id).state is IncidentState.VALIDATING, INTERVAL, limit=60)
    except TimeoutError:
        pytest.fail(f"not validating: {json.dumps(incidents.get(incident.id).last_evaluation, indent=1)[:3000]}")
    assert not control.is_paused("XNYS", "feature_store_writer")
    assert control.promotions_frozen("XNYS")  # until a person resolves

    # Containment undone completely: the paused consumers recorded no materialisation for the backfilled
    # session; once released, exactly those partitions are re-run, and the exit criteria say so.
    consumers = [dg.AssetKey(["xnys", c]) for c in ("feature_store_writer", "backtest_exporter")]
    replay.run_until(lambda: all(platform.instance.get_materialized_partitions(k) >= {"2026-03-10"}
                                 for k in consumers), INTERVAL, limit=4)
    catch_up = [r for r in replay.runs if r.sensor == "consumer_catchup_sensor"]
    assert sorted(r.partition for r in catch_up) == ["2026-03-10", "2026-03-10"] and all(r.success for r in catch_up)
    for key in consumers:
        made = platform.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=["2026-03-10"]), limit=10).records
        assert {m.run_id for m in made} <= {r.run_id for r in catch_up}  # the paused backfill made none
    replay.advance(INTERVAL)
    replay.step()
    evaluation = incidents.get(incident.id).last_evaluation
    assert {c["name"]: c["status"] for c in evaluation["criteria"]} == {
        "ingestion_stable": "met", "backfills_reconciled": "met", "quality_suite_green": "met",
        "indicator_tolerances": "met", "consumers_caught_up": "met", "resolution_recorded": "pending",
        "strategy_signoff": "pending",
    }

    # A person records the root cause and resolves through the CLI.
    now = replay.now.isoformat()
    assert cli(["incident", "signoff", incident.id, "--owner", "quant-strategies", "--now", replay.now.isoformat()]) == 0
    assert cli(["incident", "resolve", incident.id, "--root-cause", "vendor transfer corrupted bars.parquet",
                "--owner", "data-platform", "--action", "verify sha256 before publish", "--now", now, "--json"]) == 0
    capsys.readouterr()
    resolved = incidents.get(incident.id)
    assert resolved.state is IncidentState.RESOLVED and not control.promotions_frozen("XNYS")
    assert incidents.followups(incident.id)[0].due_at <= resolved.resolved_at + dt.timedelta(days=30)

    # Artefacts at the runbook's paths.
    report_dir = platform.home / "reports" / "incidents" / "data" / f"{incident.opened_at.date()}-{incident.id}"
    timeline = (report_dir / "timeline.md").read_text()
    assert incident.id in timeline and "quarantine" in timeline and "resolved" in timeline
    assert "XNYS,2026-03-10T13:30:00Z,2026-03-10T20:00:00Z,390,reconciled" in (report_dir / "gap.csv").read_text()
    assert "vendor transfer corrupted" in (report_dir / "postmortem.md").read_text()
    backfill_report = json.loads(
        (platform.home / "reports" / "backfill" / incident.id / "XNYS-2026-03-10.json").read_text()
    )
    assert backfill_report["verdict"] == "reconciled"

    # Communications: detection on PagerDuty and #incidents, recovery start and validation on #trading-ops.
    pages = [r.json for r in notifications.requests_to("/v2/enqueue")]
    assert [p["event_action"] for p in pages][:1] == ["trigger"] and pages[0]["dedup_key"] == incident.id
    assert "resolve" in [p["event_action"] for p in pages]
    incidents_posts = [r.json["text"] for r in notifications.requests_to("/slack/incidents")]
    assert incidents_posts == [f"Data incident {incident.id} detected, markets impacted: XNYS"]
    ops_texts = [r.json["text"] for r in notifications.requests_to("/slack/trading-ops")]
    assert any(t.startswith("Backfill initiated for XNYS covering") for t in ops_texts)
    assert "Data restored and validated, resuming normal ops" in ops_texts
    assert "R0UTINGKEY" not in timeline and "/slack/" not in timeline  # secrets never reach artefacts


def test_clean_replay_opens_no_incident(platform):
    publisher = Publisher(drop_store(platform.settings.vendor_source), seed=5)
    publisher.publish_session("XNYS", PREVIOUS)

    def vendor(now):
        if now >= PUBLISHED:
            publisher.publish_session("XNYS", SESSION)

    replay = replay_for(platform, "XNYS", CLOSE - dt.timedelta(minutes=1), vendor)
    assert replay.materialize("XNYS", PREVIOUS).success
    for _ in range(24):  # 12 minutes of sensor ticks around the close and the publication
        replay.step()
        replay.advance(INTERVAL)
    (landing,) = [r for r in replay.runs if r.sensor == "xnys_publication_sensor"]
    assert landing.success and landing.partition == "2026-03-10"
    assert store_of(platform).exists(lake.partition_key("production", "XNYS", SESSION))
    assert incidents_of(platform).list() == []


# ----------------------------------------------------------------------------------- streaming market
CRYPTO = REGISTRY.get("CRYPTO")
STALL_AT = dt.datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def test_streaming_stall_is_detected_contained_backfilled_validated_and_resolved(platform, notifications):
    vendor_dir = drop_store(platform.settings.vendor_source)
    stall = Scenario("stall", "", (FaultSpec("stall", "CRYPTO", SESSION, SESSION, {"at_minute": 600}),))
    stalled, healthy = Publisher(vendor_dir, seed=3, scenarios=(stall,)), Publisher(vendor_dir, seed=3)
    healthy.publish_session("CRYPTO", PREVIOUS, by_minute=True)
    vendor_state = {"publisher": stalled}
    calendar = calendar_for("CRYPTO", "24/7")

    def vendor(now):  # publishes the minute micro-batches due at ``now``
        for session in {calendar.session_of(now - dt.timedelta(minutes=1)), calendar.session_of(now)}:
            vendor_state["publisher"].publish_due("CRYPTO", session, now)

    replay = replay_for(platform, "CRYPTO", STALL_AT - dt.timedelta(minutes=2), vendor)
    assert replay.materialize("CRYPTO", PREVIOUS).success
    incidents = incidents_of(platform)

    replay.run_until(lambda: bool(incidents.list()), INTERVAL, limit=20)
    # Bar 10:00 is due at 10:01:00 and never arrives: the lag passes the 60 s SLA just after 10:02:00.
    breach = STALL_AT + dt.timedelta(minutes=2)
    assert breach < replay.now <= breach + INTERVAL, "detected within one sensor interval of the SLA breach"
    (incident,) = incidents.list()
    assert incident.cause == "lag_breach" and incident.state is IncidentState.CONTAINED
    control = ControlPlane(StateDB(platform.settings.state_db_url))
    assert control.is_paused("CRYPTO", "backtest_exporter")
    windows = incidents.gap_windows(incident.id)
    assert windows and windows[0].start == STALL_AT  # the gap starts at the first bar not delivered
    assert not [r for r in replay.runs if r.sensor == "crypto_lag_sensor"]  # session still open: nothing yet

    # The vendor recovers at 10:10 and catches up; the ingestor follows.
    replay.advance(dt.timedelta(minutes=8))
    vendor_state["publisher"] = healthy
    replay.step()
    assert StateDB(platform.settings.state_db_url).latest_lag("CRYPTO")["lag_seconds"] <= CRYPTO.lag_sla_seconds

    # After the session closes (midnight UTC), the lag sensor backfills the session partition.
    replay.now = dt.datetime(2026, 3, 10, 23, 59, tzinfo=UTC)
    replay.run_until(lambda: bool(incidents.backfills(incident.id)), INTERVAL, limit=20)
    (record,) = incidents.backfills(incident.id)
    assert record.session == "2026-03-10" and record.verdict == "reconciled"
    assert record.rows == CRYPTO.universe_size * 1440
    assert store_of(platform).exists(lake.partition_key("production", "CRYPTO", SESSION))

    try:
        replay.run_until(lambda: incidents.get(incident.id).state is IncidentState.VALIDATING, INTERVAL, limit=30)
    except TimeoutError:
        pytest.fail(f"not validating: {json.dumps(incidents.get(incident.id).last_evaluation, indent=1)[:4000]}")
    assert not control.is_paused("CRYPTO", "backtest_exporter")
    replay.run_until(lambda: caught_up(incidents.get(incident.id)), INTERVAL, limit=4)  # the skipped consumers
    assert cli(["incident", "signoff", incident.id, "--owner", "quant-strategies", "--now", replay.now.isoformat()]) == 0
    assert cli(["incident", "resolve", incident.id, "--root-cause", "vendor feed handler stalled",
                "--owner", "market-data", "--action", "alert on vendor heartbeat", "--now", replay.now.isoformat(),
                "--json"]) == 0
    assert incidents.get(incident.id).state is IncidentState.RESOLVED
    pages = [r.json for r in notifications.requests_to("/v2/enqueue")]
    assert pages[0]["event_action"] == "trigger" and "CRYPTO" in pages[0]["payload"]["summary"]
