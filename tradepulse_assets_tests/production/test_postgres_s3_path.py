"""The production profile end to end: PostgreSQL (Dagster instance and state DB), S3 (lake, landing,
quarantine and the vendor drop) and the multiprocess executor, through the same code as the embedded default.

One test walks the runbook's path, because each stage needs the state the previous one left:
(a) a clean XNYS session lands, passes its gates and reaches production, as objects in S3;
(b) the next session arrives corrupted: landing fails, the quality-failure sensor opens an incident in the
    PostgreSQL state DB and requests the quarantine run, which keeps the vendor's bytes bit for bit under
    ``quarantine/`` with S3 object tags;
(c) the vendor fixes the file in place; after the session's deadline the lag sensor requests the backfill of the
    changed delivery (never of the unchanged quarantined one), the backfill run promotes the session and records a reconciled backfill on its incident.
Sensors are ticked as the daemon would (``evaluate_tick``) and runs execute through the instance, so every step
runs in its own subprocess rebuilt from ``location.py``.
"""

import dataclasses
import datetime as dt
import hashlib
import os
import time

import dagster as dg
import polars as pl
import pytest
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.events import DagsterEventType

from tradepulse_assets.defs.assets.bars import INCIDENT_TAG, MARKET_TAG, market_key
from tradepulse_assets.defs.definitions import build_definitions, build_resources
from tradepulse_assets.incidents.reports import incident_dir
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline.ingest import raw_prefix
from tradepulse_assets.pipeline.settings import load_settings
from tradepulse_assets.quality.catalog import health_catalog_for
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.audit import StateAuditLog
from tradepulse_assets.storage.home import HEALTH_CATALOG
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets.feeds.publisher import read_manifest, session_prefix
from tradepulse_assets.feeds.scenarios import FaultSpec
from tradepulse_assets_tests.production.location import reconstructable_job
from tradepulse_assets_tests.production.runs import check_outcomes, failure_summary, publisher, s3_key

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

XNYS = load_registry().get("XNYS")
CLEAN = dt.date(2026, 3, 9)  # Monday, first session after the US DST change
CORRUPT = dt.date(2026, 3, 10)
# After CORRUPT's close (20:00 UTC) plus the 300 s SLA: the lag sensor must see a breach.
AFTER_DEADLINE = dt.datetime(2026, 3, 10, 20, 30, tzinfo=dt.UTC)
RUN_CLOCK = "simulated:2026-03-10T20:10:00+00:00:1"
INGEST_JOB = "xnys_ingest"
# Step workers fork from a server that imported the code location once (docs/production.md): without it each
# step re-imports polars, numba and Dagster and rebuilds the definitions (a clean partition took 47 s, not 16-25 s).
PRELOADED_WORKERS = {
    "execution": {
        "config": {
            "start_method": {"forkserver": {"preload_modules": ["tradepulse_assets.defs.definitions"]}}
        }
    }
}
QUARANTINE_JOB = "quarantine_batch"


# --- helpers --------------------------------------------------------------------------------------------------


def execute(
    instance: dg.DagsterInstance,
    job_name: str,
    partition_key: str,
    tags: dict | None = None,
):
    """Run ``job_name`` for one partition through the instance, as a run worker would (multiprocess executor)."""
    run_tags = {**(tags or {}), "dagster/partition": partition_key}
    with dg.execute_job(
        reconstructable_job(job_name),
        instance=instance,
        tags=run_tags,
        run_config=PRELOADED_WORKERS,
    ) as result:
        return result.success, result.run_id


def step_pids(instance: dg.DagsterInstance, run_id: str) -> dict[str, int]:
    """The process id each step started in (from the run's STEP_START events)."""
    records = instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
    return {r.dagster_event.step_key: r.dagster_event.pid for r in records}


def tick(defs: dg.Definitions, sensor_name: str, instance, resources, cursor=None):
    """One daemon-like evaluation of a sensor; returns its (partition-resolved) run requests and new cursor.

    ``definitions`` lets partitioned requests resolve against their job; the repository *name* stays unset,
    like the runs of ``execute_job``, so the run-status sensor matches those runs as its own.
    """
    sensor = defs.resolve_sensor_def(sensor_name)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
    with partition_loading_context(
        dynamic_partitions_store=instance
    ):  # as the daemon does: dynamic partitions
        data = sensor.evaluate_tick(context)
    return list(data.run_requests or []), data.cursor


# --- the path ---------------------------------------------------------------------------------------------------


