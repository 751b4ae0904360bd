"""The self-healing loop through a scripted trading week on simulated time (issue #10's soak).

Faults, one after another on XNYS, each followed by its fix: a corrupt delivery (fixed by a re-delivery), a
stall (the vendor publishes late), a restatement (revision 2), a rollback attempt (the vendor serves revision
1 again) and an operator's UI launch of a session the sensors were about to land. The sensors tick every
simulated interval exactly as the daemon would (``Replay``). Asserted: one incident per fault with the right
cause, one quarantine per distinct bad delivery, no run launched twice for a (session, revision, delivery), no
failed run after a fault is fixed, consumers caught up for every affected session, production equal (sha256)
to a clean ingestion of the same vendor data, and one PagerDuty trigger and one resolve per incident.
"""

import dataclasses
import datetime as dt
import hashlib
import json
from collections import Counter

import dagster as dg
import pytest

from tradepulse_assets.defs.assets.bars import ATTEMPT_TAG
from tradepulse_assets.drills.replay import Replay
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.manifest import archived_manifest_name
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.storage.object_store import object_store_from_url
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario
from tradepulse_assets.incidents.signoff import Signoffs
from tradepulse_assets.incidents.model import IncidentState
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import MarketRegistry, calendar_for, load_registry
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.pipeline.catchup import ConsumerSkips
from tradepulse_assets.pipeline.ownership import SessionLedger
from tradepulse_assets.pipeline.response import responder_from_settings
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.defs.test_incident_e2e import notifications  # noqa: F401 - the capture server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

XNYS = load_registry().get("XNYS")
CAL = calendar_for("XNYS", "XNYS")
HISTORY, CORRUPT, STALLED, RESTATED = (dt.date(2026, 3, d) for d in (9, 10, 11, 12))
SEED = 5
STEP = dt.timedelta(seconds=60)
VALIDATION_STEP = dt.timedelta(seconds=150)  # lag samples at most one SLA (300 s) apart keep stability provable


def close_of(session: dt.date) -> dt.datetime:
    return CAL.hours(session).close


class Vendor:
    """The vendor's drop, scripted: what is served for each session changes when the test says so."""

    def __init__(self, root):
        self.root = root
        self.dest = object_store_from_url(str(root))
        self.clean = Publisher(self.dest, seed=SEED)
        self.due: dict[dt.date, str] = {}  # session -> "clean" | "corrupt" | "withheld" | "restated"

    def __call__(self, now: dt.datetime) -> None:
        for session, how in list(self.due.items()):
            if now < close_of(session) + dt.timedelta(minutes=2) or how == "withheld":
                continue
            if how == "clean":
                self.clean.publish_session("XNYS", session)
            elif how == "corrupt":
                spec = FaultSpec("checksum_corruption", "XNYS", session, session, {"bytes": 8})
                Publisher(self.dest, seed=SEED, scenarios=(Scenario("c", "", (spec,)),)).publish_session("XNYS", session)
            elif how == "restated":
                # A small revision of a few closes: within the indicator tolerance, so the incident can validate.
                params = {"symbols": 2, "pct": 0.01, "minutes": 5}
                spec = FaultSpec("restatement", "XNYS", session, session, params)
                Publisher(self.dest, seed=SEED, scenarios=(Scenario("r", "", (spec,)),)).publish_session("XNYS", session)
            del self.due[session]

    def session_dir(self, session: dt.date):
        return self.root / "XNYS" / session.isoformat()

    def redeliver_intact(self, session: dt.date, scratch) -> None:
        """The vendor fixes the transfer: the same manifest, the intact bytes."""
        Publisher(drop_store(str(scratch)), seed=SEED).publish_session("XNYS", session)
        for path in (scratch / "XNYS" / session.isoformat()).iterdir():
            if path.name != "manifest.json":
                (self.session_dir(session) / path.name).write_bytes(path.read_bytes())

    def serve_revision(self, session: dt.date, revision: int) -> None:
        """Serve an archived manifest again (a rollback), or the current one back."""
        folder = self.session_dir(session)
        current = folder / "manifest.json"
        if revision == 1:
            (folder / "manifest.current.json").write_bytes(current.read_bytes())
            current.write_bytes((folder / archived_manifest_name(1)).read_bytes())
        else:
            current.write_bytes((folder / "manifest.current.json").read_bytes())


