"""Chaos replays (runbook 6.3): re-create a fault in a sandbox on simulated time and time the response.

A replay writes only inside its sandbox and sends nothing unless asked (``notify``): see ``sandbox.py``.

Each fault of a scenario gets its own sandbox (object store, state database, ephemeral Dagster instance,
vendor drop) and a replay of its market only: the session before is ingested as history, the simulated
vendor publishes the faulty session as it would (batch after the close, streaming minute by minute), the
sensors tick every 30 s, and the vendor "answers the liaison" some minutes after detection by delivering a
clean copy. The replay records when each runbook stage happened, relative to the fault.
"""

import dataclasses
import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from tradepulse_assets.drills.replay import Replay
from tradepulse_assets.drills.sandbox import new_replay_id, prepare_drill_state, sandbox_environment
from tradepulse_assets.feeds.manifest import MANIFEST_NAME, Manifest, sha256_hex
from tradepulse_assets.feeds.publisher import BATCH_LATENCY, Publisher, drop_store
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario
from tradepulse_assets.incidents.model import Incident, IncidentState
from tradepulse_assets.incidents.signoff import Signoffs
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import Market, MarketRegistry, calendar_for, load_registry
from tradepulse_assets.pipeline.lag import closed_sessions
from tradepulse_assets.pipeline.response import responder_from_settings
from tradepulse_assets.pipeline.settings import Settings
from tradepulse_assets.storage.state import StateDB

STEP = dt.timedelta(seconds=30)
VENDOR_RESPONSE = dt.timedelta(minutes=10)  # from detection to the vendor's clean re-delivery
MAX_STEPS = 400
STAGES = ("detected", "contained", "backfill_started", "backfilled", "validated", "resolved")
# The fault a follow-up replays for each incident cause (``IncidentEngine`` schedules ``<cause>:<market>``).
KIND_FOR_CAUSE = {
    "lag_breach": "stall",
    "checksum_mismatch": "checksum_corruption",
    "schema_mismatch": "schema_mismatch",
    "quality_gate": "ohlc_violation",
    "vendor_restatement": "restatement",
    "vendor_delay": "delay",
    "user_report": "gap_window",
}


@dataclass
class StageTimes:
    kind: str
    market: str
    session: dt.date
    fault_at: dt.datetime
    incident_id: str | None = None
    cause: str | None = None
    detected: dt.datetime | None = None
    contained: dt.datetime | None = None
    backfill_started: dt.datetime | None = None
    backfilled: dt.datetime | None = None
    validated: dt.datetime | None = None
    resolved: dt.datetime | None = None
    outcome: str = "not detected"

    def seconds(self, stage: str) -> float | None:
        at = getattr(self, stage)
        return None if at is None else (at - self.fault_at).total_seconds()

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "market": self.market,
            "session": self.session.isoformat(),
            "fault_at": self.fault_at.isoformat(),
            "incident_id": self.incident_id,
            "cause": self.cause,
            "outcome": self.outcome,
            **{f"{s}_at": getattr(self, s).isoformat() if getattr(self, s) else None for s in STAGES},
            **{f"time_to_{s}_s": self.seconds(s) for s in STAGES},
        }


def fault_start(market: Market, session: dt.date, spec: FaultSpec, publisher: Publisher) -> dt.datetime:
    """When the fault shows: the stall minute, the first late minute of a delayed stream, the moment a
    restatement appears, else when the session was due from the vendor."""
    hours = calendar_for(market.market_id, market.calendar).hours(session)
    if spec.kind == "stall":
        return hours.open + dt.timedelta(minutes=int(spec.params.get("at_minute", 0)))
    if spec.kind == "delay" and market.is_streaming:
        return hours.open
    due = hours.close if market.is_streaming else hours.close + BATCH_LATENCY
    if spec.kind == "restatement":
        return due + publisher.plan(market.market_id, session).restate_after
    return due


