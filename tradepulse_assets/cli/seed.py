"""The state ``make run`` opens on, made once: recent sessions published by the simulated vendor for every
market, the history landed through Dagster, and one fault waiting to be found.

The vendor drop gets the last ``SEED_SESSIONS`` closed sessions of every default market; the newest closed
XLON session is published with flipped bytes (``checksum_corruption``). Every other seeded session is
landed through real runs on the instance (skipped when already there), tagged ``tradepulse/seed`` so the
freshness gate reports them as history, not as late. The supervisor runs this in the background while the
UI comes up and starts the daemon when it is done. The XLON session is left to the platform: the
publication sensor lands it, landing verification fails, the quality-failure sensor opens an incident,
pauses the XLON consumers and quarantines the batch, and the lag sensor's backfill retries it.
The vendor that keeps publishing afterwards is ``cli/simulated_vendor.py``.
"""

import datetime as dt
import signal
import sys
from pathlib import Path

from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.pipeline.lag import closed_sessions
from tradepulse_assets.core.clock import parse_clock
from tradepulse_assets.feeds.publisher import Publisher, drop_store
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
    publisher = Publisher(drop_store(vendor_root), seed=SEED, scenarios=(scenario,), registry=registry)
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
                if was_interrupted(result):
                    print(f"[make run] history {market.market_id} {session}: interrupted", flush=True)
                    raise KeyboardInterrupt
                status = "landed" if result.success else "FAILED (see the run in the UI)"
                print(f"[make run] history {market.market_id} {session}: {status}", flush=True)


def was_interrupted(result) -> bool:
    """Whether a run failed because this process was signalled (Dagster turns SIGINT and SIGTERM during
    execution into an interrupted run, so the caller has to ask the result)."""
    if result.success:
        return False
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        if event.is_failure and ("interrupted" in (event.message or "").lower()
                                 or "Interrupt" in getattr(error, "cls_name", "")):
            return True
    return False


if __name__ == "__main__":  # make run starts this in the background (cli/devserver.py)
    import os

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # the supervisor stops us with SIGTERM
    try:
        seed_demo_state(dict(os.environ))
    except KeyboardInterrupt:
        print("[make run] seed stopped before the history was complete; the next start lands the rest")
        sys.exit(130)