def ingest_runs(replay: Replay) -> list:
    return [r for r in replay.runs if r.job == "xnys_ingest"]


def resolve_when_done(replay: Replay, incidents: IncidentStore, incident_id: str, limit: int = 30) -> None:
    """Tick until validated and the consumers caught up, then a person resolves."""
    def done():
        incident = incidents.get(incident_id)
        criteria = {c["name"]: c["status"] for c in (incident.last_evaluation or {}).get("criteria", [])}
        return incident.state is IncidentState.VALIDATING and criteria.get("consumers_caught_up") == "met"

    try:
        replay.run_until(done, VALIDATION_STEP, limit=limit)
    except TimeoutError:
        pytest.fail(json.dumps(incidents.get(incident_id).last_evaluation, indent=1, default=str)[:3000])
    responder = responder_from_settings(replay.clocked_settings, lambda: replay.now)
    Signoffs(responder.engine.db).record(incident_id, owner="quant-strategies", now=replay.now)
    responder.resolve(incident_id, now=replay.now, root_cause="soak", owners=["data-platform"], actions=["soak"])


def production_digest(store, sessions) -> dict[str, str]:
    return {str(s): hashlib.sha256(store.get_bytes(lake.partition_key("production", "XNYS", s))).hexdigest()
            for s in sessions}


