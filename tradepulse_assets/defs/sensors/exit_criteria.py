"""Exit-criteria sensor: asset-check results and lag history decide when an incident may leave recovery.

Per open incident it reads, for every affected partition, the latest result of each required check (the
blocking quality gates, including the DST/session-boundary gates, and the indicator tolerance gate) from
Dagster's event log, hands them with the lag history to the pure exit criteria, and lets the engine move
the incident (validating -> consumers resume). People resolve with ``tradepulse-cli incident resolve``.
"""

import dataclasses
import functools
import hashlib
import json

import dagster as dg

from tradepulse_assets.defs.assets.bars import GATE_CONFIG, market_key
from tradepulse_assets.defs.assets.features import TOLERANCE_CHECK
from tradepulse_assets.defs.resources import ClockResource, NotificationsResource, ObjectStoreResource, StateResource
from tradepulse_assets.defs.sensors.check_results import latest_check_results
from tradepulse_assets.defs.sensors.common import build_responder
from tradepulse_assets.incidents import exit_criteria as ec
from tradepulse_assets.markets import MarketRegistry
from tradepulse_assets.pipeline.catchup import ConsumerSkips
from tradepulse_assets.pipeline.dashboard import render_dashboard
from tradepulse_assets.pipeline.ingest import LANDING_GATE
from tradepulse_assets.quality import GATE_NAMES, config_for_market, gate_is_blocking

REQUIRED_QUALITY = (LANDING_GATE, *(g for g in GATE_NAMES if gate_is_blocking(g, GATE_CONFIG)))
REQUIRED_TOLERANCE = (TOLERANCE_CHECK,)


@functools.lru_cache(maxsize=64)
def _check_keys_of(market) -> dict[str, dg.AssetCheckKey]:
    """The required check keys of a market by check name (built once: ticks ask thousands of times)."""
    keys = {LANDING_GATE: dg.AssetCheckKey(market_key(market, "landed_bars"), LANDING_GATE)}
    keys.update({g: dg.AssetCheckKey(market_key(market, "staging_bars"), g) for g in REQUIRED_QUALITY[1:]})
    keys[TOLERANCE_CHECK] = dg.AssetCheckKey(market_key(market, "indicator_features"), TOLERANCE_CHECK)
    return keys


def _check_keys(registry: MarketRegistry, market_id: str) -> dict[str, dg.AssetCheckKey]:
    return _check_keys_of(registry.get(market_id))


@functools.lru_cache(maxsize=64)
def advisory_gates(market) -> frozenset[str]:
    """Required gates this market's policy makes advisory (the universe gate under ``promote_with_warning``):
    they fail as WARN and promote, so their failure does not hold an incident open."""
    config = config_for_market(market, GATE_CONFIG)
    return frozenset(g for g in REQUIRED_QUALITY[1:] if not gate_is_blocking(g, config))


def latest_outcomes(
    instance: dg.DagsterInstance, registry: MarketRegistry, partitions, results=None
) -> tuple[list[ec.CheckOutcome], list[ec.CheckOutcome]]:
    """The latest outcome of every required check on ``partitions`` ((market, session) pairs).

    ``results`` are answers already read for this tick (``latest_check_results`` over every incident's
    partitions at once); without them the partitions are read here.
    """
    if results is None:
        results = latest_check_results(instance, wanted_checks(registry, partitions))
    quality, tolerance = [], []
    for market_id, session in partitions:
        advisory = advisory_gates(registry.get(market_id))
        for name, key in _check_keys(registry, market_id).items():
            result = results[(key, session)]
            passed = True if result.passed is False and name in advisory else result.passed
            outcome = ec.CheckOutcome(
                check=name, market=market_id, partition=session, passed=passed,
                run_id=result.run_id, check_key=key.to_user_string(),
            )
            (tolerance if name in REQUIRED_TOLERANCE else quality).append(outcome)
    return quality, tolerance


def wanted_checks(registry: MarketRegistry, partitions) -> dict[dg.AssetCheckKey, set[str]]:
    """Every required check key with the sessions it is wanted on."""
    wanted: dict[dg.AssetCheckKey, set[str]] = {}
    for market_id, session in partitions:
        for key in _check_keys(registry, market_id).values():
            wanted.setdefault(key, set()).add(session)
    return wanted


