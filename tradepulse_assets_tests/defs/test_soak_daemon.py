"""Issue #10's soak: ``make run`` (webserver, daemon, code server, the seed) through a scripted day of faults.

The stack is the real one (``support/dagster_stack.py``: the supervisor, ``dagster-daemon`` with its run
queue and sensors, run workers in their own processes, the webserver) on a two-market registry, with the
platform clock on a file (``file:<path>``): the test moves simulated time for every process at once and
waits for the daemon to react, so a day costs what the daemon does, not what the clock says. Faults on
different sessions play out side by side (as they would on a real day), so the cost is the longest chain of
runs, not the sum of them: the daemon looks at its run queue every second
(``TRADEPULSE_RUN_QUEUE_INTERVAL_SECONDS``) and ticks every sensor on each of its loops
(``TRADEPULSE_SENSOR_INTERVAL_SECONDS``).

The day (XNYS and XLON; the seed lands the history through real runs and publishes the seeded corrupt XLON
session, as ``make run`` does):

1. a corrupt delivery (the seeded XLON session), found late: the lag sensor opens an incident, landing
   fails and the incident is renamed ``checksum_mismatch``; left alone 30 minutes: one failed run, one
   quarantined batch, nothing retried. Fix: the vendor re-delivers the intact bytes.
2. at the same time, a stall: the vendor withholds the XNYS session past its SLA (``lag_breach``). Fix: it
   publishes (with the XLON fix).
3. at the same time, a restatement: XNYS history republished as revision 2 (``vendor_restatement``). Fix:
   revision 2 lands, before the other fixes.
4. the next day, a rollback attempt: the vendor serves revision 1 again: refused once (through a whole round
   of ticks that still see it), audited, nothing launched (no incident: production is untouched,
   docs/runbook-map.md). Fix: the vendor serves revision 2 again.
5. at the same time, a concurrent UI launch: two GraphQL ``launchRun`` requests for the same new XLON session
   at once, while the publication sensor watches it: one landing, the other run lands nothing (overtaken).

Asserted at the end: one incident per fault with the right cause, one quarantine per distinct bad delivery,
no landing twice for a (session, revision, delivery) and no attempt launched twice, no failed run after the
fixes (and no failed run at all but the corrupt delivery's one attempt), consumers caught up for every
affected session, production equal (sha256) to a clean ingestion of what the vendor finally serves, and one
PagerDuty trigger and one resolve per incident (capture server).
"""

import concurrent.futures
import datetime as dt
import hashlib
import json
import time
from collections import Counter
from importlib import resources

import dagster as dg
import pytest

from tradepulse_assets.cli.devserver import LOCATION_NAME
from tradepulse_assets.cli.seed import SEED, SEEDED_FAULT_MARKET
from tradepulse_assets.core.clock import FileClock
from tradepulse_assets.defs.assets.bars import ATTEMPT_TAG
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.manifest import archived_manifest_name
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario
from tradepulse_assets.incidents.model import IncidentState
from tradepulse_assets.incidents.signoff import Signoffs
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.pipeline.catchup import ConsumerSkips
from tradepulse_assets.pipeline.ownership import SessionLedger
from tradepulse_assets.pipeline.response import responder_from_settings
from tradepulse_assets.pipeline.settings import load_settings
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.support.capture_server import CaptureServer, Reply
from tradepulse_assets_tests.support.dagster_stack import dagster_stack, graphql

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

