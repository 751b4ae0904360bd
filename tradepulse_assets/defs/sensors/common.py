"""What every incident sensor needs: a Responder built from the resources, partition status lookups, and the
facts a launch decision needs (``session_view``), gathered the same way for every launcher."""

import datetime as dt

import dagster as dg

from tradepulse_assets.defs.assets.bars import ATTEMPT_TAG, INCIDENT_TAG, MARKET_TAG, holder_is_alive
from tradepulse_assets.defs.partitions import key_of_session, session_of_key
from tradepulse_assets.defs.resources import ClockResource, NotificationsResource, ObjectStoreResource, StateResource
from tradepulse_assets.feeds.connectors import Connector
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import Market
from tradepulse_assets.pipeline import decisions, ingest, quarantine
from tradepulse_assets.pipeline.ownership import SessionLedger
from tradepulse_assets.pipeline.response import Responder, open_incident_covering
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import ObjectStore
from tradepulse_assets.storage.state import StateDB

UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED]


def build_responder(
    object_store: ObjectStoreResource, state: StateResource, notifications: NotificationsResource, clock: ClockResource
) -> Responder:
    now, db = clock.clock().now, state.db()
    return Responder(db, object_store.store(), notifications.notifications(db, now), now)


def materialized_sessions(instance: dg.DagsterInstance, key: dg.AssetKey) -> set[dt.date]:
    return {session_of_key(k) for k in instance.get_materialized_partitions(key)}


def materialized_among(instance: dg.DagsterInstance, key: dg.AssetKey, sessions) -> set[dt.date]:
    """Which of ``sessions`` have been materialized: one query over those partitions only, so a tick costs the
    same after a year of history as after a day (``materialized_sessions`` reads every partition ever)."""
    if not sessions:
        return set()
    latest = instance.event_log_storage.get_latest_storage_id_by_partition(
        key, dg.DagsterEventType.ASSET_MATERIALIZATION, partitions={key_of_session(s) for s in sessions}
    )
    return {session_of_key(k) for k in latest}


def _held(ledger: SessionLedger, store: ObjectStore, market: Market, session: dt.date,
          promoted: set[dt.date]):
    """(revision, digest) production holds; sessions promoted before the ledger existed: the receipt's."""
    held = ledger.held_revision(market.market_id, session)
    if held is not None:
        return held.revision, held.digest
    if session in promoted:
        receipt = ingest.read_receipt(store, market.market_id, session) or {}
        if receipt.get("revision") is not None:
            return int(receipt["revision"]), receipt.get("delivery")
    return None, None


def _in_flight(instance: dg.DagsterInstance, ledger: SessionLedger, market: Market, session: dt.date) -> bool:
    holder = ledger.active_holder(market.market_id, session)
    if holder is not None and holder_is_alive(instance)(holder):
        return True
    tags = {MARKET_TAG: market.market_id, "dagster/partition": key_of_session(session)}
    return bool(instance.get_run_records(dg.RunsFilter(tags=tags, statuses=UNFINISHED), limit=1))


def session_view(
    instance: dg.DagsterInstance, connector: Connector, store: ObjectStore, db: StateDB, market: Market,
    session: dt.date, promoted: set[dt.date],
) -> decisions.SessionView:
    """Everything ``decisions.decide_launch`` needs about one session. The vendor's bytes are read (to digest
    them) only when production does not already hold the vendor's revision."""
    ledger = SessionLedger(db)
    incidents = IncidentStore(db)
    manifest = ingest.read_vendor_manifest(connector, market.market_id, session)
    covering = open_incident_covering(incidents, market.market_id, session)
    base = dict(market=market.market_id, session=session, incident_id=covering.id if covering else None)
    held_revision = held_digest = None
    if isinstance(manifest, ingest.VendorDelivery):  # unreadable: a failed delivery, landed once, quarantined
        revision, condition, digest, base["vendor_unreadable"] = 0, "available", manifest.digest, True
    elif manifest is None or manifest.condition not in decisions.PUBLISHED_CONDITIONS:
        return decisions.SessionView(vendor_revision=manifest.revision if manifest else None,
                                     vendor_condition=manifest.condition if manifest else None, **base)
    else:
        revision, condition, digest = manifest.revision, manifest.condition, None
        held_revision, held_digest = _held(ledger, store, market, session, promoted)
        if held_revision is None or manifest.revision > held_revision:
            digest = ingest.served_digest(connector, manifest)
    key = decisions.attempt_key(market.market_id, session, revision, digest)
    attempted = instance.get_run_records(dg.RunsFilter(tags={ATTEMPT_TAG: key}), limit=1)
    batches = incidents.quarantined_for(market.market_id, session.isoformat())
    return decisions.SessionView(
        vendor_revision=revision, vendor_condition=condition,
        vendor_digest=digest, held_revision=held_revision, held_digest=held_digest,
        attempted=frozenset({key}) if attempted else frozenset(),
        in_flight=_in_flight(instance, ledger, market, session),
        quarantined_digests=frozenset(quarantine.digest_of_batch(b.batch_id) for b in batches),
        **base,
    )


def launch_request(decision: decisions.Decision, market: Market, session: dt.date,
                   **tags: str) -> dg.RunRequest:
    """A ``launch`` decision as a RunRequest: the attempt key is the run key and a tag every launcher checks."""
    incident = {INCIDENT_TAG: decision.incident_id} if decision.incident_id else {}
    return dg.RunRequest(
        partition_key=key_of_session(session),
        run_key=f"ingest:{decision.attempt_key}",
        tags={MARKET_TAG: market.market_id, ATTEMPT_TAG: decision.attempt_key, **incident, **tags},
    )


def audit_refusal(db: StateDB, audit: AuditLog, decision: decisions.Decision, market: Market,
                  session: dt.date, now: dt.datetime, revision: int | None = None) -> bool:
    """Record a refused delivery (a rollback, ``revision`` the one refused) once per attempt: in the audit
    trail, and on the timeline of the open incident covering the session if there is one. ``True`` the first
    time.

    A rollback opens no incident of its own: production keeps the higher revision and nothing needs
    recovering (docs/runbook-map.md, 3.2.2); the vendor's liaison reads it where it is recorded."""
    name = f"refused:{decision.attempt_key}"
    if db.get_watermark(name) is not None:
        return False
    db.set_watermark(name, decision.reason, now=now)
    audit.append({"event": "landing", "market": market.market_id, "session": session.isoformat(),
                  "batch": decision.attempt_key, "rows": 0, "sha256": "0" * 64, "revision": revision,
                  "outcome": f"refused: {decision.reason}"})
    if decision.incident_id:
        IncidentStore(db).add_event(decision.incident_id, "detection", f"delivery refused: {decision.reason}",
                                    now=now, data={"attempt": decision.attempt_key})
    return True
