"""``IncidentStore``: incidents and everything they own, persisted in the state database.

Why the store is careful about concurrency: the lag sensor, the quality-failure sensor, run workers
and an operator's ``tradepulse-cli`` can all report the same fault at the same moment. Opening is
therefore one transaction that takes a named lock on the fault's fingerprint, looks for an open
incident with it, and joins it or opens a new one with an id drawn from a per-day counter row
(``INC-YYYYMMDD-NNNN``). A partial unique index (one open incident per fingerprint) backs the
invariant up in the database itself.

Every method takes ``now``: the store never reads the clock, so chaos replays run on simulated time.
"""

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tradepulse_assets.incidents.model import (
    GAP_STATUSES,
    Baseline,
    BackfillRecord,
    Followup,
    GapWindow,
    Incident,
    IncidentError,
    IncidentEvent,
    IncidentNotFound,
    IncidentState,
    TRANSITIONS,
    QuarantinedBatch,
    Scope,
    TimeWindow,
    check_transition,
    fingerprint,
)
from tradepulse_assets.storage.state import KEY, METADATA, NOT_NULL, Migration, StateDB, Transaction, autoid
from tradepulse_assets.storage.state import from_iso, text_columns, to_iso

SCHEMA_NAME = "incidents"
# A drill's state DB sets this watermark so its incident ids never collide with others' (drills/sandbox.py).
INCIDENT_ID_PREFIX_WATERMARK = "incident_id_prefix"
INCIDENTS = sa.Table(
    "incidents", METADATA, *text_columns("id", **KEY),
    *text_columns("cause", "market", "fingerprint", "state", "scope", "description", **NOT_NULL),
    sa.Column("detections", sa.Integer, **NOT_NULL), *text_columns("owners", **NOT_NULL), *text_columns("root_cause"),
    *text_columns("actions", "vendor_refs", "opened_at", "updated_at", **NOT_NULL),
    *text_columns("contained_at", "recovering_at", "validating_at", "resolved_at", "last_evaluation"),
)  # fmt: skip
OPEN_STATE = INCIDENTS.c.state != "resolved"
INCIDENT_COUNTERS = sa.Table(
    "incident_counters", METADATA, *text_columns("day", **KEY), sa.Column("n", sa.Integer, **NOT_NULL)
)
INCIDENT_EVENTS = sa.Table(
    "incident_events", METADATA, autoid("seq"),
    *text_columns("incident_id", "at", "kind", "message", "data", **NOT_NULL), sqlite_autoincrement=True,
)  # fmt: skip
INCIDENT_GAPS = sa.Table(
    "incident_gaps", METADATA, *text_columns("incident_id", "market", "start_at", **KEY),
    *text_columns("end_at", **NOT_NULL), sa.Column("missing_minutes", sa.Integer, **NOT_NULL),
    *text_columns("status", **NOT_NULL), *text_columns("session"), *text_columns("updated_at", **NOT_NULL),
)  # fmt: skip
INCIDENT_QUARANTINE = sa.Table(
    "incident_quarantine", METADATA, *text_columns("incident_id", "batch_id", **KEY),
    *text_columns("market", **NOT_NULL), *text_columns("session"),
    *text_columns("location", "reason", "quarantined_at", **NOT_NULL),
)  # fmt: skip
INCIDENT_BACKFILLS = sa.Table(
    "incident_backfills", METADATA, *text_columns("incident_id", "market", "session", **KEY),
    *(sa.Column(n, sa.Integer, **NOT_NULL) for n in ("rows_count", "vendor_rows", "checksums_ok")),
    *text_columns("verdict", "recorded_at", **NOT_NULL), *text_columns("run_id"), *text_columns("details", **NOT_NULL),
)  # fmt: skip
INCIDENT_BASELINES = sa.Table(
    "incident_baselines", METADATA, *text_columns("incident_id", "market", "indicator", **KEY),
    *text_columns("reference", "recorded_at", **NOT_NULL),
)  # fmt: skip
FOLLOWUPS = sa.Table(
    "followups", METADATA, autoid("id"),
    *text_columns("incident_id", "scenario", "due_at", "status", "created_at", **NOT_NULL),
    sa.UniqueConstraint("incident_id", "scenario"), sqlite_autoincrement=True,
)  # fmt: skip

