"""Sensor tick cost against history size (issue #14): the exit-criteria tick with N open incidents.

One command: ``make bench-ticks``. For each size it builds a fresh home (SQLite state DB and Dagster
instance, local store), opens N incidents over the four markets with their affected sessions (a market-wide
outage: all at once), records a passing or failing result of every required check on every affected session
(as runs would), and times ticks of the real ``exit_criteria_sensor`` three ways:

- **warm server**: the code server has ticked before (one incident per market open), then the N open at once
  and the next tick is timed; this is what an operator sees after an outage;
- **cold caches**: the first evaluation of the sensor in this process against this instance (its per-process
  cache of check results is empty), as after a code-server restart with the N already open;
- **fresh code server** (``--fresh-process``): a new Python process imports the code location, builds the
  definitions and ticks once against the same home; the start-up is paid once per code-server start, not per
  tick, and is printed apart;

then the following ticks (nothing changed: the steady state of a daemon ticking every 30 s). Printed beside
each: the SQL statements and new database connections (state DB and Dagster's storage) and the fsyncs the tick
made (syncfs group flushes are not counted), and the load average: the machine is shared.
"""

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 20, 21, 0, tzinfo=UTC)


class Costs:
    """SQL statements, new connections and fsyncs inside ``with`` (what a tick costs besides time)."""

    def __enter__(self):
        import sqlalchemy as sa

        self.statements = self.connections = self.fsyncs = 0
        self._fsync = os.fsync
        os.fsync = self._counted_fsync
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._statement)
        sa.event.listen(sa.pool.Pool, "connect", self._connection)
        self.start = time.perf_counter()
        return self

    def _counted_fsync(self, fd):
        self.fsyncs += 1
        return self._fsync(fd)

    def _statement(self, *_args):
        self.statements += 1

    def _connection(self, *_args):
        self.connections += 1

    def __exit__(self, *exc):
        import sqlalchemy as sa

        self.seconds = time.perf_counter() - self.start
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self._statement)
        sa.event.remove(sa.pool.Pool, "connect", self._connection)
        os.fsync = self._fsync

    def __str__(self):
        return (f"{self.seconds:.3f} s ({self.statements} statements, {self.connections} connections, "
                f"{self.fsyncs} fsyncs)")


