"""A backfill as ranges: many sessions in one run, each still gated, checked, leased and promoted on its own.

Real ranges of XNYS sessions through the market's ingest job on an ephemeral instance, with a corrupt delivery
in the middle: its neighbours must be promoted and recorded as such, the corrupt session must look exactly as
it does after a single-session run (to the exit criteria, the UI and the quality-failure sensor).
"""

import datetime as dt
import os
from pathlib import Path

import dagster as dg

from tradepulse_assets.defs.assets.bars import market_key
from tradepulse_assets.defs.sensors.check_results import forget_cached_results
from tradepulse_assets.defs.sensors.exit_criteria import latest_outcomes
from tradepulse_assets.feeds.scenarios import FaultSpec
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline.ownership import SessionLedger
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets_tests.defs.test_vendor_formats_e2e import tick

REGISTRY = load_registry()
XNYS = REGISTRY.get("XNYS")
SESSIONS = [dt.date(2026, 3, 4), dt.date(2026, 3, 5), dt.date(2026, 3, 6)]
CORRUPT = SESSIONS[1]
BARS = [market_key(XNYS, n) for n in ("landed_bars", "staging_bars", "production_bars")]


def publish_with_corrupt_middle(platform) -> None:
    for session in SESSIONS:
        corrupt = FaultSpec("checksum_corruption", "XNYS", session, session, {"bytes": 8})
        platform.publish("XNYS", session, *([corrupt] if session == CORRUPT else []))


def run_range(platform, defs, assets=BARS, job: str = "xnys_ingest"):
    """The bar assets over SESSIONS in one run, as a BackfillPolicy range run is launched."""
    asset_job = job == "__ASSET_JOB"
    job_def = defs.resolve_implicit_global_asset_job_def() if asset_job else defs.resolve_job_def(job)
    return job_def.execute_in_process(
        instance=platform.instance, asset_selection=assets, raise_on_error=False,
        tags={"dagster/asset_partition_range_start": SESSIONS[0].isoformat(),
              "dagster/asset_partition_range_end": SESSIONS[-1].isoformat()},
    )


def materialised(instance, asset: dg.AssetKey) -> list[str]:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=asset), limit=100).records
    return sorted(r.event_log_entry.dagster_event.partition for r in records)


def test_a_corrupt_session_in_a_range_stops_itself_and_its_neighbours_are_promoted(platform):
    publish_with_corrupt_middle(platform)
    defs = platform.definitions
    result = run_range(platform, defs)
    assert not result.success  # one run for the range; failed, as the corrupt session's own run would be

    store = LocalObjectStore(platform.home / "store")
    keys = [s.isoformat() for s in SESSIONS]
    good = [k for k in keys if k != CORRUPT.isoformat()]
    for session in SESSIONS:
        promoted = store.exists(lake.partition_key("production", "XNYS", session))
        assert promoted == (session != CORRUPT)
        if promoted:
            assert lake.read_frame(store, "production", "XNYS", session).height == XNYS.universe_size * 390
    # Recorded per session, as single-session runs record them: the corrupt delivery was landed (and judged),
    # it went no further; production holds only what was promoted.
    instance = platform.instance
    assert materialised(instance, BARS[0]) == keys
    assert materialised(instance, BARS[1]) == materialised(instance, BARS[2]) == good
    partitions = defs.resolve_assets_def(BARS[2]).partitions_def
    status = instance.get_status_by_partition(BARS[2], keys, partitions)
    assert {k: s.value for k, s in status.items()} == {
        k: "FAILED" if k == CORRUPT.isoformat() else "MATERIALIZED" for k in keys
    }

    # What the exit criteria read per session: the landing gate failed on the corrupt session only, every
    # blocking quality gate passed on its neighbours, each verdict from this one run.
    forget_cached_results()
    quality, _ = latest_outcomes(instance, REGISTRY, [("XNYS", k) for k in keys])
    landing = {o.partition: o.passed for o in quality if o.check == "landing_verification"}
    assert landing == {k: k != CORRUPT.isoformat() for k in keys}
    gates = [o for o in quality if o.check != "landing_verification"]
    assert {o.partition for o in gates if o.passed} == set(good)
    assert all(o.passed is None for o in gates if o.partition == CORRUPT.isoformat())  # never staged
    assert {o.run_id for o in quality if o.passed is not None} == {result.run_id}
    landing_check = dg.AssetCheckKey(BARS[0], "landing_verification")
    storage = instance.event_log_storage
    for info in storage.get_asset_check_partition_info([landing_check], partition_keys=keys):
        # each verdict points at its own session's landing, as a single-session run's does
        assert info.latest_target_materialization_storage_id == info.latest_materialization_storage_id

    ledger = SessionLedger(StateDB(platform.settings.state_db_url))  # no lease outlives the range
    assert all(ledger.holder("XNYS", s) is None for s in SESSIONS)


def test_the_quality_failure_sensor_answers_the_corrupt_session_of_a_range_alone(platform):
    publish_with_corrupt_middle(platform)
    defs = platform.definitions
    _, cursor = tick(defs, platform.instance, platform.resources)  # the first tick only sets the cursor
    run_range(platform, defs, job="__ASSET_JOB")  # the job Dagster's backfill daemon launches ranges as
    requests, _ = tick(defs, platform.instance, platform.resources, cursor)

    assert len(requests) == 1  # one quarantine, of the corrupt session's delivery
    store = IncidentStore(StateDB(platform.settings.state_db_url))
    incident = store.get(requests[0].tags["tradepulse/incident"])
    assert incident.market == "XNYS" and incident.cause == "checksum_mismatch"
    assert [s.isoformat() for s in SESSIONS if store.quarantined_for("XNYS", s.isoformat())] == [
        CORRUPT.isoformat()
    ]


def test_a_range_run_of_staging_and_production_restages_each_session_on_its_own(platform):
    publish_with_corrupt_middle(platform)
    defs = platform.definitions
    run_range(platform, defs)
    again = run_range(platform, defs, assets=BARS[1:])  # re-stage and re-promote, without landing again
    store = LocalObjectStore(platform.home / "store")
    promoted = [store.exists(lake.partition_key("production", "XNYS", s)) for s in SESSIONS]
    assert promoted == [True, False, True]
    stages = {e.asset_key.path[-1] for e in again.get_asset_materialization_events()}
    assert stages == {"staging_bars", "production_bars"}


def test_a_range_run_leaves_no_event_log_file_open_and_its_events_in_the_database(platform):
    """The range step keeps the event log's SQLite files open while it writes (``bars.run_session_range``): after
    the run none of them is open any more, and the write-ahead logs are folded into the database files."""
    publish_with_corrupt_middle(platform)
    result = run_range(platform, platform.definitions)
    storage = platform.instance.event_log_storage
    shards = [Path(storage.path_for_shard(shard)) for shard in ("index", result.run_id)]
    assert all(shard.exists() for shard in shards)
    open_files = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            open_files.add(os.path.realpath(f"/proc/self/fd/{fd}"))
        except OSError:  # closed meanwhile
            pass
    assert not [f for f in open_files if f.startswith(str(shards[0].parent))]
    assert not [s for s in shards if Path(f"{s}-wal").exists()]
    assert materialised(platform.instance, BARS[0]) == [s.isoformat() for s in SESSIONS]  # read anew
