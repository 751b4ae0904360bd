"""Consumers skipped by a hold, remembered until they ran: containment is undone completely.

A paused consumer (feature-store writer, backtest exporter) records no materialisation it did not make; it
records the skip here instead (market, consumer, session, why, which run). When the hold is released, the
catch-up sensor requests exactly these partitions (``decisions.catch_up_requests``); a consumer that runs
clears its row. The exit criterion "consumers caught up" reads what is still outstanding.
"""

import datetime as dt
from dataclasses import dataclass

from tradepulse_assets.pipeline.decisions import ConsumerSkip
from tradepulse_assets.storage.state import StateDB, from_iso, to_iso

SCHEMA_NAME = "consumer_catchup"
CATCHUP_DDL = (
    "CREATE TABLE IF NOT EXISTS consumer_skips ("
    " market TEXT NOT NULL, consumer TEXT NOT NULL, session TEXT NOT NULL, reason TEXT NOT NULL,"
    " run_id TEXT, skipped_at TEXT NOT NULL, skips INTEGER NOT NULL,"
    " PRIMARY KEY (market, consumer, session))",
)


@dataclass(frozen=True)
class SkipRecord:
    skip: ConsumerSkip
    reason: str
    run_id: str | None
    skipped_at: dt.datetime
    skips: int  # how many runs skipped it (part of the catch-up run key: a new skip is a new request)


class ConsumerSkips:
    def __init__(self, db: StateDB):
        self.db = db
        db.ensure_schema(SCHEMA_NAME, CATCHUP_DDL)

    def record(self, market: str, consumer: str, session: dt.date, *, reason: str, run_id: str | None,
               now: dt.datetime) -> None:
        self.db.execute(
            "INSERT INTO consumer_skips (market, consumer, session, reason, run_id, skipped_at, skips)"
            " VALUES (?, ?, ?, ?, ?, ?, 1) ON CONFLICT (market, consumer, session) DO UPDATE SET"
            " reason = excluded.reason, run_id = excluded.run_id, skipped_at = excluded.skipped_at,"
            " skips = consumer_skips.skips + 1",
            (market, consumer, session.isoformat(), reason, run_id, to_iso(now)),
        )

    def clear(self, market: str, consumer: str, session: dt.date) -> bool:
        return self.db.execute("DELETE FROM consumer_skips WHERE market = ? AND consumer = ? AND session = ?",
                               (market, consumer, session.isoformat())) > 0

    def outstanding(self, market: str | None = None) -> list[SkipRecord]:
        sql, params = "SELECT * FROM consumer_skips", ()
        if market is not None:
            sql, params = sql + " WHERE market = ?", (market,)
        rows = self.db.query(sql + " ORDER BY market, consumer, session", params)
        return [SkipRecord(ConsumerSkip(r["market"], r["consumer"], r["session"]), r["reason"], r["run_id"],
                           from_iso(r["skipped_at"]), int(r["skips"])) for r in rows]
