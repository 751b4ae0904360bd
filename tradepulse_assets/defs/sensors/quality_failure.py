"""Quality-failure sensor: a failed blocking gate -> incident (contained) + the batch quarantined.

It watches failed runs of the ingestion jobs, reads the asset-check evaluations of the run, and for each
failed blocking check opens or joins the incident of its cause, registers the landed batch for quarantine
and launches the quarantine run for it (one dynamic partition per batch).
"""

import dagster as dg
from dagster._core.events import DagsterEventType

from tradepulse_assets.defs.assets.bars import INCIDENT_TAG, MARKET_TAG
from tradepulse_assets.defs.assets.quarantine import QUARANTINE_PARTITIONS
from tradepulse_assets.defs.partitions import session_of_key
from tradepulse_assets.defs.resources import ClockResource, NotificationsResource, ObjectStoreResource, StateResource
from tradepulse_assets.defs.sensors.common import build_responder
from tradepulse_assets.pipeline import ingest, quarantine

# What a failed landing fault or gate tells about the cause of the incident.
CAUSE_BY_FAULT = {"sha256": "checksum_mismatch", "size": "checksum_mismatch", "record_count": "checksum_mismatch"}
CAUSE_BY_GATE = {"schema": "schema_mismatch", ingest.LANDING_GATE: "checksum_mismatch"}


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
    return CAUSE_BY_GATE.get(evaluation.check_name, "quality_gate")


def _incident_for(responder, run, cause, market_id, session, description, now):
    """A backfill run of an incident reports into that incident; any other run opens or joins by cause."""
    tagged = run.tags.get(INCIDENT_TAG)
    if tagged:
        responder.engine.store.add_event(tagged, "detection", description, now=now, data={"run_id": run.run_id})
        return responder.engine.store.get(tagged)
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
        market_id = run.tags.get(MARKET_TAG)
        session = session_of_key(run.tags["dagster/partition"])
        now = clock.clock().now()
        responder = build_responder(object_store, state, notifications, clock)
        receipt = ingest.read_receipt(object_store.store(), market_id, session) or {}
        requests, keys = [], []
        for evaluation in failed:
            gate_summary = evaluation.description or evaluation.check_name
            description = f"{market_id} {session}: gate {evaluation.check_name} failed: {gate_summary}"
            incident = _incident_for(responder, run, cause_of(evaluation), market_id, session, description, now)
            key = quarantine.register(
                responder.engine.store, incident.id, market_id, session, int(receipt.get("revision", 0)),
                run.run_id, f"{evaluation.check_name}: {gate_summary}", now,
            )
            if key not in keys:
                keys.append(key)
                requests.append(dg.RunRequest(partition_key=key, run_key=f"quarantine:{key}",
                                              tags={INCIDENT_TAG: incident.id, MARKET_TAG: market_id}))
        context.instance.add_dynamic_partitions(QUARANTINE_PARTITIONS.name, keys)
        return requests

    return quality_failure_sensor