UTC = dt.timezone.utc
HISTORY, DAY, NEXT = dt.date(2026, 3, 9), dt.date(2026, 3, 10), dt.date(2026, 3, 11)
START = dt.datetime(2026, 3, 10, 19, 59, tzinfo=UTC)  # XLON closed 3.5 h ago; XNYS closes in a minute
RESTATEMENT = {"symbols": 1, "pct": 0.001, "minutes": 3}  # within the indicator tolerance: it can validate
WAIT = 240  # seconds any one reaction of the stack may take on a loaded 2-core machine
SENSORS = """
query Sensors($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) { ... on Repository { sensors { name } } }
}"""
LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}"""


def registry_text() -> str:
    """The packaged registry with the batch markets only (the streaming ones need ingestors we do not run)."""
    text = resources.files("tradepulse_assets.config").joinpath("markets.toml").read_text()
    head, _, _ = text.partition("[markets.XHKG]")
    return head


class Vendor:
    """The simulated vendor's drop, changed when the script says so (the seed published the rest)."""

    def __init__(self, root):
        self.root = root
        self.clean = Publisher(drop_store(str(root)), seed=SEED)

    def folder(self, market: str, session: dt.date):
        return self.root / market / session.isoformat()

    def publish(self, market: str, session: dt.date, *faults: FaultSpec) -> None:
        scenario = (Scenario("soak", "", faults),) if faults else ()
        Publisher(drop_store(str(self.root)), seed=SEED, scenarios=scenario).publish_session(market, session)

    def redeliver_intact(self, market: str, session: dt.date, scratch) -> None:
        """The vendor fixes the transfer: the same manifest, the intact bytes."""
        Publisher(drop_store(str(scratch)), seed=SEED).publish_session(market, session)
        for path in (scratch / market / session.isoformat()).iterdir():
            if path.name != "manifest.json":
                (self.folder(market, session) / path.name).write_bytes(path.read_bytes())

    def serve_revision(self, market: str, session: dt.date, revision: int) -> None:
        """Serve revision 1's archived manifest again (a rollback), or the newest one back."""
        folder = self.folder(market, session)
        current, kept = folder / "manifest.json", folder / "manifest.newest.json"
        if revision == 1:
            kept.write_bytes(current.read_bytes())
            current.write_bytes((folder / archived_manifest_name(1)).read_bytes())
        else:
            current.write_bytes(kept.read_bytes())


