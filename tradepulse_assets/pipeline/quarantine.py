"""Quarantine: keep an offending batch's original bytes, tagged with its incident, out of the flow.

A batch is one market session as landed (all its vendor files and the manifest, byte for byte from
``landing/raw/``). Its Dagster partition key is ``<incident id>.<batch id>``, both parts limited to
``[A-Za-z0-9_-]`` so the key is safe as an object-store segment and never contains ``|``.
"""

import datetime as dt
import json
import re

from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.pipeline.decisions import short_digest
from tradepulse_assets.pipeline.ingest import RECEIPT_NAME, raw_prefix
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.object_store import ObjectNotFound, ObjectStore
from tradepulse_assets.storage.state import StateDB

_TAG_SAFE = re.compile(r"[^A-Za-z0-9 +\-=._:/@]")


class QuarantineError(LookupError):
    pass


def batch_id_for(market_id: str, session: dt.date, revision: int, digest: str) -> str:
    """One batch per distinct delivery: named by its revision and delivery digest, so a second failure of the
    same bytes is the same batch (idempotent) and changed bytes are a new one."""
    return f"{market_id}-{session.isoformat()}-r{revision}-{short_digest(digest)}"


def digest_of_batch(batch_id: str) -> str:
    """The delivery-digest prefix a batch id carries (``batch_id_for``)."""
    return batch_id.rsplit("-", 1)[-1]


def partition_key_for(incident_id: str, batch_id: str) -> str:
    return f"{incident_id}.{batch_id}"


def split_partition_key(key: str) -> tuple[str, str]:
    incident_id, sep, batch_id = key.partition(".")
    if not sep or not incident_id or not batch_id:
        raise QuarantineError(f"quarantine partition {key!r} is not <incident id>.<batch id>")
    return incident_id, batch_id


def record_batch(
    incidents: IncidentStore, incident_id: str, market_id: str, session: dt.date, revision: int, digest: str,
    reason: str, now: dt.datetime,
) -> str:
    """Record the batch on the incident (idempotent per delivery) and return its partition key.

    A batch is one distinct delivery (revision and delivery digest): a second delivery of the same revision
    with other bytes is another batch, and both are kept; the same bytes failing again add nothing.
    """
    batch_id = batch_id_for(market_id, session, revision, digest)
    incidents.add_quarantined_batch(
        incident_id,
        batch_id=batch_id,
        market=market_id,
        session=session.isoformat(),
        location=lake.quarantine_prefix(incident_id, batch_id),
        reason=reason,
        now=now,
    )
    return partition_key_for(incident_id, batch_id)


def quarantine_batch(store: ObjectStore, db: StateDB, partition_key: str) -> dict:
    """Copy the batch's landed bytes under ``quarantine/<incident>/<batch>/`` with tags; returns metadata."""
    incident_id, batch_id = split_partition_key(partition_key)
    batches = [b for b in IncidentStore(db).quarantined_batches(incident_id) if b.batch_id == batch_id]
    if not batches:
        raise QuarantineError(f"incident {incident_id} has no quarantined batch {batch_id!r} registered")
    batch = batches[0]
    session = dt.date.fromisoformat(batch.session)
    source = raw_prefix(batch.market, session)
    files = {
        key.rsplit("/", 1)[-1]: store.get_bytes(key)
        for key in store.list_keys(source)
        if not key.endswith(RECEIPT_NAME)
    }
    if not files:
        raise QuarantineError(f"no landed bytes under {source} for batch {batch_id} of incident {incident_id}")
    tags = {"market": batch.market, "session": batch.session, "reason": _TAG_SAFE.sub("_", batch.reason)[:250]}
    keys = lake.write_quarantine(
        store,
        incident_id,
        batch_id,
        files,
        reason={"reason": batch.reason, "market": batch.market, "session": batch.session, "source": source},
        tags=tags,
    )
    return {
        "incident_id": incident_id,
        "batch_id": batch_id,
        "market": batch.market,
        "session": batch.session,
        "reason": batch.reason,
        "files": len(files),
        "bytes": sum(len(v) for v in files.values()),
        "prefix": lake.quarantine_prefix(incident_id, batch_id),
        "keys": keys,
    }


BATCH_STATUSES = ("released", "discarded")


def set_batch_status(
    store: ObjectStore, db: StateDB, partition_key: str, status: str, reason: str, now: dt.datetime, actor: str
) -> dict:
    """Release (the vendor fixed it: re-ingest) or discard a quarantined batch; both are recorded.

    The bytes stay where they are: ``reason.json`` gains the status and its history, every object of the
    batch is tagged with the status, and the incident's timeline says who did what and why.
    """
    if status not in BATCH_STATUSES:
        raise QuarantineError(f"batch status {status!r} is not one of {', '.join(BATCH_STATUSES)}")
    incident_id, batch_id = split_partition_key(partition_key)
    try:
        document = lake.read_quarantine_reason(store, incident_id, batch_id)
    except ObjectNotFound:
        raise QuarantineError(f"no quarantined batch {batch_id!r} under incident {incident_id}") from None
    if document.get("status") in BATCH_STATUSES:
        raise QuarantineError(f"batch {batch_id} of {incident_id} was already {document['status']}")
    document["status"] = status
    document.setdefault("history", []).append({"status": status, "at": now.isoformat(), "by": actor, "reason": reason})
    reason_key = lake.quarantine_reason_key(incident_id, batch_id)
    for key in store.list_keys(lake.quarantine_prefix(incident_id, batch_id)):
        if key != reason_key:
            store.put_tags(key, {**store.get_tags(key), "status": status})
    body = json.dumps(document, sort_keys=True, indent=2).encode()
    store.put_bytes(reason_key, body, tags={**store.get_tags(reason_key), "status": status},
                    content_type="application/json")
    IncidentStore(db).add_event(incident_id, "quarantine", f"batch {batch_id} {status} by {actor}: {reason}",
                                now=now, data={"batch_id": batch_id, "status": status})
    return document
