"""The state ``make run`` opens on: recent sessions published by the simulated vendor for every market,
and one fault waiting to be found.

The vendor drop gets the last ``SEED_SESSIONS`` closed sessions of every default market; the newest closed
XLON session is published with flipped bytes (``checksum_corruption``). Every other seeded session is
landed through Dagster before the UI starts (real runs on the instance, skipped when already there), so the
history is not "late". The XLON session is left to the platform: the publication sensor lands it, landing
verification fails, the quality-failure sensor opens an incident, pauses the XLON consumers and quarantines
the batch, and the lag sensor's backfill retries it: a newcomer sees sensors, checks, quarantine and a
backfill within a minute or two of start.
"""

import datetime as dt
from pathlib import Path

from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.pipeline.lag import closed_sessions
from tradepulse_assets.core.clock import parse_clock
from tradepulse_assets.feeds.publisher import Publisher, destination_from_url
from tradepulse_assets.feeds.scenarios import FaultSpec, Scenario

SEED = 20261130
SEED_SESSIONS = 2  # make run watches this many closed sessions per market (TRADEPULSE_LAG_LOOKBACK_SESSIONS)
SEEDED_FAULT_MARKET = "XLON"


def seed_demo_state(env: dict[str, str]) -> list[str]:
    home = Path(env["TRADEPULSE_HOME"])
    vendor_root = env.get("TRADEPULSE_VENDOR_SOURCE") or str(home / "vendor")
    if vendor_root.startswith(("http://", "https://")):
        return []  # a real vendor: nothing to simulate
    now = parse_clock(env.get("TRADEPULSE_CLOCK", "system")).now()
    registry = load_registry()
    faulty = closed_sessions(registry.get(SEEDED_FAULT_MARKET), now, 1)
    scenario = Scenario(
        name="seeded_corruption",
        description="make run's seeded incident: flipped bytes in the newest XLON session",
        faults=(FaultSpec("checksum_corruption", SEEDED_FAULT_MARKET, faulty[0], faulty[0], {"bytes": 8}),),
    )
    publisher = Publisher(destination_from_url(vendor_root), seed=SEED, scenarios=(scenario,), registry=registry)
    lines = []
    for market in registry:
        sessions = closed_sessions(market, now, SEED_SESSIONS)
        for session in sessions:
            result = publisher.publish_session(market.market_id, session, by_minute=market.is_streaming)
            lines.append(f"{market.market_id} {session}: {result.status}")
        calendar = calendar_for(market.market_id, market.calendar)
        current = calendar.session_of(now)
        if market.is_streaming and current is not None:
            publisher.publish_due(market.market_id, current, now)
    print(f"[make run] simulated vendor published {len(lines)} session(s) into {vendor_root}", flush=True)
    land_history(env, registry, now, skip={(SEEDED_FAULT_MARKET, faulty[0])})
    return lines


def land_history(env: dict[str, str], registry, now: dt.datetime, skip: set) -> None:
    """Land the seeded sessions through Dagster (real runs on the instance), except ``skip``."""
    import os

    import dagster as dg

    from tradepulse_assets.defs.definitions import build_definitions
    from tradepulse_assets.defs.jobs import ingest_job_name
    from tradepulse_assets.pipeline.settings import load_settings

    os.environ.update(env)  # the instance and the settings read the same environment as the stack
    defs = build_definitions(registry, load_settings(env))
    with dg.DagsterInstance.get() as instance:
        for market in registry:
            job = defs.resolve_job_def(ingest_job_name(market))
            landed = instance.get_materialized_partitions(dg.AssetKey([market.market_id.lower(), "production_bars"]))
            for session in closed_sessions(market, now, SEED_SESSIONS):
                if (market.market_id, session) in skip or session.isoformat() in landed:
                    continue
                result = job.execute_in_process(
                    instance=instance, partition_key=session.isoformat(), tags={"tradepulse/seed": "history"},
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                    raise_on_error=False,
                )
                status = "landed" if result.success else "FAILED (see the run in the UI)"
                print(f"[make run] history {market.market_id} {session}: {status}", flush=True)


def publish_due_forever(env: dict[str, str], interval: float = 15.0) -> None:
    """The simulated vendor keeps publishing: streaming micro-batches as the clock passes, batch sessions
    after their close."""
    import time

    vendor_root = env.get("TRADEPULSE_VENDOR_SOURCE") or str(Path(env["TRADEPULSE_HOME"]) / "vendor")
    clock = parse_clock(env.get("TRADEPULSE_CLOCK", "system"))
    registry = load_registry()
    publisher = Publisher(destination_from_url(vendor_root), seed=SEED, registry=registry)
    while True:
        now = clock.now()
        for market in registry:
            calendar = calendar_for(market.market_id, market.calendar)
            current = calendar.session_of(now)
            if market.is_streaming and current is not None:
                publisher.publish_due(market.market_id, current, now)
            for session in closed_sessions(market, now, 1):
                if session >= now.date() - dt.timedelta(days=1):
                    publisher.publish_session(market.market_id, session, by_minute=market.is_streaming)
        time.sleep(interval)


if __name__ == "__main__":
    import os

    publish_due_forever(dict(os.environ))