DASHBOARD_KEY = dg.AssetKey(["incident_response", "incident_dashboard"])
DASHBOARD_SPEC = dg.AssetSpec(
    DASHBOARD_KEY,
    group_name="incident_response",
    description="Open incidents: stage, exit criteria with evidence, artefacts, lag of the affected markets. "
    "Observed by exit_criteria_sensor every tick.",
    kinds={"sensor"},
)


def dashboard_observation(incidents, db, now, cursor: str | None = None) -> tuple[list[dg.AssetObservation], str]:
    """The dashboard as an observation, only when its content differs from the one ``cursor`` fingerprints
    (the sensor ticks every 30 s; an unchanged dashboard is not worth ~3,000 events a day). Returns
    ``(observations, new cursor)``."""
    markdown = render_dashboard(incidents, db, now)
    stages = {i.id: i.state.value for i in incidents}
    fingerprint = hashlib.sha256(json.dumps([markdown, stages], sort_keys=True).encode()).hexdigest()
    if cursor == fingerprint:
        return [], fingerprint
    observation = dg.AssetObservation(
        asset_key=DASHBOARD_KEY,
        metadata={
            "open_incidents": len(incidents),
            "dashboard": dg.MetadataValue.md(markdown),
            "stages": stages,
            "observed_at": now.isoformat(),
        },
    )
    return [observation], fingerprint


def build_exit_criteria_sensor(registry: MarketRegistry, min_interval: int | None = None
                               ) -> dg.SensorDefinition:
    @dg.sensor(
        name="exit_criteria_sensor",
        minimum_interval_seconds=min_interval or 30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Evaluates every open incident's exit criteria from asset-check results and lag history.",
    )
    def exit_criteria_sensor(
        context: dg.SensorEvaluationContext,
        object_store: ObjectStoreResource,
        state: StateResource,
        clock: ClockResource,
        notifications: NotificationsResource,
    ):
        now = clock.clock().now()
        responder = build_responder(object_store, state, notifications, clock)
        engine = responder.engine
        open_incidents = engine.store.list(open_only=True)
        if not open_incidents:
            events, cursor = dashboard_observation([], engine.db, now, context.cursor)
            return dg.SensorResult(asset_events=events, cursor=cursor, skip_reason="no open incident")
        sla = {m.market_id: m.lag_sla_seconds for m in registry}
        skipped = tuple((r.skip.market, r.skip.consumer, r.skip.session)
                        for r in ConsumerSkips(engine.db).outstanding())
        # The state DB and the check results are read in bulk, and the artefacts of every incident whose
        # evaluation changed are written together when the tick ends: its cost barely grows with incidents.
        evidence_of = engine.gather_evidence_of(open_incidents, now=now, sla_seconds=sla)
        gathered = list(zip(open_incidents, evidence_of))
        every_partition = {p for _, evidence in gathered for p in evidence.affected_partitions}
        results = latest_check_results(context.instance, wanted_checks(registry, every_partition))
        summaries = []
        with engine.artefacts_deferred():
            for incident, evidence in gathered:
                quality, tolerance = latest_outcomes(context.instance, registry, evidence.affected_partitions,
                                                     results)
                evidence = dataclasses.replace(
                    evidence, required_quality_checks=REQUIRED_QUALITY, quality=tuple(quality),
                    required_tolerance_checks=REQUIRED_TOLERANCE, tolerance=tuple(tolerance),
                    skipped_consumers=skipped,
                )
                evaluation = responder.evaluate(incident.id, evidence, incident=incident)
                summaries.append(f"{incident.id}: " + ", ".join(f"{c.name}={c.status}"
                                                                for c in evaluation.criteria))
        refreshed = engine.store.list(open_only=True)
        events, cursor = dashboard_observation(refreshed, engine.db, now, context.cursor)
        return dg.SensorResult(asset_events=events, cursor=cursor, skip_reason="; ".join(summaries))

    return exit_criteria_sensor