class SimulatedVendor:
    """Publishes the faulty session as the clock passes; after ``repair()`` delivers clean data instead."""

    def __init__(
        self,
        root: Path,
        market: Market,
        session: dt.date,
        scenario: Scenario,
        seed: int,
        fault_at: dt.datetime | None = None,
    ):
        self.root, self.market, self.session = root, market, session
        self.restatement = any(f.kind == "restatement" for f in scenario.faults)
        self.fault_at = fault_at
        self.faulty = Publisher(drop_store(str(root)), seed=seed, scenarios=(scenario,))
        self.clean = Publisher(drop_store(str(root)), seed=seed)
        self.scratch = Publisher(drop_store(str(root.parent / "vendor-clean")), seed=seed)
        self.repaired = False
        self.calendar = calendar_for(market.market_id, market.calendar)

    def publisher(self, now: dt.datetime) -> Publisher:
        if self.restatement:  # the first revision is clean; the restatement appears at its time
            return self.faulty if self.fault_at and now >= self.fault_at else self.clean
        return self.clean if self.repaired else self.faulty

    def __call__(self, now: dt.datetime) -> None:
        publisher = self.publisher(now)
        if self.market.is_streaming:
            current = {self.calendar.session_of(now - dt.timedelta(minutes=1)), self.calendar.session_of(now)}
            for session in sorted(
                {self.session, *(s for s in current if s is not None and s > self.session)}
            ):
                publisher.publish_due(self.market.market_id, session, now)
        elif (
            now
            >= self.calendar.hours(self.session).close
            + BATCH_LATENCY
            + self.faulty.plan(self.market.market_id, self.session).delay
        ):
            publisher.publish_session(self.market.market_id, self.session)

    def repair(self) -> None:
        """The vendor's answer: a clean restatement, and intact bytes for files the manifest still promises."""
        self.repaired = True
        market_id = self.market.market_id
        if self.market.is_streaming:
            return  # the stream resumes; the closed session is re-delivered by ``publish_due``
        self.clean.publish_session(market_id, self.session)
        self.scratch.publish_session(market_id, self.session)
        folder = self.root / market_id / self.session.isoformat()
        manifest = Manifest.from_json((folder / MANIFEST_NAME).read_bytes())
        clean_folder = self.root.parent / "vendor-clean" / market_id / self.session.isoformat()
        for entry in manifest.files:
            live = folder / entry.name
            if live.exists() and sha256_hex(live.read_bytes()) == entry.sha256:
                continue
            for candidate in clean_folder.iterdir():
                if candidate.is_file() and sha256_hex(candidate.read_bytes()) == entry.sha256:
                    live.write_bytes(candidate.read_bytes())


def _record(times: StageTimes, incident: Incident, incidents: IncidentStore) -> None:
    times.incident_id, times.cause = incident.id, incident.cause
    times.detected = times.detected or incident.opened_at
    times.contained = incident.contained_at
    times.backfill_started = incident.recovering_at
    records = incidents.backfills(incident.id)
    reconciled = [b.recorded_at for b in records if b.verdict == "reconciled"]
    times.backfilled = min(reconciled) if reconciled else None
    times.validated = incident.validating_at
    times.resolved = incident.resolved_at


def announce_stages(
    times: StageTimes, announced: set[str], on_stage: Callable[[StageTimes, str], None]
) -> None:
    """Call ``on_stage`` once for each stage ``times`` has reached since the last call, in runbook order."""
    for stage in STAGES:
        if stage not in announced and getattr(times, stage) is not None:
            announced.add(stage)
            on_stage(times, stage)


def replay_fault(
    spec: FaultSpec,
    sandbox: Path,
    *,
    seed: int = 7,
    registry: MarketRegistry | None = None,
    on_step: Callable[[Replay], None] | None = None,
    on_stage: Callable[[StageTimes, str], None] = lambda times, stage: None,
    notify: bool = False,
) -> StageTimes:
    """Replay one fault in ``sandbox``; ``notify`` sends the drill's messages to the configured channels.

    ``on_step`` sees the replay after every sensor step; ``on_stage`` hears of each runbook stage once, when
    it is reached (the CLI's progress bar)."""
    registry = registry or load_registry()
    market = registry.get(spec.market)
    settings = Settings.embedded(sandbox / "home", vendor_source=sandbox / "vendor", lag_lookback_sessions=1)
    prepare_drill_state(settings, replay_id=new_replay_id(), notify=notify)
    with sandbox_environment(settings):
        return _replay_in_sandbox(spec, sandbox, settings, market, seed, on_step, on_stage)


