"""Lag sensors, one per market: SLA breach -> incident (contained) + backfill of exactly the missing sessions.

A session counts as present once it reached production. Run keys carry the incident, the session and the
vendor's manifest revision, so a repeated tick (or a tick replayed after a crash) launches nothing twice,
while a vendor restatement (new revision) gets a fresh attempt. At most ``MAX_BACKFILLS_PER_TICK`` runs are
requested per tick.
"""

import datetime as dt

import dagster as dg

from tradepulse_assets.defs.assets.bars import INCIDENT_TAG, MARKET_TAG, market_key
from tradepulse_assets.defs.partitions import key_of_session
from tradepulse_assets.defs.resources import (
    ClockResource,
    NotificationsResource,
    ObjectStoreResource,
    StateResource,
    VendorResource,
)
from tradepulse_assets.defs.sensors.common import build_responder, materialized_sessions
from tradepulse_assets.markets import Market
from tradepulse_assets.pipeline.lag import measure_lag
from tradepulse_assets.pipeline.response import open_incident_covering
from tradepulse_assets.pipeline.stream import stream_watermark_name

MAX_BACKFILLS_PER_TICK = 4
LAG_SENSOR_INTERVAL_SECONDS = 30
BACKFILL_TAG = "tradepulse/backfill"
# After a backfill attempt was quarantined, wait this long before fetching the same revision again.
RETRY_COOLDOWN = dt.timedelta(minutes=5)


def backfill_run_key(incident_id: str, market_id: str, session: dt.date, revision: int, attempt: int) -> str:
    """One run per incident, session, vendor revision and quarantined attempt: repeated ticks launch nothing."""
    return f"backfill:{incident_id}:{market_id}:{session}:r{revision}:a{attempt}"


def _open_or_attach(responder, market: Market, reading, now: dt.datetime):
    """Attach the breach to the open incident already covering these sessions (a corrupted delivery is also
    late: one fault, one incident), else open or join the market's lag incident. Gap windows are recorded
    only when they changed, so a stall does not flood the timeline with identical detections."""
    store = responder.engine.store
    sessions = {*(s.isoformat() for s in reading.missing_sessions), *(w.session for w in reading.gap_windows)}
    covering = next(
        (i for s in sorted(sessions) if (i := open_incident_covering(store, market.market_id, dt.date.fromisoformat(s)))),
        None,
    ) or store.find_open("lag_breach", market.market_id)
    if covering is None:
        return responder.detect(
            "lag_breach", market.market_id, now=now, sessions=sorted(sessions), gaps=reading.gap_windows,
            description=(
                f"{market.market_id} ingestion lag {reading.lag_seconds:.0f}s exceeds the "
                f"{market.lag_sla_seconds}s SLA"
            ),
            data=reading.to_metadata(),
        )
    known = {(w.market, w.start, w.end, w.missing_minutes) for w in store.gap_windows(covering.id)}
    fresh = [w for w in reading.gap_windows if (w.market, w.start, w.end, w.missing_minutes) not in known]
    if fresh:
        store.add_gap_windows(covering.id, fresh, now=now)
        responder.engine.write_artefacts(covering.id)
    return covering, False


def lag_asset_key(market: Market) -> dg.AssetKey:
    return dg.AssetKey([market.market_id.lower(), "ingestion_lag"])


def lag_asset_spec(market: Market) -> dg.AssetSpec:
    """The lag metric, observed by the lag sensor every tick: the UI plots ``lag_seconds`` over time."""
    return dg.AssetSpec(
        lag_asset_key(market),
        group_name=market.market_id.lower(),
        description=(
            f"{market.market_id} ingestion lag over trading minutes (observed by {lag_sensor_name(market)}); "
            f"SLA {market.lag_sla_seconds}s. See the Plots tab for lag_seconds over time."
        ),
        kinds={"sensor"},
    )


def lag_sensor_name(market: Market) -> str:
    return f"{market.market_id.lower()}_lag_sensor"


def build_lag_sensor(market: Market, job, lookback_sessions: int) -> dg.SensorDefinition:
    @dg.sensor(
        name=lag_sensor_name(market),
        job=job,
        minimum_interval_seconds=LAG_SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Measures {market.market_id} ingestion lag over trading minutes against its {market.lag_sla_seconds}s "
            "SLA; on a breach opens or joins an incident and backfills the missing sessions."
        ),
    )
    def lag_sensor(
        context: dg.SensorEvaluationContext,
        object_store: ObjectStoreResource,
        state: StateResource,
        clock: ClockResource,
        notifications: NotificationsResource,
        vendor: VendorResource,
    ):
        now = clock.clock().now()
        db = state.db()
        watermark = db.get_watermark(stream_watermark_name(market.market_id))
        reading = measure_lag(
            market,
            now,
            materialized_sessions(context.instance, market_key(market, "production_bars")),
            stream_watermark=dt.datetime.fromisoformat(watermark) if watermark else None,
            lookback=lookback_sessions,
        )
        db.record_lag(market.market_id, now, reading.lag_seconds, watermark)
        observation = dg.AssetObservation(
            asset_key=lag_asset_key(market),
            metadata={
                "lag_seconds": dg.MetadataValue.float(reading.lag_seconds),
                "sla_seconds": dg.MetadataValue.int(market.lag_sla_seconds),
                "breached": reading.breached,
                "watermark": watermark or "none",
                "measured_at": now.isoformat(),
                "missing_sessions": [s.isoformat() for s in reading.missing_sessions],
            },
        )
        if not reading.breached:
            return dg.SensorResult(
                asset_events=[observation],
                skip_reason=f"{market.market_id} lag {reading.lag_seconds:.0f}s within SLA {market.lag_sla_seconds}s",
            )
        responder = build_responder(object_store, state, notifications, clock)
        incident, opened = _open_or_attach(responder, market, reading, now)
        connector = vendor.connector()
        quarantined = responder.engine.store.quarantined_batches(incident.id)
        requests = []
        for session in reading.missing_sessions[:MAX_BACKFILLS_PER_TICK]:
            manifest = connector.read_manifest(market.market_id, session)
            if manifest is None or manifest.condition not in ("available", "degraded"):
                continue  # nothing published yet: backfilling now would only fail; the next tick retries
            failed = [b for b in quarantined if b.market == market.market_id and b.session == str(session)]
            if failed and now - max(b.quarantined_at for b in failed) < RETRY_COOLDOWN:
                continue
            requests.append(
                dg.RunRequest(
                    partition_key=key_of_session(session),
                    run_key=backfill_run_key(incident.id, market.market_id, session, manifest.revision, len(failed)),
                    tags={INCIDENT_TAG: incident.id, BACKFILL_TAG: "true", MARKET_TAG: market.market_id},
                )
            )
        if requests:
            keys = [r.partition_key for r in requests]
            responder.start_recovery(
                incident, now=now, start=min(reading.missing_sessions), end=max(reading.missing_sessions),
                message=f"backfill requested for {market.market_id} sessions {', '.join(keys)}",
            )
        context.log.info(
            f"{market.market_id}: lag {reading.lag_seconds:.0f}s > SLA; incident {incident.id} "
            f"({'opened' if opened else 'joined'}); {len(requests)} backfill run(s) requested"
        )
        return dg.SensorResult(run_requests=requests, asset_events=[observation])

    return lag_sensor
