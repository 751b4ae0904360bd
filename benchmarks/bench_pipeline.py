"""A run of XNYS sessions through Dagster against the same pipeline functions called directly (issue #14).

One command: ``make bench-pipeline``. For each size of the sweep (sessions x symbols) the simulator publishes
the sessions once (seeded, one batch file per session), then two modes land, gate and promote every session
in fresh directories, interleaved round by round so load from other work on the shared cores hits both alike
(each round in a fresh Dagster instance and state DB, one process):

- ``direct``: :func:`pipeline.ingest.ingest_session_exclusively` per session (lease, land, stage with every
  gate, promote under the lease), plus the health-catalog write the staging asset does;
- ``dagster``: the market's ingest job, bar assets only (landed -> staging -> production, with their asset
  checks), one run per session (what a sensor, the CLI or a one-session launch runs) on a persistent SQLite
  Dagster instance, in process: the figure is the platform's, not process start-up's;
- ``range``: the same job and assets over ranges of ``bars.RANGE_SESSIONS`` sessions, one run per range (what
  a multi-session backfill launches: the bar assets' ``BackfillPolicy``), each session still leased, gated,
  checked and promoted on its own (``bars.run_session_range``); a range's seconds are shared by its sessions.

Indicator features are left out of both (they are their own benchmark, ``make bench-indicators``). Both modes
must promote exactly the published rows of every session, or the benchmark exits 1. Printed per size:
wall seconds of each mode, the median seconds per session, the per-session ratios dagster / direct and
range / direct, a year through ranges (250 sessions: measured at that size, else start-up plus 250 median
sessions) and the load average. Targets (#14): a year of 500-symbol XNYS sessions through Dagster (as a
backfill runs it: ranges) < 5 min on 2 cores and within 2x of direct.
"""

import argparse
import datetime as dt
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

YEAR_SESSIONS = 250
TARGET_SECONDS = 300.0
TARGET_RATIO = 2.0
FIRST_SESSION = dt.date(2025, 1, 2)


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def sessions_of(count: int) -> list[dt.date]:
    from tradepulse_assets.markets import calendar_for

    calendar = calendar_for("XNYS", "XNYS")
    found = calendar.sessions(FIRST_SESSION, FIRST_SESSION + dt.timedelta(days=2 * count + 14))
    if len(found) < count:
        raise SystemExit(f"only {len(found)} XNYS sessions from {FIRST_SESSION}")
    return list(found[:count])


def publish(vendor: Path, sessions: list[dt.date], symbols: int) -> dict[dt.date, int]:
    from tradepulse_assets.feeds.publisher import Publisher, drop_store

    publisher = Publisher(drop_store(str(vendor)), seed=14, n_symbols=symbols)
    return {s: publisher.publish_session("XNYS", s).records for s in sessions}


def market_of(symbols: int):
    """XNYS with a universe of ``symbols`` (so the universe gate expects the simulator's symbols) whose
    partitions start at ``FIRST_SESSION``, so a whole year of sessions lies in the past."""
    import dataclasses

    from tradepulse_assets.markets import load_registry

    return dataclasses.replace(load_registry().get("XNYS"), universe_size=symbols, first_session=FIRST_SESSION)


def run_direct(vendor: Path, work: Path, sessions: list[dt.date], market) -> tuple[dict[dt.date, int], list[float]]:
    from tradepulse_assets.feeds.connectors import DirectoryConnector
    from tradepulse_assets.pipeline.ingest import ingest_session_exclusively
    from tradepulse_assets.pipeline.ownership import SessionLedger
    from tradepulse_assets.quality.catalog import health_catalog_for
    from tradepulse_assets.storage.audit import AuditLog
    from tradepulse_assets.storage.object_store import LocalObjectStore
    from tradepulse_assets.storage.state import StateDB

    store = LocalObjectStore(work / "store")
    audit = AuditLog(work)
    ledger = SessionLedger(StateDB(f"sqlite:///{work / 'state.db'}"))
    catalog = health_catalog_for(store)
    connector = DirectoryConnector(str(vendor))
    now = dt.datetime.now(dt.UTC)
    promoted, seconds = {}, []
    for session in sessions:
        started = time.perf_counter()
        done = ingest_session_exclusively(connector, store, audit, ledger, market, session, now, "bench",
                                          is_backfill=True)
        catalog.write(market.market_id, session, done.staging.results, now, "bench")
        seconds.append(time.perf_counter() - started)
        promoted[session] = done.promoted_rows
    return promoted, seconds


