"""Runs on more than one machine (#14): the production profile with Dagster's Celery executor.

Two Celery workers, each its own "machine" (its own empty ``TRADEPULSE_HOME``, ``DAGSTER_HOME``, temp
directory and working directory), take the steps of XNYS ingestion runs from a Redis broker; the run's
orchestrator (this test process, as a run worker would be) executes no step. Everything the steps share goes
through PostgreSQL (Dagster's run and event storage, the state DB) and S3 (moto's HTTP server): the lake, the
health catalog, the audit trail, step logs. What a user cares about, asserted:

- every step ran in a worker's pool process, and both workers ran steps;
- each production partition in S3 is byte for byte (sha256) what a direct ingestion of the same vendor data
  writes; features were derived; the asset checks' results are rows of PostgreSQL;
- the health catalog and step logs are in the bucket, the audit trail in the state DB; the workers' homes hold
  only caches and the orchestrator's DAGSTER_HOME only its dagster.yaml;
- a step that fails on a worker fails the run, with the step's error in the run's event log.
"""

import datetime as dt
import hashlib
import os
import socket
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._core.events import DagsterEventType

from tradepulse_assets.defs.assets.bars import market_key
from tradepulse_assets.defs.definitions import build_resources
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.pipeline.ownership import SessionLedger
from tradepulse_assets.pipeline.settings import load_settings
from tradepulse_assets.quality.catalog import health_catalog_for
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.audit import AuditLog, StateAuditLog
from tradepulse_assets.storage.home import HEALTH_CATALOG
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.incidents.db_support import REQUIRE_ENV
from tradepulse_assets_tests.production.location import CHECKOUT, reconstructable_job
from tradepulse_assets_tests.production.runs import check_outcomes, failure_summary, publisher, s3_key
from tradepulse_assets_tests.support.celery_workers import (
    celery_workers,
    parent_pid,
    redis_available,
    redis_broker,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

XNYS = load_registry().get("XNYS")
SESSIONS = (dt.date(2026, 3, 9), dt.date(2026, 3, 10))
UNPUBLISHED = dt.date(2026, 3, 11)  # never published: landing fails on whichever worker takes it
RUN_CLOCK = "simulated:2026-03-10T20:10:00+00:00:1"
INGEST_JOB = "xnys_ingest"
REDIS_PORT = 6390  # the dist lane's port (tests of other lanes use other ranges)
WORKERS = ["worker-a", "worker-b"]


@pytest.fixture
def broker_url(tmp_path):
    if not redis_available():
        reason = "the Celery test needs Debian's redis-server (source .ci/services.sh installs it)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}; {REQUIRE_ENV}=1 forbids skipping it")
        pytest.skip(reason)
    with redis_broker(REDIS_PORT, tmp_path / "redis") as url:
        yield url


@pytest.fixture
def workers(tmp_path, monkeypatch, production_profile, production_instance, broker_url):
    """The celery profile exported here, and two workers started with it (each with its own home)."""
    monkeypatch.setenv("TRADEPULSE_EXECUTOR", "celery")
    monkeypatch.setenv("TRADEPULSE_CELERY_BROKER_URL", broker_url)
    monkeypatch.setenv("TRADEPULSE_CLOCK", RUN_CLOCK)
    with celery_workers(broker_url, tmp_path / "machines", WORKERS, dict(os.environ), CHECKOUT) as started:
        yield started


def execute(instance: dg.DagsterInstance, session: dt.date) -> tuple[bool, str]:
    with dg.execute_job(reconstructable_job(INGEST_JOB), instance=instance,
                        tags={"dagster/partition": session.isoformat()}) as result:
        return result.success, result.run_id


def step_workers(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """The Celery worker each step ran on, from the engine event dagster-celery logs as a worker starts it."""
    placed = {}
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        metadata = record.dagster_event.event_specific_data.metadata or {}
        if "Celery worker" in metadata:
            placed[record.dagster_event.step_key] = metadata["Celery worker"].value
    return placed


def step_pids(instance: dg.DagsterInstance, run_id: str) -> dict[str, int]:
    records = instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
    return {r.dagster_event.step_key: r.dagster_event.pid for r in records}


def check_rows_in_postgres(pg_url: str, run_id: str) -> dict[str, str]:
    """``{check name: execution status}`` of a run, read from Dagster's own table in PostgreSQL."""
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT check_name, execution_status FROM asset_check_executions WHERE run_id = %s", (run_id,)
        )
        return dict(cur.fetchall())


def direct_production_sha256(vendor_dir: Path, root: Path, session: dt.date) -> str:
    """The same session through the pipeline functions alone (no Dagster, local store, SQLite state)."""
    store = LocalObjectStore(root / "store")
    ledger = SessionLedger(StateDB(f"sqlite:///{root / 'state.db'}"))
    now = dt.datetime(2026, 3, 10, 20, 10, tzinfo=dt.UTC)
    done = ingest.ingest_session_exclusively(
        DirectoryConnector(vendor_dir), store, AuditLog(root / "home"), ledger, XNYS, session, now, "direct"
    )
    assert done.promoted_rows == XNYS.universe_size * 390
    return hashlib.sha256(store.get_bytes(lake.partition_key("production", "XNYS", session))).hexdigest()


