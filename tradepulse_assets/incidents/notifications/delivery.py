"""Posting messages (never blocks on the network) and the delivery worker (the only code that sends).

``Notifications.post`` is what the incident engine, the sensors and the CLI call: it marks drill messages,
puts each message in the durable outbox for its channel's transport (or records it in the JSONL outbox file
when the channel has none) and returns at once. ``Notifications.deliver_due`` is the worker: run by the
``deliver_notifications`` job (launched by a sensor whose tick only counts due rows) and by
``tradepulse-cli notify deliver``. It makes one bounded attempt per due message, within a time budget, and
leaves everything else in the outbox for the next pass: nothing is lost when an endpoint never answers.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tradepulse_assets.core.io import append_jsonl
from tradepulse_assets.incidents.communications import Message
from tradepulse_assets.incidents.notifications.config import ChannelConfig
from tradepulse_assets.incidents.notifications.outbox import (
    EXPIRED,
    FILE_TRANSPORT,
    RECORDED,
    Outbox,
    OutboxEntry,
    file_record,
)
from tradepulse_assets.incidents.notifications.transport import DELIVERED, FAILED, RETRY, Attempt

logger = logging.getLogger(__name__)
DELIVERY_BUDGET_SECONDS = 45.0

# Called once per message that will not be delivered (failed or expired): the engine writes the timeline.
GiveUpHandler = Callable[[OutboxEntry], None]


@dataclass
class DeliveryReport:
    delivered: list[OutboxEntry] = field(default_factory=list)
    retrying: list[OutboxEntry] = field(default_factory=list)
    given_up: list[OutboxEntry] = field(default_factory=list)
    left_for_next_pass: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.delivered)} delivered, {len(self.retrying)} to retry, {len(self.given_up)} given up,"
            f" {self.left_for_next_pass} left for the next pass"
        )


class Notifications:
    """The outbox of one state DB plus the configured channels; ``clock`` stamps rows and schedules retries."""

    def __init__(
        self,
        outbox: Outbox,
        config: ChannelConfig,
        file_outbox: str | Path,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.outbox = outbox
        self.config = config
        self.file_outbox = Path(file_outbox)
        self._clock = clock

    def __repr__(self) -> str:
        return f"Notifications(channels={[c.name for c in self.config.channels]}, drill={self.config.drill})"

    @property
    def drill(self) -> bool:
        return self.config.drill

    def routes(self) -> dict[str, str]:
        """Runbook channel -> transport name, for ``--json`` output and docs; no secrets."""
        from tradepulse_assets.incidents.communications import KILL_SWITCH_CHANNEL, Channel

        names = [c.value for c in Channel] + [KILL_SWITCH_CHANNEL]
        return {name: getattr(self.config.channel_for(name), "name", FILE_TRANSPORT) for name in names}

    def post(self, messages: Iterable[Message]) -> list[OutboxEntry]:
        """Enqueue every message; returns the outbox rows. Never touches the network."""
        now = self._clock()
        entries = []
        for message in messages:
            if self.drill:
                message = message.as_drill()
            channel = self.config.channel_for(message.channel)
            if channel is None:
                entries.append(self.outbox.enqueue(message, FILE_TRANSPORT, now=now, status=RECORDED))
                self._record_in_file(message, now)
            else:
                entries.append(self.outbox.enqueue(message, channel.name, now=now))
        return entries

    def _record_in_file(self, message: Message, now: dt.datetime, note: str | None = None) -> None:
        record = file_record(message, now, note)
        try:
            append_jsonl(self.file_outbox, record, fsync=True)
        except OSError as exc:  # the row in the state DB is the record of truth; the file is a convenience
            logger.error("notification not written to %s: %s", self.file_outbox, exc)
        logger.info(
            "notification [%s] incident %s %s: %s",
            message.channel,
            message.incident_id,
            message.stage.value,
            message.text,
        )

    def deliver_due(
        self,
        *,
        budget_seconds: float = DELIVERY_BUDGET_SECONDS,
        on_give_up: GiveUpHandler | None = None,
        limit: int = 200,
    ) -> DeliveryReport:
        """One pass of the worker: expire what is too old, then one attempt per due row until the budget
        is spent. A row's attempt may take up to the transport's timeouts; the budget is checked between rows."""
        report = DeliveryReport()
        now = self._clock()
        for entry in self.outbox.expire(now):
            report.given_up.append(entry)
            self._give_up(entry, on_give_up)
        started = time.monotonic()
        attempted: set[int] = set()
        blocked: set[tuple[str, str]] = set()
        while True:  # a delivered message may make the next one of its incident and channel due
            due = [e for e in self.outbox.due(now, limit) if e.id not in attempted]
            progressed = False
            for index, entry in enumerate(due):
                if time.monotonic() - started > budget_seconds:
                    report.left_for_next_pass = len(due) - index
                    return self._finish(report)
                key = (entry.incident_id, entry.channel)
                attempted.add(entry.id)
                if key in blocked or not self.outbox.claim(entry.id, now=now):
                    continue  # an earlier message of this incident and channel is still pending
                entry = self.outbox.record_attempt(entry.id, self._attempt(entry), now=self._clock())
                if entry.status == DELIVERED:
                    report.delivered.append(entry)
                    progressed = True
                elif entry.status == FAILED:
                    report.given_up.append(entry)
                    self._give_up(entry, on_give_up)
                    progressed = True
                else:
                    report.retrying.append(entry)
                    blocked.add(key)
            if not progressed:
                return self._finish(report)

    def _finish(self, report: DeliveryReport) -> DeliveryReport:
        if report.delivered or report.retrying or report.given_up:
            logger.info("notification delivery: %s", report.summary())
        return report

    def _attempt(self, entry: OutboxEntry) -> Attempt:
        channel = self.config.by_name(entry.transport)
        if channel is None:
            return Attempt(FAILED, None, f"transport {entry.transport} is no longer configured")
        try:
            return channel.send(entry.message)
        except Exception as exc:  # a channel bug must not stop the other messages
            return Attempt(
                RETRY, None, self.config.redactor(f"{entry.transport} raised {type(exc).__name__}: {exc}")
            )

    def _give_up(self, entry: OutboxEntry, on_give_up: GiveUpHandler | None) -> None:
        why = "expired undelivered" if entry.status == EXPIRED else "refused"
        self._record_in_file(entry.message, self._clock(), note=f"{why}: {entry.last_error}")
        if on_give_up is None:
            return
        try:
            on_give_up(entry)
        except Exception as exc:
            logger.error(
                "on_give_up raised for notification %s: %s", entry.id, self.config.redactor(str(exc))
            )


def note_on_timeline(store, clock: Callable[[], dt.datetime]) -> GiveUpHandler:
    """A give-up handler writing ``notification_failed`` on the incident's timeline (``IncidentStore``)."""

    def handler(entry: OutboxEntry) -> None:
        store.add_event(
            entry.incident_id,
            "notification_failed",
            f"{entry.stage} to {entry.channel} via {entry.transport} {entry.status} after {entry.attempts}"
            f" attempt(s): {entry.last_error}",
            now=clock(),
        )

    return handler


def notifications_for(
    db,
    file_outbox: str | Path,
    env=None,
    *,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Notifications:
    """Notifications of a state DB with the environment's channels (none in a quiet drill)."""
    from tradepulse_assets.incidents.notifications.config import config_for

    return Notifications(Outbox(db), config_for(db, env, clock=clock), file_outbox, clock=clock)
