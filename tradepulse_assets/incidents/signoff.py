"""Strategy owners' sign-off (runbook section 5): "strategy teams sign off that derived signals fall within
expected tolerances", recorded as a fact with a name and a time, and required to resolve an incident.

Why a record and not a checkbox on ``resolve``: the automatic tolerance gate says the numbers are within
tolerance; the sign-off says a person who owns a strategy looked and accepts them. Who and when belong on the
timeline and in the post-mortem, and the exit criterion ``strategy_signoff`` reads them from here.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tradepulse_assets.incidents.model import IncidentError
from tradepulse_assets.incidents.store import IncidentStore, rows_by_incident
from tradepulse_assets.storage.state import StateDB, from_iso, to_iso

SCHEMA_NAME = "strategy_signoffs"
DDL = (
    "CREATE TABLE IF NOT EXISTS strategy_signoffs ("
    " incident_id TEXT NOT NULL, owner TEXT NOT NULL, note TEXT NOT NULL, signed_at TEXT NOT NULL,"
    " PRIMARY KEY (incident_id, owner))",
)


@dataclass(frozen=True)
class Signoff:
    incident_id: str
    owner: str
    note: str
    signed_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "owner": self.owner,
            "note": self.note,
            "signed_at": to_iso(self.signed_at),
        }


class Signoffs:
    def __init__(self, db: StateDB) -> None:
        self.db = db
        db.ensure_schema(SCHEMA_NAME, DDL)

    def record(self, incident_id: str, *, owner: str, note: str = "", now: dt.datetime) -> Signoff:
        """Record (or renew) ``owner``'s sign-off on an existing incident, and say so on its timeline."""
        store = IncidentStore(self.db)
        store.get(incident_id)  # IncidentNotFound names the id and the DB
        owner = owner.strip()
        if not owner:
            raise IncidentError(f"incident {incident_id}: a sign-off needs the owner's name")
        self.db.execute(
            "INSERT INTO strategy_signoffs (incident_id, owner, note, signed_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (incident_id, owner) DO UPDATE SET note = excluded.note, signed_at = excluded.signed_at",
            (incident_id, owner, note, to_iso(now)),
        )
        store.add_event(
            incident_id,
            "signoff",
            f"strategy owner {owner} signed off" + (f": {note}" if note else ""),
            now=now,
        )
        return Signoff(incident_id, owner, note, now)

    def of(self, incident_id: str) -> list[Signoff]:
        return self.of_many([incident_id])[incident_id]

    def of_many(self, incident_ids: Iterable[str]) -> dict[str, list[Signoff]]:
        """Each incident's sign-offs, oldest first."""
        sql = "SELECT * FROM strategy_signoffs WHERE incident_id IN ({ids}) ORDER BY signed_at, owner"
        return rows_by_incident(
            self.db, sql, incident_ids, lambda r: Signoff(r["incident_id"], r["owner"], r["note"],
                                                          from_iso(r["signed_at"]))
        )

    def owners(self, incident_id: str) -> tuple[str, ...]:
        return self.owners_of([incident_id])[incident_id]

    def owners_of(self, incident_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        return {i: tuple(s.owner for s in signoffs) for i, signoffs in self.of_many(incident_ids).items()}
