"""Publication sensors, one per market: ingest a session as soon as the vendor publishes it.

This is the normal path (the lag sensor only catches what did not arrive or did not land). A session is
launched once per vendor revision. A restatement of a session already in production (a new revision) is
never a silent overwrite: it opens a ``vendor_restatement`` incident first, which snapshots the features
as the pre-incident baseline, and the re-ingestion runs as that incident's backfill so the tolerance gate
compares the recomputed indicators with the baseline. A run for a session that an open incident covers
carries the incident tag, so its landing is recorded as that incident's backfill.
"""

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
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import Market
from tradepulse_assets.pipeline.ingest import read_receipt
from tradepulse_assets.pipeline.lag import closed_sessions
from tradepulse_assets.pipeline.response import open_incident_covering

PUBLISHED = ("available", "degraded")


def publication_sensor_name(market: Market) -> str:
    return f"{market.market_id.lower()}_publication_sensor"


def build_publication_sensor(market: Market, job, lookback_sessions: int) -> dg.SensorDefinition:
    @dg.sensor(
        name=publication_sensor_name(market),
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Launches {market.market_id} ingestion of each session the vendor publishes (and each restatement).",
    )
    def publication_sensor(
        context: dg.SensorEvaluationContext,
        vendor: VendorResource,
        state: StateResource,
        clock: ClockResource,
        object_store: ObjectStoreResource,
        notifications: NotificationsResource,
    ):
        now = clock.clock().now()
        connector = vendor.connector()
        store = object_store.store()
        promoted = materialized_sessions(context.instance, market_key(market, "production_bars"))
        incidents = IncidentStore(state.db())
        requests = []
        for session in closed_sessions(market, now, lookback_sessions):
            manifest = connector.read_manifest(market.market_id, session)
            if manifest is None or manifest.condition not in PUBLISHED:
                continue
            landed = (read_receipt(store, market.market_id, session) or {}).get("revision")
            if session in promoted and landed == manifest.revision:
                continue  # already in the lake at this revision
            incident = open_incident_covering(incidents, market.market_id, session)
            if session in promoted and incident is None:
                incident, _ = build_responder(object_store, state, notifications, clock).detect(
                    "vendor_restatement", market.market_id, now=now, sessions=[session.isoformat()],
                    description=(
                        f"{market.market_id} {session}: the vendor restated the session "
                        f"(revision {landed} -> {manifest.revision})"
                    ),
                )
            tags = {MARKET_TAG: market.market_id, **({INCIDENT_TAG: incident.id} if incident else {})}
            if incident is not None and landed != manifest.revision:  # a new revision: this incident's backfill
                build_responder(object_store, state, notifications, clock).start_recovery(
                    incident, now=now, start=session, end=session,
                    message=f"ingesting {market.market_id} {session} revision {manifest.revision} from the vendor",
                )
            requests.append(
                dg.RunRequest(
                    partition_key=key_of_session(session),
                    run_key=f"ingest:{market.market_id}:{session}:r{manifest.revision}",
                    tags=tags,
                )
            )
        if not requests:
            return dg.SkipReason(f"no new {market.market_id} publication")
        return dg.SensorResult(run_requests=requests)

    return publication_sensor