def test_steps_run_on_celery_workers_that_share_only_postgres_and_s3(
    tmp_path, production_profile, production_instance, workers
):
    profile, instance = production_profile, production_instance
    settings = load_settings()
    assert settings.executor == "celery"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    s3 = profile.s3.client()
    vendor = publisher(profile.vendor_source, profile.s3.endpoint_url)
    local_vendor = publisher(str(tmp_path / "vendor-copy"), None)  # the same seed: the same bytes
    for session in SESSIONS:
        vendor.publish_session("XNYS", session)
        local_vendor.publish_session("XNYS", session)

    placements: dict[str, str] = {}
    run_ids = []
    for session in SESSIONS:
        ok, run_id = execute(instance, session)
        assert ok, f"{session} failed:\n{failure_summary(instance, run_id)}"
        run_ids.append(run_id)
        placed, pids = step_workers(instance, run_id), step_pids(instance, run_id)
        # land, stage, promote, features (and the consumers)
        assert placed.keys() == pids.keys() and len(pids) >= 4, (placed, pids)
        assert set(placed.values()) <= {w.name for w in workers}, placed
        # In the worker's pool process: never this process, the child of the worker that says it ran the step.
        by_name = {w.name: w.pid for w in workers}
        assert os.getpid() not in pids.values()
        assert all(parent_pid(pids[step]) == by_name[name] for step, name in placed.items()), (placed, pids)
        placements.update({f"{session} {step}": name for step, name in placed.items()})

        # The lake in S3 holds exactly what the pipeline alone makes of the same delivery.
        production = s3.get_object(
            Bucket=profile.data_bucket,
            Key=s3_key(profile.object_store_url, lake.partition_key("production", "XNYS", session)),
        )["Body"].read()
        direct = direct_production_sha256(tmp_path / "vendor-copy", tmp_path / f"direct-{session}", session)
        assert hashlib.sha256(production).hexdigest() == direct
        # Every gate evaluated and passed, recorded by Dagster in PostgreSQL.
        outcomes = check_outcomes(instance, run_id)
        assert "landing_verification" in outcomes and len(outcomes) > 5 and all(outcomes.values()), outcomes
        assert check_rows_in_postgres(profile.pg_url, run_id) == dict.fromkeys(outcomes, "SUCCEEDED")
    for asset in ("production_bars", "indicator_features"):
        materialized = instance.get_materialized_partitions(market_key(XNYS, asset))
        assert set(materialized) >= {s.isoformat() for s in SESSIONS}, asset
    assert set(placements.values()) == {w.name for w in workers}, f"one worker ran every step: {placements}"
    print(f"\nsteps per worker on {socket.gethostname()}: {placements}")

    # Shared data in the bucket and the state DB; the workers' homes hold nothing of it.
    store = build_resources(settings)["object_store"].process_config_and_initialize().store()
    assert health_catalog_for(store).keys("XNYS") == [
        f"{HEALTH_CATALOG}/market=XNYS/session={session}.parquet" for session in SESSIONS
    ]
    trail = StateAuditLog(StateDB(settings.state_db_url)).read(market="XNYS")
    assert {(e["session"], e["event"]) for e in trail} >= {(s.isoformat(), "promotion") for s in SESSIONS}
    for worker in workers:
        written = [p.relative_to(worker.home).as_posix() for p in worker.home.rglob("*") if p.is_file()]
        assert all(path.startswith("cache/") for path in written), f"{worker.name} kept at home: {written}"
    # Step logs went to the bucket (deploy/dagster.yaml), not to the orchestrator's DAGSTER_HOME.
    dagster_home = Path(os.environ["DAGSTER_HOME"])
    assert [p.name for p in dagster_home.rglob("*") if p.is_file()] == ["dagster.yaml"]
    logs = s3.list_objects_v2(Bucket=profile.data_bucket, Prefix="dagster/compute-logs/").get("Contents", [])
    assert {run_id for run_id in run_ids if any(run_id in o["Key"] for o in logs)} == set(run_ids)

    # A step failing on a worker fails the run, and the run says why.
    ok, failed_run = execute(instance, UNPUBLISHED)
    assert not ok
    failures = instance.all_logs(failed_run, of_type=DagsterEventType.STEP_FAILURE)
    steps = [r.dagster_event.step_key for r in failures]
    assert len(steps) == 1 and steps[0].endswith("landed_bars"), failure_summary(instance, failed_run)
    error = failures[0].dagster_event.event_specific_data.error.to_string()
    assert UNPUBLISHED.isoformat() in error, error
    assert instance.get_run_by_id(failed_run).status == dg.DagsterRunStatus.FAILURE