#: Version i of schema "incidents" is the first i steps (append only; never edit an applied step).
INCIDENT_MIGRATIONS: tuple[Migration, ...] = (
    INCIDENTS,
    sa.Index(
        "incidents_one_open_per_fingerprint",
        INCIDENTS.c.fingerprint,
        unique=True,
        sqlite_where=OPEN_STATE,
        postgresql_where=OPEN_STATE,
    ),
    sa.Index("incidents_by_state", INCIDENTS.c.state, INCIDENTS.c.opened_at),
    INCIDENT_COUNTERS,
    INCIDENT_EVENTS,
    sa.Index("incident_events_by_incident", *(INCIDENT_EVENTS.c[n] for n in ("incident_id", "at", "seq"))),
    INCIDENT_GAPS,
    INCIDENT_QUARANTINE,
    INCIDENT_BACKFILLS,
    INCIDENT_BASELINES,
    FOLLOWUPS,
)

_STATE_STAMP = {
    IncidentState.CONTAINED: "contained_at",
    IncidentState.RECOVERING: "recovering_at",
    IncidentState.VALIDATING: "validating_at",
    IncidentState.RESOLVED: "resolved_at",
}


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


#: The most ids one ``IN`` list carries (SQLite takes 32,766 parameters a statement, PostgreSQL more).
IN_LIST_CHUNK = 500


def rows_by_incident(db: StateDB, sql: str, incident_ids: Iterable[str], convert: Callable[[dict], Any],
                     key: str = "incident_id") -> dict[str, list]:
    """``sql`` (a SELECT whose ``{ids}`` is an ``IN`` list) over ``incident_ids``, in a query per
    ``IN_LIST_CHUNK`` ids; the converted rows by incident, in the query's order, every id a key.

    Why: a sensor evaluates every open incident each tick; a query per incident and per table made its tick
    grow by about 16 queries an incident."""
    ids = list(dict.fromkeys(incident_ids))
    grouped: dict[str, list] = {incident_id: [] for incident_id in ids}
    for start in range(0, len(ids), IN_LIST_CHUNK):
        chunk = ids[start:start + IN_LIST_CHUNK]
        for row in db.query(sql.format(ids=", ".join("?" * len(chunk))), chunk):
            grouped[row[key]].append(convert(row))
    return grouped


#: Each incident's timeline oldest first, gap windows by market and start, backfills by market and session.
EVENTS_OF = ("SELECT seq, incident_id, at, kind, message, data FROM incident_events"
             " WHERE incident_id IN ({ids}) ORDER BY at, seq")
GAP_WINDOWS_OF = "SELECT * FROM incident_gaps WHERE incident_id IN ({ids}) ORDER BY market, start_at"
BACKFILLS_OF = "SELECT * FROM incident_backfills WHERE incident_id IN ({ids}) ORDER BY market, session"


def _row_to_event(r: Mapping[str, Any]) -> IncidentEvent:
    return IncidentEvent(r["incident_id"], from_iso(r["at"]), r["kind"], r["message"], json.loads(r["data"]),
                         int(r["seq"]))


def _row_to_gap(r: Mapping[str, Any]) -> GapWindow:
    return GapWindow(r["market"], from_iso(r["start_at"]), from_iso(r["end_at"]), int(r["missing_minutes"]),
                     r["status"], r["session"])


def _row_to_backfill(r: Mapping[str, Any]) -> BackfillRecord:
    return BackfillRecord(r["incident_id"], r["market"], r["session"], int(r["rows_count"]),
                          int(r["vendor_rows"]), bool(r["checksums_ok"]), r["verdict"],
                          from_iso(r["recorded_at"]), r["run_id"], json.loads(r["details"]))


def _row_to_incident(row: Mapping[str, Any]) -> Incident:
    return Incident(
        id=row["id"],
        cause=row["cause"],
        market=row["market"],
        fingerprint=row["fingerprint"],
        state=IncidentState(row["state"]),
        scope=Scope.from_dict(json.loads(row["scope"])),
        description=row["description"],
        detections=int(row["detections"]),
        owners=tuple(json.loads(row["owners"])),
        root_cause=row["root_cause"],
        actions=tuple(json.loads(row["actions"])),
        vendor_refs=tuple(json.loads(row["vendor_refs"])),
        opened_at=from_iso(row["opened_at"]),
        updated_at=from_iso(row["updated_at"]),
        contained_at=from_iso(row["contained_at"]),
        recovering_at=from_iso(row["recovering_at"]),
        validating_at=from_iso(row["validating_at"]),
        resolved_at=from_iso(row["resolved_at"]),
        last_evaluation=json.loads(row["last_evaluation"]) if row["last_evaluation"] else None,
    )


