"""Drive the code location on simulated time, in process: chaos replays and the end-to-end tests.

The definitions come from an injected factory (``build``, default: the code location's ``build_definitions``),
so the driver sits above ``defs/`` without ``defs/`` ever importing it back.

One ``step`` is one sensor interval: the vendor hook publishes what is due, the streaming ingestors poll,
every sensor ticks (publication, lag, quality failure, exit criteria, notification delivery) with its cursor,
and the runs they request execute on the instance with their run keys and tags, exactly as the daemon
would launch them. Time moves only when told (the clock is ``fixed:<now>``), so a replay is deterministic.
"""

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from tradepulse_assets.defs.definitions import build_definitions, build_resources
from tradepulse_assets.defs.jobs import ingest_job_name
from tradepulse_assets.defs.sensors.lag import lag_sensor_name
from tradepulse_assets.defs.sensors.notification_delivery import notification_delivery_sensor
from tradepulse_assets.defs.sensors.publication import publication_sensor_name
from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.markets import MarketRegistry
from tradepulse_assets.pipeline.settings import Settings
from tradepulse_assets.pipeline.stream import compact_promoted_sessions, poll_stream
from tradepulse_assets.storage.audit import audit_log_for
from tradepulse_assets.storage.object_store import object_store_from_url
from tradepulse_assets.storage.state import StateDB

RUN_KEY_TAG = "dagster/run_key"
DefinitionsFactory = Callable[[MarketRegistry, Settings], dg.Definitions]


@dataclass(frozen=True)
class ExecutedRun:
    at: dt.datetime
    sensor: str
    job: str
    partition: str | None
    run_key: str | None
    run_id: str
    success: bool


@dataclass
class Replay:
    settings: Settings
    instance: dg.DagsterInstance
    registry: MarketRegistry
    now: dt.datetime
    vendor: Callable[[dt.datetime], None] = lambda now: None
    cursors: dict[str, str | None] = field(default_factory=dict)
    runs: list[ExecutedRun] = field(default_factory=list)
    build: DefinitionsFactory = build_definitions

    # -- time and wiring --------------------------------------------------------------------------
    @property
    def clocked_settings(self) -> Settings:
        return dataclasses.replace(self.settings, clock=f"fixed:{self.now.isoformat()}")

    def definitions(self) -> dg.Definitions:
        return self.build(self.registry, self.clocked_settings)

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta

    # -- runs -------------------------------------------------------------------------------------
    def _already_ran(self, run_key: str | None) -> bool:
        if run_key is None:
            return False
        return bool(self.instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1))

    def execute(self, job_name: str, partition: str | None, tags: dict[str, str], sensor: str = "operator",
                run_key: str | None = None, asset_selection=None) -> ExecutedRun | None:
        if self._already_ran(run_key):
            return None
        job = self.definitions().resolve_job_def(job_name)
        result = job.execute_in_process(
            instance=self.instance,
            partition_key=partition,
            tags={**tags, **({RUN_KEY_TAG: run_key} if run_key else {})},
            raise_on_error=False,
            asset_selection=asset_selection,
        )
        run = ExecutedRun(self.now, sensor, job_name, partition, run_key, result.run_id, result.success)
        self.runs.append(run)
        return run

    def materialize(self, market_id: str, session: dt.date) -> ExecutedRun:
        """What an operator does from the UI: run the market's ingestion job for one session."""
        run = self.execute(ingest_job_name(self.registry.get(market_id)), session.isoformat(), {})
        assert run is not None
        return run

    # -- sensors ----------------------------------------------------------------------------------
    def tick(self, sensor_name: str) -> list[ExecutedRun]:
        defs = self.definitions()
        sensor = defs.resolve_sensor_def(sensor_name)
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(sensor_name),
            definitions=defs,
            sensor_name=sensor_name,
            resources=build_resources(self.clocked_settings),
        )
        # The daemon evaluates sensors with the instance as the dynamic-partitions store (quarantine batches).
        with dg.partition_loading_context(effective_dt=self.now, dynamic_partitions_store=self.instance):
            data = sensor.evaluate_tick(context)
        self.cursors[sensor_name] = data.cursor
        for event in (
            data.asset_events or []
        ):  # observations (lag metrics, the dashboard), as the daemon stores them
            self.instance.report_runless_asset_event(event)
        executed = []
        for request in data.run_requests or []:
            job_name = request.job_name or sensor.job_name
            run = self.execute(job_name, request.partition_key, dict(request.tags), sensor_name, request.run_key,
                               request.asset_selection)
            if run is not None:
                executed.append(run)
        return executed

    def poll_streams(self) -> None:
        settings = self.clocked_settings
        store = object_store_from_url(settings.object_store_url, s3=settings.s3)
        db = StateDB(settings.state_db_url)
        audit = audit_log_for(store, db, clock=lambda: self.now, home=settings.home)
        connector = DirectoryConnector(settings.vendor_source)
        for market in self.registry:
            if market.is_streaming:  # what `tradepulse-cli ingest stream` does each poll
                poll_stream(market, connector, store, db, audit, self.now)
                compact_promoted_sessions(store, db, market.market_id, holder=f"replay:{market.market_id}")

    def step(self) -> list[ExecutedRun]:
        """One sensor interval at the current time."""
        self.vendor(self.now)
        self.poll_streams()
        executed = []
        for market in self.registry:
            executed += self.tick(publication_sensor_name(market))
            executed += self.tick(lag_sensor_name(market))
        executed += self.tick("quality_failure_sensor")
        executed += self.tick("exit_criteria_sensor")
        executed += self.tick("consumer_catchup_sensor")
        executed += self.tick(notification_delivery_sensor.name)
        return executed

    def run_until(self, done: Callable[[], bool], interval: dt.timedelta, limit: int) -> int:
        """Step every ``interval`` until ``done()``; returns the steps taken (raises after ``limit``)."""
        for steps in range(1, limit + 1):
            self.step()
            if done():
                return steps
            self.advance(interval)
        raise TimeoutError(f"replay condition not reached after {limit} steps (simulated time {self.now})")
