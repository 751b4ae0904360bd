"""One owner per (market, session), and the revision production holds: both in the state database.

Why a state-DB lease rather than a Dagster tag limit: runs launched from the UI carry no market tag, the CLI
and run workers are separate processes, and the production profile runs on PostgreSQL with several machines.
A row per session in the shared state DB, taken in a serialising transaction, holds on SQLite and on
PostgreSQL alike. The lease is held for the whole land -> stage -> promote of a session (a multi-session run
takes one lease per session), so two landings of one partition never interleave, whoever launched them.

A lease ends when its holder releases it, when it expires (a crashed CLI process) or when the caller's
``is_alive`` says the holder is gone (a Dagster run that failed after landing: its run is finished).
Lease times are wall-clock (``dt.datetime.now``): they measure processes, not the simulated market day.

``production_revisions`` records the vendor revision and delivery digest of what production holds; a
promotion is recorded only by the lease holder and only when ``decisions.revision_verdict`` allows it.
"""

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from tradepulse_assets.pipeline.decisions import overtaken, revision_verdict
from tradepulse_assets.storage.state import StateDB, from_iso, to_iso

UTC = dt.timezone.utc
DEFAULT_TTL = dt.timedelta(minutes=15)
SCHEMA_NAME = "session_ownership"
OWNERSHIP_DDL = (
    "CREATE TABLE IF NOT EXISTS session_leases ("
    " market TEXT NOT NULL, session TEXT NOT NULL, holder TEXT NOT NULL, acquired_at TEXT NOT NULL,"
    " expires_at TEXT NOT NULL, PRIMARY KEY (market, session))",
    "CREATE TABLE IF NOT EXISTS production_revisions ("
    " market TEXT NOT NULL, session TEXT NOT NULL, revision INTEGER NOT NULL, digest TEXT,"
    " promoted_at TEXT NOT NULL, holder TEXT NOT NULL, PRIMARY KEY (market, session))",
)


class LeaseHeld(RuntimeError):
    """Another holder owns the session; names it and when its lease expires."""


class RevisionRefused(RuntimeError):
    """A delivery would replace a higher revision in production (a rollback)."""


class AlreadyLanded(RuntimeError):
    """Another run, launched at the same time, landed this very delivery while this one waited: nothing to do."""


@dataclass(frozen=True)
class Lease:
    market: str
    session: str
    holder: str
    acquired_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True)
class HeldRevision:
    revision: int
    digest: str | None
    promoted_at: dt.datetime
    holder: str


def _wall_now() -> dt.datetime:
    return dt.datetime.now(UTC)


