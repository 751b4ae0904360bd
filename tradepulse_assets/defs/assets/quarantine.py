"""Quarantine batches: one dynamic partition per quarantined batch.

The failure sensor registers a batch (incident, market, session, delivery, reason) in the state database,
adds its partition and launches this asset for it; materialising copies the delivery's bytes as landed (the
raw copy of that delivery, never a re-fetch) bit for bit under ``quarantine/<incident>/<batch>/``, tagged with
incident, market, session and reason (S3 object tags, or a sidecar on a directory), and audits it. Release
and discard are recorded by ``tradepulse-cli`` on the same batch.
"""

import dagster as dg

from tradepulse_assets.defs.resources import ClockResource, ObjectStoreResource, StateResource
from tradepulse_assets.pipeline import quarantine
from tradepulse_assets.storage.audit import audit_log_for

QUARANTINE_PARTITIONS = dg.DynamicPartitionsDefinition(name="quarantine_batches")


@dg.asset(
    key=["quarantine", "quarantine_batches"],
    partitions_def=QUARANTINE_PARTITIONS,
    group_name="incident_response",
    kinds={"s3"},
    description="Offending batches with their original bytes, tagged with the incident id (runbook section 2).",
)
def quarantine_batches(
    context: dg.AssetExecutionContext, object_store: ObjectStoreResource, state: StateResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    store, db = object_store.store(), state.db()
    audit = audit_log_for(store, db, clock=clock.clock().now)
    batch = quarantine.quarantine_batch(store, db, context.partition_key, audit)
    context.log.info(f"quarantined {batch['files']} file(s) of {batch['market']} {batch['session']} "
                     f"under {batch['prefix']} for incident {batch['incident_id']}")
    return dg.MaterializeResult(metadata=batch)
