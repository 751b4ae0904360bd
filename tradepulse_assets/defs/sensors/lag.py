"""Lag sensors, one per market: SLA breach -> incident (contained) + backfill of exactly the missing sessions.

A session counts as present once it reached production. Whether to launch a missing session is
``decisions.decide_launch``, the rule the publication sensor follows too: one attempt per (session, revision,
delivery digest) whoever launches it, so the two sensors never launch one partition twice, and a quarantined
delivery is retried only when the vendor changed it (never on a timer). At most ``MAX_BACKFILLS_PER_TICK``
runs are requested per tick. "Backfill initiated" is announced by the run when it starts, not here.
"""

import datetime as dt
import hashlib
import json

import dagster as dg

from tradepulse_assets.defs.assets.bars import market_key
from tradepulse_assets.defs.partitions import session_partition_exists
from tradepulse_assets.defs.resources import (
    ClockResource,
    NotificationsResource,
    ObjectStoreResource,
    StateResource,
    VendorResource,
)
from tradepulse_assets.defs.sensors.common import (
    build_responder,
    launch_request,
    materialized_among,
    session_view,
)
from tradepulse_assets.markets import Market
from tradepulse_assets.pipeline import decisions
from tradepulse_assets.pipeline.lag import closed_sessions, measure_lag
from tradepulse_assets.pipeline.response import open_incident_covering
from tradepulse_assets.pipeline.stream import stream_watermark_name

MAX_BACKFILLS_PER_TICK = 4
LAG_SENSOR_INTERVAL_SECONDS = 30
BACKFILL_TAG = "tradepulse/backfill"


def breach_evidence_at(reading, first_observed: dt.datetime | None) -> dt.datetime:
    """When the lag crossed the SLA (not the session's open), but not before the platform first measured this
    market's lag: a platform started on a day-old breach could not have seen it earlier."""
    crossed = reading.measured_at - dt.timedelta(seconds=max(0.0, reading.lag_seconds - reading.sla_seconds))
    return max(crossed, first_observed) if first_observed else crossed


def first_lag_sample(db, market_id: str) -> dt.datetime | None:
    row = db.query("SELECT MIN(measured_at) AS first FROM lag_samples WHERE market = ?", (market_id,))
    return dt.datetime.fromisoformat(row[0]["first"]) if row and row[0]["first"] else None


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
        evidence_at = breach_evidence_at(reading, first_lag_sample(responder.engine.db, market.market_id))
        return responder.detect(
            "lag_breach", market.market_id, now=now, sessions=sorted(sessions), gaps=reading.gap_windows,
            description=(
                f"{market.market_id} ingestion lag {reading.lag_seconds:.0f}s exceeds the "
                f"{market.lag_sla_seconds}s SLA"
            ),
            data={**reading.to_metadata(), "evidence_at": evidence_at.isoformat()},
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


def build_lag_sensor(market: Market, job, lookback_sessions: int, min_interval: int | None = None
                     ) -> dg.SensorDefinition:
    @dg.sensor(
        name=lag_sensor_name(market),
        job=job,
        minimum_interval_seconds=min_interval or LAG_SENSOR_INTERVAL_SECONDS,
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
        # only the look-back's sessions are asked about: the tick costs the same after a year as after a day
        promoted = materialized_among(
            context.instance, market_key(market, "production_bars"), closed_sessions(market, now, lookback_sessions)
        )
        reading = measure_lag(
            market,
            now,
            promoted,
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
        # The observation (the UI's lag plot) is emitted only when what it says changed: a steady market at
        # zero lag no longer writes ~2,900 identical events a day. The lag history in the state DB, which the
        # exit criteria read, still gets every sample.
        said = json.dumps([round(reading.lag_seconds), reading.breached, watermark,
                           [s.isoformat() for s in reading.missing_sessions]])
        said = hashlib.sha256(said.encode()).hexdigest()
        events = [] if context.cursor == said else [observation]
        if not reading.breached:
            return dg.SensorResult(
                asset_events=events,
                cursor=said,
                skip_reason=f"{market.market_id} lag {reading.lag_seconds:.0f}s within SLA {market.lag_sla_seconds}s",
            )
        responder = build_responder(object_store, state, notifications, clock)
        incident, opened = _open_or_attach(responder, market, reading, now)
        connector = vendor.connector()
        store = object_store.store()
        requests, waiting = [], []
        for session in reading.missing_sessions:
            if len(requests) >= MAX_BACKFILLS_PER_TICK:
                break
            if not session_partition_exists(market, session):
                continue  # an early close: the partition opens at the regular close
            view = session_view(context.instance, connector, store, db, market, session, promoted)
            decision = decisions.decide_launch(view)
            if decision.launch:
                decision = decisions.Decision(decision.action, decision.reason, decision.attempt_key,
                                              decision.incident_id or incident.id)
                requests.append(launch_request(decision, market, session, **{BACKFILL_TAG: "true"}))
            else:
                waiting.append(decision.reason)
        context.log.info(
            f"{market.market_id}: lag {reading.lag_seconds:.0f}s > SLA; incident {incident.id} "
            f"({'opened' if opened else 'joined'}); {len(requests)} backfill run(s) requested; "
            + "; ".join(waiting)
        )
        return dg.SensorResult(run_requests=requests, asset_events=events, cursor=said)

    return lag_sensor
