"""The exit-criteria tick reads check results in bulk, per process incrementally, and writes only what changed.

The reference for every check result is Dagster's own per-partition query (the one the sensor used to make
once per partition); costs are asserted as query counts, never as times.
"""

import datetime as dt
from unittest import mock

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.event_api import PartitionKeyFilter

from tradepulse_assets.defs.dagster_internals import latest_check_executions
from tradepulse_assets.defs.definitions import build_definitions, build_resources
from tradepulse_assets.defs.sensors.check_results import TickStats, forget_cached_results, latest_check_results
from tradepulse_assets.defs.sensors.exit_criteria import _check_keys, wanted_checks
from tradepulse_assets.incidents.lifecycle import IncidentEngine
from tradepulse_assets.incidents.reports import incident_dir
from tradepulse_assets.markets import load_registry
from tradepulse_assets.pipeline.settings import load_settings
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 20, 21, 0, tzinfo=UTC)
REGISTRY = load_registry()
PARTITIONS = [("XNYS", "2026-03-16"), ("XNYS", "2026-03-17"), ("XLON", "2026-03-16"), ("CRYPTO", "2026-03-15")]


def report(instance, key: dg.AssetCheckKey, session: str, passed: bool) -> None:
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(asset_key=key.asset_key, check_name=key.name, passed=passed, partition=session)
    )


def reference(instance, key: dg.AssetCheckKey, session: str) -> bool | None:
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key], partition_filter=PartitionKeyFilter(key=session)
    ).get(key)
    return None if record is None else record.status.value == "SUCCEEDED"


@pytest.fixture
def instance(tmp_path):
    forget_cached_results()
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as inst:
        yield inst
    forget_cached_results()


def test_bulk_results_equal_the_per_partition_reference_and_a_steady_read_is_one_query(instance):
    wanted = wanted_checks(REGISTRY, PARTITIONS)
    for i, (market, session) in enumerate(PARTITIONS):
        for j, key in enumerate(_check_keys(REGISTRY, market).values()):
            if (i + j) % 5:  # some checks never ran on some sessions
                report(instance, key, session, passed=(i * 7 + j) % 3 != 0)
    stats = TickStats()
    got = latest_check_results(instance, wanted, stats)
    assert {k: r.passed for k, r in got.items()} == {(k, s): reference(instance, k, s) for k, ss in wanted.items() for s in ss}
    assert (stats.refresh_calls, stats.refreshed_keys) == (1, len(wanted))  # one call for every key

    steady = TickStats()
    assert latest_check_results(instance, wanted, steady) == got
    assert (steady.signature_queries, steady.refreshed_keys) == (1, 0)

    # a check that had never run on a wanted session runs (one runless evaluation per session is allowed)
    key = next(k for k, ss in wanted.items() if any(got[(k, s)].passed is None for s in ss))
    session = next(s for s in sorted(wanted[key]) if got[(key, s)].passed is None)
    report(instance, key, session, passed=False)
    changed = TickStats()
    again = latest_check_results(instance, wanted, changed)
    assert (changed.signature_queries, changed.refreshed_keys) == (1, 1)
    assert again[(key, session)].passed is False and reference(instance, key, session) is False
    assert {k: v for k, v in again.items() if k != (key, session)} == {k: v for k, v in got.items() if k != (key, session)}


def test_the_one_query_answers_what_dagsters_public_call_per_key_answers(instance):
    wanted = wanted_checks(REGISTRY, PARTITIONS)
    for i, (market, session) in enumerate(PARTITIONS):
        for j, key in enumerate(_check_keys(REGISTRY, market).values()):
            if (i + j) % 3:  # some never ran (one runless evaluation per session is allowed)
                report(instance, key, session, passed=(i * 7 + j) % 3 != 1)
    asked = [key for key in wanted if key.asset_key.path[0] != "crypto"]  # rows of keys not asked: left out
    sessions = sorted({s for _, s in PARTITIONS} | {"2026-03-20"})
    public = instance.event_log_storage.get_asset_check_partition_info(asked, partition_keys=sessions)
    expected = [(i.check_key, i.partition_key, i.latest_execution_status, i.latest_planned_run_id)
                for i in public]
    assert sorted(latest_check_executions(instance, asked, sessions), key=str) == sorted(expected, key=str)