class IncidentStore:
    """Incidents, timelines, gaps, quarantined batches, backfills, baselines and follow-ups."""

    def __init__(self, db: StateDB):
        self.db = db
        db.ensure_schema(SCHEMA_NAME, INCIDENT_MIGRATIONS)

    # -- opening ---------------------------------------------------------------------------------
    def open_or_join(
        self,
        cause: str,
        market: str,
        *,
        now: dt.datetime,
        scope: Scope | None = None,
        symbols: Sequence[str] = (),
        sessions: Sequence[str] = (),
        windows: Sequence[TimeWindow] = (),
        description: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> tuple[Incident, bool]:
        """Join the open incident with this fault's fingerprint, or open one. Returns ``(incident, opened)``.

        A join widens the scope (union) and adds a ``detection_repeated`` event; an open adds ``opened``.
        """
        fp = fingerprint(cause, market)
        new_scope = (scope or Scope()).merge(Scope((market,), tuple(symbols), tuple(sessions), tuple(windows)))
        stamp = to_iso(now)
        with self.db.transaction() as tx:
            tx.lock(f"incident-fingerprint:{fp}")
            row = tx.query_one("SELECT * FROM incidents WHERE fingerprint = ? AND state <> 'resolved'", (fp,))
            if row is not None:
                current = _row_to_incident(row)
                merged = current.scope.merge(new_scope)
                tx.execute(
                    "UPDATE incidents SET scope = ?, detections = detections + 1, updated_at = ? WHERE id = ?",
                    (_dumps(merged.to_dict()), stamp, current.id),
                )
                self._event(tx, current.id, now, "detection_repeated",
                            description or f"{cause} detected again on {market}",
                            {"scope": new_scope.to_dict(), **(data or {})})
                return self._get(tx, current.id), False
            incident_id = self._next_id(tx, now)
            tx.execute(
                "INSERT INTO incidents (id, cause, market, fingerprint, state, scope, description, detections,"
                " owners, root_cause, actions, vendor_refs, opened_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 1, '[]', NULL, '[]', '[]', ?, ?)",
                (incident_id, cause, market, fp, IncidentState.DETECTED.value, _dumps(new_scope.to_dict()),
                 description, stamp, stamp),
            )
            self._event(tx, incident_id, now, "opened", description or f"{cause} detected on {market}",
                        {"cause": cause, "market": market, "scope": new_scope.to_dict(), **(data or {})})
            return self._get(tx, incident_id), True

    def _next_id(self, tx: Transaction, now: dt.datetime) -> str:
        day = now.astimezone(dt.timezone.utc).strftime("%Y%m%d")
        row = tx.query_one(
            "INSERT INTO incident_counters (day, n) VALUES (?, 1) "
            "ON CONFLICT (day) DO UPDATE SET n = incident_counters.n + 1 RETURNING n",
            (day,),
        )
        prefix = tx.query_one("SELECT value FROM watermarks WHERE name = ?", (INCIDENT_ID_PREFIX_WATERMARK,))
        return f"{prefix['value'] if prefix else 'INC'}-{day}-{int(row['n']):04d}"

    # -- reading ---------------------------------------------------------------------------------
    def _get(self, tx: Transaction, incident_id: str) -> Incident:
        row = tx.query_one("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        if row is None:
            raise IncidentNotFound(f"no incident {incident_id!r} in state DB {self.db.url_redacted}")
        return _row_to_incident(row)

    def get(self, incident_id: str) -> Incident:
        return self.get_many([incident_id])[incident_id]

    def get_many(self, incident_ids: Iterable[str]) -> dict[str, Incident]:
        """Incidents by id (``IncidentNotFound`` names the first id missing)."""
        found = rows_by_incident(self.db, "SELECT * FROM incidents WHERE id IN ({ids})", incident_ids,
                                 _row_to_incident, key="id")
        missing = next((incident_id for incident_id, rows in found.items() if not rows), None)
        if missing is not None:
            raise IncidentNotFound(f"no incident {missing!r} in state DB {self.db.url_redacted}")
        return {incident_id: rows[0] for incident_id, rows in found.items()}

    def find_open(self, cause: str, market: str) -> Incident | None:
        rows = self.db.query(
            "SELECT * FROM incidents WHERE fingerprint = ? AND state <> 'resolved'", (fingerprint(cause, market),)
        )
        return _row_to_incident(rows[0]) if rows else None

    # -- timeline --------------------------------------------------------------------------------
    def _event(self, tx: Transaction, incident_id: str, now: dt.datetime, kind: str, message: str,
               data: Mapping[str, Any] | None) -> None:
        tx.execute(
            "INSERT INTO incident_events (incident_id, at, kind, message, data) VALUES (?, ?, ?, ?, ?)",
            (incident_id, to_iso(now), kind, message, _dumps(dict(data or {}))),
        )

    def add_event(
        self, incident_id: str, kind: str, message: str, *, now: dt.datetime, data: Mapping[str, Any] | None = None
    ) -> None:
        with self.db.transaction() as tx:
            self._get(tx, incident_id)
            self._event(tx, incident_id, now, kind, message, data)
            tx.execute("UPDATE incidents SET updated_at = ? WHERE id = ?", (to_iso(now), incident_id))

    def events(self, incident_id: str) -> list[IncidentEvent]:
        return self.events_of([incident_id])[incident_id]

    def events_of(self, incident_ids: Iterable[str]) -> dict[str, list[IncidentEvent]]:
        return rows_by_incident(self.db, EVENTS_OF, incident_ids, _row_to_event)

    # -- lifecycle -------------------------------------------------------------------------------
    def transition(
        self,
        incident_id: str,
        to: IncidentState | str,
        *,
        now: dt.datetime,
        reason: str = "",
        force: bool = False,
        data: Mapping[str, Any] | None = None,
    ) -> Incident:
        """Move to state ``to`` if the lifecycle allows it (else ``IllegalTransition``); logs the change."""
        to = IncidentState(to)
        with self.db.transaction() as tx:
            current = self._get(tx, incident_id)
            check_transition(incident_id, current.state, to, force=force)
            stamp_col = _STATE_STAMP.get(to)
            sets = "state = ?, updated_at = ?" + (f", {stamp_col} = ?" if stamp_col else "")
            params: list[Any] = [to.value, to_iso(now)] + ([to_iso(now)] if stamp_col else [])
            tx.execute(f"UPDATE incidents SET {sets} WHERE id = ?", (*params, incident_id))
            message = f"{current.state.value} -> {to.value}" + (f": {reason}" if reason else "")
            self._event(tx, incident_id, now, "state", message,
                        {"from": current.state.value, "to": to.value, "forced": bool(force and to not in
                         TRANSITIONS[current.state]), **(data or {})})
            return self._get(tx, incident_id)

    def note(
        self, incident_id: str, *, now: dt.datetime, vendor_ref: str | None = None, text: str | None = None
    ) -> Incident:
        """A free-text note and/or a vendor support reference number (runbook 2, vendor liaison)."""
        if not vendor_ref and not text:
            raise IncidentError(f"incident {incident_id}: a note needs a vendor reference or a text")
        with self.db.transaction() as tx:
            current = self._get(tx, incident_id)
            if vendor_ref:
                refs = tuple(dict.fromkeys(current.vendor_refs + (vendor_ref,)))
                tx.execute("UPDATE incidents SET vendor_refs = ? WHERE id = ?", (_dumps(list(refs)), incident_id))
            message = " ".join(p for p in (f"vendor ref {vendor_ref}" if vendor_ref else "", text or "") if p)
            self._event(tx, incident_id, now, "vendor_ref" if vendor_ref else "note", message,
                        {"vendor_ref": vendor_ref, "text": text})
            tx.execute("UPDATE incidents SET updated_at = ? WHERE id = ?", (to_iso(now), incident_id))
            return self._get(tx, incident_id)

    def record_resolution(
        self, incident_id: str, *, now: dt.datetime, root_cause: str, owners: Sequence[str], actions: Sequence[str]
    ) -> Incident:
        """Root cause, owners and actions (the manual exit criterion); replaces earlier values."""
        with self.db.transaction() as tx:
            self._get(tx, incident_id)
            tx.execute(
                "UPDATE incidents SET root_cause = ?, owners = ?, actions = ?, updated_at = ? WHERE id = ?",
                (root_cause, _dumps(list(owners)), _dumps(list(actions)), to_iso(now), incident_id),
            )
            self._event(tx, incident_id, now, "resolution", f"root cause recorded: {root_cause}",
                        {"root_cause": root_cause, "owners": list(owners), "actions": list(actions)})
            return self._get(tx, incident_id)

    def resolve(self, incident_id: str, *, now: dt.datetime, reason: str = "", force: bool = False) -> Incident:
        return self.transition(incident_id, IncidentState.RESOLVED, now=now, reason=reason, force=force)

    def save_evaluation(self, incident_id: str, evaluation: Mapping[str, Any], *, now: dt.datetime) -> None:
        """Keep the last exit-criteria evaluation on the incident (``incident show`` displays it)."""
        self.db.execute(
            "UPDATE incidents SET last_evaluation = ?, updated_at = ? WHERE id = ?",
            (_dumps(dict(evaluation)), to_iso(now), incident_id),
        )

    # -- gaps, quarantine, backfills, baselines --------------------------------------------------
    def add_gap_windows(self, incident_id: str, windows: Iterable[GapWindow], *, now: dt.datetime) -> list[GapWindow]:
        """Record gap windows (idempotent per market and start; a repeat updates end, minutes and status)."""
        windows = list(windows)
        with self.db.transaction() as tx:
            self._get(tx, incident_id)
            for w in windows:
                _check_gap_status(incident_id, w.status)
                tx.execute(
                    "INSERT INTO incident_gaps (incident_id, market, start_at, end_at, missing_minutes, status,"
                    " session, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (incident_id, market, start_at) DO UPDATE SET end_at = excluded.end_at,"
                    " missing_minutes = excluded.missing_minutes, status = excluded.status,"
                    " session = excluded.session, updated_at = excluded.updated_at",
                    (incident_id, w.market, to_iso(w.start), to_iso(w.end), int(w.missing_minutes), w.status,
                     w.session, to_iso(now)),
                )
            if windows:
                self._event(tx, incident_id, now, "gap_windows", f"{len(windows)} gap window(s) recorded",
                            {"windows": [w.to_dict() for w in windows]})
        return self.gap_windows(incident_id)

    def mark_session_gaps(self, incident_id: str, market: str, session: str, status: str, *,
                          now: dt.datetime) -> int:
        """Set the status of every gap window of ``market`` in ``session``; returns how many changed."""
        _check_gap_status(incident_id, status)
        return self.db.execute(
            "UPDATE incident_gaps SET status = ?, updated_at = ? WHERE incident_id = ? AND market = ? AND session = ?",
            (status, to_iso(now), incident_id, market, session),
        )

    def gap_windows(self, incident_id: str) -> list[GapWindow]:
        return self.gap_windows_of([incident_id])[incident_id]

    def gap_windows_of(self, incident_ids: Iterable[str]) -> dict[str, list[GapWindow]]:
        return rows_by_incident(self.db, GAP_WINDOWS_OF, incident_ids, _row_to_gap)

    def add_quarantined_batch(
        self, incident_id: str, *, batch_id: str, market: str, session: str | None, location: str, reason: str,
        now: dt.datetime,
    ) -> QuarantinedBatch:
        with self.db.transaction() as tx:
            self._get(tx, incident_id)
            tx.execute(
                "INSERT INTO incident_quarantine (incident_id, batch_id, market, session, location, reason,"
                " quarantined_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id, batch_id) DO NOTHING",
                (incident_id, batch_id, market, session, location, reason, to_iso(now)),
            )
            self._event(tx, incident_id, now, "quarantine", f"batch {batch_id} quarantined at {location}: {reason}",
                        {"batch_id": batch_id, "market": market, "session": session, "location": location})
        return QuarantinedBatch(incident_id, batch_id, market, session, location, reason, now)

    def quarantined_batches(self, incident_id: str) -> list[QuarantinedBatch]:
        rows = self.db.query(
            "SELECT * FROM incident_quarantine WHERE incident_id = ? ORDER BY quarantined_at, batch_id", (incident_id,)
        )
        return [
            QuarantinedBatch(r["incident_id"], r["batch_id"], r["market"], r["session"], r["location"], r["reason"],
                             from_iso(r["quarantined_at"]))
            for r in rows
        ]

    def quarantined_for(self, market: str, session: str) -> list[QuarantinedBatch]:
        """Every batch of one market session, across incidents (the launch decision's "quarantined")."""
        rows = self.db.query(
            "SELECT * FROM incident_quarantine WHERE market = ? AND session = ?"
            " ORDER BY quarantined_at, batch_id",
            (market, session),
        )
        return [
            QuarantinedBatch(r["incident_id"], r["batch_id"], r["market"], r["session"], r["location"], r["reason"],
                             from_iso(r["quarantined_at"]))
            for r in rows
        ]

    def reclassify(self, incident_id: str, cause: str, *, now: dt.datetime, reason: str) -> Incident:
        """Name an open incident by stronger evidence (a late delivery found corrupt is a checksum mismatch).

        Its fingerprint follows the cause, so later detections of either kind join it; when another open
        incident already has the new fingerprint, the cause stays and the evidence is only logged."""
        fp = fingerprint(cause, self.get(incident_id).market)
        with self.db.transaction() as tx:
            tx.lock(f"incident-fingerprint:{fp}")
            current = self._get(tx, incident_id)
            clash = tx.query_one(
                "SELECT id FROM incidents WHERE fingerprint = ? AND state <> 'resolved' AND id <> ?",
                (fp, incident_id),
            )
            if clash is None and current.is_open and current.cause != cause:
                tx.execute("UPDATE incidents SET cause = ?, fingerprint = ?, updated_at = ? WHERE id = ?",
                           (cause, fp, to_iso(now), incident_id))
                self._event(tx, incident_id, now, "reclassified",
                            f"cause {current.cause} -> {cause}: {reason}", {"from": current.cause, "to": cause})
            return self._get(tx, incident_id)

    def record_backfill(
        self,
        incident_id: str,
        market: str,
        session: str,
        rows: int,
        vendor_rows: int,
        checksums_ok: bool,
        verdict: str,
        *,
        now: dt.datetime,
        run_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> BackfillRecord:
        """A backfilled partition's reconciliation; re-running the backfill replaces the record."""
        with self.db.transaction() as tx:
            self._get(tx, incident_id)
            tx.execute(
                "INSERT INTO incident_backfills (incident_id, market, session, rows_count, vendor_rows, checksums_ok,"
                " verdict, recorded_at, run_id, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (incident_id, market, session) DO UPDATE SET rows_count = excluded.rows_count,"
                " vendor_rows = excluded.vendor_rows, checksums_ok = excluded.checksums_ok,"
                " verdict = excluded.verdict, recorded_at = excluded.recorded_at, run_id = excluded.run_id,"
                " details = excluded.details",
                (incident_id, market, session, int(rows), int(vendor_rows), int(bool(checksums_ok)), verdict,
                 to_iso(now), run_id, _dumps(dict(details or {}))),
            )
            self._event(tx, incident_id, now, "backfill",
                        f"{market} {session}: {rows} rows vs vendor {vendor_rows}, checksums "
                        f"{'ok' if checksums_ok else 'MISMATCH'} -> {verdict}",
                        {"market": market, "session": session, "rows": rows, "vendor_rows": vendor_rows,
                         "checksums_ok": bool(checksums_ok), "verdict": verdict, "run_id": run_id})
        return BackfillRecord(incident_id, market, session, int(rows), int(vendor_rows), bool(checksums_ok), verdict,
                              now, run_id, dict(details or {}))

    def backfills(self, incident_id: str) -> list[BackfillRecord]:
        return self.backfills_of([incident_id])[incident_id]

    def backfills_of(self, incident_ids: Iterable[str]) -> dict[str, list[BackfillRecord]]:
        return rows_by_incident(self.db, BACKFILLS_OF, incident_ids, _row_to_backfill)

    def add_baseline(self, incident_id: str, *, market: str, indicator: str, reference: str,
                     now: dt.datetime) -> Baseline:
        """Pin the pre-incident indicator baseline (a lake path or run id) the tolerance gates use."""
        with self.db.transaction() as tx:
            self._get(tx, incident_id)
            tx.execute(
                "INSERT INTO incident_baselines (incident_id, market, indicator, reference, recorded_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (incident_id, market, indicator) DO UPDATE SET"
                " reference = excluded.reference, recorded_at = excluded.recorded_at",
                (incident_id, market, indicator, reference, to_iso(now)),
            )
            self._event(tx, incident_id, now, "baseline", f"{market} {indicator} baseline: {reference}",
                        {"market": market, "indicator": indicator, "reference": reference})
        return Baseline(incident_id, market, indicator, reference, now)

    def baselines(self, incident_id: str) -> list[Baseline]:
        rows = self.db.query(
            "SELECT * FROM incident_baselines WHERE incident_id = ? ORDER BY market, indicator", (incident_id,)
        )
        return [Baseline(r["incident_id"], r["market"], r["indicator"], r["reference"], from_iso(r["recorded_at"]))
                for r in rows]

    # -- follow-ups ------------------------------------------------------------------------------
    def schedule_followup(self, incident_id: str, *, scenario: str, due_at: dt.datetime,
                          now: dt.datetime) -> Followup:
        """Schedule (idempotently per incident and scenario) a preventive follow-up."""
        with self.db.transaction() as tx:
            self._get(tx, incident_id)
            tx.execute(
                "INSERT INTO followups (incident_id, scenario, due_at, status, created_at) VALUES (?, ?, ?, 'scheduled', ?)"
                " ON CONFLICT (incident_id, scenario) DO NOTHING",
                (incident_id, scenario, to_iso(due_at), to_iso(now)),
            )
            row = tx.query_one("SELECT * FROM followups WHERE incident_id = ? AND scenario = ?", (incident_id, scenario))
            self._event(tx, incident_id, now, "followup", f"chaos replay {scenario!r} due {to_iso(due_at)[:10]}",
                        {"scenario": scenario, "due_at": to_iso(due_at)})
        return _row_to_followup(row)

    def followups(self, incident_id: str | None = None) -> list[Followup]:
        sql, params = "SELECT * FROM followups", []
        if incident_id:
            sql, params = sql + " WHERE incident_id = ?", [incident_id]
        return [_row_to_followup(r) for r in self.db.query(sql + " ORDER BY due_at, id", params)]

    def due_followups(self, now: dt.datetime) -> list[Followup]:
        """Scheduled follow-ups due at or before ``now`` (oldest first)."""
        rows = self.db.query(
            "SELECT * FROM followups WHERE status = 'scheduled' AND due_at <= ? ORDER BY due_at, id", (to_iso(now),)
        )
        return [_row_to_followup(r) for r in rows]

    def complete_followup(self, followup_id: int, *, now: dt.datetime, status: str = "done",
                          note: str = "") -> Followup:
        with self.db.transaction() as tx:
            row = tx.query_one("SELECT * FROM followups WHERE id = ?", (followup_id,))
            if row is None:
                raise IncidentError(f"no follow-up {followup_id} in state DB {self.db.url_redacted}")
            tx.execute("UPDATE followups SET status = ? WHERE id = ?", (status, followup_id))
            self._event(tx, row["incident_id"], now, "followup", f"follow-up {row['scenario']!r} {status}"
                        + (f": {note}" if note else ""), {"followup_id": followup_id, "status": status})
            return _row_to_followup(tx.query_one("SELECT * FROM followups WHERE id = ?", (followup_id,)))

    # defined last: inside the class body the name ``list`` would shadow the builtin in annotations
    def list(
        self, state: IncidentState | str | None = None, *, market: str | None = None, open_only: bool = False
    ) -> list[Incident]:
        """Incidents, newest first, optionally by state, market (primary or in scope) or open only."""
        sql, params = "SELECT * FROM incidents WHERE 1 = 1", []
        if state is not None:
            sql += " AND state = ?"
            params.append(IncidentState(state).value)
        if open_only:
            sql += " AND state <> 'resolved'"
        incidents = [_row_to_incident(r) for r in self.db.query(sql + " ORDER BY opened_at DESC, id DESC", params)]
        if market is not None:
            incidents = [i for i in incidents if i.market == market or market in i.scope.markets]
        return incidents


def _check_gap_status(incident_id: str, status: str) -> None:
    if status not in GAP_STATUSES:
        raise IncidentError(f"incident {incident_id}: gap status {status!r} is not one of {', '.join(GAP_STATUSES)}")


def _row_to_followup(row: Mapping[str, Any]) -> Followup:
    return Followup(int(row["id"]), row["incident_id"], row["scenario"], from_iso(row["due_at"]), row["status"],
                    from_iso(row["created_at"]))