def run_dagster(vendor: Path, work: Path, sessions: list[dt.date], market,
                sessions_per_run: int = 1) -> tuple[dict[dt.date, int], list[float]]:
    import dataclasses

    import dagster as dg

    from tradepulse_assets.defs.assets.bars import market_key
    from tradepulse_assets.defs.definitions import build_definitions
    from tradepulse_assets.defs.jobs import ingest_job_name
    from tradepulse_assets.markets import load_registry
    from tradepulse_assets.pipeline.settings import load_settings
    from tradepulse_assets.storage import lake
    from tradepulse_assets.storage.object_store import LocalObjectStore

    settings = load_settings({"TRADEPULSE_OBJECT_STORE_URL": str(work / "store"),
                              "TRADEPULSE_STATE_DB_URL": f"sqlite:///{work / 'state.db'}",
                              "TRADEPULSE_VENDOR_SOURCE": str(vendor),
                              "TRADEPULSE_CLOCK": "system"})
    registry = load_registry()
    registry = dataclasses.replace(registry, markets=tuple(market if m.market_id == "XNYS" else m for m in registry))
    defs = build_definitions(registry, settings)
    job = defs.resolve_job_def(ingest_job_name(market))
    bars = [market_key(market, name) for name in ("landed_bars", "staging_bars", "production_bars")]
    (work / "dagster").mkdir()
    store = LocalObjectStore(work / "store")
    promoted, seconds = {}, []
    with dg.instance_for_test(temp_dir=str(work / "dagster")) as instance:
        for first in range(0, len(sessions), sessions_per_run):
            chunk = sessions[first:first + sessions_per_run]
            started = time.perf_counter()
            result = job.execute_in_process(instance=instance, asset_selection=bars, raise_on_error=False,
                                            run_config=QUIET, **partitions_of(chunk))
            if not result.success:
                raise SystemExit(f"dagster run of XNYS {chunk[0]}..{chunk[-1]} failed")
            seconds += [(time.perf_counter() - started) / len(chunk)] * len(chunk)
            promoted.update({s: lake.read_frame(store, "production", "XNYS", s).height for s in chunk})
    return promoted, seconds


def partitions_of(chunk: list[dt.date]) -> dict:
    """One session as a partition key; consecutive sessions as a range (what BackfillPolicy launches)."""
    if len(chunk) == 1:
        return {"partition_key": chunk[0].isoformat()}
    return {"tags": {"dagster/asset_partition_range_start": chunk[0].isoformat(),
                     "dagster/asset_partition_range_end": chunk[-1].isoformat()}}


def run_ranges(vendor: Path, work: Path, sessions: list[dt.date], market):
    from tradepulse_assets.defs.assets.bars import RANGE_SESSIONS

    # Dagster's plan logs one line per staging check each range run ("emitted no result in step ...": the
    # staging step is skipped, the first bar step did its work); a deployed run keeps it in its worker's log.
    logging.getLogger("dagster._core.execution.plan.active").setLevel(logging.ERROR)

    return run_dagster(vendor, work, sessions, market, sessions_per_run=RANGE_SESSIONS)


MODES = {"direct": run_direct, "dagster": run_dagster, "range": run_ranges}
#: Errors only on the console: a deployed run writes its events to the event log, not to a terminal.
QUIET = {"loggers": {"console": {"config": {"log_level": os.environ.get("BENCH_LOG_LEVEL", "ERROR")}}}}


