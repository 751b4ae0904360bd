"""The runbook's communication plan (section 4) as data: who hears what, where, at which stage.

Why a module of its own: the wording and routing of incident messages is policy that Compliance
and Trading Ops review, so it lives in one table-shaped place that a reader can hold against the
runbook line by line, and it is pure (plain data in, plain ``Message`` values out) so the incident
engine, the CLI and tests can all produce the exact same texts without any transport configured.
Delivery is somebody else's job (``incidents/notifications``).

Routing decisions worth knowing:

* One ``Message`` per *channel* of a runbook row; ``audience`` carries the row's audiences. Sending
  one Slack post per audience member would post the same text to ``#incidents`` three times.
* PagerDuty is the "bridge" of the detection stage: a ``trigger`` with ``dedup_key`` = incident id.
  Recovery start adds an ``acknowledge`` (someone is working on it), the validation-pass stage a
  ``resolve``, and every resolution (forced included) the same ``resolve`` again: PagerDuty ignores
  a repeated resolve, so sending it twice is safe and a forced resolution never leaves a page open.
* Containment that freezes strategy promotions adds the runbook's kill-switch notice (section 2)
  to the live-trading team, naming the frozen strategies (``kill_switch_notice``).
* A drill marks every message (``Message.drill``): ``[DRILL]`` before the text, ``drill: true`` in
  the details, so nobody mistakes a replay for an incident even when it is sent to real channels.
* Delivery is the ``notifications`` package's job: a durable outbox and a delivery worker.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# PagerDuty Events API v2 limits.
MAX_DEDUP_KEY = 255
SEVERITIES = ("critical", "error", "warning", "info")


class Stage(str, enum.Enum):
    DETECTION = "detection"
    CONTAINMENT = "containment"
    RECOVERY_START = "recovery_start"
    VALIDATION_PASS = "validation_pass"
    POSTMORTEM_READY = "postmortem_ready"


class Channel(str, enum.Enum):
    """Where a message goes. Slack channels keep their ``#``; the rest are transports by name."""

    PAGERDUTY = "pagerduty"
    INCIDENTS = "#incidents"
    EMAIL = "email"
    LEADERSHIP_TECH = "#leadership-tech"
    TRADING_OPS = "#trading-ops"
    STATUS_PAGE = "status-page"
    CONFLUENCE = "confluence"


class EventAction(str, enum.Enum):
    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


KILL_SWITCH_CHANNEL = "#live-trading"
KILL_SWITCH_AUDIENCE = ("Live Trading",)
DRILL_MARK = "[DRILL] "


class CommunicationError(ValueError):
    """A brief lacks what a stage's message needs; the message names the incident, stage and field."""


@dataclass(frozen=True)
class IncidentBrief:
    """What the communication plan needs to know about an incident: plain data, no store objects.

    ``range_start``/``range_end`` bound the backfill (dates for whole sessions, aware datetimes for
    minute windows). ``eta`` is when ingestion is expected back. ``severity`` is the PagerDuty
    severity of the detection page and the containment notice.
    """

    incident_id: str
    markets: tuple[str, ...]
    cause: str = ""
    summary: str = ""
    range_start: dt.date | dt.datetime | None = None
    range_end: dt.date | dt.datetime | None = None
    eta: dt.datetime | None = None
    postmortem_path: str | None = None
    severity: str = "critical"
    links: Mapping[str, str] = field(default_factory=dict)  # label -> URL (timeline, Dagster run)

    def __post_init__(self) -> None:
        if not self.incident_id or not self.incident_id.strip():
            raise CommunicationError("incident brief: incident_id is empty")
        if len(self.incident_id) > MAX_DEDUP_KEY:
            raise CommunicationError(
                f"incident brief {self.incident_id[:40]}...: incident_id is {len(self.incident_id)}"
                f" characters, PagerDuty dedup keys allow {MAX_DEDUP_KEY}"
            )
        if isinstance(self.markets, str):
            raise CommunicationError(
                f"incident {self.incident_id}: markets must be a sequence of market ids, got the string"
                f" {self.markets!r}"
            )
        object.__setattr__(self, "markets", tuple(self.markets))
        if self.severity not in SEVERITIES:
            raise CommunicationError(
                f"incident {self.incident_id}: severity {self.severity!r}"
                f" is not one of {', '.join(SEVERITIES)}"
            )
        for name in ("eta", "range_start", "range_end"):
            value = getattr(self, name)
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                raise CommunicationError(
                    f"incident {self.incident_id}: {name} {value.isoformat()} is naive;"
                    " pass an aware UTC datetime"
                )


