"""Exit-criteria sensor: asset-check results and lag history decide when an incident may leave recovery.

Per open incident it reads, for every affected partition, the latest result of each required check (the
blocking quality gates, including the DST/session-boundary gates, and the indicator tolerance gate) from
Dagster's event log, hands them with the lag history to the pure exit criteria, and lets the engine move
the incident (validating -> consumers resume). People resolve with ``tradepulse-cli incident resolve``.
"""

import dataclasses

import dagster as dg

from tradepulse_assets.defs.assets.bars import GATE_CONFIG, market_key
from tradepulse_assets.defs.assets.features import TOLERANCE_CHECK
from tradepulse_assets.defs.dagster_internals import latest_check_verdicts
from tradepulse_assets.defs.resources import ClockResource, NotificationsResource, ObjectStoreResource, StateResource
from tradepulse_assets.defs.sensors.common import build_responder
from tradepulse_assets.incidents import exit_criteria as ec
from tradepulse_assets.markets import MarketRegistry
from tradepulse_assets.pipeline.catchup import ConsumerSkips
from tradepulse_assets.pipeline.dashboard import render_dashboard
from tradepulse_assets.pipeline.ingest import LANDING_GATE
from tradepulse_assets.quality import GATE_NAMES, gate_is_blocking

REQUIRED_QUALITY = (LANDING_GATE, *(g for g in GATE_NAMES if gate_is_blocking(g, GATE_CONFIG)))
REQUIRED_TOLERANCE = (TOLERANCE_CHECK,)


def _check_keys(registry: MarketRegistry, market_id: str) -> dict[str, dg.AssetCheckKey]:
    market = registry.get(market_id)
    keys = {LANDING_GATE: dg.AssetCheckKey(market_key(market, "landed_bars"), LANDING_GATE)}
    keys.update({g: dg.AssetCheckKey(market_key(market, "staging_bars"), g) for g in REQUIRED_QUALITY[1:]})
    keys[TOLERANCE_CHECK] = dg.AssetCheckKey(market_key(market, "indicator_features"), TOLERANCE_CHECK)
    return keys


def latest_outcomes(
    instance: dg.DagsterInstance, registry: MarketRegistry, partitions
) -> tuple[list[ec.CheckOutcome], list[ec.CheckOutcome]]:
    quality, tolerance = [], []
    for market_id, session in partitions:
        keys = _check_keys(registry, market_id)
        verdicts = latest_check_verdicts(instance, list(keys.values()), session)
        for name, key in keys.items():
            verdict = verdicts[key]
            outcome = ec.CheckOutcome(
                check=name, market=market_id, partition=session, passed=verdict.passed,
                run_id=verdict.run_id, check_key=key.to_user_string(),
            )
            (tolerance if name in REQUIRED_TOLERANCE else quality).append(outcome)
    return quality, tolerance


DASHBOARD_KEY = dg.AssetKey(["incident_response", "incident_dashboard"])
DASHBOARD_SPEC = dg.AssetSpec(
    DASHBOARD_KEY,
    group_name="incident_response",
    description="Open incidents: stage, exit criteria with evidence, artefacts, lag of the affected markets. "
    "Observed by exit_criteria_sensor every tick.",
    kinds={"sensor"},
)


def dashboard_observation(incidents, db, now) -> dg.AssetObservation:
    return dg.AssetObservation(
        asset_key=DASHBOARD_KEY,
        metadata={
            "open_incidents": len(incidents),
            "dashboard": dg.MetadataValue.md(render_dashboard(incidents, db, now)),
            "stages": {i.id: i.state.value for i in incidents},
            "observed_at": now.isoformat(),
        },
    )


def build_exit_criteria_sensor(registry: MarketRegistry) -> dg.SensorDefinition:
    @dg.sensor(
        name="exit_criteria_sensor",
        minimum_interval_seconds=30,
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
            return dg.SensorResult(asset_events=[dashboard_observation([], engine.db, now)],
                                   skip_reason="no open incident")
        sla = {m.market_id: m.lag_sla_seconds for m in registry}
        skipped = tuple((r.skip.market, r.skip.consumer, r.skip.session)
                        for r in ConsumerSkips(engine.db).outstanding())
        summaries = []
        for incident in open_incidents:
            evidence = engine.gather_evidence(incident.id, now=now, sla_seconds=sla)
            quality, tolerance = latest_outcomes(context.instance, registry, evidence.affected_partitions)
            evidence = dataclasses.replace(
                evidence, required_quality_checks=REQUIRED_QUALITY, quality=tuple(quality),
                required_tolerance_checks=REQUIRED_TOLERANCE, tolerance=tuple(tolerance),
                skipped_consumers=skipped,
            )
            evaluation = responder.evaluate(incident.id, evidence)
            summaries.append(f"{incident.id}: " + ", ".join(f"{c.name}={c.status}" for c in evaluation.criteria))
        refreshed = engine.store.list(open_only=True)
        return dg.SensorResult(asset_events=[dashboard_observation(refreshed, engine.db, now)],
                               skip_reason="; ".join(summaries))

    return exit_criteria_sensor
