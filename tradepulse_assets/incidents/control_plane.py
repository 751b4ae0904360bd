"""The control plane: durable, per-market toggles that stop bad data from propagating (runbook 1.3, 2).

Why holds instead of a boolean: two incidents on the same market may both pause the feature-store
writer; when the first one reaches validation and resumes "its" consumers, the second still needs
them paused. A toggle is therefore a set of *holds* (one per incident, or ``manual`` for an
operator) and a consumer is paused while any hold exists. An incident's resume releases only its
own hold; an operator's resume without an incident id releases every hold (an explicit override,
recorded on each affected incident's timeline).

Consumers ask ``is_paused(market, consumer)`` before writing; every change is appended to
``control_events`` and, when an incident is involved, to that incident's timeline.
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from tradepulse_assets.incidents.model import IncidentError
from tradepulse_assets.incidents.store import IncidentStore
from tradepulse_assets.storage.state import KEY, METADATA, NOT_NULL, Migration, StateDB, Transaction, autoid
from tradepulse_assets.storage.state import from_iso, text_columns, to_iso

FEATURE_STORE_WRITER = "feature_store_writer"
BACKTEST_EXPORTER = "backtest_exporter"
STRATEGY_PROMOTIONS = "strategy_promotions"
CONSUMERS = (FEATURE_STORE_WRITER, BACKTEST_EXPORTER)
TOGGLES = CONSUMERS + (STRATEGY_PROMOTIONS,)
MANUAL_HOLDER = "manual"

# Containment policy: which toggles an incident of a cause applies when it opens. A fault that may
# have corrupted or dropped bars stops both consumers and freezes promotions; a vendor that is only
# late (data intact so far) freezes promotions. Unknown causes get the full stop: the safe default.
CONTAINMENT_POLICY: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "lag_breach": TOGGLES,
        "checksum_mismatch": TOGGLES,
        "schema_mismatch": TOGGLES,
        "quality_gate": TOGGLES,
        "tolerance_gate": TOGGLES,
        "user_report": TOGGLES,
        "vendor_degraded": TOGGLES,  # the vendor says the session is not whole: treat it as corrupt
        "vendor_delay": (STRATEGY_PROMOTIONS,),
    }
)

CONTROL_HOLDS = sa.Table(
    "control_holds", METADATA, *text_columns("market", "toggle", "holder", **KEY),
    *text_columns("incident_id"), *text_columns("reason", "since", **NOT_NULL),
)  # fmt: skip
CONTROL_EVENTS = sa.Table(
    "control_events", METADATA, autoid("seq"),
    *text_columns("at", "market", "toggle", "action", "holder", **NOT_NULL), *text_columns("incident_id"),
    *text_columns("reason", **NOT_NULL), sa.Column("paused_after", sa.Integer, **NOT_NULL),
    sqlite_autoincrement=True,
)  # fmt: skip
#: Version i of schema "control_plane" is the first i steps (append only).
CONTROL_MIGRATIONS: tuple[Migration, ...] = (CONTROL_HOLDS, CONTROL_EVENTS)


class ControlError(IncidentError):
    """An unknown consumer/toggle or market; the message lists what is known."""


def containment_for(cause: str) -> tuple[str, ...]:
    """The toggles an incident of ``cause`` applies when it opens."""
    return CONTAINMENT_POLICY.get(cause, TOGGLES)


@dataclass(frozen=True)
class Hold:
    holder: str
    incident_id: str | None
    reason: str
    since: dt.datetime


@dataclass(frozen=True)
class ToggleStatus:
    market: str
    toggle: str
    paused: bool
    holds: tuple[Hold, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "market": self.market,
            "toggle": self.toggle,
            "paused": self.paused,
            "holds": [
                {"holder": h.holder, "incident_id": h.incident_id, "reason": h.reason, "since": to_iso(h.since)}
                for h in self.holds
            ],
        }


def _check_toggle(toggle: str) -> str:
    if toggle not in TOGGLES:
        raise ControlError(f"unknown consumer/toggle {toggle!r}; known: {', '.join(TOGGLES)}")
    return toggle


class ControlPlane:
    """Pause/resume consumers and freeze strategy promotions per market, durably and concurrently."""

    def __init__(self, db: StateDB, markets: Sequence[str] | None = None):
        self.db = db
        self.markets = tuple(markets) if markets is not None else None
        db.ensure_schema("control_plane", CONTROL_MIGRATIONS)
        self._store = IncidentStore(db)

    def _check_market(self, market: str) -> str:
        if self.markets is not None and market not in self.markets:
            raise ControlError(f"unknown market {market!r}; known: {', '.join(self.markets)}")
        return market

    def _log(self, tx: Transaction, now: dt.datetime, market: str, toggle: str, action: str, holder: str,
             incident_id: str | None, reason: str) -> bool:
        paused = tx.query_one(
            "SELECT COUNT(*) AS n FROM control_holds WHERE market = ? AND toggle = ?", (market, toggle)
        )["n"] > 0
        tx.execute(
            "INSERT INTO control_events (at, market, toggle, action, holder, incident_id, reason, paused_after)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (to_iso(now), market, toggle, action, holder, incident_id, reason, int(paused)),
        )
        return paused

    def pause(
        self, market: str, consumer: str, *, reason: str, now: dt.datetime, incident_id: str | None = None
    ) -> ToggleStatus:
        """Add a hold on ``consumer`` of ``market`` (idempotent per holder); logs to the incident timeline."""
        self._check_market(market)
        _check_toggle(consumer)
        holder = incident_id or MANUAL_HOLDER
        with self.db.transaction() as tx:
            tx.lock(f"control:{market}:{consumer}")
            tx.execute(
                "INSERT INTO control_holds (market, toggle, holder, incident_id, reason, since)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (market, toggle, holder) DO UPDATE SET reason = excluded.reason",
                (market, consumer, holder, incident_id, reason, to_iso(now)),
            )
            self._log(tx, now, market, consumer, "pause", holder, incident_id, reason)
            if incident_id:
                verb = "froze" if consumer == STRATEGY_PROMOTIONS else "paused"
                self._store.add_event(incident_id, "control", f"{verb} {consumer} on {market}: {reason}", now=now,
                                      data={"market": market, "toggle": consumer, "action": "pause"})
        return self.toggle_status(market, consumer)

    def resume(
        self, market: str, consumer: str, *, reason: str, now: dt.datetime, incident_id: str | None = None
    ) -> ToggleStatus:
        """Release ``incident_id``'s hold, or (no incident id) every hold: an operator override.

        The consumer stays paused while another incident still holds it; the returned status says so.
        """
        self._check_market(market)
        _check_toggle(consumer)
        with self.db.transaction() as tx:
            tx.lock(f"control:{market}:{consumer}")
            if incident_id:
                released = tx.query(
                    "SELECT holder, incident_id FROM control_holds WHERE market = ? AND toggle = ? AND holder = ?",
                    (market, consumer, incident_id),
                )
            else:
                released = tx.query(
                    "SELECT holder, incident_id FROM control_holds WHERE market = ? AND toggle = ?", (market, consumer)
                )
            for hold in released:
                tx.execute(
                    "DELETE FROM control_holds WHERE market = ? AND toggle = ? AND holder = ?",
                    (market, consumer, hold["holder"]),
                )
            paused = self._log(tx, now, market, consumer, "resume", incident_id or MANUAL_HOLDER, incident_id, reason)
            affected = {h["incident_id"] for h in released if h["incident_id"]} | ({incident_id} if incident_id else set())
            for inc in sorted(affected):
                still = " (still held by another incident)" if paused else ""
                verb = "unfroze" if consumer == STRATEGY_PROMOTIONS else "resumed"
                by = "" if inc == incident_id else " by operator override"
                self._store.add_event(inc, "control", f"{verb} {consumer} on {market}{by}: {reason}{still}", now=now,
                                      data={"market": market, "toggle": consumer, "action": "resume",
                                            "paused_after": paused})
        return self.toggle_status(market, consumer)

    def release_incident(self, incident_id: str, *, reason: str, now: dt.datetime,
                         toggles: Sequence[str] = TOGGLES) -> list[ToggleStatus]:
        """Release every hold ``incident_id`` has among ``toggles`` (any market)."""
        return [
            self.resume(market, toggle, reason=reason, now=now, incident_id=incident_id)
            for market, toggle in self.holds_of(incident_id) if toggle in toggles
        ]

    def holds_of(self, incident_id: str) -> list[tuple[str, str]]:
        """``(market, toggle)`` pairs ``incident_id`` currently holds."""
        rows = self.db.query(
            "SELECT market, toggle FROM control_holds WHERE holder = ? ORDER BY market, toggle", (incident_id,)
        )
        return [(r["market"], r["toggle"]) for r in rows]

    def is_paused(self, market: str, consumer: str) -> bool:
        _check_toggle(consumer)
        rows = self.db.query(
            "SELECT COUNT(*) AS n FROM control_holds WHERE market = ? AND toggle = ?", (market, consumer)
        )
        return rows[0]["n"] > 0

    def promotions_frozen(self, market: str) -> bool:
        return self.is_paused(market, STRATEGY_PROMOTIONS)

    def toggle_status(self, market: str, toggle: str) -> ToggleStatus:
        return next(s for s in self.status(market) if s.toggle == toggle)

    def status(self, market: str | None = None) -> list[ToggleStatus]:
        """Every toggle of ``market`` (or of every known market / every market with a hold)."""
        sql, params = "SELECT * FROM control_holds", []
        if market is not None:
            sql, params = sql + " WHERE market = ?", [market]
        holds: dict[tuple[str, str], list[Hold]] = {}
        for r in self.db.query(sql + " ORDER BY market, toggle, since, holder", params):
            holds.setdefault((r["market"], r["toggle"]), []).append(
                Hold(r["holder"], r["incident_id"], r["reason"], from_iso(r["since"]))
            )
        markets = [market] if market is not None else sorted(set(self.markets or ()) | {m for m, _ in holds})
        return [
            ToggleStatus(m, t, bool(holds.get((m, t))), tuple(holds.get((m, t), ())))
            for m in markets for t in TOGGLES
        ]

    def history(self, market: str | None = None, toggle: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM control_events WHERE 1 = 1", []
        if market:
            sql, params = sql + " AND market = ?", params + [market]
        if toggle:
            sql, params = sql + " AND toggle = ?", params + [toggle]
        rows = self.db.query(sql + " ORDER BY seq", params)
        for r in rows:
            r["paused_after"] = bool(r["paused_after"])
        return rows