def test_a_scripted_week_of_faults_heals_once_each(platform, notifications, tmp_path):  # noqa: F811
    vendor = Vendor(tmp_path / "vendor")
    settings = dataclasses.replace(platform.settings, vendor_source=str(vendor.root), lag_lookback_sessions=1)
    replay = Replay(settings, platform.instance, MarketRegistry("soak", (XNYS,)),
                    close_of(HISTORY) - dt.timedelta(minutes=1), vendor=vendor)
    vendor.clean.publish_session("XNYS", HISTORY)
    assert replay.materialize("XNYS", HISTORY).success
    db = StateDB(settings.state_db_url)
    incidents = IncidentStore(db)
    fixed_at: dict[str, dt.datetime] = {}

    # 1. A corrupt delivery: detected at landing, one incident, one quarantine; nothing retried until the
    #    vendor changes the bytes, however long we wait.
    vendor.due[CORRUPT] = "corrupt"
    replay.now = close_of(CORRUPT) - dt.timedelta(minutes=1)
    replay.run_until(lambda: bool(incidents.list()), STEP, limit=10)
    for _ in range(15):
        replay.advance(STEP)
        replay.step()
    (corrupt,) = incidents.list()
    assert corrupt.cause == "checksum_mismatch" and len(incidents.quarantined_batches(corrupt.id)) == 1
    assert [r.success for r in ingest_runs(replay)[1:]] == [False]
    vendor.redeliver_intact(CORRUPT, tmp_path / "scratch")
    fixed_at[corrupt.id] = replay.now
    resolve_when_done(replay, incidents, corrupt.id)

    # 2. A stall: the vendor withholds the next session past its SLA, then publishes it.
    vendor.due[STALLED] = "withheld"
    replay.now = close_of(STALLED) - dt.timedelta(minutes=1)
    replay.run_until(lambda: len(incidents.list()) == 2, STEP, limit=15)
    stall = next(i for i in incidents.list() if i.id != corrupt.id)
    assert stall.cause == "lag_breach"
    replay.advance(dt.timedelta(minutes=20))
    vendor.due[STALLED] = "clean"
    fixed_at[stall.id] = replay.now
    resolve_when_done(replay, incidents, stall.id)

    # 3. A restatement: revision 1 lands normally, revision 2 follows 90 minutes later.
    vendor.due[RESTATED] = "clean"
    replay.now = close_of(RESTATED) - dt.timedelta(minutes=1)
    replay.run_until(lambda: SessionLedger(db).held_revision("XNYS", RESTATED) is not None, STEP, limit=10)
    replay.advance(dt.timedelta(minutes=90))
    vendor.due[RESTATED] = "restated"
    replay.run_until(lambda: len(incidents.list()) == 3, STEP, limit=10)
    restatement = next(i for i in incidents.list() if i.id not in (corrupt.id, stall.id))
    assert restatement.cause == "vendor_restatement"
    fixed_at[restatement.id] = replay.now
    resolve_when_done(replay, incidents, restatement.id)
    assert SessionLedger(db).held_revision("XNYS", RESTATED).revision == 2

    # 4. A rollback attempt: the vendor serves revision 1 again. Refused once (audited), nothing launched,
    #    production keeps revision 2; then the vendor serves revision 2 again.
    runs_before = len(replay.runs)
    vendor.serve_revision(RESTATED, 1)
    for _ in range(5):
        replay.advance(STEP)
        replay.step()
    assert len(replay.runs) == runs_before
    refusals = [e for e in AuditLog(settings.home).read() if e["outcome"].startswith("refused")]
    assert len(refusals) == 1 and "rollback" in refusals[0]["outcome"]
    assert SessionLedger(db).held_revision("XNYS", RESTATED).revision == 2
    vendor.serve_revision(RESTATED, 2)

    # 5. An operator launches from the UI the session the sensors are about to land: the sensors see it in
    #    production at the vendor's revision and launch nothing more.
    nxt = CAL.sessions(RESTATED + dt.timedelta(days=1), RESTATED + dt.timedelta(days=7))[0]
    vendor.due[nxt] = "clean"
    replay.now = close_of(nxt) + dt.timedelta(minutes=3)
    vendor(replay.now)
    assert replay.materialize("XNYS", nxt).success
    for _ in range(5):
        replay.step()
        replay.advance(STEP)
    assert [r.partition for r in ingest_runs(replay)].count(str(nxt)) == 1

    # One incident per fault, each resolved; one page and one resolve each.
    assert sorted(i.cause for i in incidents.list()) == ["checksum_mismatch", "lag_breach", "vendor_restatement"]
    assert all(i.state is IncidentState.RESOLVED for i in incidents.list())
    assert sum(len(incidents.quarantined_batches(i.id)) for i in incidents.list()) == 1
    pages = Counter((p.json["dedup_key"], p.json["event_action"]) for p in notifications.requests_to("/v2/enqueue"))
    for incident in incidents.list():
        assert pages[(incident.id, "trigger")] == 1 and pages[(incident.id, "resolve")] == 1, pages
    # No attempt launched twice; no failed run after its fault was fixed.
    attempts = Counter(r.tags.get(ATTEMPT_TAG) for r in platform.instance.get_runs() if r.tags.get(ATTEMPT_TAG))
    assert max(attempts.values()) == 1, attempts
    failed_after_fix = [r for r in replay.runs if not r.success and r.at >= min(fixed_at.values())]
    assert failed_after_fix == []
    # Consumers caught up for every affected session.
    assert ConsumerSkips(db).outstanding() == []
    for consumer in ("feature_store_writer", "backtest_exporter"):
        made = platform.instance.get_materialized_partitions(dg.AssetKey(["xnys", consumer]))
        assert made >= {str(s) for s in (CORRUPT, STALLED, RESTATED)}
    # Production equals a clean ingestion of what the vendor finally serves.
    store = LocalObjectStore(settings.object_store_url)
    clean_store = LocalObjectStore(tmp_path / "clean-store")
    clean_ledger = SessionLedger(StateDB(f"sqlite:///{tmp_path / 'clean.db'}"))
    sessions = (HISTORY, CORRUPT, STALLED, RESTATED, nxt)
    for session in sessions:
        done = ingest.ingest_session_exclusively(DirectoryConnector(vendor.root), clean_store,
                                                 AuditLog(tmp_path / "clean-home"), clean_ledger, XNYS, session,
                                                 replay.now, "clean", is_backfill=True)
        assert done.promoted_rows == 24 * 390
    assert production_digest(store, sessions) == production_digest(clean_store, sessions)
