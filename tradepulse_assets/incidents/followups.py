"""Follow-up action items (runbook section 6) and the overdue check: what resolving an incident leaves to do.

Why they are created at resolution, with an owner and a due date: "file defects", "add detectors" and "refresh
the runbook" are the steps that get forgotten once the data is back; an item with a name and a date can be
listed, chased and reviewed (``tradepulse-cli incident followups``, the periodic review). The chaos replay of
6.3 is already scheduled and *run* by the platform (``IncidentStore.schedule_followup``, the daily schedule);
it is shown here beside the human items, with the incident's owner, so one list answers "what is still open".
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tradepulse_assets.incidents.model import Incident, IncidentError
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.storage.state import StateDB, from_iso, to_iso

SCHEMA_NAME = "followup_actions"
DDL = (
    "CREATE TABLE IF NOT EXISTS followup_actions ("
    " id {autoid}, incident_id TEXT NOT NULL, kind TEXT NOT NULL, title TEXT NOT NULL, owner TEXT NOT NULL,"
    " due_at TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL, completed_at TEXT, note TEXT,"
    " UNIQUE (incident_id, kind))",
)
OPEN, DONE = "open", "done"
CHAOS_REPLAY = "chaos_replay"
# Runbook section 6, step -> (title, days until due). 6.3 (the chaos replay) is the platform's own follow-up.
ACTIONS: Mapping[str, tuple[str, int]] = {
    "vendor_failover": ("6.1 automate vendor failover for {markets} (cause: {cause})", 14),
    "synthetic_checks": (
        "6.2 extend synthetic checks and detectors so {cause} on {markets} is caught earlier",
        14,
    ),
    "runbook_update": ("6.4 update the runbook and linked dashboards with the learnings of {id}", 7),
}


@dataclass(frozen=True)
class ActionItem:
    id: int | None
    incident_id: str
    kind: str
    title: str
    owner: str
    due_at: dt.datetime
    status: str
    created_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    note: str | None = None

    def overdue(self, now: dt.datetime) -> bool:
        return self.status in (OPEN, "scheduled") and self.due_at < now

    def to_dict(self, now: dt.datetime | None = None) -> dict[str, Any]:
        row = {
            "id": self.id,
            "incident_id": self.incident_id,
            "kind": self.kind,
            "title": self.title,
            "owner": self.owner,
            "due_at": to_iso(self.due_at),
            "status": self.status,
            "note": self.note,
        }
        if now is not None:
            row["overdue"] = self.overdue(now)
        return row


def _item(row: Mapping[str, Any]) -> ActionItem:
    return ActionItem(
        int(row["id"]),
        row["incident_id"],
        row["kind"],
        row["title"],
        row["owner"],
        from_iso(row["due_at"]),
        row["status"],
        from_iso(row["created_at"]),
        from_iso(row["completed_at"]),
        row["note"],
    )


class FollowupActions:
    """The ``followup_actions`` table plus the chaos replays of ``IncidentStore``, as one list."""

    def __init__(self, db: StateDB) -> None:
        self.db = db
        self.store = IncidentStore(db)
        db.ensure_schema(SCHEMA_NAME, DDL)

    def create_for(self, incident: Incident, *, now: dt.datetime) -> list[ActionItem]:
        """The runbook's follow-ups of a resolved incident (idempotent), owned by its first owner."""
        owner = incident.owners[0] if incident.owners else "unassigned"
        fields = {
            "markets": ", ".join(incident.scope.markets or (incident.market,)),
            "cause": incident.cause,
            "id": incident.id,
        }
        with self.db.transaction() as tx:
            for kind, (title, days) in ACTIONS.items():
                tx.execute(
                    "INSERT INTO followup_actions (incident_id, kind, title, owner, due_at, status, created_at)"
                    " VALUES (?, ?, ?, ?, ?, 'open', ?) ON CONFLICT (incident_id, kind) DO NOTHING",
                    (
                        incident.id,
                        kind,
                        title.format(**fields),
                        owner,
                        to_iso(now + dt.timedelta(days=days)),
                        to_iso(now),
                    ),
                )
        return self.items(incident.id)

    def items(self, incident_id: str | None = None, *, open_only: bool = False) -> list[ActionItem]:
        """Action items and chaos replays, by due date."""
        sql, params = "SELECT * FROM followup_actions WHERE 1 = 1", []
        if incident_id:
            sql, params = sql + " AND incident_id = ?", [incident_id]
        items = [_item(r) for r in self.db.query(sql, params)]
        owners: dict[str, str] = {}
        for followup in self.store.followups(incident_id):
            if followup.incident_id not in owners:
                incident = self.store.get(followup.incident_id)
                owners[followup.incident_id] = incident.owners[0] if incident.owners else "unassigned"
            items.append(
                ActionItem(
                    None,
                    followup.incident_id,
                    CHAOS_REPLAY,
                    f"6.3 chaos replay {followup.scenario} (runs automatically)",
                    owners[followup.incident_id],
                    followup.due_at,
                    followup.status,
                    followup.created_at,
                )
            )
        if open_only:
            items = [i for i in items if i.status in (OPEN, "scheduled", "failed")]
        return sorted(items, key=lambda i: (i.due_at, i.incident_id, i.kind))

    def complete(self, item_id: int, *, now: dt.datetime, note: str = "") -> ActionItem:
        with self.db.transaction() as tx:
            row = tx.query_one("SELECT * FROM followup_actions WHERE id = ?", (item_id,))
            if row is None:
                raise IncidentError(f"no follow-up action {item_id} in state DB {self.db.url_redacted}")
            tx.execute(
                "UPDATE followup_actions SET status = 'done', completed_at = ?, note = ? WHERE id = ?",
                (to_iso(now), note or None, item_id),
            )
        self.store.add_event(
            row["incident_id"],
            "followup",
            f"follow-up {row['kind']} done" + (f": {note}" if note else ""),
            now=now,
        )
        return _item({**row, "status": DONE, "completed_at": to_iso(now), "note": note or None})


def overdue(items: Sequence[ActionItem], now: dt.datetime) -> list[ActionItem]:
    return [i for i in items if i.overdue(now)]
