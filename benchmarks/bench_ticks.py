"""Sensor tick cost against history size (issue #14): the exit-criteria tick with N open incidents.

One command: ``make bench-ticks``. For each size it builds a fresh home (SQLite state DB and Dagster instance,
local store), opens N incidents over the four markets with their affected sessions, records a passing or
failing result of every required check on every affected session (as runs would), and times ticks of the
real ``exit_criteria_sensor``: the first (everything new) and the following ones (nothing changed, the
steady state of a daemon ticking every 30 s). Also printed: the event-log SQL connections a tick opens, and
whether a tick wrote artefacts or an observation. Load average beside every figure: the machine is shared.
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 20, 21, 0, tzinfo=UTC)


def setup(home: Path, incidents: int):
    os.environ["TRADEPULSE_HOME"] = str(home)
    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    os.environ["TRADEPULSE_CLOCK"] = f"simulated:{NOW.isoformat()}:1"
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").touch()  # defaults, without Dagster saying so per size
    import dagster as dg

    from tradepulse_assets.defs.definitions import build_definitions, build_resources
    from tradepulse_assets.defs.sensors.exit_criteria import REQUIRED_QUALITY, REQUIRED_TOLERANCE, _check_keys
    from tradepulse_assets.incidents.lifecycle import IncidentEngine
    from tradepulse_assets.markets import calendar_for, load_registry
    from tradepulse_assets.pipeline.settings import load_settings
    from tradepulse_assets.storage.object_store import object_store_from_url
    from tradepulse_assets.storage.state import StateDB

    settings = load_settings()
    registry = load_registry()
    defs = build_definitions(registry, settings)
    resources = build_resources(settings)
    instance = dg.DagsterInstance.get()
    engine = IncidentEngine(StateDB(settings.state_db_url), object_store_from_url(settings.object_store_url))
    markets = list(registry)
    reported = set()
    for i in range(incidents):
        market = markets[i % len(markets)]
        sessions = calendar_for(market.market_id, market.calendar).sessions(dt.date(2026, 2, 2), dt.date(2026, 3, 19))
        picked = [sessions[(i * 3 + k) % len(sessions)].isoformat() for k in range(2)]
        engine.detect(f"bench_fault_{i}", market.market_id, now=NOW - dt.timedelta(hours=2), sessions=picked)
        for session in picked:
            if (market.market_id, session) in reported:
                continue
            reported.add((market.market_id, session))
            for name, key in _check_keys(registry, market.market_id).items():
                instance.report_runless_asset_event(
                    dg.AssetCheckEvaluation(
                        asset_key=key.asset_key, check_name=key.name, passed=(hash((session, name)) % 17 != 0),
                        partition=session,
                    )
                )
    assert set(REQUIRED_QUALITY) | set(REQUIRED_TOLERANCE)
    return defs, resources, instance


def tick(defs, resources, instance, cursor):
    import dagster as dg

    sensor = defs.resolve_sensor_def("exit_criteria_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
    return sensor.evaluate_tick(context)


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[25, 100, 200])
    parser.add_argument("--ticks", type=int, default=3, help="steady-state ticks timed after the first")
    parser.add_argument("--lag-history", type=int, nargs="*", default=[20, 250, 1500])
    args = parser.parse_args()
    for history in args.lag_history:
        lag_ticks(history, args.ticks)
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench-ticks-") as tmp:
            defs, resources, instance = setup(Path(tmp), size)
            start = time.perf_counter()
            data = tick(defs, resources, instance, None)
            first = time.perf_counter() - start
            cursor, steady, observed = data.cursor, [], 0
            for _ in range(args.ticks):
                start = time.perf_counter()
                data = tick(defs, resources, instance, cursor)
                steady.append(time.perf_counter() - start)
                cursor = data.cursor
                observed += len(data.asset_events or [])
            med = statistics.median(steady)
            print(
                f"exit_criteria tick, {size:>4} open incidents: first {first:.2f} s, steady median {med:.3f} s "
                f"(target < 1 s: {'met' if med < 1 else 'NOT met'}), observations in steady ticks: {observed}  "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            instance.dispose()


if __name__ == "__main__":
    sys.exit(main())