def test_a_new_session_is_read_even_when_no_check_ran_since(instance):
    key = next(iter(_check_keys(REGISTRY, "XLON").values()))
    report(instance, key, "2026-03-16", passed=False)
    report(instance, key, "2026-03-17", passed=True)
    assert latest_check_results(instance, {key: {"2026-03-16"}})[(key, "2026-03-16")].passed is False
    stats = TickStats()
    wider = latest_check_results(instance, {key: {"2026-03-16", "2026-03-17", "2026-03-18"}}, stats)
    assert stats.refreshed_keys == 1
    assert [wider[(key, s)].passed for s in ("2026-03-16", "2026-03-17", "2026-03-18")] == [False, True, None]


def exit_criteria_ticks(tmp_path, monkeypatch, instance):
    """An incident engine on the code location's state DB and artefact store, and a tick of its
    exit-criteria sensor (``tick(cursor)``)."""
    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRADEPULSE_CLOCK", f"simulated:{NOW.isoformat()}:1")
    settings = load_settings()
    defs, resources = build_definitions(REGISTRY, settings), build_resources(settings)
    engine = IncidentEngine(StateDB(settings.state_db_url))  # artefacts where the sensor's engine puts them
    sensor = defs.resolve_sensor_def("exit_criteria_sensor")

    def tick(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
        return sensor.evaluate_tick(context)

    return engine, tick


def test_a_steady_exit_criteria_tick_writes_no_artefact_and_no_observation(tmp_path, monkeypatch, instance):
    engine, tick = exit_criteria_ticks(tmp_path, monkeypatch, instance)
    store = engine.artefacts
    for i, (market, session) in enumerate(PARTITIONS):
        engine.detect(f"scale_fault_{i}", market, now=NOW - dt.timedelta(hours=1), sessions=[session])
        for key in _check_keys(REGISTRY, market).values():
            report(instance, key, session, passed=True)

    first = tick(None)
    assert len(first.asset_events) == 1  # the dashboard, once
    incidents = engine.store.list(open_only=True)
    timelines = {i.id: f"{incident_dir(i)}/timeline.md" for i in incidents}
    written = {key: store.path(key).stat().st_mtime_ns for key in timelines.values()}
    evaluations = {i.id: i.last_evaluation for i in incidents}

    steady = tick(first.cursor)
    assert steady.asset_events == [] and steady.cursor == first.cursor
    assert {key: store.path(key).stat().st_mtime_ns for key in timelines.values()} == written
    assert {i.id: i.last_evaluation for i in engine.store.list(open_only=True)} == evaluations

    market, session = PARTITIONS[0]
    engine.detect("scale_fault_0", market, now=NOW - dt.timedelta(minutes=30), sessions=["2026-03-18"])
    engine.write_artefacts(next(i.id for i in engine.store.list(open_only=True) if i.market == market))
    written = {key: store.path(key).stat().st_mtime_ns for key in timelines.values()}
    evaluations = {i.id: i.last_evaluation for i in engine.store.list(open_only=True)}
    report(instance, next(iter(_check_keys(REGISTRY, market).values())), "2026-03-18", passed=False)
    changed = tick(steady.cursor)
    assert len(changed.asset_events) == 1 and changed.cursor != steady.cursor
    touched = [i for i in engine.store.list(open_only=True) if evaluations[i.id] != i.last_evaluation]
    assert [i.market for i in touched] == [market]
    key = timelines[touched[0].id]
    assert store.path(key).stat().st_mtime_ns != written[key]


class Recorder:
    """What the ticks inside ``with`` wrote to local stores (one list of keys per group commit) and how many
    SQL statements they ran (the state DB and Dagster's storage alike)."""

    def __enter__(self):
        self.groups, self.statements = [], 0
        put_many = LocalObjectStore.put_many

        def recorded(store, objects):
            self.groups.append(sorted(objects))
            return put_many(store, objects)

        self._patch = mock.patch.object(LocalObjectStore, "put_many", recorded)
        self._patch.start()
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._count)
        return self

    def _count(self, *_args):
        self.statements += 1

    def __exit__(self, *exc):
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self._count)
        self._patch.stop()