class SessionLedger:
    """Leases and production revisions per (market, session). ``now``: the wall clock (tests inject one)."""

    def __init__(self, db: StateDB, now: Callable[[], dt.datetime] = _wall_now):
        self.db = db
        self._now = now
        db.ensure_schema(SCHEMA_NAME, OWNERSHIP_DDL)

    # -- leases ----------------------------------------------------------------------------------
    def try_acquire(self, market: str, session: dt.date, holder: str, *, ttl: dt.timedelta = DEFAULT_TTL,
                    is_alive: Callable[[str], bool] | None = None) -> Lease | None:
        """Take (or renew) the lease; ``None`` if a live holder owns it."""
        now = self._now()
        with self.db.transaction() as tx:
            tx.lock(f"session-lease:{market}:{session}")
            row = tx.query_one("SELECT * FROM session_leases WHERE market = ? AND session = ?",
                               (market, session.isoformat()))
            if row is not None and row["holder"] != holder:
                expired = from_iso(row["expires_at"]) <= now
                if not expired and (is_alive is None or is_alive(row["holder"])):
                    return None
            tx.execute(
                "INSERT INTO session_leases (market, session, holder, acquired_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (market, session) DO UPDATE SET holder = excluded.holder,"
                " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                (market, session.isoformat(), holder, to_iso(now), to_iso(now + ttl)),
            )
        return Lease(market, session.isoformat(), holder, now, now + ttl)

    def acquire(self, market: str, session: dt.date, holder: str, *, ttl: dt.timedelta = DEFAULT_TTL,
                wait: dt.timedelta = dt.timedelta(0), poll_seconds: float = 0.2,
                is_alive: Callable[[str], bool] | None = None) -> Lease:
        """Take the lease, waiting up to ``wait`` for the current holder; ``LeaseHeld`` after that."""
        deadline = time.monotonic() + wait.total_seconds()
        while True:
            lease = self.try_acquire(market, session, holder, ttl=ttl, is_alive=is_alive)
            if lease is not None:
                return lease
            if time.monotonic() >= deadline:
                current = self.holder(market, session)
                raise LeaseHeld(
                    f"{market} {session}: owned by {current.holder if current else '?'} until "
                    f"{current.expires_at.isoformat() if current else '?'}; "
                    f"{holder} waited {wait.total_seconds():.0f}s"
                )
            time.sleep(poll_seconds)

    def release(self, market: str, session: dt.date, holder: str) -> bool:
        """Give the lease back (only its holder can); ``True`` if it was held by ``holder``."""
        return self.db.execute("DELETE FROM session_leases WHERE market = ? AND session = ? AND holder = ?",
                               (market, session.isoformat(), holder)) > 0

    def holder(self, market: str, session: dt.date) -> Lease | None:
        rows = self.db.query("SELECT * FROM session_leases WHERE market = ? AND session = ?",
                             (market, session.isoformat()))
        if not rows:
            return None
        r = rows[0]
        return Lease(r["market"], r["session"], r["holder"], from_iso(r["acquired_at"]),
                     from_iso(r["expires_at"]))

    def active_holder(self, market: str, session: dt.date) -> str | None:
        lease = self.holder(market, session)
        return lease.holder if lease and lease.expires_at > self._now() else None

    # -- production revisions ----------------------------------------------------------------------
    def held_revision(self, market: str, session: dt.date) -> HeldRevision | None:
        rows = self.db.query("SELECT * FROM production_revisions WHERE market = ? AND session = ?",
                             (market, session.isoformat()))
        if not rows:
            return None
        r = rows[0]
        return HeldRevision(int(r["revision"]), r["digest"], from_iso(r["promoted_at"]), r["holder"])

    def held_revisions(self, market: str) -> dict[dt.date, HeldRevision]:
        rows = self.db.query("SELECT * FROM production_revisions WHERE market = ?", (market,))
        return {dt.date.fromisoformat(r["session"]): HeldRevision(int(r["revision"]), r["digest"],
                                                                 from_iso(r["promoted_at"]), r["holder"])
                for r in rows}

    def check_revision(self, market: str, session: dt.date, revision: int, digest: str | None) -> None:
        """``RevisionRefused`` if the delivery may not replace what production holds."""
        held = self.held_revision(market, session)
        allowed, why = revision_verdict(revision, digest, held.revision if held else None,
                                        held.digest if held else None)
        if not allowed:
            raise RevisionRefused(f"{market} {session}: {why}")

    def check_not_overtaken(self, market: str, session: dt.date, revision: int, digest: str | None,
                            launched_at: dt.datetime) -> None:
        """``AlreadyLanded`` if production came to hold this delivery after ``launched_at`` (``overtaken``)."""
        held = self.held_revision(market, session)
        if held is not None and overtaken(launched_at, revision, digest, held.revision, held.digest,
                                          held.promoted_at):
            raise AlreadyLanded(
                f"{market} {session}: production already holds this delivery (revision {revision}), landed by "
                f"{held.holder} at {held.promoted_at.isoformat()} after this run was launched"
            )

    def record_promotion(self, market: str, session: dt.date, revision: int, digest: str | None,
                         holder: str, promote: Callable[[], object] | None = None) -> HeldRevision:
        """Record that production now holds ``revision``: only the lease holder, only moving forward.

        ``promote`` (the lake write) runs inside the same serialising transaction, so the record and the
        data change together with respect to every other ledger writer.
        """
        now = self._now()
        with self.db.transaction() as tx:
            tx.lock(f"session-lease:{market}:{session}")
            lease = tx.query_one("SELECT holder FROM session_leases WHERE market = ? AND session = ?",
                                 (market, session.isoformat()))
            if lease is None or lease["holder"] != holder:
                raise LeaseHeld(f"{market} {session}: {holder} does not hold the lease "
                                f"(holder: {lease['holder'] if lease else 'nobody'}); promotion refused")
            row = tx.query_one(
                "SELECT revision, digest FROM production_revisions WHERE market = ? AND session = ?",
                (market, session.isoformat()),
            )
            allowed, why = revision_verdict(revision, digest, int(row["revision"]) if row else None,
                                            row["digest"] if row else None)
            if not allowed:
                raise RevisionRefused(f"{market} {session}: {why}")
            if promote is not None:
                promote()
            tx.execute(
                "INSERT INTO production_revisions (market, session, revision, digest, promoted_at, holder)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (market, session) DO UPDATE"
                " SET revision = excluded.revision,"
                " digest = excluded.digest, promoted_at = excluded.promoted_at, holder = excluded.holder",
                (market, session.isoformat(), int(revision), digest, to_iso(now), holder),
            )
        return HeldRevision(int(revision), digest, now, holder)
