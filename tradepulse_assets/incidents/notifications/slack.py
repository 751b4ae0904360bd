"""Slack incoming webhooks: one webhook URL per channel (``TRADEPULSE_SLACK_WEBHOOK_<CHANNEL>``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tradepulse_assets.core.http import HttpClient
from tradepulse_assets.incidents.communications import Message
from tradepulse_assets.incidents.notifications.transport import (
    Attempt,
    Redactor,
    notify_client,
    post_once,
    require_http_url,
)


def slack_escape(text: str) -> str:
    """Slack's three control characters (``&``, ``<``, ``>``) as entities, per Slack's formatting rules."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: Message) -> dict[str, Any]:
    """Incoming-webhook body: ``text`` (notifications, fallback) and ``blocks`` (what people see)."""
    text = slack_escape(message.text)
    context = (
        f"Incident *{slack_escape(message.incident_id)}* | stage {message.stage.value} | "
        f"severity {message.severity} | for {slack_escape(', '.join(message.audience))}"
    )
    if message.drill:
        context += " | *DRILL*: no action needed"
    links = message.details.get("links") or {}
    if links:
        context += " | " + " ".join(f"<{url}|{slack_escape(label)}>" for label, url in links.items())
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


class SlackWebhooks:
    """Posts to Slack incoming webhooks; Slack answers ``200 ok`` (anything else on 200 is a failure)."""

    name = "slack"

    def __init__(self, webhooks: Mapping[str, str], *, client: HttpClient | None = None) -> None:
        for channel, url in webhooks.items():
            require_http_url(url, f"Slack webhook for {channel}")
        self._webhooks = dict(webhooks)
        self._client = client or notify_client()
        self.redactor = Redactor(self._webhooks.values())

    def __repr__(self) -> str:
        return f"SlackWebhooks(channels={list(self._webhooks)})"

    def handles(self, channel: str) -> bool:
        return channel in self._webhooks

    def send(self, message: Message) -> Attempt:
        return post_once(
            self._client,
            self._webhooks[message.channel],
            slack_payload(message),
            label=f"slack {message.channel}",
            redact=self.redactor,
            accepted=lambda answer: answer.status == 200 and answer.text.strip() == "ok",
            reference=lambda answer: "ok",
        )
