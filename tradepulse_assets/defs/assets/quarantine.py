"""Quarantine batches: one dynamic partition per quarantined batch.

The failure sensor registers a batch (incident, market, session, reason) in the state database, adds its
partition and launches this asset for it; materialising copies the batch's original landed bytes bit for bit
under ``quarantine/<incident>/<batch>/``, tagged with incident, market, session and reason (S3 object tags,
or a sidecar on a directory). Release and discard are recorded by ``tradepulse-cli`` on the same batch.
"""

import dagster as dg

from tradepulse_assets.defs.resources import ObjectStoreResource, StateResource
from tradepulse_assets.pipeline import quarantine

QUARANTINE_PARTITIONS = dg.DynamicPartitionsDefinition(name="quarantine_batches")


@dg.asset(
    key=["quarantine", "quarantine_batches"],
    partitions_def=QUARANTINE_PARTITIONS,
    group_name="incident_response",
    kinds={"s3"},
    description="Offending batches with their original bytes, tagged with the incident id (runbook section 2).",
)
def quarantine_batches(
    context: dg.AssetExecutionContext, object_store: ObjectStoreResource, state: StateResource
) -> dg.MaterializeResult:
    batch = quarantine.quarantine_batch(object_store.store(), state.db(), context.partition_key)
    context.log.info(f"quarantined {batch['files']} file(s) of {batch['market']} {batch['session']} "
                     f"under {batch['prefix']} for incident {batch['incident_id']}")
    return dg.MaterializeResult(metadata=batch)
