"""The ingestion audit trail: ``observability/audit/ingestion_events.jsonl`` under ``$TRADEPULSE_HOME``.

One JSON object per line, keys sorted, with an ISO-8601 UTC ``time``. Writers are the Dagster daemon, run
workers and the CLI, i.e. several processes, so appends go through the platform's locked JSONL append
(:func:`tradepulse_assets.core.io.append_jsonl`: exclusive ``flock`` on a sibling lock file, one ``write`` on an
``O_APPEND`` descriptor, then fsync). Readers take the shared lock, so they never see half a line. If a writer
died mid-line (power loss), the next writer starts a fresh line, and :meth:`AuditLog.read` reports the torn line
by number instead of guessing.

Where the trail lives: :func:`audit_log_for` picks it from the lake. In the embedded default (a local lake) it
is this file under ``$TRADEPULSE_HOME``, the single ordered file the runbook points people at. In the production
profile (a remote lake) it is the ``audit_events`` table of the state DB (:class:`StateAuditLog`, PostgreSQL
there): run workers on other machines share no filesystem, and S3 has no append (rewriting one object is a
read-modify-write race; one object per event makes every read a listing of thousands of objects). Both have the
same ``append``/``append_many``/``read`` and the same record validation, and both keep writer order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tradepulse_assets.core.io import append_jsonl_many, read_locked
from tradepulse_assets.storage.home import AUDIT_LOG, home_path, tradepulse_home
from tradepulse_assets.storage.object_store import LocalObjectStore, ObjectStore, StorageError
from tradepulse_assets.storage.state import METADATA, StateDB, autoid, text_columns

__all__ = [
    "REQUIRED_FIELDS",
    "AuditLog",
    "AuditLogCorrupt",
    "InvalidAuditEvent",
    "StateAuditLog",
    "audit_log_for",
    "utc_now",
]

REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "event": str,
    "market": str,
    "session": (str, date),
    "batch": str,
    "rows": int,
    "sha256": str,
    "outcome": str,
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class InvalidAuditEvent(StorageError, ValueError):
    """An event missing a required field or with a field of the wrong kind."""


class AuditLogCorrupt(StorageError):
    """A line of the audit file is not a JSON object (a torn write or a hand edit)."""

    def __init__(self, path: Path, line_number: int, detail: str) -> None:
        super().__init__(f"{path}:{line_number}: not a JSON object ({detail})")
        self.path = path
        self.line_number = line_number


def utc_now() -> datetime:
    return datetime.now(UTC)


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise InvalidAuditEvent(f"time {moment!r} is naive; audit times are UTC-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _encode(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line of JSON per record (keys sorted), or :class:`InvalidAuditEvent` before anything is written."""
    try:
        return [json.dumps(record, sort_keys=True) for record in records]
    except TypeError as error:
        raise InvalidAuditEvent(f"audit event is not JSON-serializable: {error}") from None


def _selects(
    record: Mapping[str, Any], since: datetime | None, until: datetime | None, wanted: Mapping[str, Any]
) -> bool:
    moment = _parse_time(record["time"])
    if (since is not None and moment < since) or (until is not None and moment >= until):
        return False
    return all(record.get(key) == value for key, value in wanted.items())


def _wanted(where: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in where.items()}