def _replay_in_sandbox(
    spec: FaultSpec, sandbox: Path, settings: Settings, market: Market, seed: int, on_step, on_stage
) -> StageTimes:
    session = spec.start
    calendar = calendar_for(market.market_id, market.calendar)
    previous = calendar.previous_session(session)
    scenario = Scenario("replay", "", (spec,))
    fault_at = fault_start(
        market,
        session,
        spec,
        Publisher(drop_store(str(sandbox / "plan")), seed=seed, scenarios=(scenario,)),
    )
    vendor = SimulatedVendor(sandbox / "vendor", market, session, scenario, seed, fault_at)
    vendor.clean.publish_session(market.market_id, previous, by_minute=market.is_streaming)
    times = StageTimes(spec.kind, market.market_id, session, fault_at)
    # Start where the session is due (the restatement comes later) or just before the fault shows.
    due = fault_start(market, session, dataclasses.replace(spec, kind="none"), vendor.clean)
    start = min(times.fault_at, due) - dt.timedelta(minutes=2)
    (sandbox / "dagster").mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(temp_dir=str(sandbox / "dagster")) as instance:
        replay = Replay(settings, instance, MarketRegistry("replay", (market,)), start, vendor=vendor)
        assert replay.materialize(market.market_id, previous).success, f"history session {previous} failed"
        incidents = IncidentStore(StateDB(settings.state_db_url))
        close = calendar.hours(session).close
        announced: set[str] = set()
        for _ in range(MAX_STEPS):
            replay.step()
            if on_step:
                on_step(replay)
            open_ = incidents.list()
            if open_:
                incident = open_[-1]  # the first incident this fault opened
                _record(times, incident, incidents)
                announce_stages(times, announced, on_stage)
                if not vendor.repaired and replay.now >= times.detected + VENDOR_RESPONSE:
                    vendor.repair()
                if incident.state is IncidentState.VALIDATING and _consumers_caught_up(incident):
                    incident = replay_resolution(replay, incident)
                    _record(times, incident, incidents)
                    announce_stages(times, announced, on_stage)
                    times.outcome = "resolved"
                    break
            elif replay.now > max(close, times.fault_at) + dt.timedelta(hours=2):
                break  # nothing detected two hours after the fault
            replay.advance(STEP)
            if market.is_streaming and vendor.repaired and replay.now < close - STEP * 2:
                replay.now = close - STEP * 2  # nothing more happens until the session closes
        else:
            times.outcome = "not detected"
        if times.detected and times.outcome == "not detected":
            times.outcome = _unmet(incidents.get(times.incident_id))
    return times


def _consumers_caught_up(incident: Incident) -> bool:
    """Resolution needs the consumers a hold skipped re-run (the catch-up sensor does it after validation)."""
    criteria = (incident.last_evaluation or {}).get("criteria", [])
    return all(c["status"] == "met" for c in criteria if c["name"] == "consumers_caught_up")


def _unmet(incident: Incident) -> str:
    evaluation = incident.last_evaluation or {}
    unmet = [c["name"] for c in evaluation.get("criteria", []) if c.get("automatic") and c["status"] != "met"]
    return "not validated: " + (", ".join(unmet) or "not evaluated")


def replay_resolution(replay: Replay, incident: Incident) -> Incident:
    """A strategy owner signs off, a person records root cause, owner and action (the manual criteria) and
    resolves."""
    responder = responder_from_settings(replay.clocked_settings, lambda: replay.now)
    Signoffs(responder.engine.db).record(incident.id, owner="chaos drill", note="replayed", now=replay.now)
    return responder.resolve(
        incident.id, now=replay.now, root_cause="chaos replay", owners=["chaos"], actions=["replayed"]
    )


def replay_scenario(scenario: Scenario, sandbox_root: Path | None = None, **kwargs) -> list[StageTimes]:
    results = []
    with tempfile.TemporaryDirectory(prefix="tradepulse-chaos-") as scratch:
        root = Path(sandbox_root or scratch)
        for i, spec in enumerate(scenario.faults):
            spec = dataclasses.replace(spec, end=spec.start)
            results.append(replay_fault(spec, root / f"{i:02d}-{spec.kind}-{spec.market}", **kwargs))
    return results


def followup_scenario(scenario_id: str, now: dt.datetime, registry: MarketRegistry | None = None) -> Scenario:
    """The scenario behind a follow-up id ``<cause>:<market>``: that fault on the market's last session."""
    cause, _, market_id = scenario_id.partition(":")
    registry = registry or load_registry()
    market = registry.get(market_id)
    kind = KIND_FOR_CAUSE.get(cause, "gap_window")
    if kind == "stall" and not market.is_streaming:
        kind = "delay"  # a batch vendor that stalls publishes late
    session = closed_sessions(market, now - dt.timedelta(days=1), 1)[0]
    params = {"stall": {"at_minute": 60}, "delay": {"minutes": 45}}.get(kind, {})
    return Scenario(
        scenario_id,
        f"follow-up replay of {scenario_id}",
        (FaultSpec(kind, market_id, session, session, params),),
    )