def use_home(home: Path) -> None:
    os.environ["TRADEPULSE_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    os.environ["TRADEPULSE_CLOCK"] = f"simulated:{NOW.isoformat()}:1"
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").touch()  # defaults, without Dagster saying so per size


def setup(home: Path, incidents: int):
    """The code location's definitions, resources and instance on a fresh ``home`` with ``incidents`` open."""
    use_home(home)
    import dagster as dg

    from tradepulse_assets.defs.definitions import build_definitions, build_resources
    from tradepulse_assets.markets import load_registry
    from tradepulse_assets.pipeline.settings import load_settings

    settings = load_settings()
    defs = build_definitions(load_registry(), settings)
    resources = build_resources(settings)
    instance = dg.DagsterInstance.get()
    open_incidents(instance, 0, incidents)
    return defs, resources, instance


def open_incidents(instance, first: int, count: int) -> None:
    """Incidents ``first`` .. ``first + count - 1`` (two sessions each, markets in turn), and a result of
    every required check on each affected session that no earlier incident has (as runs would record)."""
    import dagster as dg

    from tradepulse_assets.defs.sensors.exit_criteria import REQUIRED_QUALITY, REQUIRED_TOLERANCE, _check_keys
    from tradepulse_assets.incidents.lifecycle import IncidentEngine
    from tradepulse_assets.markets import calendar_for, load_registry
    from tradepulse_assets.pipeline.settings import load_settings
    from tradepulse_assets.storage.object_store import object_store_from_url
    from tradepulse_assets.storage.state import StateDB

    settings = load_settings()
    registry = load_registry()
    engine = IncidentEngine(StateDB(settings.state_db_url), object_store_from_url(settings.object_store_url))
    markets = list(registry)
    sessions = {m.market_id: calendar_for(m.market_id, m.calendar).sessions(dt.date(2026, 2, 2),
                                                                           dt.date(2026, 3, 19))
                for m in markets}

    def picked(i: int) -> tuple[str, list[str]]:
        market = markets[i % len(markets)].market_id
        return market, [sessions[market][(i * 3 + k) % len(sessions[market])].isoformat() for k in range(2)]

    reported = {(market, session) for market, chosen in map(picked, range(first)) for session in chosen}
    for i in range(first, first + count):
        market, chosen = picked(i)
        engine.detect(f"bench_fault_{i}", market, now=NOW - dt.timedelta(hours=2), sessions=chosen)
        for session in chosen:
            if (market, session) in reported:
                continue
            reported.add((market, session))
            for name, key in _check_keys(registry, market).items():
                instance.report_runless_asset_event(
                    dg.AssetCheckEvaluation(
                        asset_key=key.asset_key, check_name=name, partition=session,
                        passed=zlib.crc32(f"{session}/{name}".encode()) % 17 != 0,  # about 1 in 17 fails
                    )
                )
    assert set(REQUIRED_QUALITY) | set(REQUIRED_TOLERANCE)


def tick(defs, resources, instance, cursor):
    """One evaluation of the exit-criteria sensor: ``(result, Costs)`` of the evaluation alone."""
    import dagster as dg

    sensor = defs.resolve_sensor_def("exit_criteria_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
    with Costs() as costs:
        data = sensor.evaluate_tick(context)
    return data, costs


def steady_ticks(defs, resources, instance, cursor, ticks: int) -> str:
    """The median of ``ticks`` ticks after ``cursor`` with nothing changed, and what they observed."""
    times, observed, last = [], 0, None
    for _ in range(ticks):
        data, last = tick(defs, resources, instance, cursor)
        times.append(last.seconds)
        cursor, observed = data.cursor, observed + len(data.asset_events or [])
    med = statistics.median(times)
    return (f"steady median {med:.3f} s ({last.statements} statements, {last.connections} connections, "
            f"{last.fsyncs} fsyncs; target < 1 s: {'met' if med < 1 else 'NOT met'}), "
            f"observations in steady ticks: {observed}")


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def met(seconds: float) -> str:
    return f"target < 1 s: {'met' if seconds < 1 else 'NOT met'}"


#: Incidents open before the outage in the warm code server (one per market): its caches are warm.
WARM_UP = 4


def exit_ticks(size: int, ticks: int, fresh_process: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ticks-") as tmp:
        defs, resources, instance = setup(Path(tmp), WARM_UP)
        cursor = tick(defs, resources, instance, None)[0].cursor
        cursor = tick(defs, resources, instance, cursor)[0].cursor
        open_incidents(instance, WARM_UP, size - WARM_UP)
        data, outage = tick(defs, resources, instance, cursor)
        print(f"exit_criteria tick, {size:>4} open incidents, warm server, {size - WARM_UP} opened at once: "
              f"first {outage} ({met(outage.seconds)}), "
              f"{steady_ticks(defs, resources, instance, data.cursor, ticks)}  {load()}", flush=True)
        instance.dispose()
    with tempfile.TemporaryDirectory(prefix="bench-ticks-") as tmp:
        defs, resources, instance = setup(Path(tmp) / "home", size)
        if fresh_process:  # on a copy taken before any tick: the new process's tick has everything to do
            shutil.copytree(Path(tmp) / "home", Path(tmp) / "copy")
            child = fresh_code_server(Path(tmp) / "copy")
        data, first = tick(defs, resources, instance, None)
        steady = steady_ticks(defs, resources, instance, data.cursor, ticks)
        print(f"exit_criteria tick, {size:>4} open incidents, cold caches: first {first} "
              f"({met(first.seconds)}), {steady}  {load()}", flush=True)
        if fresh_process:
            print(f"exit_criteria tick, {size:>4} open incidents, fresh code server: start-up (imports, "
                  f"definitions, instance) {child['startup']:.2f} s once, then first tick {child['tick']}  "
                  f"{load()}",
                  flush=True)
        instance.dispose()


def fresh_code_server(home: Path) -> dict:
    """Start-up and first tick of a new process on ``home`` (this file with ``--tick-home``)."""
    out = subprocess.run([sys.executable, __file__, "--tick-home", str(home)], check=True,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def tick_in_this_process(home: Path, started: float) -> None:
    """``--tick-home``: what a fresh code server pays before its first tick, then that tick (a JSON line)."""
    use_home(home)
    import dagster as dg

    from tradepulse_assets.defs.definitions import build_definitions, build_resources
    from tradepulse_assets.markets import load_registry
    from tradepulse_assets.pipeline.settings import load_settings

    settings = load_settings()
    defs, resources = build_definitions(load_registry(), settings), build_resources(settings)
    instance = dg.DagsterInstance.get()
    startup = time.perf_counter() - started
    _, first = tick(defs, resources, instance, None)
    print(json.dumps({"startup": startup, "tick": str(first)}))
    instance.dispose()


def lag_ticks(history: int, ticks: int) -> None:
    """The XNYS lag tick with ``history`` promoted sessions in the event log (a year is about 250)."""
    import dagster as dg

    from tradepulse_assets.defs.assets.bars import market_key
    from tradepulse_assets.defs.partitions import key_of_session
    from tradepulse_assets.markets import calendar_for, load_registry

    with tempfile.TemporaryDirectory(prefix="bench-lag-") as tmp:
        defs, resources, instance = setup(Path(tmp), 0)
        market = load_registry().get("XNYS")
        sessions = calendar_for(market.market_id, market.calendar).sessions(dt.date(2019, 1, 2), NOW.date())
        for session in sessions[-history:]:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(market_key(market, "production_bars"), partition=key_of_session(session))
            )
        sensor = defs.resolve_sensor_def("xnys_lag_sensor")
        cursor, times, observed = None, [], 0
        for _ in range(ticks + 1):
            context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
            start = time.perf_counter()
            data = sensor.evaluate_tick(context)
            times.append(time.perf_counter() - start)
            cursor, observed = data.cursor, observed + len(data.asset_events or [])
        med = statistics.median(times[1:])
        print(
            f"xnys_lag_sensor tick, {history:>5} promoted sessions: median {med:.3f} s "
            f"(target < 0.1 s: {'met' if med < 0.1 else 'NOT met'}), observations over {ticks + 1} ticks: {observed}  "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        instance.dispose()


def main() -> None:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[25, 100, 200])
    parser.add_argument("--ticks", type=int, default=3, help="steady-state ticks timed after the first")
    parser.add_argument("--lag-history", type=int, nargs="*", default=[20, 250, 1500])
    parser.add_argument("--fresh-process", action="store_true",
                        help="also time start-up and first tick of a new process (a restarted code server)")
    parser.add_argument("--tick-home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tick_home:
        return tick_in_this_process(args.tick_home, started)
    for history in args.lag_history:
        lag_ticks(history, args.ticks)
    for size in args.sizes:
        exit_ticks(size, args.ticks, args.fresh_process)


if __name__ == "__main__":
    sys.exit(main())