class Soak:
    """The running stack as the test sees it: its instance and state DB, its clock, and patience."""

    def __init__(self, stack, home, clock: FileClock):
        self.stack, self.home, self.clock = stack, home, clock
        self.instance = dg.DagsterInstance.from_config(str(home / "dagster"))
        self.db = StateDB(f"sqlite:///{home / 'state.db'}")
        self.incidents = IncidentStore(self.db)
        self.ledger = SessionLedger(self.db)
        repository = {"repositoryLocationName": LOCATION_NAME, "repositoryName": "__repository__"}
        found = graphql(stack.url, SENSORS, {"selector": repository})["repositoryOrError"]["sensors"]
        self.sensor_names = {s["name"] for s in found}
        assert "exit_criteria_sensor" in self.sensor_names, found

    def wait_for(self, what: str, predicate, timeout: float = WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.25)  # a few instance reads: cheap next to the reactions awaited
        runs = [(r.job_name, r.tags.get("dagster/partition"), r.status.value) for r in self.instance.get_runs()]
        daemon_log = (self.home / "logs" / "daemon.log").read_text()[-3000:]
        raise AssertionError(f"not after {timeout}s: {what}\nruns: {runs}\ndaemon log:\n{daemon_log}")

    def sensors(self):
        return [s for s in self.instance.all_instigator_state() if s.instigator_type.value == "SENSOR"]

    def ticked_since(self, wall: float) -> bool:
        """Every sensor finished a tick that started after ``wall`` (so each saw the current time). The daemon
        records a sensor's state at its first tick, so until every sensor ticked once some are missing."""
        states = self.sensors()
        if len(states) < len(self.sensor_names):
            return False
        latest = self.instance.get_batch_ticks([s.selector_id for s in states], limit=1)  # one query, not ten
        return all((ticks := latest.get(s.selector_id)) and ticks[0].timestamp > wall
                   and ticks[0].status.value != "STARTED" for s in states)

    def idle(self) -> bool:
        busy = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED]
        return not self.instance.get_runs(dg.RunsFilter(statuses=busy), limit=1)

    def step(self, to: dt.datetime, settle: bool = True) -> None:
        """Move simulated time; with ``settle``, wait until every sensor ticked at it and no run is left."""
        self.clock.set(to)
        wall = time.time()
        if settle:
            self.settle(wall, f"the stack settles at {to.isoformat()}")

    def settle(self, since: float, what: str) -> None:
        """Wait until a whole round of sensor ticks after ``since`` requested no run and nothing is running:
        the stack has done all it wants to at this simulated instant."""
        while True:
            self.wait_for(what, lambda: self.idle() and self.ticked_since(since))  # the cheap question first
            created = dt.datetime.fromtimestamp(since, UTC)
            if not self.instance.get_run_records(dg.RunsFilter(created_after=created), limit=1):
                return
            since = time.time()

    def incident(self, market: str, cause: str):
        return next((i for i in self.incidents.list(market=market) if i.cause == cause), None)

    def ingest_runs(self, market: str, session: dt.date):
        tags = {"dagster/partition": session.isoformat()}
        return self.instance.get_runs(dg.RunsFilter(job_name=f"{market.lower()}_ingest", tags=tags))

    def launch_from_ui(self, market: str, session: dt.date) -> str:
        params = {
            "selector": {"repositoryLocationName": LOCATION_NAME, "repositoryName": "__repository__",
                         "jobName": f"{market.lower()}_ingest"},
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": session.isoformat()}]},
        }
        result = graphql(self.stack.url, LAUNCH, {"params": params})["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]


def close(market: str, session: dt.date) -> dt.datetime:
    return calendar_for(market, market).hours(session).close


def criteria(incident) -> dict[str, str]:
    return {c["name"]: c["status"] for c in (incident.last_evaluation or {}).get("criteria", [])}


def production_digests(store, sessions) -> dict:
    return {(m, str(s)): hashlib.sha256(store.get_bytes(lake.partition_key("production", m, s))).hexdigest()
            for m, s in sessions}


def test_make_run_heals_a_scripted_day_of_faults_once_each(tmp_path, monkeypatch):
    home, vendor_root = tmp_path / "home", tmp_path / "vendor"
    markets = tmp_path / "markets.toml"
    markets.write_text(registry_text())
    clock = FileClock(tmp_path / "clock")
    clock.set(START)
    for name, value in {
        "TRADEPULSE_MARKETS_FILE": str(markets), "TRADEPULSE_CLOCK": f"file:{tmp_path / 'clock'}",
        "TRADEPULSE_VENDOR_SOURCE": str(vendor_root), "TRADEPULSE_STATE_DB_URL": f"sqlite:///{home / 'state.db'}",
        "TRADEPULSE_OBJECT_STORE_URL": str(home / "store"), "TRADEPULSE_HOME": str(home),
        "TRADEPULSE_SENSOR_INTERVAL_SECONDS": "1", "TRADEPULSE_RUN_QUEUE_INTERVAL_SECONDS": "1",
        "TRADEPULSE_LAG_LOOKBACK_SESSIONS": "2",
        "TRADEPULSE_PAGERDUTY_ROUTING_KEY": "R0UTINGKEY0000000000000000000000",
    }.items():
        monkeypatch.setenv(name, value)
    assert [m.market_id for m in load_registry()] == ["XNYS", "XLON"] and SEEDED_FAULT_MARKET == "XLON"
    vendor = Vendor(vendor_root)
    refusals = lambda: [e for e in AuditLog(home).read() if e["outcome"].startswith("refused")]  # noqa: E731
    started = time.monotonic()

    def phase(name: str) -> None:  # wall seconds per phase, for the soak's cost in the test log
        print(f"soak {time.monotonic() - started:6.1f}s {time.strftime('%H:%M:%S')} {name}", flush=True)
    with CaptureServer({"/v2/enqueue": [Reply(202, json.dumps({"status": "success"}))]}) as pagerduty:
        monkeypatch.setenv("TRADEPULSE_PAGERDUTY_EVENTS_URL", pagerduty.url("/v2/enqueue"))
        with dagster_stack(home, ["--no-ingestors"]) as stack:
            soak = Soak(stack, home, clock)
            phase("stack ready (webserver up; the seed lands the history, then the daemon starts)")
            # The daemon starts once the seed has read the clock, published and landed the history; after its
            # first round of sensor ticks (which may only set cursors) time may move.
            soak.wait_for("the daemon's first round of sensor ticks", lambda: soak.ticked_since(0))
            phase("seeded history landed, daemon ticking")

            # Three faults at once, each on its own session, so the daemon handles them side by side:
            # 1. the seeded corrupt XLON session, found late (3.5 h already): one incident named by the
            #    strongest evidence;
            # 2. the stall: XNYS closes at 20:00 and the vendor withholds the session past the 5-minute SLA;
            # 3. the restatement: the vendor republishes XNYS history as revision 2, which lands (its fix).
            vendor.publish("XNYS", HISTORY, FaultSpec("restatement", "XNYS", HISTORY, HISTORY, RESTATEMENT))
            soak.step(START + dt.timedelta(minutes=7))
            corrupt = soak.wait_for("the seeded fault's incident is checksum_mismatch with one quarantined batch",
                                    lambda: (i := soak.incident("XLON", "checksum_mismatch"))
                                    and soak.incidents.quarantined_batches(i.id) and i)
            phase("corrupt delivery renamed checksum_mismatch, one batch quarantined; stall; restatement")
            stall = soak.incident("XNYS", "lag_breach")
            assert stall is not None and stall.scope.sessions == (DAY.isoformat(),)
            # Left alone for 30 minutes: no retry of the unchanged corrupt bytes, no second quarantine.
            soak.step(START + dt.timedelta(minutes=30))
            assert [r.status for r in soak.ingest_runs("XLON", DAY)] == [dg.DagsterRunStatus.FAILURE]
            assert len(soak.incidents.quarantined_batches(corrupt.id)) == 1
            restatement = soak.incident("XNYS", "vendor_restatement")
            assert restatement is not None and restatement.scope.sessions == (HISTORY.isoformat(),)
            assert soak.ledger.held_revision("XNYS", HISTORY).revision == 2
            phase("left alone 30 simulated minutes; restatement landed")

            # Fixes: the intact XLON bytes, the late XNYS session.
            fixed_at = time.time()
            vendor.redeliver_intact("XLON", DAY, tmp_path / "scratch")
            vendor.publish("XNYS", DAY)
            soak.step(START + dt.timedelta(minutes=31))
            phase("fixes landed")
            assert {soak.ledger.held_revision(m, DAY) is not None for m in ("XNYS", "XLON")} == {True}

            # The next day: XLON closes and two people launch its session from the UI at the same moment;
            # the vendor rolls XNYS history back to revision 1 meanwhile. Stable for 2 x SLA (lag samples at
            # most one SLA apart) while the second launch finishes: each step waits for a round of sensor
            # ticks at its time, the first one also for XLON's new session (later it would be late).
            next_close = close("XLON", NEXT) + dt.timedelta(minutes=1)
            vendor.publish("XLON", NEXT)
            vendor.serve_revision("XNYS", HISTORY, 1)
            soak.step(next_close, settle=False)
            stepped = time.time()
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                ui_runs = list(pool.map(lambda _: soak.launch_from_ui("XLON", NEXT), range(2)))
            soak.wait_for("XLON's new session landed and the rollback was refused", lambda: (
                soak.ledger.held_revision("XLON", NEXT) and refusals() and soak.ticked_since(stepped)))
            soak.step(next_close + dt.timedelta(minutes=5), settle=False)
            stepped = time.time()
            soak.wait_for("every sensor ticked 5 minutes after the close", lambda: soak.ticked_since(stepped))
            vendor.serve_revision("XNYS", HISTORY, 2)  # after a whole round of ticks saw revision 1
            soak.step(next_close + dt.timedelta(minutes=10))
            next_runs = soak.ingest_runs("XLON", NEXT)
            assert len(refusals()) == 1 and "rollback" in refusals()[0]["outcome"]
            assert soak.ledger.held_revision("XNYS", HISTORY).revision == 2
            refused = [e for e in soak.incidents.events(restatement.id) if "delivery refused" in e.message]
            assert len(refused) == 1 and "rollback" in refused[0].message  # on the open incident's timeline
            assert {r.status for r in next_runs} == {dg.DagsterRunStatus.SUCCESS}
            assert set(ui_runs) <= {r.run_id for r in next_runs}  # the publication sensor may have raced them
            phase("concurrent UI launches and the rollback attempt handled; stable for 2 x SLA")

            # Every incident validates, the holds are released and the consumers catch up.
            faults = (corrupt, stall, restatement)
            soak.wait_for("every incident validated with its consumers caught up", lambda: all(
                (i := soak.incidents.get(f.id)).state is IncidentState.VALIDATING
                and criteria(i).get("consumers_caught_up") == "met" for f in faults))
            phase("every incident validated, consumers caught up")
            settings = load_settings()
            responder = responder_from_settings(settings, clock.now)
            for fault in faults:
                Signoffs(responder.engine.db).record(fault.id, owner="quant-strategies", now=clock.now())
                responder.resolve(fault.id, now=clock.now(), root_cause="soak", owners=["data-platform"],
                                  actions=["soak"])
            pages = lambda: Counter((p.json["dedup_key"], p.json["event_action"])  # noqa: E731
                                    for p in pagerduty.requests_to("/v2/enqueue"))
            soak.wait_for("one PagerDuty resolve per incident",
                          lambda: all(pages()[(f.id, "resolve")] for f in faults))
            soak.settle(time.time(), "the stack is idle")
            phase("resolved; one PagerDuty resolve each; the stack is idle")

    # One incident per fault with the right cause, each resolved; one page and one resolve each.
    everything = soak.incidents.list()
    assert sorted(i.cause for i in everything) == ["checksum_mismatch", "lag_breach", "vendor_restatement"]
    assert all(i.state is IncidentState.RESOLVED for i in everything)
    for incident in everything:
        assert pages()[(incident.id, "trigger")] == 1 and pages()[(incident.id, "resolve")] == 1, pages()
    # One quarantine per distinct bad delivery; each delivery landed once; no attempt launched twice.
    assert sum(len(soak.incidents.quarantined_batches(i.id)) for i in everything) == 1
    landings = Counter(  # one manifest line per landing of a delivery
        (e["market"], e["session"], e["revision"], e["delivery"]) for e in AuditLog(home).read()
        if e["event"] == "landing" and e["batch"].endswith("/manifest.json")
    )
    assert max(landings.values()) == 1, landings
    runs = soak.instance.get_runs()
    attempts = Counter(r.tags[ATTEMPT_TAG] for r in runs if ATTEMPT_TAG in r.tags)
    assert max(attempts.values()) == 1, attempts
    assert any(key[:2] == ("XLON", str(NEXT)) for key in landings)  # landed once for all its launches
    overtaken = [e for e in AuditLog(home).read() if e["outcome"].startswith("skipped")]
    assert len(overtaken) == len(next_runs) - 1 >= 1, overtaken  # the others found it landed: nothing to do
    assert [r.run_id for r in runs if r.status == dg.DagsterRunStatus.FAILURE
            and r.job_name.endswith("_ingest") and soak.instance.get_run_record_by_id(r.run_id)
            .create_timestamp.timestamp() > fixed_at] == []
    # The restatement played out before the fixes: no failed run for it either. The one failed run of the day
    # is the corrupt delivery's attempt.
    failed = [(r.job_name, r.tags.get("dagster/partition")) for r in runs
              if r.status == dg.DagsterRunStatus.FAILURE]
    assert failed == [("xlon_ingest", DAY.isoformat())], failed
    # Consumers caught up for every affected session.
    assert ConsumerSkips(soak.db).outstanding() == []
    for market, sessions in {"XNYS": (HISTORY, DAY), "XLON": (DAY,)}.items():
        for consumer in ("feature_store_writer", "backtest_exporter"):
            made = soak.instance.get_materialized_partitions(dg.AssetKey([market.lower(), consumer]))
            assert made >= {str(s) for s in sessions}, (market, consumer, made)
    # Production equals a clean ingestion of what the vendor finally serves.
    registry = load_registry()
    clean_store = LocalObjectStore(tmp_path / "clean-store")
    clean_ledger = SessionLedger(StateDB(f"sqlite:///{tmp_path / 'clean.db'}"))
    sessions = [("XNYS", HISTORY), ("XNYS", DAY), ("XLON", HISTORY), ("XLON", DAY), ("XLON", NEXT)]
    for market, session in sessions:
        done = ingest.ingest_session_exclusively(
            DirectoryConnector(vendor_root), clean_store, AuditLog(tmp_path / "clean-home"), clean_ledger,
            registry.get(market), session, clock.now(), "clean", is_backfill=True,
        )
        assert done.promoted_rows, (market, session)
    assert production_digests(LocalObjectStore(home / "store"), sessions) == production_digests(
        clean_store, sessions)
    phase("asserted (stack stopped, clean ingestion compared)")