def _normalize(event: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Validate required fields and return the record to write (dates as ISO strings, ``time`` set)."""
    missing = [name for name in REQUIRED_FIELDS if name not in event]
    if missing:
        raise InvalidAuditEvent(f"audit event lacks required field(s) {missing}: {dict(event)!r}")
    record = dict(event)
    for name, kind in REQUIRED_FIELDS.items():
        value = record[name]
        if isinstance(value, bool) or not isinstance(value, kind) or value == "":
            raise InvalidAuditEvent(f"audit field {name!r}={value!r} must be a non-empty {kind}")
    if record["rows"] < 0:
        raise InvalidAuditEvent(f"audit field 'rows'={record['rows']} must be >= 0")
    if not _SHA256.match(record["sha256"]):
        raise InvalidAuditEvent(f"audit field 'sha256'={record['sha256']!r} must be 64 lowercase hex digits")
    if isinstance(record["session"], date):
        record["session"] = record["session"].isoformat()
    else:
        try:
            date.fromisoformat(record["session"])
        except ValueError:
            raise InvalidAuditEvent(
                f"audit field 'session'={record['session']!r} is not YYYY-MM-DD"
            ) from None
    moment = record.get("time", now)
    if isinstance(moment, str):
        try:
            moment = _parse_time(moment)
        except ValueError:
            raise InvalidAuditEvent(f"audit field 'time'={record['time']!r} is not ISO-8601") from None
    if not isinstance(moment, datetime):
        raise InvalidAuditEvent(f"audit field 'time'={moment!r} must be a datetime or ISO string")
    record["time"] = _iso_utc(moment)
    return record


class AuditLog:
    """Append-only JSONL audit trail, safe for concurrent writers across processes (one host or NFS/EFS)."""

    def __init__(
        self,
        root: Path | str | LocalObjectStore | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        fsync: bool = True,
    ) -> None:
        """``root`` is the home directory (default ``$TRADEPULSE_HOME``) or a local store rooted there."""
        if isinstance(root, LocalObjectStore):
            base = root.root
        elif root is None:
            base = tradepulse_home()
        elif isinstance(root, (str, Path)):
            base = Path(root)
        else:
            describe = getattr(root, "describe", lambda: repr(root))()
            raise StorageError(
                f"the audit log needs a filesystem with flock, not {describe}: S3 has no append. "
                "Pass the TRADEPULSE_HOME directory (local or shared filesystem); see the module docstring."
            )
        self.path = home_path(AUDIT_LOG, base)
        self._clock = clock
        self._fsync = fsync

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def append(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``event``, stamp ``time`` (clock unless given), append it as one line, return it."""
        return self.append_many([event])[0]

    def append_many(self, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Append ``events`` in order as one group commit: one lock, one write, one fsync for all of them.

        Every event is validated before anything is written, so a bad event appends none of the group.
        """
        if not events:
            return []
        now = self._clock()
        records = [_normalize(event, now) for event in events]
        try:
            append_jsonl_many(self.path, records, fsync=self._fsync)
        except TypeError as error:  # raised before anything is written
            raise InvalidAuditEvent(f"audit event is not JSON-serializable: {error}") from None
        return records

    def read(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        skip_corrupt: bool = False,
        **where: Any,
    ) -> list[dict[str, Any]]:
        """Events in file order with ``since <= time < until`` and ``field == value`` for each ``where``.

        A line that is not a JSON object raises :class:`AuditLogCorrupt` (file and line number) unless
        ``skip_corrupt``. ``session`` may be given as a date.
        """
        wanted = _wanted(where)
        text = read_locked(self.path)
        events = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"a JSON {type(record).__name__}")
                selected = _selects(record, since, until, wanted)
            except (ValueError, KeyError, TypeError, AttributeError) as error:
                if skip_corrupt:
                    continue
                raise AuditLogCorrupt(self.path, number, str(error)) from None
            if selected:
                events.append(record)
        return events


AUDIT_EVENTS = sa.Table(
    "audit_events", METADATA, autoid("seq"), *text_columns("time", "market", "session", "event", "record",
                                                           nullable=False),
)  # fmt: skip
AUDIT_BY_SESSION = sa.Index("audit_events_by_session", AUDIT_EVENTS.c.market, AUDIT_EVENTS.c.session)
#: Version i of schema "audit" is the first i steps (append only).
AUDIT_MIGRATIONS = (AUDIT_EVENTS, AUDIT_BY_SESSION)


class StateAuditLog:
    """The audit trail as rows of the state DB (the production profile's home for it); see the module docstring.

    One transaction per ``append_many``: a group is all there or not at all, and ``seq`` keeps writer order.
    """

    def __init__(self, db: StateDB, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self._clock = clock
        db.ensure_schema("audit", AUDIT_MIGRATIONS)

    def __repr__(self) -> str:
        return f"StateAuditLog({self.db.url_redacted!r})"

    def append(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``event``, stamp ``time`` (clock unless given), insert it, return it."""
        return self.append_many([event])[0]

    def append_many(self, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Insert ``events`` in order in one transaction; a bad event inserts none of the group."""
        if not events:
            return []
        now = self._clock()
        records = [_normalize(event, now) for event in events]
        rows = [
            {"time": r["time"], "market": r["market"], "session": r["session"], "event": r["event"], "record": line}
            for r, line in zip(records, _encode(records))
        ]
        with self.db.transaction() as tx:
            tx.run(sa.insert(AUDIT_EVENTS).values(rows))
        return records

    def read(
        self, *, since: datetime | None = None, until: datetime | None = None, skip_corrupt: bool = False,
        **where: Any,
    ) -> list[dict[str, Any]]:
        """Events in insertion order, filtered as :meth:`AuditLog.read` (rows are validated on insert)."""
        wanted = _wanted(where)
        query = sa.select(AUDIT_EVENTS.c.record).order_by(AUDIT_EVENTS.c.seq)
        for column in ("market", "session", "event"):  # indexed or cheap: narrow in SQL, the rest in Python
            if isinstance(wanted.get(column), str):
                query = query.where(AUDIT_EVENTS.c[column] == wanted[column])
        records = (json.loads(row["record"]) for row in self.db.rows(query))
        return [record for record in records if _selects(record, since, until, wanted)]


def audit_log_for(
    lake: ObjectStore, db: StateDB, *, clock: Callable[[], datetime] = utc_now, home: Path | str | None = None
) -> AuditLog | StateAuditLog:
    """The audit trail of a profile: the JSONL file under ``home`` (default ``$TRADEPULSE_HOME``) next to a local
    lake (embedded default), the state DB's ``audit_events`` next to a remote one (production: nothing shared on
    local disk)."""
    if isinstance(lake, LocalObjectStore):
        return AuditLog(home if home is not None else tradepulse_home(), clock=clock)
    return StateAuditLog(db, clock=clock)
