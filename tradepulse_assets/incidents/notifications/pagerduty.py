"""PagerDuty Events API v2: the bridge's lifecycle on one ``dedup_key`` (the incident id).

``trigger`` at detection (with ``links`` to the timeline and the Dagster run, and ``client``/``client_url``
pointing to the Dagster UI), ``acknowledge`` when recovery starts, ``resolve`` at validation and on every
resolution. PagerDuty answers 202 to accepted events; 400 means the event itself is wrong (not retried).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from tradepulse_assets.core.http import HttpClient
from tradepulse_assets.incidents.communications import (
    MAX_DEDUP_KEY,
    SEVERITIES,
    EventAction,
    Message,
    format_instant,
)
from tradepulse_assets.incidents.notifications.transport import (
    FAILED,
    Attempt,
    NotifierConfigError,
    Redactor,
    notify_client,
    post_once,
    require_http_url,
)

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_SUMMARY = 1024
CLIENT = "TradePulse Assets (Dagster)"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def pagerduty_event(
    message: Message,
    routing_key: str,
    *,
    source: str,
    group: str,
    now: dt.datetime,
    client_url: str | None = None,
) -> dict[str, Any]:
    """The Events API v2 body: a trigger with the full payload, or a bare acknowledge/resolve."""
    action = message.event_action or EventAction.TRIGGER
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action.value,
        "dedup_key": message.dedup_key,
    }
    if action is not EventAction.TRIGGER:
        return event
    details = dict(message.details)
    markets = details.get("markets") or []
    event["payload"] = {
        "summary": truncate(message.text, MAX_SUMMARY),
        "source": source,
        "severity": message.severity if message.severity in SEVERITIES else "error",
        "timestamp": format_instant(message.timestamp or now),
        "component": ",".join(markets) or "market-data",
        "group": group,
        "class": details.get("cause") or message.stage.value,
        "custom_details": {
            "incident_id": message.incident_id,
            "stage": message.stage.value,
            "audience": list(message.audience),
            **details,
        },
    }
    links = details.get("links") or {}
    if links:
        event["links"] = [{"href": url, "text": label} for label, url in links.items()]
    event["client"] = CLIENT + (" DRILL" if message.drill else "")
    if client_url:
        event["client_url"] = client_url
    return event


class PagerDutyEvents:
    """Sends the ``pagerduty`` channel's events to one routing key."""

    name = "pagerduty"

    def __init__(
        self,
        events_url: str,
        routing_key: str,
        *,
        source: str = "tradepulse-assets",
        group: str = "market-data",
        client_url: str | None = None,
        client: HttpClient | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        require_http_url(events_url, "TRADEPULSE_PAGERDUTY_EVENTS_URL")
        if not routing_key or not routing_key.strip():
            raise NotifierConfigError("PagerDuty routing key (TRADEPULSE_PAGERDUTY_ROUTING_KEY) is empty")
        self._url, self._routing_key = events_url, routing_key
        self._source, self._group, self._client_url = source, group, client_url
        self._client = client or notify_client()
        self._clock = clock
        self.redactor = Redactor([routing_key, events_url] if "?" in events_url else [routing_key])

    def __repr__(self) -> str:
        return f"PagerDutyEvents(source={self._source!r})"

    def handles(self, channel: str) -> bool:
        return channel == "pagerduty"

    def send(self, message: Message) -> Attempt:
        label = f"pagerduty {(message.event_action or EventAction.TRIGGER).value} {message.incident_id}"
        if not message.dedup_key or len(message.dedup_key) > MAX_DEDUP_KEY:
            error = f"{label}: dedup_key must be 1..{MAX_DEDUP_KEY} characters, got {len(message.dedup_key)}"
            return Attempt(FAILED, None, error)
        body = pagerduty_event(
            message,
            self._routing_key,
            source=self._source,
            group=self._group,
            now=self._clock(),
            client_url=self._client_url,
        )
        return post_once(
            self._client,
            self._url,
            body,
            label=label,
            redact=self.redactor,
            accepted=lambda answer: answer.status == 202,
            reference=lambda answer: _json_field(answer.text, "dedup_key"),
        )


def _json_field(body: str, key: str) -> str | None:
    try:
        value = json.loads(body).get(key)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
