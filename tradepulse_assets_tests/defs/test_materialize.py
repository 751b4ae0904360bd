"""Materialise real market partitions on an ephemeral Dagster instance, as the UI or a sensor would."""

import datetime as dt

import dagster as dg

from tradepulse_assets.defs.assets.bars import build_bar_assets
from tradepulse_assets.defs.assets.features import build_feature_assets
from tradepulse_assets.incidents.control_plane import ControlPlane
from tradepulse_assets.markets import load_registry
from tradepulse_assets.storage import lake
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.pipeline.catchup import ConsumerSkips
from tradepulse_assets.storage.state import StateDB
from tradepulse_assets.feeds.scenarios import FaultSpec

XNYS = load_registry().get("XNYS")
SESSION = dt.date(2026, 3, 9)


def run(platform, market=XNYS, session=SESSION):
    return dg.materialize(
        build_bar_assets(market) + build_feature_assets(market),
        partition_key=session.isoformat(),
        resources=platform.resources,
        instance=platform.instance,
        raise_on_error=False,
    )


def check_results(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_definitions_are_loadable_with_sensors_for_every_market(platform):
    defs = platform.definitions
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    sensors = {s.name for s in repo.sensor_defs}
    assert {f"{m.lower()}_lag_sensor" for m in load_registry().ids} <= sensors
    assert {"quality_failure_sensor", "exit_criteria_sensor"} <= sensors
    assert repo.has_job("xnys_ingest") and repo.has_job("quarantine_batch")


def test_clean_partition_passes_every_gate_and_reaches_the_consumers(platform):
    platform.publish("XNYS", SESSION)
    result = run(platform)
    assert result.success
    checks = check_results(result)
    assert checks.pop("landing_verification") is True
    assert checks.pop("indicator_tolerance") is True
    blocking_failed = [name for name, passed in checks.items() if not passed and name != "freshness"]
    assert blocking_failed == []
    store = LocalObjectStore(platform.home / "store")
    production = lake.read_frame(store, "production", "XNYS", SESSION)
    assert production.height == XNYS.universe_size * 390
    assert store.exists(f"exports/feature_store/kuramoto/XNYS/{SESSION}.parquet")
    assert store.exists(f"exports/backtest/hurst/XNYS/{SESSION}.parquet")


def test_rematerialising_a_partition_is_idempotent(platform):
    platform.publish("XNYS", SESSION)
    assert run(platform).success
    store = LocalObjectStore(platform.home / "store")
    first = lake.read_frame(store, "production", "XNYS", SESSION)
    assert run(platform).success
    assert lake.read_frame(store, "production", "XNYS", SESSION).equals(first)


def test_corrupted_delivery_fails_landing_and_nothing_is_promoted(platform):
    platform.publish("XNYS", SESSION, FaultSpec("checksum_corruption", "XNYS", SESSION, SESSION, {"bytes": 8}))
    result = run(platform)
    assert not result.success
    assert check_results(result) == {"landing_verification": False}
    store = LocalObjectStore(platform.home / "store")
    assert not store.exists(lake.partition_key("production", "XNYS", SESSION))


def test_dst_trap_is_blocked_at_staging(platform):
    platform.publish("XNYS", SESSION, FaultSpec("local_timestamps", "XNYS", SESSION, SESSION, {}))
    result = run(platform)
    assert not result.success
    checks = check_results(result)
    assert checks["landing_verification"] is True and checks["calendar_alignment"] is False
    store = LocalObjectStore(platform.home / "store")
    assert not store.exists(lake.partition_key("production", "XNYS", SESSION))


def test_paused_consumer_writes_nothing_records_no_materialisation_and_says_so(platform):
    platform.publish("XNYS", SESSION)
    db = StateDB(platform.settings.state_db_url)
    ControlPlane(db).pause(
        "XNYS", "feature_store_writer", reason="test", now=dt.datetime(2026, 3, 9, tzinfo=dt.timezone.utc)
    )
    result = run(platform)
    assert result.success
    materializations = {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert "xnys/feature_store_writer" not in materializations  # it made nothing, so it records nothing
    assert materializations["xnys/backtest_exporter"]["paused"].value is False
    (observation,) = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"
                      and e.asset_key.to_user_string() == "xnys/feature_store_writer"]
    assert "paused by the control plane" in observation.asset_observation_data.asset_observation.metadata[
        "skipped"].value
    (skip,) = ConsumerSkips(db).outstanding()
    assert (skip.skip.consumer, skip.skip.session, skip.run_id) == ("feature_store_writer", str(SESSION),
                                                                    result.run_id)
    store = LocalObjectStore(platform.home / "store")
    assert not store.list_keys("exports/feature_store")
    assert store.list_keys("exports/backtest")
