"""Catch-up sensor: what a hold skipped is re-run when the hold is released (containment undone completely).

Translation only: the skip records (``pipeline.catchup``) and the pause toggles go into
``decisions.catch_up_requests``; each answer becomes one run of exactly that consumer partition. The run key
carries the skip count, so a partition skipped again by a later hold gets a new run, and a repeated tick none.
"""

import dagster as dg

from tradepulse_assets.defs.assets.bars import MARKET_TAG, market_key
from tradepulse_assets.defs.resources import StateResource
from tradepulse_assets.incidents.control_plane import CONSUMERS, ControlPlane
from tradepulse_assets.markets import MarketRegistry
from tradepulse_assets.pipeline import decisions
from tradepulse_assets.pipeline.catchup import ConsumerSkips

CATCHUP_TAG = "tradepulse/catch_up"


def consumer_job_name(market_id: str) -> str:
    return f"{market_id.lower()}_consumers"


def build_consumer_job(market):
    return dg.define_asset_job(
        name=consumer_job_name(market.market_id),
        selection=dg.AssetSelection.assets(*(market_key(market, c) for c in CONSUMERS)),
        tags={MARKET_TAG: market.market_id},
        description=f"Re-runs {market.market_id} consumer partitions a hold skipped (catch-up sensor).",
    )


def build_catchup_sensor(registry: MarketRegistry, jobs, min_interval: int | None = None
                         ) -> dg.SensorDefinition:
    @dg.sensor(
        name="consumer_catchup_sensor",
        jobs=jobs,
        minimum_interval_seconds=min_interval or 30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-runs exactly the consumer partitions a released hold skipped.",
    )
    def consumer_catchup_sensor(context: dg.SensorEvaluationContext, state: StateResource):
        db = state.db()
        records = {r.skip: r for r in ConsumerSkips(db).outstanding()}
        if not records:
            return dg.SkipReason("no consumer partition skipped by a hold")
        control = ControlPlane(db)
        markets = {s.market for s in records}
        paused = [(m, c) for m in markets for c in CONSUMERS if control.is_paused(m, c)]
        requests = []
        for skip in decisions.catch_up_requests(records, paused):
            if skip.market not in {m.market_id for m in registry}:
                continue
            market = registry.get(skip.market)
            requests.append(dg.RunRequest(
                job_name=consumer_job_name(skip.market),
                partition_key=skip.session,
                asset_selection=[market_key(market, skip.consumer)],
                run_key=f"catchup:{skip.market}:{skip.consumer}:{skip.session}:{records[skip].skips}",
                tags={MARKET_TAG: skip.market, CATCHUP_TAG: skip.consumer},
            ))
        if not requests:
            return dg.SkipReason(f"{len(records)} skipped consumer partition(s) still held")
        return dg.SensorResult(run_requests=requests)

    return consumer_catchup_sensor
