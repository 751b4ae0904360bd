"""Streaming landing of one CRYPTO session from its 1,440 one-minute micro-batches (issue #14).

One command: ``make bench-stream``. In fresh directories each round, the vendor (simulator, seeded) publishes
the session minute by minute as far as is due before each poll (outside the timers), and it times: ``poll``
(the ingestor catching up on every micro-batch: the worst case after an outage; or 24 hourly polls of 60 new
micro-batches each), ``land`` (the session partition built from what the ingestor holds, as the
Dagster asset does) and their sum, with process CPU time beside wall time, then the compaction of the
session's micro-batches into one object (the ingestor's, after promotion: off the landing path), and counts
the fsyncs (and syncfs group flushes) each makes. The load average is printed beside every figure: the
machine is shared.
"""

import argparse
import datetime as dt
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from tradepulse_assets.feeds.connectors import DirectoryConnector
from tradepulse_assets.feeds.publisher import Publisher, drop_store
from tradepulse_assets.markets import calendar_for, load_registry
from tradepulse_assets.pipeline import ingest
from tradepulse_assets.pipeline.stream import LandedStreamConnector, compact_stream_session, poll_stream
from tradepulse_assets.core import io as core_io
from tradepulse_assets.storage.audit import AuditLog
from tradepulse_assets.storage.object_store import LocalObjectStore
from tradepulse_assets.storage.state import StateDB


class FsyncCounter:
    """Counts os.fsync calls and core.io's syncfs group flushes while active."""

    def __init__(self):
        self.count = 0
        self._real = os.fsync
        self._real_syncfs = core_io._syncfs_function()

    def __call__(self, fd):
        self.count += 1
        return self._real(fd)

    def syncfs(self):
        if self._real_syncfs is None:
            return None

        def counted(fd):
            self.count += 1
            return self._real_syncfs(fd)

        return counted


def one_round(work: Path, session: dt.date, polls: int) -> dict[str, float]:
    market = load_registry().get("CRYPTO")
    close = calendar_for(market.market_id, market.calendar).hours(session).close
    store = LocalObjectStore(work / "store")
    db = StateDB(f"sqlite:///{work / 'state.db'}")
    audit = AuditLog(work / "home", clock=lambda: close)
    publisher = Publisher(drop_store(str(work / "vendor")), seed=7)
    connector = DirectoryConnector(work / "vendor")
    counter = FsyncCounter()
    figures = {"poll_s": 0.0, "poll_cpu": 0.0}
    step = dt.timedelta(minutes=1440 // polls)
    now = close - step * (polls - 1) + dt.timedelta(seconds=30)
    for _ in range(polls):
        publisher.publish_due(market.market_id, session, now)  # what the vendor shows by now: not timed
        with (
            mock.patch("os.fsync", counter),
            mock.patch.object(core_io, "_syncfs_function", counter.syncfs),
        ):
            start, cpu = time.perf_counter(), time.process_time()
            poll_stream(market, connector, store, db, audit, now)
            figures["poll_s"] += time.perf_counter() - start
            figures["poll_cpu"] += time.process_time() - cpu
        now += step
    figures["poll_fsyncs"] = counter.count
    counter.count = 0
    with (
        mock.patch("os.fsync", counter),
        mock.patch.object(core_io, "_syncfs_function", counter.syncfs),
    ):
        start, cpu = time.perf_counter(), time.process_time()
        outcome = ingest.land_session(LandedStreamConnector(store, connector), store, audit, market, session, close)
        figures["land_s"], figures["land_cpu"] = time.perf_counter() - start, time.process_time() - cpu
        figures["land_fsyncs"] = counter.count
        counter.count = 0
        start = time.perf_counter()
        compacted = compact_stream_session(store, market.market_id, session)  # the ingestor's, later
        figures["compact_s"], figures["compact_fsyncs"] = time.perf_counter() - start, counter.count
    assert outcome.ok and outcome.rows == market.universe_size * 1440, outcome.faults[:3]
    assert compacted == 1440
    figures["total_s"] = figures["poll_s"] + figures["land_s"]
    figures["total_cpu"] = figures["poll_cpu"] + figures["land_cpu"]
    db.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--polls", type=int, nargs="+", default=[1],
                        help="how many polls land the session (1: catch-up after an outage)")
    args = parser.parse_args()
    session = dt.date(2026, 3, 10)
    print(f"CRYPTO {session}: 1,440 micro-batches, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        for polls in args.polls:
            rows = []
            for r in range(args.rounds):
                work = Path(tmp) / f"work-{polls}-{r}"
                rows.append(one_round(work, session, polls))
                shutil.rmtree(work)
            med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
            print(
                f"polls={polls:>4}  poll {med['poll_s']:.2f} s ({med['poll_fsyncs']:.0f} fsyncs)  "
                f"land {med['land_s']:.2f} s ({med['land_fsyncs']:.0f} fsyncs)  "
                f"landed in {med['total_s']:.2f} s wall, {med['total_cpu']:.2f} s CPU  "
                f"target < 3 s: {'met' if med['total_s'] < 3 else 'NOT met'}  "
                f"(then the ingestor compacts: {med['compact_s']:.2f} s, {med['compact_fsyncs']:.0f} fsyncs)  "
                f"load {os.getloadavg()[0]:.2f}"
            )


if __name__ == "__main__":
    main()
