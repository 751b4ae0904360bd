"""Quarantine: keep an offending delivery's original bytes, tagged with its incident, out of the flow.

A batch is one distinct delivery of a market session: the manifest and every vendor file exactly as they were
delivered, copied from the landed raw copy of *that* delivery (``landing/raw/.../delivery=<digest>/``, written
at landing, never re-fetched from the vendor). The batch id names the delivery
(``<market>-<session>-r<revision>-<digest>``), so however many runs fail on the same bytes and however often
the quarantine run is retried, there is one batch; a vendor fixing a file in place is a new delivery with its
own prefix and cannot change the evidence of the old one. ``reason.json`` names the delivery digest, the
revision, the landing faults of that delivery and why, and lists exactly the files of the batch (name, size,
sha256).

Its Dagster partition key is ``<incident id>.<batch id>``, both parts limited to ``[A-Za-z0-9_-]`` so the key
is safe as an object-store segment and never contains ``|``.
"""

import datetime as dt
import hashlib
import json
import re

from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.pipeline.decisions import short_digest
from tradepulse_assets.pipeline.ingest import RECEIPT_NAME, delivery_prefix, raw_files
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.audit import AuditLog
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


def quarantine_batch(store: ObjectStore, db: StateDB, partition_key: str,
                     audit: AuditLog | None = None) -> dict:
    """Copy the batch's delivered bytes under ``quarantine/<incident>/<batch>/`` with tags; returns metadata.

    Idempotent: a batch already complete (its ``reason.json`` written, maybe released or discarded since) is
    left as it is and described again. With ``audit``: one ``quarantine`` event when the batch is written.
    """
    incident_id, batch_id = split_partition_key(partition_key)
    batches = [b for b in IncidentStore(db).quarantined_batches(incident_id) if b.batch_id == batch_id]
    if not batches:
        raise QuarantineError(f"incident {incident_id} has no quarantined batch {batch_id!r} registered")
    batch = batches[0]
    prefix = lake.quarantine_prefix(incident_id, batch_id)
    try:
        existing = lake.read_quarantine_reason(store, incident_id, batch_id)
    except ObjectNotFound:
        existing = None
    if existing is not None:
        return _described(batch, incident_id, batch_id, existing, prefix, sorted(store.list_keys(prefix)))
    source = delivery_prefix(batch.market, dt.date.fromisoformat(batch.session), digest_of_batch(batch_id))
    files = raw_files(store, source)  # a streamed delivery's pack expanded: the batch lists every file
    receipt = json.loads(files.pop(RECEIPT_NAME, b"{}"))
    if not receipt:
        raise QuarantineError(f"no landed delivery under {source}/ for batch {batch_id} "
                              f"of incident {incident_id}")
    tags = {"market": batch.market, "session": batch.session, "reason": _TAG_SAFE.sub("_", batch.reason)[:250]}
    reason = {"reason": batch.reason, "market": batch.market, "session": batch.session, "source": source,
              "delivery": receipt.get("delivery"), "revision": receipt.get("revision"),
              "landed_at": receipt.get("landed_at"), "landing_faults": receipt.get("faults", [])}
    keys = lake.write_quarantine(store, incident_id, batch_id, files, reason=reason, tags=tags)
    document = lake.read_quarantine_reason(store, incident_id, batch_id)
    if audit is not None:
        audit.append({"event": "quarantine", "market": batch.market, "session": batch.session,
                      "batch": batch_id, "rows": 0, "sha256": receipt["delivery"],
                      "revision": receipt.get("revision"), "outcome": "quarantined",
                      "incident_id": incident_id, "files": len(files), "prefix": prefix})
    return _described(batch, incident_id, batch_id, document, prefix, keys)


def _described(batch, incident_id: str, batch_id: str, document: dict, prefix: str, keys: list[str]) -> dict:
    files = document.get("files", [])
    return {
        "incident_id": incident_id,
        "batch_id": batch_id,
        "market": batch.market,
        "session": batch.session,
        "reason": batch.reason,
        "delivery": document.get("delivery"),
        "revision": document.get("revision"),
        "source": document.get("source"),
        "files": len(files),
        "bytes": sum(f["size"] for f in files),
        "prefix": prefix,
        "keys": keys,
    }


BATCH_STATUSES = ("released", "discarded")
AUDIT_EVENT = {"released": "release", "discarded": "discard"}


def set_batch_status(
    store: ObjectStore, db: StateDB, partition_key: str, status: str, reason: str, now: dt.datetime,
    actor: str, audit: AuditLog | None = None,
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
    if audit is not None:
        audit.append({"event": AUDIT_EVENT[status], "market": document.get("market") or "unknown",
                      "session": document["session"], "batch": batch_id, "rows": 0,
                      "sha256": document.get("delivery") or hashlib.sha256(body).hexdigest(),
                      "revision": document.get("revision"), "outcome": status, "incident_id": incident_id,
                      "by": actor, "reason": reason, "time": now})
    return document