def test_incidents_opened_at_once_have_their_artefacts_written_once_together_and_then_never(
    tmp_path, monkeypatch, instance
):
    """A market-wide outage opens an incident per market session at once: the next tick evaluates them all and
    writes each one's artefacts once, in one group commit; the following tick writes nothing, and it runs as
    many statements with twice the incidents open (a tick does not query per incident)."""
    engine, tick = exit_criteria_ticks(tmp_path, monkeypatch, instance)
    markets = [m.market_id for m in REGISTRY]

    def outage(first: int, count: int) -> None:
        for i in range(first, first + count):
            engine.detect(f"outage_{i}", markets[i % len(markets)], now=NOW - dt.timedelta(hours=1),
                          sessions=["2026-03-16", "2026-03-17"])

    outage(0, 60)
    cursor = tick(None).cursor
    with Recorder() as steady:
        cursor = tick(cursor).cursor
    assert steady.groups == []

    outage(60, 60)
    opened = [i for i in engine.store.list(open_only=True) if i.last_evaluation is None]
    assert len(opened) == 60
    with Recorder() as first:
        cursor = tick(cursor).cursor
    expected = sorted(f"{incident_dir(i)}/{name}" for i in opened for name in ("timeline.md", "gap.csv"))
    assert first.groups == [expected]
    for incident in opened:
        timeline = engine.artefacts.get_bytes(f"{incident_dir(incident)}/timeline.md").decode()
        assert "| exit_criteria |" in timeline and "_Not evaluated yet._" not in timeline

    with Recorder() as steady_after:
        tick(cursor)
    assert steady_after.groups == []
    assert steady_after.statements == steady.statements


def test_lag_sensor_asks_only_about_its_look_back_and_observes_only_changes(tmp_path, monkeypatch, instance):
    from tradepulse_assets.defs.assets.bars import market_key
    from tradepulse_assets.defs.partitions import key_of_session
    from tradepulse_assets.defs.sensors.common import materialized_among
    from tradepulse_assets.markets import calendar_for

    monkeypatch.setenv("TRADEPULSE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRADEPULSE_CLOCK", f"simulated:{NOW.isoformat()}:1")
    settings = load_settings()
    defs, resources = build_definitions(REGISTRY, settings), build_resources(settings)
    market = REGISTRY.get("XNYS")
    key = market_key(market, "production_bars")
    sessions = calendar_for("XNYS", "XNYS").sessions(dt.date(2026, 1, 2), dt.date(2026, 3, 20))
    for session in sessions[:-2]:  # the last two sessions are missing
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=key_of_session(session)))
    everything = {dt.date.fromisoformat(k) for k in instance.get_materialized_partitions(key)}
    for probe in (sessions[-5:], sessions[:3], []):
        assert materialized_among(instance, key, probe) == everything & set(probe)

    sensor = defs.resolve_sensor_def("xnys_lag_sensor")

    def tick(cursor):
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
        return sensor.evaluate_tick(context)

    with mock.patch.object(dg.DagsterInstance, "get_materialized_partitions", side_effect=AssertionError("all")):
        first = tick(None)
        assert len(first.asset_events) == 1 and first.asset_events[0].metadata["breached"].value
        assert [r.partition_key for r in first.run_requests] == []  # nothing published in this home: no backfill
        steady = tick(first.cursor)
    assert steady.asset_events == [] or steady.asset_events[0].metadata["lag_seconds"] != first.asset_events[0].metadata["lag_seconds"]
    for session in sessions[-2:]:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=key_of_session(session)))
    caught_up = tick(steady.cursor)
    assert len(caught_up.asset_events) == 1 and not caught_up.asset_events[0].metadata["breached"].value
    assert tick(caught_up.cursor).asset_events == []
