"""The incident model: states and their legal transitions, scope, and the records an incident owns.

Why plain frozen dataclasses: sensors, the CLI and the report writer all pass incidents around;
values that cannot change under them, and that turn into JSON with ``to_dict``, keep those layers
honest. The lifecycle is a small explicit table (``TRANSITIONS``) so a reader can hold it against
the runbook: detect -> contain -> recover -> validate -> resolve, with validation allowed to fall
back to recovery when a gate regresses.
"""

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tradepulse_assets.storage.state import from_iso, to_iso

UTC = dt.timezone.utc


class IncidentState(str, enum.Enum):
    DETECTED = "detected"
    CONTAINED = "contained"
    RECOVERING = "recovering"
    VALIDATING = "validating"
    RESOLVED = "resolved"


S = IncidentState
TRANSITIONS: Mapping[IncidentState, frozenset[IncidentState]] = MappingProxyType(
    {
        S.DETECTED: frozenset({S.CONTAINED}),
        S.CONTAINED: frozenset({S.RECOVERING}),
        S.RECOVERING: frozenset({S.VALIDATING}),
        S.VALIDATING: frozenset({S.RECOVERING, S.RESOLVED}),
        S.RESOLVED: frozenset(),
    }
)

# Causes the platform raises itself; other snake_case causes are accepted (operators name new faults).
KNOWN_CAUSES = (
    "lag_breach",
    "checksum_mismatch",
    "schema_mismatch",
    "quality_gate",
    "tolerance_gate",
    "vendor_delay",
    "vendor_degraded",
    "user_report",
)
_CAUSE_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


class IncidentError(ValueError):
    """Base of the incident engine's expected failures; messages name the incident."""


class IncidentNotFound(IncidentError, KeyError):
    def __str__(self) -> str:  # KeyError would print the repr
        return str(self.args[0])


class IllegalTransition(IncidentError):
    """A state change the lifecycle does not allow (e.g. ``resolved -> recovering``)."""


class ExitCriteriaNotMet(IncidentError):
    """Resolving was refused: the listed automatic exit criteria do not hold."""

    def __init__(self, message: str, unmet: tuple[str, ...]):
        super().__init__(message)
        self.unmet = unmet


def check_transition(incident_id: str, current: IncidentState, to: IncidentState, force: bool = False) -> None:
    """Raise ``IllegalTransition`` unless ``current -> to`` is legal (``force`` allows ``* -> resolved``)."""
    if to in TRANSITIONS[current]:
        return
    if force and to is S.RESOLVED and current is not S.RESOLVED:
        return
    allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none (terminal)"
    raise IllegalTransition(f"incident {incident_id}: cannot go {current.value} -> {to.value}; allowed: {allowed}")


def validate_cause(cause: str) -> str:
    if not _CAUSE_RE.match(cause or ""):
        raise IncidentError(f"incident cause {cause!r} must be snake_case (e.g. {', '.join(KNOWN_CAUSES[:3])})")
    return cause


def fingerprint(cause: str, market: str) -> str:
    """Repeated detections of the same fault on the same market share a fingerprint and join one incident."""
    return f"{validate_cause(cause)}:{market}"


def _aware(ts: dt.datetime, what: str) -> dt.datetime:
    if ts.tzinfo is None:
        raise IncidentError(f"{what} {ts.isoformat()} is naive; pass an aware UTC datetime")
    return ts.astimezone(UTC)


