"""Quality-failure sensor: a failed blocking gate -> incident (contained) + the delivery quarantined.

It watches failed runs (of the ingestion jobs, and of the asset job the UI and backfills launch), reads the
asset-check evaluations of the run, and opens or joins the incident of the session: an open incident covering
the session (e.g. the lag incident of the same late, corrupt delivery) is renamed by the strongest evidence
(``decisions.reclassify``: checksum mismatch beats lag).
The delivery the failed run judged (its digest and revision, from the run's own landing materialisation, not
the session's latest receipt: the vendor may have fixed the file in place and a later run landed it before
this tick) is quarantined once per distinct delivery digest (``decisions.should_quarantine``); the same bytes
failing again add no batch and no run.
A range run (many sessions in one run, ``bars.run_session_range``) is answered session by session: each failed
check names its session, and each failed session gets its own incident decision and quarantine.
"""

import dagster as dg

from tradepulse_assets.defs.assets.bars import INCIDENT_TAG, MARKET_TAG
from tradepulse_assets.defs.assets.features import TOLERANCE_CHECK
from tradepulse_assets.defs.assets.quarantine import QUARANTINE_PARTITIONS
from tradepulse_assets.defs.partitions import session_of_key
from tradepulse_assets.defs.resources import ClockResource, NotificationsResource, ObjectStoreResource, StateResource
from tradepulse_assets.defs.sensors.common import build_responder
from tradepulse_assets.pipeline import decisions, ingest, quarantine
from tradepulse_assets.pipeline.response import open_incident_covering
from tradepulse_assets.quality.results import MANIFEST_RECONCILIATION

# What a failed landing fault or gate tells about the cause of the incident.
CAUSE_BY_FAULT = {"sha256": "checksum_mismatch", "size": "checksum_mismatch", "record_count": "checksum_mismatch"}
CAUSE_BY_GATE = {"schema": "schema_mismatch", ingest.LANDING_GATE: "checksum_mismatch"}
VENDOR_DEGRADED = "vendor_degraded"  # the vendor itself flagged the session (manifest or condition.json)


