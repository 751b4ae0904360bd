"""Publication sensors, one per market: ingest a session as soon as the vendor publishes it.

This is the normal path (the lag sensor only catches what did not arrive or did not land). Whether to launch
is ``decisions.decide_launch``, the same rule the lag sensor and the CLI follow: one attempt per (session,
revision, delivery digest) whoever launches it, nothing while a run of the session is in flight, a quarantined
delivery only once the vendor changed it, and a rollback never (refused once, in the audit trail).

A restatement of a session already in production (a higher revision) is never a silent overwrite: it opens a
``vendor_restatement`` incident first, which snapshots the features as the pre-incident baseline, and the
re-ingestion runs as that incident's backfill so the tolerance gate compares the recomputed indicators with
the baseline.
"""

import dagster as dg

from tradepulse_assets.defs.assets.bars import PUBLICATION_SENSOR_SUFFIX, market_key
from tradepulse_assets.defs.partitions import session_partition_exists
from tradepulse_assets.defs.resources import (
    ClockResource,
    NotificationsResource,
    ObjectStoreResource,
    StateResource,
    VendorResource,
)
from tradepulse_assets.defs.sensors.common import (
    audit_refusal,
    build_responder,
    launch_request,
    materialized_sessions,
    session_view,
)
from tradepulse_assets.markets import Market
from tradepulse_assets.pipeline import decisions
from tradepulse_assets.pipeline.lag import closed_sessions
from tradepulse_assets.storage.audit import audit_log_for

PUBLISHED = decisions.PUBLISHED_CONDITIONS


def publication_sensor_name(market: Market) -> str:
    return f"{market.market_id.lower()}{PUBLICATION_SENSOR_SUFFIX}"


def build_publication_sensor(market: Market, job, lookback_sessions: int, min_interval: int | None = None
                             ) -> dg.SensorDefinition:
    @dg.sensor(
        name=publication_sensor_name(market),
        job=job,
        minimum_interval_seconds=min_interval or 30,
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
        db = state.db()
        promoted = materialized_sessions(context.instance, market_key(market, "production_bars"))
        requests, reasons = [], []
        for session in closed_sessions(market, now, lookback_sessions):
            if not session_partition_exists(market, session):
                continue  # an early close: the partition opens at the regular close
            view = session_view(context.instance, connector, store, db, market, session, promoted)
            decision = decisions.decide_launch(view)
            if decision.action == decisions.REFUSE:
                audit = audit_log_for(store, db, clock=clock.clock().now)
                audit_refusal(db, audit, decision, market, session, now, view.vendor_revision)
            if not decision.launch:
                if decision.action != decisions.WAIT or view.published:
                    reasons.append(decision.reason)
                continue
            if view.held_revision is not None and decision.incident_id is None and not view.vendor_unreadable:
                incident, _ = build_responder(object_store, state, notifications, clock).detect(
                    "vendor_restatement", market.market_id, now=now, sessions=[session.isoformat()],
                    description=(
                        f"{market.market_id} {session}: the vendor restated the session "
                        f"(revision {view.held_revision} -> {view.vendor_revision})"
                    ),
                    data={"evidence_at": now.isoformat()},
                )
                decision = decisions.Decision(decision.action, decision.reason, decision.attempt_key,
                                              incident.id)
            requests.append(launch_request(decision, market, session))
        if not requests:
            return dg.SkipReason("; ".join(reasons) or f"no new {market.market_id} publication")
        return dg.SensorResult(run_requests=requests)

    return publication_sensor
