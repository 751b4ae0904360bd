"""The durable outbox: every incident message is a row in the state DB until it is delivered or expires.

Why in the state DB: the daemon's sensors, run workers and ``tradepulse-cli`` all notify, possibly on different
machines; the state DB (SQLite or PostgreSQL) is the one store they all share, with transactions. A message
enqueued there survives a crash of whoever enqueued it, a delivery worker on any machine can send it, and an
operator can list and resend it (``tradepulse-cli notify list|resend``).

A row's life: ``pending`` -> ``delivered`` | ``failed`` (a permanent refusal) | ``expired`` (still undelivered
after its time to live). Messages for channels without a configured transport are ``recorded``: written to the
JSONL outbox file, as before any transport existed, and kept in the table for the record.

Order per incident and channel: a row is not due while an earlier ``pending`` row of the same incident and
channel exists, so a PagerDuty resolve is never sent before its trigger, and a dead email server does not
hold back the Slack posts. Claims (``claimed_until``) keep two delivery workers from sending the same row.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tradepulse_assets.incidents.communications import Message, format_instant
from tradepulse_assets.incidents.notifications.transport import DELIVERED, FAILED, Attempt
from tradepulse_assets.storage.state import StateDB, from_iso, to_iso

SCHEMA_NAME = "notifications"
OUTBOX_DDL = (
    "CREATE TABLE IF NOT EXISTS notification_outbox ("
    " id {autoid}, incident_id TEXT NOT NULL, channel TEXT NOT NULL, stage TEXT NOT NULL,"
    " event_action TEXT, dedup_key TEXT NOT NULL, drill INTEGER NOT NULL, record TEXT NOT NULL,"
    " transport TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, created_at TEXT NOT NULL,"
    " next_attempt_at TEXT NOT NULL, expires_at TEXT NOT NULL, claimed_until TEXT, last_status INTEGER,"
    " last_error TEXT, delivered_at TEXT, reference TEXT)",
    "CREATE INDEX IF NOT EXISTS notification_outbox_due ON notification_outbox (status, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS notification_outbox_by_incident ON notification_outbox (incident_id, channel, id)",
)
PENDING, RECORDED, EXPIRED = "pending", "recorded", "expired"
STATUSES = (PENDING, DELIVERED, FAILED, EXPIRED, RECORDED)
FILE_TRANSPORT = "outbox-file"
DEFAULT_TTL = dt.timedelta(hours=24)
BACKOFF_BASE = dt.timedelta(seconds=15)
BACKOFF_MAX = dt.timedelta(minutes=15)
CLAIM_LEASE = dt.timedelta(minutes=2)


def backoff(attempts: int, retry_after: float | None = None) -> dt.timedelta:
    """Wait before try ``attempts + 1``: 15 s, 30 s, 1 min ... capped at 15 min; never less than Retry-After."""
    wait = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    if retry_after is not None:
        wait = max(wait, dt.timedelta(seconds=retry_after))
    return wait


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    incident_id: str
    channel: str
    stage: str
    event_action: str | None
    dedup_key: str
    drill: bool
    transport: str
    status: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    expires_at: dt.datetime
    last_status: int | None
    last_error: str | None
    delivered_at: dt.datetime | None
    reference: str | None
    record: Mapping[str, Any]

    @property
    def message(self) -> Message:
        return Message.from_record(self.record)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "channel": self.channel,
            "stage": self.stage,
            "event_action": self.event_action,
            "dedup_key": self.dedup_key,
            "drill": self.drill,
            "transport": self.transport,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": to_iso(self.created_at),
            "next_attempt_at": to_iso(self.next_attempt_at),
            "expires_at": to_iso(self.expires_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": to_iso(self.delivered_at) if self.delivered_at else None,
            "reference": self.reference,
            "text": self.record.get("text"),
        }


def _entry(row: Mapping[str, Any]) -> OutboxEntry:
    return OutboxEntry(
        id=int(row["id"]),
        incident_id=row["incident_id"],
        channel=row["channel"],
        stage=row["stage"],
        event_action=row["event_action"],
        dedup_key=row["dedup_key"],
        drill=bool(row["drill"]),
        transport=row["transport"],
        status=row["status"],
        attempts=int(row["attempts"]),
        created_at=from_iso(row["created_at"]),
        next_attempt_at=from_iso(row["next_attempt_at"]),
        expires_at=from_iso(row["expires_at"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        delivered_at=from_iso(row["delivered_at"]),
        reference=row["reference"],
        record=json.loads(row["record"]),
    )


class Outbox:
    """The ``notification_outbox`` table of a state DB."""

    def __init__(self, db: StateDB, *, ttl: dt.timedelta = DEFAULT_TTL) -> None:
        self.db = db
        self.ttl = ttl
        db.ensure_schema(SCHEMA_NAME, OUTBOX_DDL)

    def enqueue(
        self, message: Message, transport: str, *, now: dt.datetime, status: str = PENDING
    ) -> OutboxEntry:
        record = json.dumps(message.to_record(), sort_keys=True, separators=(",", ":"))
        with self.db.transaction() as tx:
            row = tx.query_one(
                "INSERT INTO notification_outbox (incident_id, channel, stage, event_action, dedup_key, drill,"
                " record, transport, status, attempts, created_at, next_attempt_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING *",
                (
                    message.incident_id,
                    message.channel,
                    message.stage.value,
                    message.event_action.value if message.event_action else None,
                    message.dedup_key,
                    int(message.drill),
                    record,
                    transport,
                    status,
                    to_iso(now),
                    to_iso(now),
                    to_iso(now + self.ttl),
                ),
            )
        return _entry(row)

    def get(self, entry_id: int) -> OutboxEntry:
        rows = self.db.query("SELECT * FROM notification_outbox WHERE id = ?", (entry_id,))
        if not rows:
            raise KeyError(f"no notification {entry_id} in the outbox of state DB {self.db.url_redacted}")
        return _entry(rows[0])

    def list(
        self, *, status: str | None = None, incident_id: str | None = None, limit: int = 200
    ) -> list[OutboxEntry]:
        sql, params = "SELECT * FROM notification_outbox WHERE 1 = 1", []
        if status:
            sql, params = sql + " AND status = ?", [*params, status]
        if incident_id:
            sql, params = sql + " AND incident_id = ?", [*params, incident_id]
        rows = self.db.query(sql + " ORDER BY id DESC LIMIT ?", [*params, int(limit)])
        return [_entry(r) for r in reversed(rows)]

    _DUE = (
        " FROM notification_outbox o WHERE o.status = 'pending' AND o.next_attempt_at <= ?"
        " AND (o.claimed_until IS NULL OR o.claimed_until < ?)"
        " AND NOT EXISTS (SELECT 1 FROM notification_outbox p WHERE p.incident_id = o.incident_id"
        " AND p.channel = o.channel AND p.id < o.id AND p.status = 'pending')"
    )

    def due(self, now: dt.datetime, limit: int = 100) -> list[OutboxEntry]:
        """Pending rows whose time has come, unclaimed, with no earlier pending row of their incident and
        channel; oldest first."""
        rows = self.db.query(
            "SELECT o.*" + self._DUE + " ORDER BY o.id LIMIT ?", (to_iso(now), to_iso(now), limit)
        )
        return [_entry(r) for r in rows]

    def due_count(self, now: dt.datetime) -> int:
        """How many rows are due or expiring: what a sensor tick asks (one indexed query, no network)."""
        due = self.db.query("SELECT COUNT(*) AS n" + self._DUE, (to_iso(now), to_iso(now)))[0]["n"]
        expiring = self.db.query(
            "SELECT COUNT(*) AS n FROM notification_outbox WHERE status = 'pending' AND expires_at <= ?",
            (to_iso(now),),
        )[0]["n"]
        return int(due) + int(expiring)

    def claim(self, entry_id: int, *, now: dt.datetime, lease: dt.timedelta = CLAIM_LEASE) -> bool:
        """Take a row for one attempt; ``False`` when another worker holds it or it is no longer pending."""
        return bool(
            self.db.execute(
                "UPDATE notification_outbox SET claimed_until = ? WHERE id = ? AND status = 'pending'"
                " AND (claimed_until IS NULL OR claimed_until < ?)",
                (to_iso(now + lease), entry_id, to_iso(now)),
            )
        )

    def record_attempt(self, entry_id: int, attempt: Attempt, *, now: dt.datetime) -> OutboxEntry:
        """Store an attempt's outcome: delivered, failed for good, or due again after the backoff."""
        with self.db.transaction() as tx:
            row = tx.query_one("SELECT attempts FROM notification_outbox WHERE id = ?", (entry_id,))
            attempts = int(row["attempts"]) + 1
            status = attempt.outcome if attempt.outcome in (DELIVERED, FAILED) else PENDING
            tx.execute(
                "UPDATE notification_outbox SET status = ?, attempts = ?, next_attempt_at = ?, claimed_until = NULL,"
                " last_status = ?, last_error = ?, delivered_at = ?, reference = ? WHERE id = ?",
                (
                    status,
                    attempts,
                    to_iso(now + backoff(attempts, attempt.retry_after)),
                    attempt.status,
                    attempt.error,
                    to_iso(now) if status == DELIVERED else None,
                    attempt.reference,
                    entry_id,
                ),
            )
            return _entry(tx.query_one("SELECT * FROM notification_outbox WHERE id = ?", (entry_id,)))

    def expire(self, now: dt.datetime) -> list[OutboxEntry]:
        """Pending rows past their time to live become ``expired`` (returned, for the timeline)."""
        with self.db.transaction() as tx:
            rows = tx.query(
                "SELECT * FROM notification_outbox WHERE status = 'pending' AND expires_at <= ?"
                " AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id",
                (to_iso(now), to_iso(now)),
            )
            for row in rows:
                tx.execute("UPDATE notification_outbox SET status = 'expired' WHERE id = ?", (row["id"],))
        return [_entry({**r, "status": EXPIRED}) for r in rows]

    def resend(self, entry_ids: Iterable[int], *, now: dt.datetime) -> list[OutboxEntry]:
        """Make rows due again now, with a fresh time to live (failed, expired or recorded ones included)."""
        entries = []
        for entry_id in entry_ids:
            self.get(entry_id)  # a clear error for an unknown id
            self.db.execute(
                "UPDATE notification_outbox SET status = 'pending', next_attempt_at = ?, expires_at = ?,"
                " claimed_until = NULL WHERE id = ? AND status <> 'delivered'",
                (to_iso(now), to_iso(now + self.ttl), entry_id),
            )
            entries.append(self.get(entry_id))
        return entries


def file_record(message: Message, now: dt.datetime, note: str | None = None) -> dict[str, Any]:
    """The JSONL outbox line of a message (the record plus when it was written and why)."""
    record = {"recorded_at": format_instant(now), **message.to_record()}
    if note:
        record["note"] = note
    return record