def failed_blocking_checks(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = [r.dagster_event.event_specific_data for r in records]
    return [e for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]


def failed_checks_by_session(instance: dg.DagsterInstance, run: dg.DagsterRun
                             ) -> dict[str, list[dg.AssetCheckEvaluation]]:
    """The run's failed blocking checks by session key: a check verdict names its session (a range run's
    verdicts each name their own); without one, the run's partition is the session."""
    by_session: dict[str, list[dg.AssetCheckEvaluation]] = {}
    for evaluation in failed_blocking_checks(instance, run.run_id):
        key = evaluation.partition or run.tags.get("dagster/partition")
        if key:
            by_session.setdefault(key, []).append(evaluation)
    return by_session


def delivery_of_run(instance: dg.DagsterInstance, run_id: str, receipt: dict, partition_key: str
                    ) -> tuple[str | None, int]:
    """(delivery digest, revision) the run landed for the session, from its ``landed_bars`` materialisation;
    a run that did not land (a re-run of staging alone) judged the session's latest landing: its receipt."""
    records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    for record in records:
        if record.dagster_event.partition != partition_key:
            continue  # another session of a range run
        materialization = record.dagster_event.event_specific_data.materialization
        metadata = materialization.metadata
        if materialization.asset_key.path[-1] == "landed_bars" and "delivery" in metadata:
            return metadata["delivery"].value, int(metadata["revision"].value)
    return receipt.get("delivery"), int(receipt.get("revision", 0))


def _evidence(evaluation: dg.AssetCheckEvaluation) -> list[dict]:
    found = evaluation.metadata.get("evidence")
    return [e for e in (found.value if found else None) or [] if isinstance(e, dict)]


def cause_of(evaluation: dg.AssetCheckEvaluation) -> str:
    if evaluation.check_name == ingest.LANDING_GATE:
        checks = {f.get("check") for f in _evidence(evaluation)}
        for check in ("sha256", "size", "record_count"):
            if check in checks:
                return CAUSE_BY_FAULT[check]
        return "schema_mismatch" if checks & {"parse", "schema"} else "checksum_mismatch"
    if evaluation.check_name == TOLERANCE_CHECK:
        return "tolerance_gate"
    degraded = any("condition" in e for e in _evidence(evaluation))
    if evaluation.check_name == MANIFEST_RECONCILIATION and degraded:
        return VENDOR_DEGRADED
    return CAUSE_BY_GATE.get(evaluation.check_name, "quality_gate")


def _incident_for(responder, run, cause, market_id, session, description, now, evidence_at):
    """A run of an incident (tagged) or of a session an open incident covers reports into that incident,
    renamed by the stronger evidence if this is stronger; any other failure opens or joins one by cause."""
    store = responder.engine.store
    tagged = run.tags.get(INCIDENT_TAG)
    existing = store.get(tagged) if tagged else open_incident_covering(store, market_id, session)
    data = {"run_id": run.run_id, "evidence_at": evidence_at}
    if existing is not None and existing.is_open:
        store.add_event(existing.id, "detection", description, now=now, data=data)
        stronger = decisions.reclassify(existing.cause, cause)
        if stronger is not None:
            responder.engine.reclassify(existing.id, stronger, now=now, reason=description)
        return store.get(existing.id)
    incident, _ = responder.detect(
        cause, market_id, now=now, sessions=[session.isoformat()], description=description, data=data,
    )
    return incident


def respond_to_session(instance: dg.DagsterInstance, responder, store, run: dg.DagsterRun, partition_key: str,
                       failed: list[dg.AssetCheckEvaluation], now) -> dg.RunRequest | dg.SkipReason:
    """One failed session of a run: open or join its incident and quarantine the delivery it judged."""
    market_id = failed[0].asset_key.path[0].upper()  # asset keys are <market>/<asset>; UI runs have no tag
    session = session_of_key(partition_key)
    receipt = ingest.read_receipt(store, market_id, session) or {}
    # One failed session is one fault: one incident (named by its most specific cause), one quarantined batch.
    cause = decisions.strongest_cause(cause_of(e) for e in failed)
    primary = next(e for e in failed if cause_of(e) == cause)
    gates = ", ".join(e.check_name for e in failed)
    summary = primary.description or primary.check_name
    description = f"{market_id} {session}: blocking gate(s) failed: {gates}. {primary.check_name}: {summary}"
    evidence_at = receipt.get("landed_at") or now.isoformat()
    incident = _incident_for(responder, run, cause, market_id, session, description, now, evidence_at)
    if all(e.check_name == TOLERANCE_CHECK for e in failed):
        # the bars passed their gates: nothing to quarantine; the incident holds the consumers
        return dg.SkipReason(
            f"{market_id} {session}: indicator tolerance failed; recorded on incident {incident.id}"
        )
    digest, revision = delivery_of_run(instance, run.run_id, receipt, partition_key)
    digest = digest or run.run_id
    known = [quarantine.digest_of_batch(b.batch_id)
             for b in responder.engine.store.quarantined_for(market_id, session.isoformat())]
    if not decisions.should_quarantine(digest, known):
        delivery = decisions.short_digest(digest)
        return dg.SkipReason(f"{market_id} {session}: delivery {delivery} is already quarantined; "
                             f"recorded on incident {incident.id}")
    key = quarantine.record_batch(
        responder.engine.store, incident.id, market_id, session, revision, digest, f"{gates}: {summary}", now,
    )
    instance.add_dynamic_partitions(QUARANTINE_PARTITIONS.name, [key])
    return dg.RunRequest(partition_key=key, run_key=f"quarantine:{key}",
                         tags={INCIDENT_TAG: incident.id, MARKET_TAG: market_id})


def build_quality_failure_sensor(quarantine_job, min_interval: int | None = None) -> dg.SensorDefinition:
    # Every job of the code location, not only the ingest jobs: runs launched from the UI and Dagster's
    # backfills (the bar assets' session ranges) run as the implicit ``__ASSET_JOB``. A failed run without a
    # failed blocking check (a consumer, the quarantine job) is skipped below.
    @dg.run_failure_sensor(
        name="quality_failure_sensor",
        request_job=quarantine_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=min_interval or 15,
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
        by_session = failed_checks_by_session(context.instance, run)
        if not by_session:
            return dg.SkipReason(f"run {run.run_id} failed without a failed blocking gate (see the run's logs)")
        now = clock.clock().now()
        responder = build_responder(object_store, state, notifications, clock)
        store = object_store.store()
        answers = [respond_to_session(context.instance, responder, store, run, key, failed, now)
                   for key, failed in by_session.items()]
        requests = [a for a in answers if isinstance(a, dg.RunRequest)]
        skipped = "; ".join(a.skip_message for a in answers if isinstance(a, dg.SkipReason))
        if not requests:
            return dg.SkipReason(skipped)
        if skipped:
            context.log.info(skipped)
        return requests

    return quality_failure_sensor
