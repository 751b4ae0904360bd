"""Any recovery counts: the CLI backfill runs real Dagster runs and reconciles the incident; a UI run does too.

The CLI backfill covers a range with a clean session, a corrupt one and an unpublished one: every session runs,
each outcome is recorded, the summary is written and the exit code is the worst outcome.
"""

import datetime as dt
import json

import dagster as dg

from tradepulse_assets.cli.main import main as cli
from tradepulse_assets.defs.assets.bars import INCIDENT_TAG, MARKET_TAG
from tradepulse_assets.defs.launch import LAUNCHED_BY_TAG
from tradepulse_assets.drills.replay import Replay
from tradepulse_assets.feeds.scenarios import FaultSpec
from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.markets import MarketRegistry, load_registry
from tradepulse_assets.pipeline.ownership import SessionLedger
from tradepulse_assets.storage.state import StateDB

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 12, 22, 0, tzinfo=UTC)
CLEAN, CORRUPT, UNPUBLISHED = dt.date(2026, 3, 9), dt.date(2026, 3, 10), dt.date(2026, 3, 11)


def test_cli_backfill_runs_every_session_as_a_dagster_run_and_reconciles_the_incident(platform, capsys):
    platform.publish("XNYS", CLEAN)
    platform.publish("XNYS", CORRUPT, FaultSpec("checksum_corruption", "XNYS", CORRUPT, CORRUPT, {"bytes": 8}))
    db = StateDB(platform.settings.state_db_url)
    incident, _ = IncidentEngine(db).detect("lag_breach", "XNYS", now=NOW,
                                             sessions=[s.isoformat() for s in (CLEAN, CORRUPT, UNPUBLISHED)])
    output = platform.home / "reports" / "backfill" / incident.id
    code = cli(["ingest", "backfill", "--market", "XNYS", "--start", str(CLEAN), "--end", str(UNPUBLISHED),
                "--output", str(output), "--json"])
    summary = json.loads((output / "summary.json").read_text())
    assert code == summary["exit_code"] == 1
    verdicts = {p["session"]: p["verdict"] for p in summary["partitions"]}
    assert verdicts == {str(CLEAN): "reconciled", str(CORRUPT): "quarantine", str(UNPUBLISHED): "not_published"}
    assert summary["incident_id"] == incident.id
    # Real runs on the instance, with the job's tags and checks, linked to the incident.
    runs = platform.instance.get_runs(filters=dg.RunsFilter(tags={LAUNCHED_BY_TAG: "cli"}))
    assert sorted(r.tags["dagster/partition"] for r in runs) == [str(CLEAN), str(CORRUPT)]
    assert all(r.tags[INCIDENT_TAG] == incident.id and r.tags[MARKET_TAG] == "XNYS" for r in runs)
    checks = platform.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["xnys", "landed_bars"]), "landing_verification")])
    assert checks  # the landing check evaluated in those runs, visible like any run's
    (record,) = IncidentEngine(db).store.backfills(incident.id)
    clean_run = next(r for r in runs if r.tags["dagster/partition"] == str(CLEAN))
    assert (record.session, record.verdict, record.run_id) == (str(CLEAN), "reconciled", clean_run.run_id)
    assert SessionLedger(db).held_revision("XNYS", CLEAN).revision == 1
    report = json.loads((output / f"XNYS-{CLEAN}.json").read_text())
    assert report["run_id"] == clean_run.run_id and report["rows"] == report["vendor_rows"] == 24 * 390
    capsys.readouterr()


def test_a_ui_run_of_an_incident_session_reconciles_it(platform):
    platform.publish("XNYS", CLEAN)
    db = StateDB(platform.settings.state_db_url)
    incident, _ = IncidentEngine(db).detect("lag_breach", "XNYS", now=NOW, sessions=[str(CLEAN)])
    replay = Replay(platform.settings, platform.instance, MarketRegistry("t", (load_registry().get("XNYS"),)), NOW)
    run = replay.materialize("XNYS", CLEAN)  # no tags at all, as from the UI
    assert run.success
    (record,) = IncidentEngine(db).store.backfills(incident.id)
    assert record.verdict == "reconciled" and record.run_id == run.run_id
    assert IncidentEngine(db).store.get(incident.id).state.value == "recovering"  # the run started recovery