def test_session_lands_quarantines_and_backfills_on_postgres_and_s3(
    production_profile, production_instance, monkeypatch
):
    profile, instance = production_profile, production_instance
    monkeypatch.setenv("TRADEPULSE_CLOCK", RUN_CLOCK)
    settings = load_settings()
    assert (settings.executor, settings.object_store_url, settings.vendor_source) == (
        "multiprocess",
        profile.object_store_url,
        profile.vendor_source,
    )
    defs = build_definitions(settings=settings)
    resources = build_resources(settings)
    s3 = profile.s3.client()
    store = resources["object_store"].process_config_and_initialize().store()  # resolves its EnvVars, as a run does
    incidents = IncidentStore(StateDB(settings.state_db_url))

    corruption = FaultSpec("checksum_corruption", "XNYS", CORRUPT, CORRUPT, {"bytes": 8})
    vendor = publisher(profile.vendor_source, profile.s3.endpoint_url, corruption)
    vendor.publish_session("XNYS", CLEAN)
    vendor.publish_session("XNYS", CORRUPT)

    failure_sensor = "quality_failure_sensor"
    # A run-status sensor's first tick only sets its cursor to "now": take it before anything fails.
    requests, failure_cursor = tick(defs, failure_sensor, instance, resources)
    assert requests == [] and failure_cursor

    # (a) a clean session: landing -> staging -> production, every step in its own process, objects in S3.
    started = time.perf_counter()
    ok, clean_run = execute(instance, INGEST_JOB, CLEAN.isoformat())
    print(f"\nclean XNYS partition on the multiprocess executor: {time.perf_counter() - started:.1f} s")
    assert ok, f"clean run failed:\n{failure_summary(instance, clean_run)}"
    pids = step_pids(instance, clean_run)
    assert len(pids) >= 3 and os.getpid() not in pids.values()
    assert len(set(pids.values())) == len(pids), f"steps shared a process: {pids}"
    production_key = s3_key(profile.object_store_url, lake.partition_key("production", "XNYS", CLEAN))
    assert s3.head_object(Bucket=profile.data_bucket, Key=production_key)["ContentLength"] > 0
    assert lake.read_frame(store, "production", "XNYS", CLEAN).height == XNYS.universe_size * 390
    assert CLEAN.isoformat() in instance.get_materialized_partitions(market_key(XNYS, "production_bars"))
    landed = s3.list_objects_v2(
        Bucket=profile.data_bucket, Prefix=s3_key(profile.object_store_url, raw_prefix("XNYS", CLEAN))
    )
    assert any(o["Key"].endswith(".parquet") for o in landed.get("Contents", [])), "landing not in S3"
    assert not (profile.home / "store").exists(), "something fell back to the embedded object store"

    # (b) a corrupted session fails landing; the sensor opens the incident and requests the quarantine run.
    ok, corrupt_run = execute(instance, INGEST_JOB, CORRUPT.isoformat())
    assert not ok
    assert check_outcomes(instance, corrupt_run) == {"landing_verification": False}
    assert not store.exists(lake.partition_key("production", "XNYS", CORRUPT))

    requests, failure_cursor = tick(defs, failure_sensor, instance, resources, failure_cursor)
    assert len(requests) == 1, requests
    quarantine_request = requests[0]
    incident_id = quarantine_request.tags[INCIDENT_TAG]
    incident = incidents.get(incident_id)
    assert incident.cause == "checksum_mismatch" and incident.market == "XNYS"
    (batch,) = incidents.quarantined_batches(incident_id)
    assert (batch.market, batch.session) == ("XNYS", CORRUPT.isoformat())
    # A repeated tick after the failure launches nothing twice.
    assert tick(defs, failure_sensor, instance, resources, failure_cursor)[0] == []

    ok, quarantine_run = execute(
        instance,
        QUARANTINE_JOB,
        quarantine_request.partition_key,
        quarantine_request.tags,
    )
    assert ok, f"quarantine run failed:\n{failure_summary(instance, quarantine_run)}"
    prefix = lake.quarantine_prefix(incident_id, batch.batch_id)
    quarantined = [k for k in store.list_keys(prefix) if not k.endswith(lake.REASON_FILE)]
    assert quarantined, f"nothing quarantined under {prefix}"
    vendor_prefix = s3_key(profile.vendor_source, session_prefix("XNYS", CORRUPT))
    for key in quarantined:
        name = key.rsplit("/", 1)[-1]
        delivered = s3.get_object(Bucket=profile.vendor_bucket, Key=f"{vendor_prefix}/{name}")["Body"].read()
        kept = s3.get_object(Bucket=profile.data_bucket, Key=s3_key(profile.object_store_url, key))[
            "Body"
        ].read()
        assert kept == delivered, f"{key} differs from the vendor's {name}"
        tagging = s3.get_object_tagging(Bucket=profile.data_bucket, Key=s3_key(profile.object_store_url, key))
        tags = {t["Key"]: t["Value"] for t in tagging["TagSet"]}
        assert tags["incident_id"] == incident_id
        assert (tags["market"], tags["session"]) == ("XNYS", CORRUPT.isoformat())
        assert tags["reason"].startswith("landing_verification")
    bars_name = next(k.rsplit("/", 1)[-1] for k in quarantined if "bars" in k)
    manifest = read_manifest(vendor.dest, "XNYS", CORRUPT)
    expected_sha = {f.name: f.sha256 for f in manifest.files}[bars_name]
    kept_bars = store.get_bytes(f"{prefix}{bars_name}")
    assert hashlib.sha256(kept_bars).hexdigest() != expected_sha  # the corrupted bytes, not a repaired copy

    # The vendor fixes the file in place: the good bytes under the same key, the manifest unchanged.
    good = publisher(str(profile.home / "vendor-fixed"), None).publish_session  # same seed, no fault
    good("XNYS", CORRUPT)
    fixed_bytes = (profile.home / "vendor-fixed" / session_prefix("XNYS", CORRUPT) / bars_name).read_bytes()
    assert hashlib.sha256(fixed_bytes).hexdigest() == expected_sha
    s3.put_object(
        Bucket=profile.vendor_bucket,
        Key=f"{vendor_prefix}/{bars_name}",
        Body=fixed_bytes,
    )

    # (c) after the deadline the lag sensor requests the backfill of exactly the missing session, once the vendor
    # changed the delivery (an unchanged quarantined delivery is never retried).
    clock = dataclasses.replace(settings, clock=f"simulated:{AFTER_DEADLINE.isoformat()}:1")
    lag_sensor = "xnys_lag_sensor"
    requests, _ = tick(defs, lag_sensor, instance, build_resources(clock))
    assert [r.partition_key for r in requests] == [CORRUPT.isoformat()]
    backfill_request = requests[0]
    backfill_incident = backfill_request.tags[INCIDENT_TAG]
    assert backfill_request.tags[MARKET_TAG] == "XNYS"

    ok, backfill_run = execute(instance, INGEST_JOB, backfill_request.partition_key, backfill_request.tags)
    assert ok, f"backfill run failed:\n{failure_summary(instance, backfill_run)}"
    assert lake.read_frame(store, "production", "XNYS", CORRUPT).height == XNYS.universe_size * 390
    records = [r for r in incidents.backfills(backfill_incident) if r.session == CORRUPT.isoformat()]
    assert len(records) == 1, records
    record = records[0]
    assert (record.market, record.run_id, record.checksums_ok) == (
        "XNYS",
        backfill_run,
        True,
    )
    assert record.rows == record.vendor_rows == XNYS.universe_size * 390
    assert record.verdict == "reconciled"
    # Nothing is missing any more: the next lag tick requests nothing.
    assert tick(defs, lag_sensor, instance, build_resources(clock))[0] == []

    # Nothing shared on local disk (#14): reports and the health catalog are in the bucket, the audit trail in
    # PostgreSQL. Under the home: caches, the fixed vendor files this test wrote there itself, and the `file`
    # notification transport's local copy (its record of truth is the state DB's outbox row).
    assert not (profile.home / "reports").exists()
    local = {p.relative_to(profile.home).as_posix() for p in (profile.home / "observability").rglob("*") if p.is_file()}
    assert local <= {"observability/notifications/outbox.jsonl", "observability/notifications/outbox.jsonl.lock"}, local
    reports = store.list_keys("reports/")
    assert f"{incident_dir(incidents.get(incident_id))}/timeline.md" in reports
    assert any(k.startswith(f"reports/backfill/{backfill_incident}/") for k in reports)
    health = health_catalog_for(store)
    assert health.keys("XNYS") == [f"{HEALTH_CATALOG}/market=XNYS/session={d}.parquet" for d in (CLEAN, CORRUPT)]
    backfilled = health.read("XNYS").filter((pl.col("session") == CORRUPT) & pl.col("blocking"))
    assert backfilled.height > 0 and backfilled["passed"].all()  # the backfill's verdicts, not the failed run's
    trail = StateAuditLog(StateDB(settings.state_db_url)).read(market="XNYS")
    assert {(e["session"], e["event"]) for e in trail} >= {(CLEAN.isoformat(), "promotion"),
                                                           (CORRUPT.isoformat(), "promotion")}, trail