@dataclass(frozen=True)
class Message:
    """One notification for one channel. ``dedup_key`` makes at-least-once delivery harmless."""

    stage: Stage
    incident_id: str
    audience: tuple[str, ...]
    channel: str
    text: str
    severity: str
    dedup_key: str
    event_action: EventAction | None = None
    timestamp: dt.datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    drill: bool = False

    def as_drill(self) -> "Message":
        """The same message marked as a drill (idempotent)."""
        if self.drill:
            return self
        text = self.text if self.text.startswith(DRILL_MARK) else DRILL_MARK + self.text
        return dataclasses.replace(self, text=text, drill=True, details={**self.details, "drill": True})

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Message":
        """The inverse of ``to_record`` (the durable outbox stores records)."""
        timestamp = record.get("timestamp")
        return cls(
            stage=Stage(record["stage"]),
            incident_id=record["incident_id"],
            audience=tuple(record.get("audience") or ()),
            channel=record["channel"],
            text=record["text"],
            severity=record["severity"],
            dedup_key=record["dedup_key"],
            event_action=EventAction(record["event_action"]) if record.get("event_action") else None,
            timestamp=dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")) if timestamp else None,
            details=dict(record.get("details") or {}),
            drill=bool(record.get("drill")),
        )

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (the outbox line, log extras)."""
        return {
            "stage": self.stage.value,
            "incident_id": self.incident_id,
            "audience": list(self.audience),
            "channel": self.channel,
            "text": self.text,
            "severity": self.severity,
            "dedup_key": self.dedup_key,
            "event_action": self.event_action.value if self.event_action else None,
            "timestamp": format_instant(self.timestamp) if self.timestamp else None,
            "details": _jsonable(dict(self.details)),
            "drill": self.drill,
        }


@dataclass(frozen=True)
class PlanRow:
    """One row of the runbook table: audiences, channels and the message template."""

    stage: Stage
    audience: tuple[str, ...]
    channels: tuple[Channel, ...]


# Runbook section 4, row by row. Texts are rendered by ``render_text`` below.
COMMUNICATION_PLAN: Mapping[Stage, PlanRow] = MappingProxyType(
    {
        Stage.DETECTION: PlanRow(
            Stage.DETECTION, ("Trading Ops", "Risk", "Quant On Call"), (Channel.PAGERDUTY, Channel.INCIDENTS)
        ),
        Stage.CONTAINMENT: PlanRow(
            Stage.CONTAINMENT, ("Executives", "Compliance"), (Channel.EMAIL, Channel.LEADERSHIP_TECH)
        ),
        Stage.RECOVERY_START: PlanRow(Stage.RECOVERY_START, ("Trading Ops",), (Channel.TRADING_OPS,)),
        Stage.VALIDATION_PASS: PlanRow(
            Stage.VALIDATION_PASS,
            ("Trading Ops", "Risk", "Compliance"),
            (Channel.TRADING_OPS, Channel.STATUS_PAGE),
        ),
        Stage.POSTMORTEM_READY: PlanRow(Stage.POSTMORTEM_READY, ("Org-wide",), (Channel.CONFLUENCE,)),
    }
)


def format_instant(value: dt.datetime) -> str:
    """An aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC (PagerDuty and the outbox)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_human_time(value: dt.date | dt.datetime) -> str:
    """A date as ``2026-03-09``; an aware datetime as ``2026-03-09 15:00 UTC`` (texts people read)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def format_markets(markets: Sequence[str]) -> str:
    return ", ".join(markets)


def format_range(start: dt.date | dt.datetime, end: dt.date | dt.datetime) -> str:
    """``2026-03-09 13:30 UTC to 2026-03-09 15:00 UTC``; a one-day range of dates is just that date."""
    if start == end and not isinstance(start, dt.datetime):
        return format_human_time(start)
    return f"{format_human_time(start)} to {format_human_time(end)}"


def _require(brief: IncidentBrief, stage: Stage, name: str) -> Any:
    value = getattr(brief, name)
    if value is None or value == () or value == "":
        raise CommunicationError(
            f"incident {brief.incident_id}: stage {stage.value} needs {name}, which is empty"
        )
    return value


def render_text(stage: Stage, brief: IncidentBrief) -> str:
    """The runbook's message for a stage, filled from the brief (the table's wording, exactly)."""
    if stage is Stage.DETECTION:
        markets = _require(brief, stage, "markets")
        return f"Data incident {brief.incident_id} detected, markets impacted: {format_markets(markets)}"
    if stage is Stage.CONTAINMENT:
        markets = _require(brief, stage, "markets")
        eta = format_human_time(brief.eta) if brief.eta is not None else "unknown"
        return f"Ingestion paused for {format_markets(markets)}, ETA {eta}"
    if stage is Stage.RECOVERY_START:
        markets = _require(brief, stage, "markets")
        start = _require(brief, stage, "range_start")
        end = _require(brief, stage, "range_end")
        return f"Backfill initiated for {format_markets(markets)} covering {format_range(start, end)}"
    if stage is Stage.VALIDATION_PASS:
        return "Data restored and validated, resuming normal ops"
    if stage is Stage.POSTMORTEM_READY:
        return f"Incident {brief.incident_id} retrospective published"
    raise CommunicationError(f"incident {brief.incident_id}: unknown stage {stage!r}")


def _stage_severity(stage: Stage, brief: IncidentBrief) -> str:
    return brief.severity if stage in (Stage.DETECTION, Stage.CONTAINMENT) else "info"


def _details(stage: Stage, brief: IncidentBrief) -> dict[str, Any]:
    details: dict[str, Any] = {"markets": list(brief.markets), "stage": stage.value}
    for name in ("cause", "summary", "postmortem_path"):
        if getattr(brief, name):
            details[name] = getattr(brief, name)
    if brief.eta is not None:
        details["eta"] = format_instant(brief.eta)
    if brief.range_start is not None and brief.range_end is not None:
        details["range"] = [_jsonable(brief.range_start), _jsonable(brief.range_end)]
    if brief.links:
        details["links"] = dict(brief.links)
    return details


def _message(
    stage: Stage,
    brief: IncidentBrief,
    channel: Channel,
    text: str,
    at: dt.datetime | None,
    action: EventAction | None = None,
) -> Message:
    pagerduty = channel is Channel.PAGERDUTY
    return Message(
        stage=stage,
        incident_id=brief.incident_id,
        audience=COMMUNICATION_PLAN[stage].audience,
        channel=channel.value,
        text=text,
        severity=_stage_severity(stage, brief),
        # PagerDuty groups trigger and resolve by incident; everything else is unique per stage and channel.
        dedup_key=brief.incident_id if pagerduty else f"{brief.incident_id}:{stage.value}:{channel.value}",
        event_action=action,
        timestamp=at,
        details=_details(stage, brief),
    )


def pagerduty_resolve(brief: IncidentBrief, *, at: dt.datetime | None = None) -> Message:
    """The PagerDuty ``resolve`` for an incident (validation pass and exit); PagerDuty ignores repeats."""
    return _message(
        Stage.VALIDATION_PASS,
        brief,
        Channel.PAGERDUTY,
        render_text(Stage.VALIDATION_PASS, brief),
        at,
        EventAction.RESOLVE,
    )


def pagerduty_acknowledge(brief: IncidentBrief, *, at: dt.datetime | None = None) -> Message:
    """The PagerDuty ``acknowledge`` sent when recovery starts: someone is working on the page."""
    text = render_text(Stage.RECOVERY_START, brief)
    return _message(Stage.RECOVERY_START, brief, Channel.PAGERDUTY, text, at, EventAction.ACKNOWLEDGE)


def kill_switch_notice(
    brief: IncidentBrief, frozen: Sequence[str], *, at: dt.datetime | None = None
) -> Message:
    """Runbook section 2: tell the live-trading team which strategy promotions are frozen, so they
    evaluate their kill-switch posture. ``frozen`` names the frozen strategies (market/toggle)."""
    if not frozen:
        raise CommunicationError(f"incident {brief.incident_id}: a kill-switch notice needs frozen strategies")
    text = (
        f"Strategy promotions frozen for {', '.join(frozen)} (incident {brief.incident_id}, markets "
        f"{format_markets(brief.markets)}): evaluate kill-switch posture"
    )
    return Message(
        stage=Stage.CONTAINMENT,
        incident_id=brief.incident_id,
        audience=KILL_SWITCH_AUDIENCE,
        channel=KILL_SWITCH_CHANNEL,
        text=text,
        severity=brief.severity,
        dedup_key=f"{brief.incident_id}:kill_switch:{KILL_SWITCH_CHANNEL}",
        timestamp=at,
        details={**_details(Stage.CONTAINMENT, brief), "frozen": list(frozen)},
    )


def messages_for(stage: Stage | str, brief: IncidentBrief, *, at: dt.datetime | None = None) -> list[Message]:
    """Every message the runbook sends at ``stage``: one per channel, in the table's order.

    ``at`` stamps the messages (PagerDuty's ``timestamp``); ``None`` lets the transport stamp them.
    """
    stage = Stage(stage)
    text = render_text(stage, brief)
    messages = []
    for channel in COMMUNICATION_PLAN[stage].channels:
        action = EventAction.TRIGGER if channel is Channel.PAGERDUTY else None
        messages.append(_message(stage, brief, channel, text, at, action))
    if stage is Stage.RECOVERY_START:
        messages.append(pagerduty_acknowledge(brief, at=at))
    if stage is Stage.VALIDATION_PASS:
        messages.append(pagerduty_resolve(brief, at=at))
    return messages


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return format_instant(value) if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