@dataclass(frozen=True, order=True)
class TimeWindow:
    """A half-open UTC interval ``[start, end)``."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _aware(self.start, "window start"))
        object.__setattr__(self, "end", _aware(self.end, "window end"))
        if self.end < self.start:
            raise IncidentError(f"time window ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})")

    def to_dict(self) -> dict[str, str]:
        return {"start": to_iso(self.start), "end": to_iso(self.end)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, str]) -> "TimeWindow":
        return cls(from_iso(raw["start"]), from_iso(raw["end"]))


def merge_windows(windows: Iterable[TimeWindow]) -> tuple[TimeWindow, ...]:
    """Union of windows: overlapping or touching windows become one, sorted by start."""
    merged: list[TimeWindow] = []
    for w in sorted(windows):
        if merged and w.start <= merged[-1].end:
            merged[-1] = TimeWindow(merged[-1].start, max(merged[-1].end, w.end))
        else:
            merged.append(w)
    return tuple(merged)


@dataclass(frozen=True)
class Scope:
    """What an incident touches: markets, symbols (empty = all), sessions (ISO dates), time windows."""

    markets: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    sessions: tuple[str, ...] = ()
    windows: tuple[TimeWindow, ...] = ()

    def __post_init__(self) -> None:
        for name in ("markets", "symbols", "sessions"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise IncidentError(f"scope {name} must be a sequence, got the string {value!r}")
            object.__setattr__(self, name, tuple(sorted(set(str(v) for v in value))))
        object.__setattr__(self, "windows", merge_windows(self.windows))

    def merge(self, other: "Scope") -> "Scope":
        return Scope(
            markets=self.markets + other.markets,
            symbols=self.symbols + other.symbols,
            sessions=self.sessions + other.sessions,
            windows=self.windows + other.windows,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "markets": list(self.markets),
            "symbols": list(self.symbols),
            "sessions": list(self.sessions),
            "windows": [w.to_dict() for w in self.windows],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "Scope":
        return cls(
            markets=tuple(raw.get("markets", ())),
            symbols=tuple(raw.get("symbols", ())),
            sessions=tuple(raw.get("sessions", ())),
            windows=tuple(TimeWindow.from_dict(w) for w in raw.get("windows", ())),
        )


def _iso_or_none(ts: dt.datetime | None) -> str | None:
    return to_iso(ts) if ts else None


@dataclass(frozen=True)
class Incident:
    id: str
    cause: str
    market: str
    fingerprint: str
    state: IncidentState
    scope: Scope
    description: str
    opened_at: dt.datetime
    updated_at: dt.datetime
    detections: int = 1
    owners: tuple[str, ...] = ()
    root_cause: str | None = None
    actions: tuple[str, ...] = ()
    vendor_refs: tuple[str, ...] = ()
    contained_at: dt.datetime | None = None
    recovering_at: dt.datetime | None = None
    validating_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    last_evaluation: Mapping[str, Any] | None = None

    @property
    def is_open(self) -> bool:
        return self.state is not IncidentState.RESOLVED

    @property
    def opened_date(self) -> dt.date:
        return self.opened_at.date()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cause": self.cause,
            "market": self.market,
            "fingerprint": self.fingerprint,
            "state": self.state.value,
            "scope": self.scope.to_dict(),
            "description": self.description,
            "detections": self.detections,
            "owners": list(self.owners),
            "root_cause": self.root_cause,
            "actions": list(self.actions),
            "vendor_refs": list(self.vendor_refs),
            "opened_at": to_iso(self.opened_at),
            "updated_at": to_iso(self.updated_at),
            "contained_at": _iso_or_none(self.contained_at),
            "recovering_at": _iso_or_none(self.recovering_at),
            "validating_at": _iso_or_none(self.validating_at),
            "resolved_at": _iso_or_none(self.resolved_at),
            "last_evaluation": dict(self.last_evaluation) if self.last_evaluation else None,
        }

@dataclass(frozen=True)
class IncidentEvent:
    """One timeline entry: what happened, when (UTC), and machine-readable data."""

    incident_id: str
    at: dt.datetime
    kind: str
    message: str
    data: Mapping[str, Any] = field(default_factory=dict)
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "incident_id": self.incident_id,
            "at": to_iso(self.at),
            "kind": self.kind,
            "message": self.message,
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class GapWindow:
    """Minutes of ``market`` missing in ``[start, end)``; ``status``: open | backfilling | backfilled | reconciled."""

    market: str
    start: dt.datetime
    end: dt.datetime
    missing_minutes: int
    status: str = "open"
    session: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "market": self.market,
            "start": to_iso(self.start),
            "end": to_iso(self.end),
            "missing_minutes": self.missing_minutes,
            "status": self.status,
            "session": self.session,
        }


GAP_STATUSES = ("open", "backfilling", "backfilled", "reconciled")


@dataclass(frozen=True)
class BackfillRecord:
    """A backfilled partition and its reconciliation against the vendor's totals and checksums."""

    incident_id: str
    market: str
    session: str
    rows: int
    vendor_rows: int
    checksums_ok: bool
    verdict: str
    recorded_at: dt.datetime
    run_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "market": self.market,
            "session": self.session,
            "rows": self.rows,
            "vendor_rows": self.vendor_rows,
            "checksums_ok": self.checksums_ok,
            "verdict": self.verdict,
            "recorded_at": to_iso(self.recorded_at),
            "run_id": self.run_id,
            "details": dict(self.details),
        }


def reconciliation_verdict(rows: int, vendor_rows: int, checksums_ok: bool) -> str:
    """``reconciled`` only when row counts match the vendor's totals and every checksum matched."""
    if not checksums_ok:
        return "checksum_mismatch"
    if rows != vendor_rows:
        return "row_mismatch"
    return "reconciled"


@dataclass(frozen=True)
class QuarantinedBatch:
    incident_id: str
    batch_id: str
    market: str
    session: str | None
    location: str
    reason: str
    quarantined_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "batch_id": self.batch_id,
            "market": self.market,
            "session": self.session,
            "location": self.location,
            "reason": self.reason,
            "quarantined_at": to_iso(self.quarantined_at),
        }


@dataclass(frozen=True)
class Baseline:
    """A reference to the pre-incident indicator baseline the tolerance gates compare against."""

    incident_id: str
    market: str
    indicator: str
    reference: str
    recorded_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "market": self.market,
            "indicator": self.indicator,
            "reference": self.reference,
            "recorded_at": to_iso(self.recorded_at),
        }


@dataclass(frozen=True)
class Followup:
    """Preventive follow-up (runbook 6.3): a chaos replay of the fault, due within 30 days."""

    id: int
    incident_id: str
    scenario: str
    due_at: dt.datetime
    status: str
    created_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "scenario": self.scenario,
            "due_at": to_iso(self.due_at),
            "status": self.status,
            "created_at": to_iso(self.created_at),
        }
