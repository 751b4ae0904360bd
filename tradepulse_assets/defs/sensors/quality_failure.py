"""Quality-failure sensor: a failed blocking gate -> incident (contained) + the batch quarantined.

It watches failed runs of the ingestion jobs, reads the asset-check evaluations of the run, and for each
failed blocking check opens or joins the incident of its cause, registers the landed batch for quarantine
and launches the quarantine run for it (one dynamic partition per batch).
"""

import dagster as dg
from dagster._core.events import DagsterEventType

from tradepulse_assets.defs.assets.bars import INCIDENT_TAG, MARKET_TAG
from tradepulse_assets.defs.assets.features import TOLERANCE_CHECK
from tradepulse_assets.defs.assets.quarantine import QUARANTINE_PARTITIONS
from tradepulse_assets.defs.partitions import session_of_key
from tradepulse_assets.defs.resources import ClockResource, NotificationsResource, ObjectStoreResource, StateResource
from tradepulse_assets.defs.sensors.common import build_responder
from tradepulse_assets.pipeline import ingest, quarantine
from tradepulse_assets.pipeline.response import open_incident_covering

# What a failed landing fault or gate tells about the cause of the incident.
CAUSE_BY_FAULT = {"sha256": "checksum_mismatch", "size": "checksum_mismatch", "record_count": "checksum_mismatch"}
CAUSE_BY_GATE = {"schema": "schema_mismatch", ingest.LANDING_GATE: "checksum_mismatch"}
CAUSE_PRIORITY = ("checksum_mismatch", "schema_mismatch", "quality_gate", "tolerance_gate")  # most specific first


def failed_blocking_checks(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    records = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = [r.dagster_event.event_specific_data for r in records]
    return [e for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]


def cause_of(evaluation: dg.AssetCheckEvaluation) -> str:
    if evaluation.check_name == ingest.LANDING_GATE:
        faults = evaluation.metadata.get("evidence")
        checks = {f.get("check") for f in (faults.value if faults else [])} if faults else set()
        for check in ("sha256", "size", "record_count"):
            if check in checks:
                return CAUSE_BY_FAULT[check]
        return "schema_mismatch" if checks & {"parse", "schema"} else "checksum_mismatch"
    if evaluation.check_name == TOLERANCE_CHECK:
        return "tolerance_gate"
    return CAUSE_BY_GATE.get(evaluation.check_name, "quality_gate")


def _incident_for(responder, run, cause, market_id, session, description, now):
    """A run of an incident (tagged) or of a session an open incident covers reports into that incident;
    any other failure opens or joins an incident by cause."""
    store = responder.engine.store
    tagged = run.tags.get(INCIDENT_TAG)
    existing = store.get(tagged) if tagged else open_incident_covering(store, market_id, session)
    if existing is not None:
        store.add_event(existing.id, "detection", description, now=now, data={"run_id": run.run_id})
        return existing
    incident, _ = responder.detect(
        cause, market_id, now=now, sessions=[session.isoformat()], description=description,
        data={"run_id": run.run_id},
    )
    return incident


def build_quality_failure_sensor(jobs, quarantine_job) -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name="quality_failure_sensor",
        monitored_jobs=jobs,
        request_job=quarantine_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=15,
        description="A failed blocking gate opens or joins an incident and quarantines the offending batch.",
    )
    def quality_failure_sensor(
        context: dg.RunFailureSensorContext,
        object_store: ObjectStoreResource,
        state: StateResource,
        clock: ClockResource,
        notifications: NotificationsResource,
    ):
        run = context.dagster_run
        failed = failed_blocking_checks(context.instance, run.run_id)
        if not failed or not run.tags.get("dagster/partition"):
            return dg.SkipReason(f"run {run.run_id} failed without a failed blocking gate (see the run's logs)")
        market_id = failed[0].asset_key.path[0].upper()  # asset keys are <market>/<asset>; UI runs have no tag
        session = session_of_key(run.tags["dagster/partition"])
        now = clock.clock().now()
        responder = build_responder(object_store, state, notifications, clock)
        receipt = ingest.read_receipt(object_store.store(), market_id, session) or {}
        # One failed run is one fault: one incident (named by its most specific cause), one quarantined batch.
        primary = min(failed, key=lambda e: CAUSE_PRIORITY.index(cause_of(e)))
        gates = ", ".join(e.check_name for e in failed)
        summary = primary.description or primary.check_name
        description = f"{market_id} {session}: blocking gate(s) failed: {gates}. {primary.check_name}: {summary}"
        incident = _incident_for(responder, run, cause_of(primary), market_id, session, description, now)
        if all(e.check_name == TOLERANCE_CHECK for e in failed):
            return dg.SkipReason(  # the bars passed their gates: nothing to quarantine, the incident holds consumers
                f"{market_id} {session}: indicator tolerance failed; recorded on incident {incident.id}"
            )
        key = quarantine.register(
            responder.engine.store, incident.id, market_id, session, int(receipt.get("revision", 0)),
            run.run_id, f"{gates}: {summary}", now,
        )
        context.instance.add_dynamic_partitions(QUARANTINE_PARTITIONS.name, [key])
        return [dg.RunRequest(partition_key=key, run_key=f"quarantine:{key}",
                              tags={INCIDENT_TAG: incident.id, MARKET_TAG: market_id})]

    return quality_failure_sensor