@dataclass
class Timing:
    """One mode's round: wall seconds in all, and of each session (the rest is start-up: definitions, instance)."""

    total: float
    sessions: list[float]

    @property
    def startup(self) -> float:
        return self.total - sum(self.sessions)

    @property
    def per_session(self) -> float:
        return statistics.median(self.sessions)

    def year(self) -> float:
        """Start-up once plus the median session cost for a year of sessions."""
        return self.startup + self.per_session * YEAR_SESSIONS


def measure(size: tuple[int, int], rounds: int, keep: Path, modes: list[str]) -> dict[str, list[Timing]]:
    count, symbols = size
    sessions = sessions_of(count)
    vendor = keep / f"vendor-{count}x{symbols}"
    published = publish(vendor, sessions, symbols)
    market = market_of(symbols)
    times: dict[str, list[Timing]] = {mode: [] for mode in modes}
    for r in range(rounds):
        order = modes[r % len(modes):] + modes[:r % len(modes)]  # each mode leads a round in turn
        for mode in order:
            work = Path(tempfile.mkdtemp(prefix=f"bench-pipeline-{mode}-", dir=keep))
            os.environ["TRADEPULSE_HOME"] = str(work)
            started = time.perf_counter()
            promoted, seconds = MODES[mode](vendor, work, sessions, market)
            times[mode].append(Timing(time.perf_counter() - started, seconds))
            if promoted != published:
                wrong = {s: (promoted.get(s), n) for s, n in published.items() if promoted.get(s) != n}
                raise SystemExit(f"{mode}: promoted rows differ from the published ones: {wrong}")
            shutil.rmtree(work)
    return times


def median_timing(timings: list[Timing]) -> Timing:
    return sorted(timings, key=lambda t: t.total)[len(timings) // 2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5x500,25x500,250x500",
                        help="comma-separated SESSIONSxSYMBOLS (default 5x500,25x500,250x500: a year last)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds per size (default 1)")
    parser.add_argument("--skip-per-session", action="store_true",
                        help="direct and range only (a year of one run per session takes long)")
    args = parser.parse_args(argv)
    modes = [m for m in MODES if not (args.skip_per_session and m == "dagster")]
    sizes = [tuple(int(p) for p in s.split("x")) for s in args.sizes.split(",")]
    print(f"bench-pipeline on {os.cpu_count()} cores, load {load()} at start; medians of {args.rounds} round(s)")
    header = ("sessions x symbols", "direct s", "dagster s", "range s", "direct s/session",
              "dagster s/session", "range s/session", "x dagster/direct", "x range/direct", "range year s",
              "load 1/5/15")
    print("".join(f"{h:<19}" for h in header))
    judged = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as keep:
        for size in sizes:
            times = measure(size, args.rounds, Path(keep), modes)
            direct, ranges = median_timing(times["direct"]), median_timing(times["range"])
            dagster = median_timing(times["dagster"]) if "dagster" in times else None
            ratio = ranges.per_session / direct.per_session
            year = ranges.total if size[0] == YEAR_SESSIONS else ranges.year()
            timed = (direct, dagster, ranges)
            row = (f"{size[0]} x {size[1]}", *(f"{t.total:.1f}" if t else "-" for t in timed),
                   *(f"{t.per_session:.2f}" if t else "-" for t in timed),
                   f"{dagster.per_session / direct.per_session:.2f}" if dagster else "-", f"{ratio:.2f}",
                   f"{year:.0f}{'' if size[0] == YEAR_SESSIONS else ' (est.)'}", load())
            print("".join(f"{c:<19}" for c in row), flush=True)
            if size[1] >= 500:
                judged.append(year < TARGET_SECONDS and ratio <= TARGET_RATIO)
    verdict = "not measured (no 500-symbol size)" if not judged else ("met" if all(judged) else "MISSED")
    print(f"targets (500 symbols): a year through Dagster ranges < {TARGET_SECONDS:.0f} s and "
          f"<= {TARGET_RATIO}x direct: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
