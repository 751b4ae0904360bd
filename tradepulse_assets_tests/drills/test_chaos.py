"""Chaos replays on simulated time: the CLI prints each runbook stage's time; follow-ups run when due."""

import datetime as dt
import json
import os

from tradepulse_assets.cli.main import main as cli
from tradepulse_assets.defs.resources import ClockResource, StateResource
from tradepulse_assets.drills.followups import chaos_followups_job
from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.support.capture_server import CaptureServer, Reply

UTC = dt.UTC


def test_chaos_replay_times_every_stage_of_a_corrupted_delivery_inside_its_sandbox(
    tmp_path, capsys, monkeypatch
):
    """The replay also proves the sandbox: production's home and the real channels see nothing."""
    production = tmp_path / "production-home"
    monkeypatch.setenv("TRADEPULSE_HOME", str(production))
    monkeypatch.delenv("TRADEPULSE_STATE_DB_URL", raising=False)
    scenario = tmp_path / "one.yaml"
    scenario.write_text(
        "name: one\ndescription: flipped bytes\nfaults:\n"
        "  - {kind: checksum_corruption, market: XNYS, session: 2026-03-10, bytes: 8}\n"
    )
    with CaptureServer() as channels:
        channels.script("/slack", [Reply(200, "ok")])
        channels.script("/v2/enqueue", [Reply(202, {"status": "success"})])
        for name in ("INCIDENTS", "TRADING_OPS", "LEADERSHIP_TECH", "LIVE_TRADING"):
            monkeypatch.setenv(f"TRADEPULSE_SLACK_WEBHOOK_{name}", channels.url("/slack"))
        monkeypatch.setenv("TRADEPULSE_PAGERDUTY_EVENTS_URL", channels.url("/v2/enqueue"))
        monkeypatch.setenv("TRADEPULSE_PAGERDUTY_ROUTING_KEY", "R0UTINGKEY0000000000000000000000")
        sandbox = tmp_path / "sb"
        assert cli(["chaos", "replay", "--scenario", str(scenario), "--sandbox", str(sandbox), "--json"]) == 0
        assert channels.requests == []  # no --notify: nothing left the sandbox
    assert not production.exists() or list(production.rglob("*")) == []
    assert os.environ["TRADEPULSE_HOME"] == str(production)  # the sandbox's environment was undone
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert result["incident_id"].startswith("DRILL-")
    (outbox,) = sandbox.rglob("outbox.jsonl")
    records = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert records and all(r["drill"] and r["text"].startswith("[DRILL] ") for r in records)
    assert {r["incident_id"] for r in records} == {result["incident_id"]}
    assert result["outcome"] == "resolved" and result["cause"] == "checksum_mismatch"
    # The delivery is due at 20:02 UTC; the publication sensor lands it at its next tick.
    assert result["fault_at"] == "2026-03-10T20:02:00+00:00"
    times = [
        result[f"time_to_{s}_s"]
        for s in ("detected", "contained", "backfill_started", "backfilled", "validated")
    ]
    assert all(t is not None for t in times) and times == sorted(times)
    assert times[0] <= 30  # detected within one sensor interval
    # Validation needs the ingestion stable for 2 x the 300 s SLA after the backfill.
    assert result["time_to_validated_s"] - result["time_to_backfilled_s"] >= 600


def test_due_followup_runs_its_replay_and_records_the_outcome(tmp_path, monkeypatch):
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path / "home"))
    db = StateDB(f"sqlite:///{tmp_path / 'state.db'}")
    engine = IncidentEngine(db)
    opened = dt.datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
    incident, _ = engine.store.open_or_join("checksum_mismatch", "XNYS", now=opened)
    followup = engine.store.schedule_followup(
        incident.id, scenario="checksum_mismatch:XNYS", due_at=opened + dt.timedelta(days=1), now=opened
    )
    result = chaos_followups_job.execute_in_process(
        resources={
            "state": StateResource(url=f"sqlite:///{tmp_path / 'state.db'}"),
            "clock": ClockResource(spec="fixed:2026-03-13T09:00:00+00:00"),
        }
    )
    assert result.success and result.output_for_node("run_due_followups") == 1
    (done,) = engine.store.followups(incident.id)
    assert done.id == followup.id and done.status == "done"
    events = [e.message for e in engine.store.events(incident.id) if e.kind == "followup"]
    # The replay re-creates the fault on the last session closed a day before it runs: Wednesday 03-11.
    assert any("checksum_corruption on XNYS 2026-03-11: resolved" in m for m in events), events
